// ReplayStore: the replay detector's state. One atomic check-and-insert per
// nonce, bounded memory: a ring of (key, expiry) slots plus a hash index.
// A new nonce takes the slot at the ring's head; if that slot still holds a
// live nonce the store is full and answers Saturated (fail closed) instead of
// evicting it. Nonces are kept as 128-bit keyed digests, not as text.
#pragma once
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace gk {

enum class ReplayVerdict : int { kFresh = 0, kReplay = 1, kSaturated = 2 };

struct NonceKey {
  uint64_t hi;
  uint64_t lo;
  bool operator==(const NonceKey& o) const { return hi == o.hi && lo == o.lo; }
};

struct ReplayStats {
  uint64_t size;
  uint64_t capacity;
  uint64_t replays;
  uint64_t saturated;
  uint64_t accepted;
};

class ReplayStore {
 public:
  explicit ReplayStore(size_t capacity);

  // Keyed digest of a nonce (the key is per process, random).
  static NonceKey KeyOf(const uint8_t* nonce, size_t len);

  ReplayVerdict Check(const NonceKey& key, double expires_at_ms, double now_ms);
  // True when `key` is remembered and not expired at `now_ms`. Read-only: the
  // fleet store asks this before a round trip and inserts only what Redis accepted.
  bool Contains(const NonceKey& key, double now_ms) const;
  ReplayStats Stats() const;
  size_t capacity() const { return slots_.size(); }

 private:
  struct Slot {
    NonceKey key;
    double expires_at_ms;
    bool occupied;
  };

  static constexpr uint32_t kEmpty = 0xffffffffu;

  // Open-addressing index (linear probing, backward-shift deletion) from key
  // to ring slot: no allocation per nonce. Keys are secret-keyed digests, so
  // their bits place them uniformly and cannot be aimed at one bucket.
  size_t Home(const NonceKey& key) const { return size_t(key.hi) & mask_; }
  // Position of `key` in index_, or of the empty cell that ends its probe.
  size_t Probe(const NonceKey& key, bool* found) const;
  void EraseAt(size_t pos);

  mutable std::mutex mu_;
  std::vector<Slot> slots_;
  std::vector<uint32_t> index_;
  size_t mask_;
  size_t size_ = 0;
  size_t head_ = 0;
  uint64_t replays_ = 0;
  uint64_t saturated_ = 0;
  uint64_t accepted_ = 0;
};

}  // namespace gk
