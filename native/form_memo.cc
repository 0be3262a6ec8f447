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

inline uint64_t Rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

// Placement only (equality is decided by memcmp): a multiply-rotate pass over
// 8-byte words, keyed with the process seed.
uint64_t FormPlacement(const uint8_t* p, size_t n) {
  constexpr uint64_t kMul = 0x9e3779b97f4a7c15ULL;
  uint64_t h = ProcessHashSeed() ^ (uint64_t(n) * kMul);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = Rotl((h ^ w) * kMul, 29);
  }
  uint64_t tail = 0;
  if (n > i) std::memcpy(&tail, p + i, n - i);
  h = Rotl((h ^ tail) * kMul, 29);
  return Mix64(h);
}

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
  size_t set_index = FormPlacement(data, len) % kSets;
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
