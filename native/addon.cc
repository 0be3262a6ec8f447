// Entry point of the core addon (guardkernel.node).
#include <napi.h>

#include "aead/aead_blocks.h"
#include "stores/decision_cache_binding.h"
#include "hash/digest_functions.h"
#include "ipc/gate_line_binding.h"
#include "ipc/peer_credentials.h"
#include "hash/hmac_key.h"
#include "stores/replay_binding.h"
#include "k2k/sandbox_binding.h"
#include "sandbox/process_sandbox.h"

namespace {

// Bumped whenever the JS-visible surface changes; lib/native/loader.ts refuses a
// stale build with a different number instead of calling into it blindly.
constexpr uint32_t kAbiVersion = 14;

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("abiVersion", Napi::Number::New(env, kAbiVersion));
  gk::RegisterDigestFunctions(env, exports);
  gk::RegisterGateLineFunctions(env, exports);
  gk::RegisterPeerCredentialFunctions(env, exports);
  gk::HmacKeyObject::Register(env, exports);
  gk::RegisterReplayFunctions(env, exports);
  gk::RegisterDecisionCacheFunctions(env, exports);
  gk::RegisterSandboxFunctions(env, exports);
  gk::RegisterProcessSandboxFunctions(env, exports);
  gk::RegisterAeadBlockFunctions(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(guardkernel, Init)
