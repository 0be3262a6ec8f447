#include "args.h"

#include <string>
#include <vector>

namespace gk {
namespace {

constexpr size_t kMaxScratchBytes = 4u << 20;

[[noreturn]] void ThrowWithCode(Napi::Error error, const char* code) {
  error.Set("code", Napi::String::New(error.Env(), code));
  throw error;
}

Napi::Uint8Array AsUint8Array(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value v = info[index];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    std::string msg = std::string("Expected a Uint8Array for ") + name;
    ThrowTypeError(info.Env(), msg.c_str());
  }
  return v.As<Napi::Uint8Array>();
}

}  // namespace

void ThrowTypeError(Napi::Env env, const char* message) {
  ThrowWithCode(Napi::TypeError::New(env, message), "ERR_INVALID_ARG_TYPE");
}

void ThrowRangeError(Napi::Env env, const char* message) {
  ThrowWithCode(Napi::RangeError::New(env, message), "ERR_OUT_OF_RANGE");
}

void ThrowClosed(Napi::Env env, const char* what) {
  std::string msg = std::string(what) + " has been destroyed";
  ThrowWithCode(Napi::Error::New(env, msg), "ERR_CLOSED");
}

ByteView BytesArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Uint8Array arr = AsUint8Array(info, index, name);
  return {arr.Data(), arr.ByteLength()};
}

ByteView DataArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value v = info[index];
  if (!v.IsString()) return BytesArg(info, index, name);

  // Per-thread scratch: the addon may run in several worker_threads at once.
  thread_local std::vector<char> scratch;
  napi_env env = info.Env();
  size_t utf16_len = 0;
  NAPI_THROW_IF_FAILED(env, napi_get_value_string_utf16(env, v, nullptr, 0, &utf16_len), ByteView());
  // Each UTF-16 code unit becomes at most 3 UTF-8 bytes; +1 for the NUL napi writes.
  size_t cap = utf16_len * 3 + 1;
  // Large strings are encoded by the TypeScript layer; refusing them here keeps
  // the per-thread scratch small for direct callers too.
  if (cap > kMaxScratchBytes) ThrowRangeError(info.Env(), "String too long for the native string path");
  if (scratch.size() < cap) scratch.resize(cap);
  size_t written = 0;
  NAPI_THROW_IF_FAILED(env, napi_get_value_string_utf8(env, v, scratch.data(), scratch.size(), &written),
                       ByteView());
  return {reinterpret_cast<const uint8_t*>(scratch.data()), written};
}

MutableByteView OutArg(const Napi::CallbackInfo& info, size_t index, size_t need, const char* name) {
  Napi::Uint8Array arr = AsUint8Array(info, index, name);
  Napi::Value off_v = info[index + 1];
  if (!off_v.IsNumber()) ThrowTypeError(info.Env(), "Expected an integer offset");
  double off = off_v.As<Napi::Number>().DoubleValue();
  size_t len = arr.ByteLength();
  if (!(off >= 0) || off != static_cast<double>(static_cast<size_t>(off)) || static_cast<size_t>(off) > len ||
      len - static_cast<size_t>(off) < need) {
    ThrowRangeError(info.Env(), "Output buffer too small for the digest at this offset");
  }
  return {arr.Data() + static_cast<size_t>(off), need};
}

}  // namespace gk
