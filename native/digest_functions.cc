#include "digest_functions.h"

#include "args.h"
#include "hex.h"
#include "hmac_sha256.h"
#include "sha256.h"

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
  Sha256Digest(bytes.data, length, digest);
  char text[7 + 2 * kSha256DigestBytes] = {'s', 'h', 'a', '2', '5', '6', ':'};
  ToHex(digest, sizeof(digest), text + 7);
  return Napi::String::New(info.Env(), text, sizeof(text));
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
  exports.Set("hmacSha256Into", Napi::Function::New<HmacSha256Into>(env, "hmacSha256Into"));
  exports.Set("shaImplementation", Napi::Function::New<ShaImplementation>(env, "shaImplementation"));
  exports.Set("forcePortableSha", Napi::Function::New<ForcePortableSha>(env, "forcePortableSha"));
}

}  // namespace gk
