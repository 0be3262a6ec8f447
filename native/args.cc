#include "args.h"

#include "jcs/utf8_encode.h"

#include <cmath>
#include <string>
#include <vector>

namespace gk {
namespace {

constexpr size_t kMaxScratchBytes = 4u << 20;

[[noreturn]] void ThrowWithCode(Napi::Error error, const char* code) {
  error.Set("code", Napi::String::New(error.Env(), code));
  throw error;
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

namespace {

// One N-API call reads type, data and length: the hot path pays ~15 ns per
// call, so the readers avoid node-addon-api's repeated type queries.
bool ReadUint8Array(napi_env env, napi_value v, ByteView* out) {
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, nullptr, nullptr) != napi_ok) return false;
  if (type != napi_uint8_array) return false;
  *out = {static_cast<const uint8_t*>(data), length};
  return true;
}

[[noreturn]] void ThrowExpected(Napi::Env env, const char* what, const char* name) {
  std::string msg = std::string("Expected ") + what + " for " + name;
  ThrowTypeError(env, msg.c_str());
}

}  // namespace

ByteView BytesArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  ByteView view;
  if (!ReadUint8Array(info.Env(), info[index], &view)) ThrowExpected(info.Env(), "a Uint8Array", name);
  return view;
}

ByteView DataArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  napi_env env = info.Env();
  napi_value v = info[index];
  ByteView view;
  if (ReadUint8Array(env, v, &view)) return view;

  size_t utf16_len = 0;
  if (napi_get_value_string_utf16(env, v, nullptr, 0, &utf16_len) != napi_ok) {
    ThrowExpected(info.Env(), "a string or Uint8Array", name);
  }
  // Each UTF-16 code unit becomes at most 3 UTF-8 bytes.
  // Large strings are encoded by the TypeScript layer; refusing them here keeps
  // the per-thread scratch small for direct callers too.
  if (utf16_len * 3 > kMaxScratchBytes) ThrowRangeError(info.Env(), "String too long for the native string path");
  // Per-thread scratch: the addon may run in several worker_threads at once.
  thread_local std::vector<char16_t> units;
  thread_local std::vector<uint8_t> utf8;
  if (units.size() < utf16_len + 1) units.resize(utf16_len + 1);  // +1: napi writes a NUL
  if (utf8.size() < utf16_len * 3 + 1) utf8.resize(utf16_len * 3 + 1);
  size_t copied = 0;
  NAPI_THROW_IF_FAILED(env, napi_get_value_string_utf16(env, v, units.data(), units.size(), &copied), ByteView());
  size_t written = EncodeUtf8(units.data(), copied, utf8.data());
  return {utf8.data(), written};
}

MutableByteView OutArg(const Napi::CallbackInfo& info, size_t index, size_t need, const char* name) {
  napi_env env = info.Env();
  ByteView view;
  if (!ReadUint8Array(env, info[index], &view)) ThrowExpected(info.Env(), "a Uint8Array", name);
  double off = 0;
  if (napi_get_value_double(env, info[index + 1], &off) != napi_ok) {
    ThrowTypeError(info.Env(), "Expected an integer offset");
  }
  size_t len = view.len;
  if (!(off >= 0) || off > double(len) || off != double(size_t(off)) || len - size_t(off) < need) {
    ThrowRangeError(info.Env(), "Output buffer too small for the digest at this offset");
  }
  return {const_cast<uint8_t*>(view.data) + size_t(off), need};
}

size_t PositiveIntegerArg(const Napi::CallbackInfo& info, size_t index, double max, const char* message) {
  double v = 0;
  if (napi_get_value_double(info.Env(), info[index], &v) != napi_ok || !(v >= 1) || v > max || v != std::floor(v)) {
    ThrowRangeError(info.Env(), message);
  }
  return size_t(v);
}

size_t LengthArg(const Napi::CallbackInfo& info, size_t index, size_t max, const char* name) {
  double v = 0;
  if (napi_get_value_double(info.Env(), info[index], &v) != napi_ok || !(v >= 0) || v > double(max) || v != std::floor(v)) {
    std::string msg = std::string("Expected an integer between 0 and the buffer length for ") + name;
    ThrowRangeError(info.Env(), msg.c_str());
  }
  return size_t(v);
}

double FiniteArg(const Napi::CallbackInfo& info, size_t index, const char* message) {
  double v = 0;
  if (napi_get_value_double(info.Env(), info[index], &v) != napi_ok || !std::isfinite(v)) ThrowTypeError(info.Env(), message);
  return v;
}

}  // namespace gk
