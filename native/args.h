// Argument readers for the addon's flat surface. TypeScript validates first;
// these re-check cheaply so a direct caller of the .node file cannot read or
// write out of bounds.
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace gk {

struct ByteView {
  const uint8_t* data;
  size_t len;
};

struct MutableByteView {
  uint8_t* data;
  size_t len;
};

// Throws a TypeError/RangeError carrying a stable `code` property.
[[noreturn]] void ThrowTypeError(Napi::Env env, const char* message);
[[noreturn]] void ThrowRangeError(Napi::Env env, const char* message);
[[noreturn]] void ThrowClosed(Napi::Env env, const char* what);

// A Uint8Array (Buffer included) argument.
ByteView BytesArg(const Napi::CallbackInfo& info, size_t index, const char* name);
// A string (encoded as UTF-8 into per-thread scratch memory, valid until the
// next call on this thread) or a Uint8Array.
ByteView DataArg(const Napi::CallbackInfo& info, size_t index, const char* name);
// `need` writable bytes at info[index] starting at the integer offset in
// info[index + 1].
MutableByteView OutArg(const Napi::CallbackInfo& info, size_t index, size_t need, const char* name);
// An integer in [1, max] at info[index], else RangeError(`message`).
size_t PositiveIntegerArg(const Napi::CallbackInfo& info, size_t index, double max, const char* message);
// An integer in [0, max] at info[index] (a length within a buffer), else RangeError.
size_t LengthArg(const Napi::CallbackInfo& info, size_t index, size_t max, const char* name);
// A finite number at info[index], else TypeError(`message`).
double FiniteArg(const Napi::CallbackInfo& info, size_t index, const char* message);

}  // namespace gk
