// Device memory behind DeviceBuffer: a type-tagged External per allocation.
// free() zeroes and releases it (a second free, or any use after, is
// ERR_CLOSED); the GC finalizer does the same for a forgotten buffer. Every
// offset and length is checked against the allocation before a copy.
#include "device_buffer_binding.h"

#include <atomic>
#include <string>

#include "aes_gcm_kernels.h"
#include "binding_args.h"
#include "device_buffers.h"

namespace gk {
namespace {

constexpr napi_type_tag kDeviceBufferTag = {0x6b9e3c0a51f24d77ULL, 0x9a1c7e2b40d35f68ULL};
std::atomic<int64_t> g_live{0};

struct Allocation {
  void* ptr = nullptr;
  size_t size = 0;
};

void Release(Allocation* a) {
  if (a->ptr != nullptr) {
    std::string ignored;
    devmem::WipeAndFree(a->ptr, a->size, &ignored);
    a->ptr = nullptr;
    g_live.fetch_sub(1);
  }
}

Allocation* HandleAt(const Napi::CallbackInfo& info, size_t index) {
  napi_value v = info[index];
  bool ok = false;
  if (napi_check_object_type_tag(info.Env(), v, &kDeviceBufferTag, &ok) != napi_ok || !ok) ThrowTypeError(info.Env(), "Expected a device buffer handle");
  void* data = nullptr;
  napi_get_value_external(info.Env(), v, &data);
  return static_cast<Allocation*>(data);
}

Allocation* LiveAt(const Napi::CallbackInfo& info, size_t index) {
  Allocation* a = HandleAt(info, index);
  if (a->ptr == nullptr) ThrowClosed(info.Env(), "DeviceBuffer");
  return a;
}

void CheckRange(const Napi::CallbackInfo& info, const Allocation* a, size_t offset, size_t length) {
  if (offset > a->size || length > a->size - offset) ThrowRangeError(info.Env(), "Range outside the device buffer");
}

// deviceAlloc(bytes) -> handle (zeroed memory)
Napi::Value DeviceAlloc(const Napi::CallbackInfo& info) {
  const size_t bytes = size_t(SafeIntegerArg(info, 0, "Expected a byte length"));
  auto* a = new Allocation();
  std::string error;
  if (!devmem::Alloc(bytes, &a->ptr, &error)) {
    delete a;
    ThrowGpuError(info.Env(), "CUDA device memory: " + error);
  }
  a->size = bytes;
  g_live.fetch_add(1);
  Napi::External<Allocation> ext = Napi::External<Allocation>::New(info.Env(), a, [](Napi::Env, Allocation* p) {
    Release(p);
    delete p;
  });
  napi_type_tag_object(info.Env(), ext, &kDeviceBufferTag);
  return ext;
}

// deviceFree(handle)
Napi::Value DeviceFree(const Napi::CallbackInfo& info) {
  Release(LiveAt(info, 0));
  return info.Env().Undefined();
}

// deviceWrite(handle, bytes, offset)
Napi::Value DeviceWrite(const Napi::CallbackInfo& info) {
  Allocation* a = LiveAt(info, 0);
  ByteView src = BytesArg(info, 1, "bytes");
  const size_t offset = size_t(SafeIntegerArg(info, 2, "Expected an offset"));
  CheckRange(info, a, offset, src.len);
  std::string error;
  if (!devmem::CopyIn(static_cast<uint8_t*>(a->ptr) + offset, src.data, src.len, &error)) ThrowGpuError(info.Env(), "CUDA device memory: " + error);
  return info.Env().Undefined();
}

// deviceRead(handle, out, offset): fills out from offset
Napi::Value DeviceRead(const Napi::CallbackInfo& info) {
  Allocation* a = LiveAt(info, 0);
  ByteView out = BytesArg(info, 1, "out");
  const size_t offset = size_t(SafeIntegerArg(info, 2, "Expected an offset"));
  CheckRange(info, a, offset, out.len);
  std::string error;
  if (!devmem::CopyOut(const_cast<uint8_t*>(out.data), static_cast<uint8_t*>(a->ptr) + offset, out.len, &error)) ThrowGpuError(info.Env(), "CUDA device memory: " + error);
  return info.Env().Undefined();
}

// deviceCopy(dst, dstOffset, src): all of src into dst at dstOffset
Napi::Value DeviceCopy(const Napi::CallbackInfo& info) {
  Allocation* dst = LiveAt(info, 0);
  const size_t offset = size_t(SafeIntegerArg(info, 1, "Expected an offset"));
  Allocation* src = LiveAt(info, 2);
  CheckRange(info, dst, offset, src->size);
  std::string error;
  if (!devmem::CopyOnDevice(static_cast<uint8_t*>(dst->ptr) + offset, src->ptr, src->size, &error)) ThrowGpuError(info.Env(), "CUDA device memory: " + error);
  return info.Env().Undefined();
}

Napi::Value LiveDeviceBuffers(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(g_live.load())); }

// gcmSealDevice(key, iv, aad, src, srcOffset, length, dst, dstOffset, tag)
Napi::Value GcmSealDevice(const Napi::CallbackInfo& info) {
  if (info.Length() < 9) ThrowTypeError(info.Env(), "gcmSealDevice expects 9 arguments");
  ByteView key = AesKeyArg(info, 0);
  ByteView iv = ExactBytesArg(info, 1, 12, "Expected a 12-byte IV");
  ByteView aad = BytesArg(info, 2, "aad");
  Allocation* src = LiveAt(info, 3);
  const size_t src_offset = size_t(SafeIntegerArg(info, 4, "Expected an offset"));
  const size_t length = size_t(SafeIntegerArg(info, 5, "Expected a length"));
  Allocation* dst = LiveAt(info, 6);
  const size_t dst_offset = size_t(SafeIntegerArg(info, 7, "Expected an offset"));
  ByteView tag = ExactBytesArg(info, 8, 16, "Expected a 16-byte tag buffer");
  CheckRange(info, src, src_offset, length);
  CheckRange(info, dst, dst_offset, length);
  std::string error;
  if (!aes::CudaGcmSealOnDevice(key.data, int(key.len), iv.data, aad.data, aad.len, static_cast<uint8_t*>(src->ptr) + src_offset, length,
                                static_cast<uint8_t*>(dst->ptr) + dst_offset, const_cast<uint8_t*>(tag.data), &error)) {
    ThrowGpuError(info.Env(), "CUDA device memory: " + error);
  }
  return info.Env().Undefined();
}

// gcmOpenDevice(key, iv, aad, src, srcOffset, length, tag, dst, dstOffset) -> authentic
Napi::Value GcmOpenDevice(const Napi::CallbackInfo& info) {
  if (info.Length() < 9) ThrowTypeError(info.Env(), "gcmOpenDevice expects 9 arguments");
  ByteView key = AesKeyArg(info, 0);
  ByteView iv = ExactBytesArg(info, 1, 12, "Expected a 12-byte IV");
  ByteView aad = BytesArg(info, 2, "aad");
  Allocation* src = LiveAt(info, 3);
  const size_t src_offset = size_t(SafeIntegerArg(info, 4, "Expected an offset"));
  const size_t length = size_t(SafeIntegerArg(info, 5, "Expected a length"));
  ByteView tag = ExactBytesArg(info, 6, 16, "Expected a 16-byte tag");
  Allocation* dst = LiveAt(info, 7);
  const size_t dst_offset = size_t(SafeIntegerArg(info, 8, "Expected an offset"));
  CheckRange(info, src, src_offset, length);
  CheckRange(info, dst, dst_offset, length);
  bool authentic = false;
  std::string error;
  if (!aes::CudaGcmOpenOnDevice(key.data, int(key.len), iv.data, aad.data, aad.len, static_cast<uint8_t*>(src->ptr) + src_offset, length, tag.data,
                                static_cast<uint8_t*>(dst->ptr) + dst_offset, &authentic, &error)) {
    ThrowGpuError(info.Env(), "CUDA device memory: " + error);
  }
  return Napi::Boolean::New(info.Env(), authentic);
}

}  // namespace

void RegisterDeviceBufferFunctions(Napi::Env env, Napi::Object exports) {
  exports.Set("deviceAlloc", Napi::Function::New(env, DeviceAlloc, "deviceAlloc"));
  exports.Set("deviceFree", Napi::Function::New(env, DeviceFree, "deviceFree"));
  exports.Set("deviceWrite", Napi::Function::New(env, DeviceWrite, "deviceWrite"));
  exports.Set("deviceRead", Napi::Function::New(env, DeviceRead, "deviceRead"));
  exports.Set("deviceCopy", Napi::Function::New(env, DeviceCopy, "deviceCopy"));
  exports.Set("liveDeviceBuffers", Napi::Function::New(env, LiveDeviceBuffers, "liveDeviceBuffers"));
  exports.Set("gcmSealDevice", Napi::Function::New(env, GcmSealDevice, "gcmSealDevice"));
  exports.Set("gcmOpenDevice", Napi::Function::New(env, GcmOpenDevice, "gcmOpenDevice"));
}

}  // namespace gk
