// UTF-16 to UTF-8 for strings handed to the hash functions. V8's own UTF-8
// writer is several times slower than copying the UTF-16 units out and
// encoding here, where runs of ASCII (the usual canonical JSON) cost one
// branch per eight units.
#pragma once
#include <cstddef>
#include <cstdint>

namespace gk {

// Writes the UTF-8 form of `units` (length `count`) to `out`, which must hold
// 3 * count bytes, and returns the number of bytes written. A lone surrogate
// becomes U+FFFD, as Buffer.from(s, 'utf8') does.
size_t EncodeUtf8(const char16_t* units, size_t count, uint8_t* out);

}  // namespace gk
