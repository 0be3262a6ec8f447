#include "stores/decision_cache.h"

#include "hash/seeded_hash.h"

namespace gk {

namespace {
constexpr size_t kNotFound = ~size_t(0);
constexpr size_t kMinIndex = 16;
}  // namespace

DecisionCache::DecisionCache(size_t capacity, size_t shards) : capacity_(capacity) {
  if (shards < 1) shards = 1;
  if (shards > capacity) shards = capacity;
  shards_.reserve(shards);
  for (size_t i = 0; i < shards; ++i) {
    auto shard = std::make_unique<Shard>();
    shard->id = uint32_t(i);
    // Split the capacity exactly: the first (capacity % shards) get one more.
    shard->capacity = capacity / shards + (i < capacity % shards ? 1 : 0);
    // The index and the entries grow with use (a large capacity is a bound,
    // not an allocation).
    shard->index.assign(kMinIndex, 0);
    shard->mask = kMinIndex - 1;
    shards_.push_back(std::move(shard));
  }
}

DecisionCache::Shard& DecisionCache::ShardFor(uint64_t hash) {
  if (shards_.size() == 1) return *shards_[0];
  // A different mix from the index's, so shard and slot bits are independent.
  return *shards_[Mix64(hash ^ 0x5851f42d4c957f2dULL) % shards_.size()];
}

size_t DecisionCache::Find(const Shard& s, const CacheKey& key, uint32_t h32) {
  size_t pos = h32 & s.mask;
  for (;;) {
    uint64_t v = s.index[pos];
    if (v == 0) return kNotFound;
    if (uint32_t(v >> 32) == h32 && s.entries[uint32_t(v) - 1].key == key) return pos;
    pos = (pos + 1) & s.mask;
  }
}

void DecisionCache::Unlink(Shard& s, uint32_t e) {
  Entry& en = s.entries[e];
  if (en.prev != kNil) s.entries[en.prev].next = en.next;
  else s.head = en.next;
  if (en.next != kNil) s.entries[en.next].prev = en.prev;
  else s.tail = en.prev;
}

void DecisionCache::PushFront(Shard& s, uint32_t e) {
  Entry& en = s.entries[e];
  en.prev = kNil;
  en.next = s.head;
  if (s.head != kNil) s.entries[s.head].prev = e;
  else s.tail = e;
  s.head = e;
}

void DecisionCache::EraseSlot(Shard& s, size_t slot) {
  uint32_t e = uint32_t(s.index[slot]) - 1;
  Unlink(s, e);
  if (s.entries[e].reason == kOverflowReason) s.overflow.erase(e);
  s.entries[e].next = s.free_list;
  s.free_list = e;
  --s.size;
  // Backward-shift deletion: pull later members of the probe run into the
  // hole unless that would put them before their home slot.
  size_t i = slot;
  size_t j = slot;
  for (;;) {
    j = (j + 1) & s.mask;
    uint64_t v = s.index[j];
    if (v == 0) break;
    size_t home = uint32_t(v >> 32) & s.mask;
    bool stays = i < j ? (home > i && home <= j) : (home > i || home <= j);
    if (!stays) {
      s.index[i] = v;
      i = j;
    }
  }
  s.index[i] = 0;
}

void DecisionCache::Grow(Shard& s) {
  std::vector<uint64_t> old(s.index.size() * 2, 0);
  old.swap(s.index);
  s.mask = s.index.size() - 1;
  for (uint64_t v : old) {
    if (v == 0) continue;
    size_t pos = uint32_t(v >> 32) & s.mask;
    while (s.index[pos] != 0) pos = (pos + 1) & s.mask;
    s.index[pos] = v;
  }
}

uint32_t DecisionCache::Intern(Shard& s, const std::string& reason) {
  auto found = s.reason_ids.find(reason);
  if (found != s.reason_ids.end()) return found->second;
  if (s.reasons.size() >= kMaxInternedReasons || s.reason_bytes + reason.size() > kMaxInternedBytes) {
    return kOverflowReason;
  }
  uint32_t id = uint32_t(s.reasons.size());
  s.reasons.push_back(reason);
  s.reason_ids.emplace(reason, id);
  s.reason_bytes += reason.size();
  return id;
}

bool DecisionCache::Get(const CacheKey& key, double policy_version, double now_ms, CacheHit* out) {
  uint64_t h = SeededKeyHash(key.bytes, 32);
  uint32_t h32 = uint32_t(h >> 32);
  Shard& s = ShardFor(h);
  std::lock_guard<std::mutex> lock(s.mu);
  size_t slot = Find(s, key, h32);
  if (slot == kNotFound) {
    ++s.misses;
    return false;
  }
  uint32_t e = uint32_t(s.index[slot]) - 1;
  const Entry& en = s.entries[e];
  if (en.expires_at_ms <= now_ms) {
    ++s.expirations;
    ++s.misses;
    EraseSlot(s, slot);
    Bump();
    return false;
  }
  if (en.policy_version != policy_version) {
    // Made under another policy: never served, and useless to keep.
    ++s.misses;
    EraseSlot(s, slot);
    Bump();
    return false;
  }
  if (s.head != e) {
    Unlink(s, e);
    PushFront(s, e);
  }
  ++s.hits;
  out->decision = int(en.decision);
  out->policy_version = en.policy_version;
  out->expires_at_ms = en.expires_at_ms;
  if (en.reason == kOverflowReason) {
    out->reason_id = -1;
    out->reason = s.overflow[e];
  } else {
    out->reason_id = int32_t(s.id << 20 | en.reason);
  }
  return true;
}

void DecisionCache::Put(const CacheKey& key, CachedDecision value) {
  uint64_t h = SeededKeyHash(key.bytes, 32);
  uint32_t h32 = uint32_t(h >> 32);
  Shard& s = ShardFor(h);
  std::lock_guard<std::mutex> lock(s.mu);
  Bump();
  uint32_t reason = Intern(s, value.reason);
  size_t slot = Find(s, key, h32);
  uint32_t e;
  if (slot != kNotFound) {
    e = uint32_t(s.index[slot]) - 1;
    if (s.entries[e].reason == kOverflowReason) s.overflow.erase(e);
    if (s.head != e) {
      Unlink(s, e);
      PushFront(s, e);
    }
  } else {
    if (s.size >= s.capacity) {
      const CacheKey& victim = s.entries[s.tail].key;
      EraseSlot(s, Find(s, victim, uint32_t(SeededKeyHash(victim.bytes, 32) >> 32)));
      ++s.evictions;
    }
    if ((s.size + 1) * 2 > s.index.size()) Grow(s);
    if (s.free_list != kNil) {
      e = s.free_list;
      s.free_list = s.entries[e].next;
    } else {
      e = uint32_t(s.entries.size());
      s.entries.emplace_back();
    }
    s.entries[e].key = key;
    PushFront(s, e);
    size_t pos = h32 & s.mask;
    while (s.index[pos] != 0) pos = (pos + 1) & s.mask;
    s.index[pos] = uint64_t(h32) << 32 | (uint64_t(e) + 1);
    ++s.size;
  }
  Entry& en = s.entries[e];
  en.decision = uint32_t(value.decision);
  en.policy_version = value.policy_version;
  en.expires_at_ms = value.expires_at_ms;
  en.reason = reason;
  if (reason == kOverflowReason) s.overflow[e] = std::move(value.reason);
}

bool DecisionCache::Invalidate(const CacheKey& key) {
  uint64_t h = SeededKeyHash(key.bytes, 32);
  Shard& s = ShardFor(h);
  std::lock_guard<std::mutex> lock(s.mu);
  size_t slot = Find(s, key, uint32_t(h >> 32));
  if (slot == kNotFound) return false;
  EraseSlot(s, slot);
  Bump();
  return true;
}

size_t DecisionCache::Clear() {
  size_t removed = 0;
  for (auto& shard : shards_) {
    Shard& s = *shard;
    std::lock_guard<std::mutex> lock(s.mu);
    removed += s.size;
    s.entries.clear();
    s.overflow.clear();
    std::fill(s.index.begin(), s.index.end(), 0);
    s.free_list = s.head = s.tail = kNil;
    s.size = 0;
    // Interned reasons stay: ids already handed out keep their meaning.
  }
  Bump();
  return removed;
}

CacheStats DecisionCache::Stats() const {
  CacheStats out{0, capacity_, near_hits_.load(std::memory_order_relaxed), 0, 0, 0};
  for (const auto& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard->mu);
    out.entries += shard->size;
    out.hits += shard->hits;
    out.misses += shard->misses;
    out.evictions += shard->evictions;
    out.expirations += shard->expirations;
  }
  return out;
}

bool DecisionCache::ReasonText(int32_t id, std::string* out) {
  if (id < 0) return false;
  size_t shard = size_t(id) >> 20;
  size_t index = size_t(id) & 0xfffff;
  if (shard >= shards_.size()) return false;
  Shard& s = *shards_[shard];
  std::lock_guard<std::mutex> lock(s.mu);
  if (index >= s.reasons.size()) return false;
  *out = s.reasons[index];
  return true;
}

namespace {
template <typename Char>
bool ParseCarHashChars(const Char* text, size_t len, CacheKey* out) {
  static const char kPrefix[] = "sha256:";
  if (len != 7 + 64) return false;
  for (size_t i = 0; i < 7; ++i) {
    if (text[i] != Char(kPrefix[i])) return false;
  }
  // Branch-free: a branch per digit (digit or letter?) mispredicted on half
  // of these random digits and was more than half of a cache lookup.
  uint32_t bad = 0;
  for (size_t i = 0; i < 32; ++i) {
    uint32_t nibbles[2];
    for (int j = 0; j < 2; ++j) {
      uint32_t c = uint32_t(text[7 + 2 * i + j]);
      uint32_t digit = (c - '0') < 10;
      uint32_t lower = (c - 'a') < 6;
      bad |= (digit | lower) ^ 1;
      nibbles[j] = (c & 0xf) + 9 * lower;  // '0'..'9' -> 0..9, 'a'..'f' -> 10..15
    }
    out->bytes[i] = uint8_t(nibbles[0] << 4 | nibbles[1]);
  }
  return bad == 0;
}
}  // namespace

bool ParseCarHash(const char* text, size_t len, CacheKey* out) { return ParseCarHashChars(text, len, out); }
bool ParseCarHash(const char16_t* text, size_t len, CacheKey* out) { return ParseCarHashChars(text, len, out); }

}  // namespace gk
