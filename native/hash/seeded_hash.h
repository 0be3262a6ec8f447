// Keyed 64-bit mixing for hash-table placement. Keys are attacker-influenced
// (CAR hashes can be ground, nonces chosen), so placement uses a per-process
// random seed: without it one could aim many keys at one bucket or shard.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace gk {

uint64_t ProcessHashSeed();

inline uint64_t Mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// Placement hash of any bytes (the memos: equality is still decided by
// memcmp): a multiply-rotate pass over 8-byte words, keyed with the seed.
inline uint64_t SeededBytesHash(const uint8_t* p, size_t n) {
  constexpr uint64_t kMul = 0x9e3779b97f4a7c15ULL;
  auto rotl = [](uint64_t x, int r) { return (x << r) | (x >> (64 - r)); };
  uint64_t h = ProcessHashSeed() ^ (uint64_t(n) * kMul);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = rotl((h ^ w) * kMul, 29);
  }
  uint64_t tail = 0;
  if (n > i) std::memcpy(&tail, p + i, n - i);
  h = rotl((h ^ tail) * kMul, 29);
  return Mix64(h);
}

// Hash of a 16- or 32-byte key that is itself a cryptographic digest.
inline uint64_t SeededKeyHash(const uint8_t* key, size_t len) {
  uint64_t h = ProcessHashSeed();
  for (size_t i = 0; i + 8 <= len; i += 8) {
    uint64_t w;
    std::memcpy(&w, key + i, 8);
    h = Mix64(h ^ w);
  }
  return h;
}

}  // namespace gk
