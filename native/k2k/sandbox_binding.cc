// sandboxCheck: the sequential checker (native/k2k/sandbox_check.cc) behind the
// shared argument checks of native/k2k/sandbox_args.cc.
#include "k2k/sandbox_binding.h"

#include "k2k/sandbox_args.h"
#include "k2k/sandbox_check.h"

namespace gk {
namespace {

Napi::Value SandboxCheck(const Napi::CallbackInfo& info) {
  sandbox::CheckCall call = sandbox::ParseCheckCall(info);
  sandbox::CheckMessages(call.state, call.batch, call.now_ms, call.verdicts, call.counts);
  return info.Env().Undefined();
}

}  // namespace

void RegisterSandboxFunctions(Napi::Env env, Napi::Object exports) {
  exports.Set("sandboxCheck", Napi::Function::New(env, SandboxCheck, "sandboxCheck"));
}

}  // namespace gk
