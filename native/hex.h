#pragma once
#include <cstddef>
#include <cstdint>

namespace gk {

// Lower-case hex of `len` bytes into `out` (2 * len chars, no terminator).
inline void ToHex(const uint8_t* bytes, size_t len, char* out) {
  static const char kDigits[] = "0123456789abcdef";
  for (size_t i = 0; i < len; ++i) {
    out[2 * i] = kDigits[bytes[i] >> 4];
    out[2 * i + 1] = kDigits[bytes[i] & 15];
  }
}

}  // namespace gk
