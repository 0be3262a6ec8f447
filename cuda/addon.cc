// Entry point of the CUDA addon (guardkernel_cuda.node). Plain host C++: the
// CUDA calls live behind device_query.h so this file needs no CUDA headers.
#include <napi.h>

#include <string>

#include "aes_gcm_binding.h"
#include "binding_args.h"
#include "device_buffer_binding.h"
#include "device_query.h"
#include "k2k/sandbox_args.h"
#include "sandbox_kernels.h"

namespace {

// Must match CUDA_ABI_VERSION in lib/native/addon-types.ts.
constexpr uint32_t kAbiVersion = 5;
// Words the self-test kernel writes: several blocks, with a partial last one.
constexpr size_t kSelfTestWords = 1000;
constexpr uint32_t kSelfTestSeed = 0x9e3779b9u;

Napi::Value DeviceCount(const Napi::CallbackInfo& info) {
  std::string error;
  int count = gk::CudaDeviceCount(&error);
  Napi::Object result = Napi::Object::New(info.Env());
  result.Set("count", count);
  if (!error.empty()) result.Set("error", error);
  return result;
}

Napi::Value Devices(const Napi::CallbackInfo& info) {
  std::string error;
  std::vector<gk::DeviceInfo> devices = gk::CudaDevices(&error);
  Napi::Array list = Napi::Array::New(info.Env(), devices.size());
  for (size_t i = 0; i < devices.size(); ++i) {
    const gk::DeviceInfo& d = devices[i];
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("index", d.index);
    o.Set("name", d.name);
    o.Set("computeCapability", std::to_string(d.major) + "." + std::to_string(d.minor));
    o.Set("totalMemoryBytes", double(d.total_memory));
    o.Set("multiprocessors", d.multiprocessors);
    list.Set(uint32_t(i), o);
  }
  return list;
}

Napi::Value SelfTest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) throw Napi::TypeError::New(env, "Expected a device index");
  int device = info[0].As<Napi::Number>().Int32Value();
  Napi::Uint32Array out = Napi::Uint32Array::New(env, kSelfTestWords);
  std::string error;
  if (!gk::CudaSelfTest(device, kSelfTestSeed, out.Data(), kSelfTestWords, &error)) {
    gk::ThrowGpuError(env, "CUDA self-test failed: " + error);
  }
  return out;
}

Napi::Value RuntimeVersion(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), gk::CudaRuntimeVersion());
}

// sandboxCheck(...the core addon's 14 arguments..., timings?): the K2K
// sandbox on device 0. timings, a Float64Array(2), gets [ms for the whole
// call, ms of device work without transfers].
Napi::Value SandboxCheck(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  gk::sandbox::CheckCall call = gk::sandbox::ParseCheckCall(info);
  double* timings = nullptr;
  if (info.Length() > 14 && !info[14].IsUndefined()) {
    if (!info[14].IsTypedArray() || info[14].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
        info[14].As<Napi::Float64Array>().ElementLength() < 2) {
      throw Napi::TypeError::New(env, "Expected a Float64Array(2) for timings");
    }
    timings = info[14].As<Napi::Float64Array>().Data();
  }
  std::string error;
  if (!gk::sandbox::CudaCheckMessages(call.state, call.batch, call.now_ms, call.verdicts, call.counts, timings, &error)) {
    gk::ThrowGpuError(env, "CUDA sandbox check failed: " + error);
  }
  return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("abiVersion", Napi::Number::New(env, kAbiVersion));
  exports.Set("selfTestSeed", Napi::Number::New(env, kSelfTestSeed));
  exports.Set("deviceCount", Napi::Function::New<DeviceCount>(env, "deviceCount"));
  exports.Set("devices", Napi::Function::New<Devices>(env, "devices"));
  exports.Set("selfTest", Napi::Function::New<SelfTest>(env, "selfTest"));
  exports.Set("runtimeVersion", Napi::Function::New<RuntimeVersion>(env, "runtimeVersion"));
  exports.Set("sandboxCheck", Napi::Function::New<SandboxCheck>(env, "sandboxCheck"));
  gk::RegisterAesGcmFunctions(env, exports);
  gk::RegisterDeviceBufferFunctions(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(guardkernel_cuda, Init)
