// N-API glue for cuda/aes_gcm_kernels.h. TypeScript (lib/crypto) validates
// first; these re-check every length so a direct caller cannot make the
// copies read or write out of bounds.
#include "aes_gcm_binding.h"

#include <string>

#include "aes_gcm_bench.h"
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

Napi::Float64Array Millis(Napi::Env env, const std::vector<double>& ms) {
  Napi::Float64Array a = Napi::Float64Array::New(env, ms.size());
  for (size_t i = 0; i < ms.size(); ++i) a[i] = ms[i];
  return a;
}

int RepsArg(const Napi::CallbackInfo& info, size_t index) {
  return int(PositiveIntegerArg(info, index, 1000, "Expected a repetition count in [1, 1000]"));
}

// gcmBench(keyBytes, bytes, reps) -> { wholeMs, ctrMs, ghashMs } (Float64Arrays, one entry per rep)
Napi::Value GcmBench(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const double key_bytes = FiniteArg(info, 0, "Expected a key size of 16 or 32 bytes");
  if (key_bytes != 16 && key_bytes != 32) ThrowRangeError(env, "Expected a key size of 16 or 32 bytes");
  const size_t bytes = PositiveIntegerArg(info, 1, double(uint64_t(1) << 36), "Expected a byte count in [1, 2^36]");
  aes::GcmBenchRuns runs;
  std::string error;
  if (!aes::CudaGcmBench(int(key_bytes), bytes, RepsArg(info, 2), &runs, &error)) ThrowGpuError(env, "CUDA AES-GCM bench failed: " + error);
  Napi::Object o = Napi::Object::New(env);
  o.Set("wholeMs", Millis(env, runs.whole_ms));
  o.Set("ctrMs", Millis(env, runs.ctr_ms));
  o.Set("ghashMs", Millis(env, runs.ghash_ms));
  return o;
}

// sealBlocksBench(blockSize, count, reps) -> { wholeMs }
Napi::Value SealBlocksBench(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const size_t block_size = PositiveIntegerArg(info, 0, double(1 << 24), "Expected a block size in [1, 2^24]");
  const size_t count = PositiveIntegerArg(info, 1, double(1 << 24), "Expected a block count in [1, 2^24]");
  aes::BlocksBenchRuns runs;
  std::string error;
  if (!aes::CudaSealBlocksBench(block_size, uint32_t(count), RepsArg(info, 2), &runs, &error)) ThrowGpuError(env, "CUDA encryptBlocks bench failed: " + error);
  Napi::Object o = Napi::Object::New(env);
  o.Set("wholeMs", Millis(env, runs.whole_ms));
  return o;
}

}  // namespace

void RegisterAesGcmFunctions(Napi::Env env, Napi::Object exports) {
  exports.Set("gcmSeal", Napi::Function::New(env, GcmSeal, "gcmSeal"));
  exports.Set("gcmOpen", Napi::Function::New(env, GcmOpen, "gcmOpen"));
  exports.Set("sealBlocks", Napi::Function::New(env, SealBlocks, "sealBlocks"));
  exports.Set("openBlocks", Napi::Function::New(env, OpenBlocks, "openBlocks"));
  exports.Set("gcmBench", Napi::Function::New(env, GcmBench, "gcmBench"));
  exports.Set("sealBlocksBench", Napi::Function::New(env, SealBlocksBench, "sealBlocksBench"));
}

}  // namespace gk
