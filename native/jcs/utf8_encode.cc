#include "jcs/utf8_encode.h"

#include <cstring>

namespace gk {
namespace {

constexpr uint64_t kNonAsciiMask = 0xff80ff80ff80ff80ull;

inline bool IsHighSurrogate(char16_t c) { return c >= 0xd800 && c <= 0xdbff; }
inline bool IsLowSurrogate(char16_t c) { return c >= 0xdc00 && c <= 0xdfff; }

}  // namespace

size_t EncodeUtf8(const char16_t* units, size_t count, uint8_t* out) {
  uint8_t* p = out;
  size_t i = 0;
  while (i < count) {
    // Four units at a time while they are all ASCII.
    while (i + 4 <= count) {
      uint64_t four;
      std::memcpy(&four, units + i, sizeof(four));
      if (four & kNonAsciiMask) break;
      p[0] = uint8_t(units[i]);
      p[1] = uint8_t(units[i + 1]);
      p[2] = uint8_t(units[i + 2]);
      p[3] = uint8_t(units[i + 3]);
      p += 4;
      i += 4;
    }
    if (i >= count) break;
    char16_t c = units[i++];
    if (c < 0x80) {
      *p++ = uint8_t(c);
    } else if (c < 0x800) {
      *p++ = uint8_t(0xc0 | (c >> 6));
      *p++ = uint8_t(0x80 | (c & 0x3f));
    } else if (IsHighSurrogate(c) && i < count && IsLowSurrogate(units[i])) {
      uint32_t cp = 0x10000 + ((uint32_t(c) - 0xd800) << 10) + (uint32_t(units[i++]) - 0xdc00);
      *p++ = uint8_t(0xf0 | (cp >> 18));
      *p++ = uint8_t(0x80 | ((cp >> 12) & 0x3f));
      *p++ = uint8_t(0x80 | ((cp >> 6) & 0x3f));
      *p++ = uint8_t(0x80 | (cp & 0x3f));
    } else {
      if (IsHighSurrogate(c) || IsLowSurrogate(c)) c = 0xfffd;  // lone surrogate
      *p++ = uint8_t(0xe0 | (c >> 12));
      *p++ = uint8_t(0x80 | ((c >> 6) & 0x3f));
      *p++ = uint8_t(0x80 | (c & 0x3f));
    }
  }
  return size_t(p - out);
}

}  // namespace gk
