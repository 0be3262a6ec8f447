#include "jcs/jcs_number.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <system_error>

namespace gk {
namespace jcs_reader {

// libstdc++ and MSVC's library. Not libc++: its floating-point to_chars is
// unavailable below a macOS 13.3 target (ours is 10.15) even where the
// feature macro is set, so there every non-integer stays the general path's.
#if defined(__cpp_lib_to_chars) && __cpp_lib_to_chars >= 201611L && !defined(_LIBCPP_VERSION)

namespace {

// ±(2^53 - 1): beyond it a CAR's number is refused (the TypeScript writer's rule).
constexpr double kMaxSafeInteger = 9007199254740991.0;

void Put(ByteSink* out, const char* s, size_t n) {
  uint8_t* p = out->Room(n);
  std::memcpy(p, s, n);
  out->Commit(p + n);
}

void PutZeros(ByteSink* out, int n) {
  if (n <= 0) return;
  uint8_t* p = out->Room(size_t(n));
  std::memset(p, '0', size_t(n));
  out->Commit(p + n);
}

void PutInt(ByteSink* out, int v) {
  char buf[16];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  Put(out, buf, size_t(r.ptr - buf));
}

}  // namespace

bool CanonicalNumber(const char* text, size_t len, ByteSink* out) {
  double v = 0;
  auto parsed = std::from_chars(text, text + len, v);
  // Out of range (1e400, or 1e-400 that JSON.parse reads as 0) is the general path's.
  if (parsed.ec != std::errc() || parsed.ptr != text + len || !std::isfinite(v)) return false;
  if (v == 0) {
    if (std::signbit(v)) return false;  // -0: as the integer reader, left to the general path
    Put(out, "0", 1);
    return true;
  }
  if (std::fabs(v) > kMaxSafeInteger) return false;
  // The shortest digits that read back as v, closest to v (as ECMAScript's
  // Number::toString picks them), in scientific form: [-]d[.ddd]e±XX.
  char sci[40];
  auto written = std::to_chars(sci, sci + sizeof(sci), v, std::chars_format::scientific);
  if (written.ec != std::errc()) return false;
  const char* p = sci;
  const char* end = written.ptr;
  if (*p == '-') {
    Put(out, "-", 1);
    p++;
  }
  char digits[24];
  int k = 0;
  for (; p < end && *p != 'e'; p++) {
    if (*p == '.') continue;
    if (k == int(sizeof(digits))) return false;
    digits[k++] = *p;
  }
  if (p == end || k == 0) return false;
  int exponent = 0;
  auto e = std::from_chars(*(p + 1) == '+' ? p + 2 : p + 1, end, exponent);
  if (e.ec != std::errc() || e.ptr != end) return false;
  // ECMAScript's n: the value is 0.d1d2...dk x 10^n.
  const int n = exponent + 1;
  if (k <= n && n <= 21) {  // an integer: its digits, then zeros
    Put(out, digits, size_t(k));
    PutZeros(out, n - k);
  } else if (0 < n && n <= 21) {  // a point inside the digits
    Put(out, digits, size_t(n));
    Put(out, ".", 1);
    Put(out, digits + n, size_t(k - n));
  } else if (-6 < n && n <= 0) {  // 0.000ddd
    Put(out, "0.", 2);
    PutZeros(out, -n);
    Put(out, digits, size_t(k));
  } else {  // d.ddde±x
    Put(out, digits, 1);
    if (k > 1) {
      Put(out, ".", 1);
      Put(out, digits + 1, size_t(k - 1));
    }
    Put(out, n - 1 < 0 ? "e-" : "e+", 2);
    PutInt(out, std::abs(n - 1));
  }
  return true;
}

#else

bool CanonicalNumber(const char*, size_t, ByteSink*) { return false; }

#endif

}  // namespace jcs_reader
}  // namespace gk
