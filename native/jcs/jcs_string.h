// A JS string's units as an RFC 8785 (JCS) string: the quotes, the minimal
// escapes JSON.stringify uses, UTF-8 for everything else. Shared by the
// audit line writer and the server's gate_check line reader so the two can
// never disagree on a string's canonical bytes.
#pragma once
#include <cstddef>
#include <cstdint>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace gk {

// Most bytes the JCS form of `n` units can take (\u00XX is 6 bytes a unit).
constexpr size_t JcsStringBound(size_t n) { return 6 * n + 2; }

// Writes the JCS form of units u[0, n) at p, which has JcsStringBound(n)
// bytes free; returns the end, or nullptr when the units hold a lone
// surrogate (JCS cannot carry one; callers leave such strings to the
// TypeScript path, which names the problem).
inline uint8_t* WriteJcsString(const char16_t* u, size_t n, uint8_t* p) {
  static const char kHexDigits[] = "0123456789abcdef";
  *p++ = '"';
  for (size_t i = 0; i < n; i++) {
#if defined(__SSE2__)
    // Runs of ASCII that needs no escape (most text) go eight units at a
    // time: every unit in [0x20, 0x80) and none a quote or a backslash.
    while (i + 8 <= n) {
      __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(u + i));
      __m128i above = _mm_subs_epu16(_mm_sub_epi16(v, _mm_set1_epi16(0x20)), _mm_set1_epi16(0x5f));
      __m128i bad = _mm_or_si128(_mm_cmpeq_epi16(v, _mm_set1_epi16(0x22)), _mm_cmpeq_epi16(v, _mm_set1_epi16(0x5c)));
      bad = _mm_or_si128(bad, _mm_andnot_si128(_mm_cmpeq_epi16(above, _mm_setzero_si128()), _mm_set1_epi16(-1)));
      if (_mm_movemask_epi8(bad) != 0) break;
      _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm_packus_epi16(v, v));
      p += 8;
      i += 8;
    }
    if (i == n) break;
#endif
    char16_t c = u[i];
    if (c < 0x80) {
      if (c >= 0x20 && c != 0x22 && c != 0x5c) {
        *p++ = uint8_t(c);
        continue;
      }
      *p++ = '\\';
      switch (c) {
        case 0x08: *p++ = 'b'; break;
        case 0x09: *p++ = 't'; break;
        case 0x0a: *p++ = 'n'; break;
        case 0x0c: *p++ = 'f'; break;
        case 0x0d: *p++ = 'r'; break;
        case 0x22: *p++ = '"'; break;
        case 0x5c: *p++ = '\\'; break;
        default:
          *p++ = 'u';
          *p++ = '0';
          *p++ = '0';
          *p++ = uint8_t(kHexDigits[c >> 4]);
          *p++ = uint8_t(kHexDigits[c & 15]);
      }
    } else if (c < 0x800) {
      *p++ = uint8_t(0xc0 | (c >> 6));
      *p++ = uint8_t(0x80 | (c & 0x3f));
    } else if (c >= 0xd800 && c <= 0xdfff) {
      // Only a high surrogate followed by a low one is a character.
      char16_t d = i + 1 < n ? u[i + 1] : 0;
      if (c > 0xdbff || d < 0xdc00 || d > 0xdfff) return nullptr;
      i++;
      uint32_t cp = 0x10000 + ((uint32_t(c) - 0xd800) << 10) + (uint32_t(d) - 0xdc00);
      *p++ = uint8_t(0xf0 | (cp >> 18));
      *p++ = uint8_t(0x80 | ((cp >> 12) & 0x3f));
      *p++ = uint8_t(0x80 | ((cp >> 6) & 0x3f));
      *p++ = uint8_t(0x80 | (cp & 0x3f));
    } else {
      *p++ = uint8_t(0xe0 | (c >> 12));
      *p++ = uint8_t(0x80 | ((c >> 6) & 0x3f));
      *p++ = uint8_t(0x80 | (c & 0x3f));
    }
  }
  *p++ = '"';
  return p;
}

}  // namespace gk
