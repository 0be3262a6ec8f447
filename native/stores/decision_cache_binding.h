#pragma once
#include <napi.h>

namespace gk {
void RegisterDecisionCacheFunctions(Napi::Env env, Napi::Object exports);
}
