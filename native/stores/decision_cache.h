// DecisionCache: policy decisions keyed by CAR hash (32-byte digest), each
// stamped with the policy version that produced it and an expiry.
//
// Sharded for concurrency: a key's shard comes from a keyed hash; each shard
// has its own mutex, hash index and exact LRU list, and holds an equal part of
// the capacity. With one shard the whole cache is exact LRU; with more, LRU
// is exact per shard (approximate overall; measured in the tests).
#pragma once
#include <cstddef>
#include <cstdint>
#include <atomic>
#include <cstring>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace gk {

// The epoch is read from JavaScript as a plain 32-bit word.
static_assert(sizeof(std::atomic<uint32_t>) == 4 && std::atomic<uint32_t>::is_always_lock_free,
              "epoch must be a lock-free 32-bit word");

struct CacheKey {
  uint8_t bytes[32];
  bool operator==(const CacheKey& o) const { return std::memcmp(bytes, o.bytes, 32) == 0; }
};

struct CacheKeyHash {
  size_t operator()(const CacheKey& k) const;
};

struct CachedDecision {
  int decision;
  double policy_version;
  double expires_at_ms;
  std::string reason;
};

struct CacheStats {
  uint64_t entries;
  uint64_t capacity;
  uint64_t hits;
  uint64_t misses;
  uint64_t evictions;
  uint64_t expirations;
};

class DecisionCache {
 public:
  DecisionCache(size_t capacity, size_t shards);

  // Copies a live entry of exactly `policy_version` into `out` and marks it
  // most recently used. An expired entry, or one of another version, is
  // dropped and reported as a miss.
  bool Get(const CacheKey& key, double policy_version, double now_ms, CachedDecision* out);
  void Put(const CacheKey& key, CachedDecision value);
  bool Invalidate(const CacheKey& key);
  size_t Clear();
  CacheStats Stats() const;

  size_t capacity() const { return capacity_; }
  size_t shard_count() const { return shards_.size(); }

  // Bumped by every change that could alter what Get returns for any key.
  // TypeScript near caches read it (through an external ArrayBuffer) to know
  // their copies are still current. Separately owned so such a buffer can
  // outlive the store without keeping the store alive.
  const std::shared_ptr<std::atomic<uint32_t>>& epoch() const { return epoch_; }
  // Hits served by near caches, reported back in batches for Stats().
  void AddNearHits(uint64_t n) { near_hits_.fetch_add(n, std::memory_order_relaxed); }

 private:
  struct Entry {
    CacheKey key;
    CachedDecision value;
  };
  struct Shard {
    std::mutex mu;
    size_t capacity = 0;
    std::list<Entry> lru;  // front = most recently used
    std::unordered_map<CacheKey, std::list<Entry>::iterator, CacheKeyHash> index;
    uint64_t hits = 0, misses = 0, evictions = 0, expirations = 0;
  };

  Shard& ShardFor(const CacheKey& key);
  void Bump() { epoch_->fetch_add(1, std::memory_order_release); }

  size_t capacity_;
  std::shared_ptr<std::atomic<uint32_t>> epoch_ = std::make_shared<std::atomic<uint32_t>>(0);
  std::atomic<uint64_t> near_hits_{0};
  std::vector<std::unique_ptr<Shard>> shards_;
};

// Parses "sha256:" + 64 lower-case hex digits. False for anything else.
bool ParseCarHash(const char16_t* text, size_t len, CacheKey* out);

}  // namespace gk
