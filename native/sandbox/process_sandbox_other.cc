// The process sandbox where it is not Linux: sandboxProbe reports the
// platform, with nothing enforceable, so lib/sandbox refuses every spawn.
#if !defined(__linux__)

#include "sandbox/process_sandbox.h"

namespace gk {
namespace {

Napi::Value SandboxProbe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
#if defined(__APPLE__)
  o.Set("platform", "darwin");
#elif defined(_WIN32)
  o.Set("platform", "win32");
#else
  o.Set("platform", "other");
#endif
  return o;
}

}  // namespace

void RegisterProcessSandboxFunctions(Napi::Env env, Napi::Object exports) {
  exports.Set("sandboxProbe", Napi::Function::New(env, SandboxProbe, "sandboxProbe"));
}

}  // namespace gk

#endif
