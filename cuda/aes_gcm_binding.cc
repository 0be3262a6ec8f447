// N-API glue for cuda/aes_gcm_kernels.h. TypeScript (lib/crypto) validates
// first; these re-check every length so a direct caller cannot make the
// copies read or write out of bounds.
#include "aes_gcm_binding.h"

#include <string>

#include "aes_gcm_kernels.h"
#include "binding_args.h"

namespace gk {
namespace {

MutableByteView OutBytes(const Napi::CallbackInfo& info, size_t index, size_t need, const char* message) {
  ByteView v = BytesArg(info, index, "out");
  if (v.len < need) ThrowRangeError(info.Env(), message);
  return MutableByteView{const_cast<uint8_t*>(v.data), v.len};
}

// gcmSeal(key, iv, data, aad, out, tag)
Napi::Value GcmSeal(const Napi::CallbackInfo& info) {
  if (info.Length() < 6) ThrowTypeError(info.Env(), "gcmSeal expects 6 arguments");
  ByteView key = AesKeyArg(info, 0);
  ByteView iv = ExactBytesArg(info, 1, 12, "Expected a 12-byte IV");
  ByteView data = BytesArg(info, 2, "data");
  ByteView aad = BytesArg(info, 3, "aad");
  MutableByteView out = OutBytes(info, 4, data.len, "out is shorter than data");
  MutableByteView tag = OutBytes(info, 5, 16, "Expected a 16-byte tag buffer");
  std::string error;
  if (!aes::CudaGcmSeal(key.data, int(key.len), iv.data, aad.data, aad.len, data.data, data.len, out.data, tag.data, &error)) ThrowGpuError(info.Env(), "CUDA AES-GCM failed: " + error);
  return info.Env().Undefined();
}

// gcmOpen(key, iv, data, aad, tag, out) -> authentic
Napi::Value GcmOpen(const Napi::CallbackInfo& info) {
  if (info.Length() < 6) ThrowTypeError(info.Env(), "gcmOpen expects 6 arguments");
  ByteView key = AesKeyArg(info, 0);
  ByteView iv = ExactBytesArg(info, 1, 12, "Expected a 12-byte IV");
  ByteView data = BytesArg(info, 2, "data");
  ByteView aad = BytesArg(info, 3, "aad");
  ByteView tag = ExactBytesArg(info, 4, 16, "Expected a 16-byte tag");
  MutableByteView out = OutBytes(info, 5, data.len, "out is shorter than data");
  bool authentic = false;
  std::string error;
  if (!aes::CudaGcmOpen(key.data, int(key.len), iv.data, aad.data, aad.len, data.data, data.len, tag.data, out.data, &authentic, &error)) {
    ThrowGpuError(info.Env(), "CUDA AES-GCM failed: " + error);
  }
  return Napi::Boolean::New(info.Env(), authentic);
}

struct BlocksArgs {
  ByteView key, header, prefix, aad, data;
  uint64_t first;
  size_t block_size;
  uint32_t count;
};

// (key, header, prefix, first, aad, data, blockSize, ...) shared by both directions;
// `sealed` says whether data holds tag + ciphertext per block.
BlocksArgs ReadBlocksArgs(const Napi::CallbackInfo& info, bool sealed) {
  BlocksArgs a;
  a.key = AesKeyArg(info, 0);
  a.header = BytesArg(info, 1, "header");
  a.prefix = ExactBytesArg(info, 2, 4, "Expected a 4-byte nonce prefix");
  a.first = SafeIntegerArg(info, 3, "Expected a non-negative safe integer counter");
  a.aad = BytesArg(info, 4, "aad");
  a.data = BytesArg(info, 5, "data");
  a.block_size = PositiveIntegerArg(info, 6, double(1 << 24), "Expected a block size in [1, 2^24]");
  const size_t unit = a.block_size + (sealed ? 16 : 0);
  if (a.data.len % unit != 0 || a.data.len / unit > 0xffffffffu) ThrowRangeError(info.Env(), "data is not a whole number of blocks");
  a.count = uint32_t(a.data.len / unit);
  return a;
}

// sealBlocks(key, header, prefix, first, aad, data, blockSize, out)
Napi::Value SealBlocks(const Napi::CallbackInfo& info) {
  if (info.Length() < 8) ThrowTypeError(info.Env(), "sealBlocks expects 8 arguments");
  BlocksArgs a = ReadBlocksArgs(info, false);
  MutableByteView out = OutBytes(info, 7, size_t(a.count) * (16 + a.block_size), "out is too short for the sealed blocks");
  std::string error;
  if (!aes::CudaSealBlocks(a.key.data, int(a.key.len), a.header.data, a.header.len, a.prefix.data, a.first, a.aad.data, a.aad.len, a.data.data,
                           a.block_size, a.count, out.data, &error)) {
    ThrowGpuError(info.Env(), "CUDA AES-GCM failed: " + error);
  }
  return info.Env().Undefined();
}

// openBlocks(key, header, prefix, first, aad, data, blockSize, out) -> index of the first bad block, or -1
Napi::Value OpenBlocks(const Napi::CallbackInfo& info) {
  if (info.Length() < 8) ThrowTypeError(info.Env(), "openBlocks expects 8 arguments");
  BlocksArgs a = ReadBlocksArgs(info, true);
  MutableByteView out = OutBytes(info, 7, size_t(a.count) * a.block_size, "out is too short for the opened blocks");
  int64_t first_bad = -1;
  std::string error;
  if (!aes::CudaOpenBlocks(a.key.data, int(a.key.len), a.header.data, a.header.len, a.prefix.data, a.first, a.aad.data, a.aad.len, a.data.data,
                           a.block_size, a.count, out.data, &first_bad, &error)) {
    ThrowGpuError(info.Env(), "CUDA AES-GCM failed: " + error);
  }
  return Napi::Number::New(info.Env(), double(first_bad));
}

}  // namespace

void RegisterAesGcmFunctions(Napi::Env env, Napi::Object exports) {
  exports.Set("gcmSeal", Napi::Function::New(env, GcmSeal, "gcmSeal"));
  exports.Set("gcmOpen", Napi::Function::New(env, GcmOpen, "gcmOpen"));
  exports.Set("sealBlocks", Napi::Function::New(env, SealBlocks, "sealBlocks"));
  exports.Set("openBlocks", Napi::Function::New(env, OpenBlocks, "openBlocks"));
}

}  // namespace gk
