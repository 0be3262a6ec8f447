#include "hash/digest_functions.h"

#include <cstring>

#include "args.h"
#include "hash/form_memo.h"
#include "hex.h"
#include "hash/hmac_sha256.h"
#include "hash/sha256.h"

namespace gk {
namespace {

// sha256Into(data, out, outOffset)
Napi::Value Sha256Into(const Napi::CallbackInfo& info) {
  ByteView data = DataArg(info, 0, "data");
  MutableByteView out = OutArg(info, 1, kSha256DigestBytes, "out");
  Sha256Digest(data.data, data.len, out.data);
  return info.Env().Undefined();
}

// sha256Hex(data, withPrefix): lower-case hex, optionally as "sha256:<hex>"
// (the CAR-hash form) so carHash costs one crossing.
Napi::Value Sha256Hex(const Napi::CallbackInfo& info) {
  ByteView data = DataArg(info, 0, "data");
  bool with_prefix = info[1].ToBoolean().Value();
  uint8_t digest[kSha256DigestBytes];
  Sha256Digest(data.data, data.len, digest);
  char text[7 + 2 * kSha256DigestBytes] = {'s', 'h', 'a', '2', '5', '6', ':'};
  ToHex(digest, sizeof(digest), text + 7);
  if (with_prefix) return Napi::String::New(info.Env(), text, sizeof(text));
  return Napi::String::New(info.Env(), text + 7, 2 * kSha256DigestBytes);
}

// carHashOfBytes(bytes, length): "sha256:" + hex of the first `length` bytes.
// The CAR hash of a canonical form the TS layer wrote into its reusable
// scratch buffer: no string to flatten and re-encode, no subarray to allocate.
Napi::Value CarHashOfBytes(const Napi::CallbackInfo& info) {
  ByteView bytes = BytesArg(info, 0, "bytes");
  size_t length = LengthArg(info, 1, bytes.len, "length");
  uint8_t digest[kSha256DigestBytes];
  CarFormDigest(bytes.data, length, digest);
  char text[7 + 2 * kSha256DigestBytes] = {'s', 'h', 'a', '2', '5', '6', ':'};
  ToHex(digest, sizeof(digest), text + 7);
  napi_value str;  // latin1: hex needs no UTF-8 decoding
  NAPI_THROW_IF_FAILED(info.Env(), napi_create_string_latin1(info.Env(), text, sizeof(text), &str), Napi::Value());
  return Napi::Value(info.Env(), str);
}

// carHashesInto(bytes, ends, count, out, digests): the CAR hashes of
// `count` canonical forms written back to back; form k spans [ends[k-1] (0
// for k = 0), ends[k]). Hash k goes to out[71k, 71k + 71) as "sha256:<hex>"
// text and its raw digest to digests[32k, 32k + 32). One crossing for a
// whole gate.checkBatch, and no JS value made here: a string made and stored
// into an array from C++ costs more than the hash itself. The TS side looks
// the raw digest up among recent hashes (a repeated CAR reuses its string)
// and slices the text only for new ones.
Napi::Value CarHashesInto(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  ByteView bytes = BytesArg(info, 0, "bytes");
  napi_typedarray_type type;
  size_t ends_len = 0;
  void* ends_data = nullptr;
  if (napi_get_typedarray_info(env, info[1], &type, &ends_len, &ends_data, nullptr, nullptr) != napi_ok ||
      type != napi_uint32_array) {
    ThrowTypeError(env, "Expected a Uint32Array for ends");
  }
  const uint32_t* ends = static_cast<const uint32_t*>(ends_data);
  size_t count = LengthArg(info, 2, ends_len, "count");
  constexpr size_t kText = 7 + 2 * kSha256DigestBytes;
  ByteView out_view = BytesArg(info, 3, "out");
  if (out_view.len / kText < count) ThrowRangeError(env, "Expected out to hold 71 bytes per hash");
  ByteView digests_view = BytesArg(info, 4, "digests");
  if (digests_view.len / kSha256DigestBytes < count) ThrowRangeError(env, "Expected digests to hold 32 bytes per hash");
  uint8_t* out = const_cast<uint8_t*>(out_view.data);
  uint8_t* digests = const_cast<uint8_t*>(digests_view.data);
  const size_t out_len = count * kText;
  const size_t digests_len = count * kSha256DigestBytes;
  auto overlaps = [](const uint8_t* a, size_t a_len, const uint8_t* b, size_t b_len) {
    return a_len != 0 && b_len != 0 && a < b + b_len && b < a + a_len;
  };
  if (overlaps(out, out_len, bytes.data, bytes.len) || overlaps(digests, digests_len, bytes.data, bytes.len) ||
      overlaps(out, out_len, digests, digests_len)) {
    ThrowRangeError(env, "Expected bytes, out and digests not to overlap");
  }
  // Check every span before hashing any.
  uint32_t prev = 0;
  for (size_t k = 0; k < count; k++) {
    if (ends[k] < prev || ends[k] > bytes.len) ThrowRangeError(env, "Expected non-decreasing ends within the buffer");
    prev = ends[k];
  }
  prev = 0;
  for (size_t k = 0; k < count; k++) {
    uint8_t* digest = digests + k * kSha256DigestBytes;
    CarFormDigest(bytes.data + prev, ends[k] - prev, digest);
    prev = ends[k];
    uint8_t* text = out + k * kText;
    std::memcpy(text, "sha256:", 7);
    ToHex(digest, kSha256DigestBytes, reinterpret_cast<char*>(text + 7));
  }
  return info.Env().Undefined();
}

// hmacSha256Into(key, data, out, outOffset)
Napi::Value HmacSha256Into(const Napi::CallbackInfo& info) {
  ByteView key = BytesArg(info, 0, "key");
  HmacSha256 hmac(key.data, key.len);
  ByteView data = DataArg(info, 1, "data");
  MutableByteView out = OutArg(info, 2, kSha256DigestBytes, "out");
  hmac.Sign(data.data, data.len, out.data);
  return info.Env().Undefined();
}

// carFormMemoStats(): [hits, misses] of this thread's memo of CAR form digests.
Napi::Value CarFormMemoStatsFn(const Napi::CallbackInfo& info) {
  FormMemoStats s = CarFormMemoStats();
  Napi::Array out = Napi::Array::New(info.Env(), 2);
  out.Set(uint32_t(0), Napi::Number::New(info.Env(), double(s.hits)));
  out.Set(uint32_t(1), Napi::Number::New(info.Env(), double(s.misses)));
  return out;
}

Napi::Value ShaImplementation(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), Sha256ImplName());
}

Napi::Value ForcePortableSha(const Napi::CallbackInfo& info) {
  Sha256ForcePortable(info[0].ToBoolean().Value());
  return Napi::String::New(info.Env(), Sha256ImplName());
}

}  // namespace

void RegisterDigestFunctions(Napi::Env env, Napi::Object exports) {
  exports.Set("sha256Into", Napi::Function::New<Sha256Into>(env, "sha256Into"));
  exports.Set("sha256Hex", Napi::Function::New<Sha256Hex>(env, "sha256Hex"));
  exports.Set("carHashOfBytes", Napi::Function::New<CarHashOfBytes>(env, "carHashOfBytes"));
  exports.Set("carHashesInto", Napi::Function::New<CarHashesInto>(env, "carHashesInto"));
  exports.Set("carFormMemoStats", Napi::Function::New<CarFormMemoStatsFn>(env, "carFormMemoStats"));
  exports.Set("hmacSha256Into", Napi::Function::New<HmacSha256Into>(env, "hmacSha256Into"));
  exports.Set("shaImplementation", Napi::Function::New<ShaImplementation>(env, "shaImplementation"));
  exports.Set("forcePortableSha", Napi::Function::New<ForcePortableSha>(env, "forcePortableSha"));
}

}  // namespace gk
