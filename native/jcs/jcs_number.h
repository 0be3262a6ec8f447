// A JSON number's RFC 8785 form: the text ECMAScript's Number::toString
// gives for the double JSON.parse reads from it (shortest round-trip digits;
// plain notation for 1e-6 <= |x| < 1e21, else d.ddde±n).
#pragma once
#include <cstddef>

#include "byte_sink.h"

namespace gk {
namespace jcs_reader {

// Writes the canonical form of the JSON number `text[0, len)` (ASCII, already
// checked against JSON's number grammar) and returns true; false where the
// general path must judge it: -0, a value beyond ±(2^53 - 1) (a CAR refuses
// those), one out of the double range, or a C++ library without a usable
// floating-point to_chars/from_chars (libc++: then every non-integer goes there).
bool CanonicalNumber(const char* text, size_t len, ByteSink* out);

}  // namespace jcs_reader
}  // namespace gk
