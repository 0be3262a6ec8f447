#include "hash/form_memo.h"

#include <cstring>

#include "hash/seeded_hash.h"
#include "hash/sha256.h"
#include "hash/two_way_memo.h"

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

using Memo = TwoWayMemo<Slot, kSets>;

}  // namespace

void CarFormDigest(const uint8_t* data, size_t len, uint8_t out[kSha256DigestBytes]) {
  // Empty spans too (their data pointer may be null): nothing to remember.
  if (len == 0 || len > kMaxFormBytes) {
    Sha256Digest(data, len, out);
    return;
  }
  Memo& memo = Memo::ForThisThread();
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
  Slot& s = memo.Replace(set_index);
  s.len = uint32_t(len);
  std::memcpy(s.bytes, data, len);
  std::memcpy(s.digest, out, kSha256DigestBytes);
}

FormMemoStats CarFormMemoStats() {
  Memo& memo = Memo::ForThisThread();
  return {memo.hits, memo.misses};
}

}  // namespace gk
