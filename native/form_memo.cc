#include "form_memo.h"

#include <cstring>
#include <memory>

#include "seeded_hash.h"
#include "sha256.h"

namespace gk {
namespace {

constexpr size_t kSets = 256;
// Larger forms are hashed every time (CARs are usually a few hundred bytes).
constexpr size_t kMaxFormBytes = 384;
constexpr uint32_t kEmpty = 0xffffffffu;

struct Slot {
  uint32_t len = kEmpty;
  uint8_t digest[kSha256DigestBytes];
  uint8_t bytes[kMaxFormBytes];
};

struct Memo {
  Slot slots[kSets][2];
  uint8_t victim[kSets] = {};  // which way of a set is replaced next
  uint64_t hits = 0;
  uint64_t misses = 0;
};

Memo& ThreadMemo() {
  thread_local std::unique_ptr<Memo> memo;
  if (!memo) memo = std::make_unique<Memo>();
  return *memo;
}

}  // namespace

void CarFormDigest(const uint8_t* data, size_t len, uint8_t out[kSha256DigestBytes]) {
  // Empty spans too (their data pointer may be null): nothing to remember.
  if (len == 0 || len > kMaxFormBytes) {
    Sha256Digest(data, len, out);
    return;
  }
  Memo& memo = ThreadMemo();
  size_t set_index = SeededBytesHash(data, len) % kSets;
  Slot* set = memo.slots[set_index];
  for (int way = 0; way < 2; way++) {
    Slot& s = set[way];
    if (s.len == len && std::memcmp(s.bytes, data, len) == 0) {
      std::memcpy(out, s.digest, kSha256DigestBytes);
      memo.hits++;
      return;
    }
  }
  Sha256Digest(data, len, out);
  memo.misses++;
  uint8_t& victim = memo.victim[set_index];
  Slot& s = set[victim];
  victim ^= 1;
  s.len = uint32_t(len);
  std::memcpy(s.bytes, data, len);
  std::memcpy(s.digest, out, kSha256DigestBytes);
}

FormMemoStats CarFormMemoStats() {
  Memo& memo = ThreadMemo();
  return {memo.hits, memo.misses};
}

}  // namespace gk
