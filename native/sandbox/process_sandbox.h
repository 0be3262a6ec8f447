// The OS-level process sandbox (lib/sandbox/process.ts): spawn a command
// confined by rlimits, no_new_privs, seccomp-bpf, Landlock and namespaces on
// Linux (native/sandbox/process_sandbox_linux.cc); a sandbox_init profile plus
// rlimits on macOS and a Job Object on Windows (process_sandbox_other.cc).
#pragma once

#include <napi.h>

namespace gk {

void RegisterProcessSandboxFunctions(Napi::Env env, Napi::Object exports);

}  // namespace gk
