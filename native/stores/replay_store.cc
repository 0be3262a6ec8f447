#include "stores/replay_store.h"

#include <cstring>
#include <random>

#include "hash/sha256.h"

namespace gk {
namespace {

// Midstate of SHA-256 over one random 64-byte block: each nonce's key is
// SHA-256(secret block || nonce) truncated to 128 bits, for the cost of the
// nonce's own blocks.
struct NonceKeyMidstate {
  uint32_t h[8];
  NonceKeyMidstate() {
    std::random_device rd;
    uint8_t block[kSha256BlockBytes];
    for (size_t i = 0; i < sizeof(block); i += 4) {
      uint32_t r = rd();
      std::memcpy(block + i, &r, 4);
    }
    Sha256 ctx;
    ctx.Update(block, sizeof(block));
    std::memcpy(h, ctx.h, sizeof(h));
  }
};

const NonceKeyMidstate& Midstate() {
  static const NonceKeyMidstate m;
  return m;
}

}  // namespace

ReplayStore::ReplayStore(size_t capacity) : slots_(capacity, Slot{{0, 0}, 0, false}) {
  size_t cells = 16;
  while (cells < 2 * capacity) cells <<= 1;  // load factor <= 1/2
  index_.assign(cells, kEmpty);
  mask_ = cells - 1;
}

size_t ReplayStore::Probe(const NonceKey& key, bool* found) const {
  size_t pos = Home(key);
  while (index_[pos] != kEmpty) {
    if (slots_[index_[pos]].key == key) {
      *found = true;
      return pos;
    }
    pos = (pos + 1) & mask_;
  }
  *found = false;
  return pos;
}

void ReplayStore::EraseAt(size_t pos) {
  // Backward-shift deletion keeps every probe chain unbroken without tombstones.
  size_t next = pos;
  for (;;) {
    next = (next + 1) & mask_;
    if (index_[next] == kEmpty) break;
    size_t home = Home(slots_[index_[next]].key);
    // Move `next` into the hole unless its home lies cyclically in (pos, next].
    bool home_in_range = pos <= next ? (home > pos && home <= next) : (home > pos || home <= next);
    if (!home_in_range) {
      index_[pos] = index_[next];
      pos = next;
    }
  }
  index_[pos] = kEmpty;
  --size_;
}

NonceKey ReplayStore::KeyOf(const uint8_t* nonce, size_t len) {
  Sha256 ctx;
  ctx.ResumeFrom(Midstate().h, kSha256BlockBytes);
  ctx.Update(nonce, len);
  uint8_t digest[kSha256DigestBytes];
  ctx.Final(digest);
  NonceKey key;
  std::memcpy(&key.hi, digest, 8);
  std::memcpy(&key.lo, digest + 8, 8);
  return key;
}

ReplayVerdict ReplayStore::Check(const NonceKey& key, double expires_at_ms, double now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  bool found = false;
  size_t pos = Probe(key, &found);
  if (found) {
    Slot& slot = slots_[index_[pos]];
    if (slot.expires_at_ms > now_ms) {
      ++replays_;
      return ReplayVerdict::kReplay;
    }
    // Seen before but expired: forget the old slot and treat as new.
    slot.occupied = false;
    EraseAt(pos);
  }
  Slot& head = slots_[head_];
  if (head.occupied) {
    if (head.expires_at_ms > now_ms) {
      ++saturated_;
      return ReplayVerdict::kSaturated;  // never evict a live nonce
    }
    bool present = false;
    size_t at = Probe(head.key, &present);
    if (present) EraseAt(at);
  }
  head = Slot{key, expires_at_ms, true};
  pos = Probe(key, &found);  // the erasures above may have moved cells
  index_[pos] = uint32_t(head_);
  ++size_;
  head_ = (head_ + 1) % slots_.size();
  ++accepted_;
  return ReplayVerdict::kFresh;
}

bool ReplayStore::Contains(const NonceKey& key, double now_ms) const {
  std::lock_guard<std::mutex> lock(mu_);
  bool found = false;
  size_t pos = Probe(key, &found);
  return found && slots_[index_[pos]].expires_at_ms > now_ms;
}

ReplayStats ReplayStore::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ReplayStats{size_, slots_.size(), replays_, saturated_, accepted_};
}

}  // namespace gk
