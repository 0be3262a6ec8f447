#pragma once
#include <napi.h>

namespace gk {
void RegisterReplayFunctions(Napi::Env env, Napi::Object exports);
}
