#pragma once
#include <napi.h>

namespace gk {
// deviceAlloc, deviceFree, deviceWrite, deviceRead, deviceCopy,
// liveDeviceBuffers, gcmSealDevice, gcmOpenDevice on the CUDA addon's exports.
void RegisterDeviceBufferFunctions(Napi::Env env, Napi::Object exports);
}
