#pragma once
#include <napi.h>

namespace gk {
void RegisterSandboxFunctions(Napi::Env env, Napi::Object exports);
}
