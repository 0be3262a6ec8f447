// One-shot SHA-256 / HMAC-SHA256 exports and the SHA implementation hooks.
#pragma once
#include <napi.h>

namespace gk {
void RegisterDigestFunctions(Napi::Env env, Napi::Object exports);
}
