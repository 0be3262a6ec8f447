// Entry point of the core addon (guardkernel.node).
#include <napi.h>

#include "aead_blocks.h"
#include "decision_cache_binding.h"
#include "digest_functions.h"
#include "gate_line_binding.h"
#include "hmac_key.h"
#include "replay_binding.h"
#include "sandbox_binding.h"

namespace {

// Bumped whenever the JS-visible surface changes; lib/native/loader.ts refuses a
// stale build with a different number instead of calling into it blindly.
constexpr uint32_t kAbiVersion = 12;

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("abiVersion", Napi::Number::New(env, kAbiVersion));
  gk::RegisterDigestFunctions(env, exports);
  gk::RegisterGateLineFunctions(env, exports);
  gk::HmacKeyObject::Register(env, exports);
  gk::RegisterReplayFunctions(env, exports);
  gk::RegisterDecisionCacheFunctions(env, exports);
  gk::RegisterSandboxFunctions(env, exports);
  gk::RegisterAeadBlockFunctions(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(guardkernel, Init)
