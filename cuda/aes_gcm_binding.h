#pragma once
#include <napi.h>

namespace gk {
// gcmSeal, gcmOpen, sealBlocks, openBlocks on the CUDA addon's exports.
void RegisterAesGcmFunctions(Napi::Env env, Napi::Object exports);
}
