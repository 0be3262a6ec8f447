// SHA-256 of canonical CAR forms, remembered by content.
//
// Why: most requests repeat (the decision cache exists for that reason), so
// most CAR hashes are of a form hashed moments ago. Finding the earlier
// digest costs a fast keyed hash of the bytes and one compare (~35 ns for a
// 160-byte form here) instead of SHA-256 (~190 ns with SHA-NI).
//
// Safety: a remembered digest is used only when the stored bytes equal the
// form exactly (length and memcmp), so a placement collision is a miss,
// never a wrong digest. Placement is keyed with the process seed; an input
// chosen to collide can only make lookups miss. Per thread (no locking),
// bounded (kSets x 2 slots of at most kMaxFormBytes), allocated on first use.
#pragma once
#include <cstddef>
#include <cstdint>

#include "hash/sha256.h"

namespace gk {

// SHA-256 of `data[0, len)`, through this thread's memo when `len` fits it.
void CarFormDigest(const uint8_t* data, size_t len, uint8_t out[kSha256DigestBytes]);

// Lookups this thread answered from the memo, and those it hashed (tests).
struct FormMemoStats {
  uint64_t hits;
  uint64_t misses;
};
FormMemoStats CarFormMemoStats();

}  // namespace gk
