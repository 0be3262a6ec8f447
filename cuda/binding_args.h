// Argument readers shared by the CUDA addon's bindings (on top of
// native/args.h), and the one way they report a CUDA failure: an Error with
// code ERR_GPU_UNAVAILABLE, which lib/ turns into a GuardError.
#pragma once
#include <napi.h>

#include <cmath>
#include <string>

#include "args.h"

namespace gk {

// A 16- or 32-byte AES key.
inline ByteView AesKeyArg(const Napi::CallbackInfo& info, size_t index) {
  ByteView key = BytesArg(info, index, "key");
  if (key.len != 16 && key.len != 32) ThrowRangeError(info.Env(), "Expected a 16- or 32-byte AES key");
  return key;
}

// A Uint8Array of exactly `len` bytes, else RangeError(`message`).
inline ByteView ExactBytesArg(const Napi::CallbackInfo& info, size_t index, size_t len, const char* message) {
  ByteView v = BytesArg(info, index, "argument");
  if (v.len != len) ThrowRangeError(info.Env(), message);
  return v;
}

// An integer in [0, 2^53 - 1] (an offset, a length, a counter), else RangeError(`message`).
inline uint64_t SafeIntegerArg(const Napi::CallbackInfo& info, size_t index, const char* message) {
  const double v = FiniteArg(info, index, message);
  if (v < 0 || std::floor(v) != v || v > 9007199254740991.0) ThrowRangeError(info.Env(), message);
  return uint64_t(v);
}

[[noreturn]] inline void ThrowGpuError(Napi::Env env, const std::string& what) {
  Napi::Error e = Napi::Error::New(env, what);
  e.Set("code", Napi::String::New(env, "ERR_GPU_UNAVAILABLE"));
  throw e;
}

}  // namespace gk
