// DecisionCache: policy decisions keyed by CAR hash (32-byte digest), each
// stamped with the policy version that produced it and an expiry.
//
// Sharded for concurrency: a key's shard comes from a keyed hash; each shard
// has its own mutex, hash index and exact LRU list, and holds an equal part of
// the capacity. With one shard the whole cache is exact LRU; with more, LRU
// is exact per shard (approximate overall; measured in the tests).
//
// Layout (per shard, no allocation per entry): entries live in one vector of
// 64-byte records (key, decision, version, expiry, reason id, LRU prev/next
// as uint32 indices), reused through a free list; an open-addressing index
// (linear probing, backward-shift deletion, load <= 1/2) maps a keyed hash of
// the digest to an entry index, with 32 bits of that hash kept beside the
// index so most probes never touch an entry. A hit is an index line, the
// entry and its LRU neighbours: no string copied, nothing allocated.
//
// Reasons are interned per shard: append-only, ids never reused, at most
// kMaxInternedReasons strings / kMaxInternedBytes bytes per shard. A reason
// met once that bound is reached is kept beside its entry (kOverflowReason)
// and copied out on each hit, as before interning. So an id, once handed
// out, names the same string for the life of the store: a JS handle may keep
// id -> string without any invalidation, in any thread.
#pragma once
#include <cstddef>
#include <cstdint>
#include <atomic>
#include <cstring>
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

// What Put stores.
struct CachedDecision {
  int decision;
  double policy_version;
  double expires_at_ms;
  std::string reason;
};

// What Get finds: the reason as an interned id (see ReasonText), or, for a
// reason that was not interned, its text.
struct CacheHit {
  int decision;
  double policy_version;
  double expires_at_ms;
  int32_t reason_id;  // >= 0: interned (shard << 20 | index); -1: see reason
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

constexpr size_t kMaxInternedReasons = 1024;       // per shard; ids fit in 20 bits
constexpr size_t kMaxInternedBytes = 256 * 1024;   // per shard

class DecisionCache {
 public:
  DecisionCache(size_t capacity, size_t shards);

  // Copies a live entry of exactly `policy_version` into `out` and marks it
  // most recently used. An expired entry, or one of another version, is
  // dropped and reported as a miss.
  bool Get(const CacheKey& key, double policy_version, double now_ms, CacheHit* out);
  void Put(const CacheKey& key, CachedDecision value);
  bool Invalidate(const CacheKey& key);
  size_t Clear();
  CacheStats Stats() const;
  // The text of an interned reason id that Get returned; false for an id
  // never handed out.
  bool ReasonText(int32_t id, std::string* out);

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
  static constexpr uint32_t kNil = 0xffffffffu;
  static constexpr uint32_t kOverflowReason = 0xffffffffu;

  struct alignas(64) Entry {
    CacheKey key;
    double policy_version;
    double expires_at_ms;
    uint32_t prev;    // towards the most recently used; kNil at the head
    uint32_t next;    // towards the least recently used; kNil at the tail
    uint32_t reason;  // interned index, or kOverflowReason
    uint32_t decision;
  };
  static_assert(sizeof(Entry) == 64, "one cache line per entry");

  struct Shard {
    std::mutex mu;
    uint32_t id = 0;
    size_t capacity = 0;
    size_t size = 0;
    std::vector<Entry> entries;  // grows up to capacity; free ones on free_list
    uint32_t free_list = kNil;   // chained through Entry::next
    // Index slots: 0 empty, else (hash32 << 32) | (entry index + 1).
    std::vector<uint64_t> index;
    size_t mask = 0;
    uint32_t head = kNil, tail = kNil;
    std::vector<std::string> reasons;  // interned, append-only
    std::unordered_map<std::string, uint32_t> reason_ids;
    size_t reason_bytes = 0;
    std::unordered_map<uint32_t, std::string> overflow;  // entry index -> reason
    uint64_t hits = 0, misses = 0, evictions = 0, expirations = 0;
  };

  Shard& ShardFor(uint64_t hash);
  static size_t Find(const Shard& s, const CacheKey& key, uint32_t h32);  // index slot or SIZE_MAX
  static void Unlink(Shard& s, uint32_t e);
  static void PushFront(Shard& s, uint32_t e);
  static void EraseSlot(Shard& s, size_t slot);  // removes the entry at index slot `slot`
  static void Grow(Shard& s);
  static uint32_t Intern(Shard& s, const std::string& reason);
  void Bump() { epoch_->fetch_add(1, std::memory_order_release); }

  size_t capacity_;
  std::shared_ptr<std::atomic<uint32_t>> epoch_ = std::make_shared<std::atomic<uint32_t>>(0);
  std::atomic<uint64_t> near_hits_{0};
  std::vector<std::unique_ptr<Shard>> shards_;
};

// Parses "sha256:" + 64 lower-case hex digits. False for anything else.
bool ParseCarHash(const char* text, size_t len, CacheKey* out);
bool ParseCarHash(const char16_t* text, size_t len, CacheKey* out);

}  // namespace gk
