#include "stores/decision_cache.h"

#include "hash/seeded_hash.h"

namespace gk {

size_t CacheKeyHash::operator()(const CacheKey& k) const { return size_t(SeededKeyHash(k.bytes, 32)); }

DecisionCache::DecisionCache(size_t capacity, size_t shards) : capacity_(capacity) {
  if (shards < 1) shards = 1;
  if (shards > capacity) shards = capacity;
  shards_.reserve(shards);
  for (size_t i = 0; i < shards; ++i) {
    auto shard = std::make_unique<Shard>();
    // Split the capacity exactly: the first (capacity % shards) get one more.
    shard->capacity = capacity / shards + (i < capacity % shards ? 1 : 0);
    shard->index.reserve(shard->capacity);
    shards_.push_back(std::move(shard));
  }
}

DecisionCache::Shard& DecisionCache::ShardFor(const CacheKey& key) {
  if (shards_.size() == 1) return *shards_[0];
  // A different mix from the index's, so shard and bucket bits are independent.
  return *shards_[Mix64(SeededKeyHash(key.bytes, 32) ^ 0x5851f42d4c957f2dULL) % shards_.size()];
}

bool DecisionCache::Get(const CacheKey& key, double policy_version, double now_ms, CachedDecision* out) {
  Shard& s = ShardFor(key);
  std::lock_guard<std::mutex> lock(s.mu);
  auto found = s.index.find(key);
  if (found == s.index.end()) {
    ++s.misses;
    return false;
  }
  auto it = found->second;
  if (it->value.expires_at_ms <= now_ms) {
    ++s.expirations;
    ++s.misses;
    s.lru.erase(it);
    s.index.erase(found);
    Bump();
    return false;
  }
  if (it->value.policy_version != policy_version) {
    // Made under another policy: never served, and useless to keep.
    ++s.misses;
    s.lru.erase(it);
    s.index.erase(found);
    Bump();
    return false;
  }
  s.lru.splice(s.lru.begin(), s.lru, it);
  ++s.hits;
  *out = it->value;
  return true;
}

void DecisionCache::Put(const CacheKey& key, CachedDecision value) {
  Shard& s = ShardFor(key);
  std::lock_guard<std::mutex> lock(s.mu);
  Bump();
  auto found = s.index.find(key);
  if (found != s.index.end()) {
    found->second->value = std::move(value);
    s.lru.splice(s.lru.begin(), s.lru, found->second);
    return;
  }
  if (s.index.size() >= s.capacity) {
    Entry& victim = s.lru.back();
    s.index.erase(victim.key);
    s.lru.pop_back();
    ++s.evictions;
  }
  s.lru.push_front(Entry{key, std::move(value)});
  s.index.emplace(key, s.lru.begin());
}

bool DecisionCache::Invalidate(const CacheKey& key) {
  Shard& s = ShardFor(key);
  std::lock_guard<std::mutex> lock(s.mu);
  auto found = s.index.find(key);
  if (found == s.index.end()) return false;
  s.lru.erase(found->second);
  s.index.erase(found);
  Bump();
  return true;
}

size_t DecisionCache::Clear() {
  size_t removed = 0;
  for (auto& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard->mu);
    removed += shard->index.size();
    shard->index.clear();
    shard->lru.clear();
  }
  Bump();
  return removed;
}

CacheStats DecisionCache::Stats() const {
  CacheStats out{0, capacity_, near_hits_.load(std::memory_order_relaxed), 0, 0, 0};
  for (const auto& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard->mu);
    out.entries += shard->index.size();
    out.hits += shard->hits;
    out.misses += shard->misses;
    out.evictions += shard->evictions;
    out.expirations += shard->expirations;
  }
  return out;
}

bool ParseCarHash(const char16_t* text, size_t len, CacheKey* out) {
  static const char kPrefix[] = "sha256:";
  if (len != 7 + 64) return false;
  for (size_t i = 0; i < 7; ++i) {
    if (text[i] != char16_t(kPrefix[i])) return false;
  }
  for (size_t i = 0; i < 32; ++i) {
    int nibbles[2];
    for (int j = 0; j < 2; ++j) {
      char16_t c = text[7 + 2 * i + j];
      if (c >= '0' && c <= '9') nibbles[j] = c - '0';
      else if (c >= 'a' && c <= 'f') nibbles[j] = c - 'a' + 10;
      else return false;
    }
    out->bytes[i] = uint8_t(nibbles[0] << 4 | nibbles[1]);
  }
  return true;
}

}  // namespace gk
