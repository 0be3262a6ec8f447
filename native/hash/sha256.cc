#include "hash/sha256.h"

#include <atomic>
#include <cstring>

namespace gk {

const uint32_t kSha256InitialState[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                         0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

alignas(16) const uint32_t kSha256RoundConstants[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

namespace {

inline uint32_t Rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

inline uint32_t LoadBe32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

inline void StoreBe32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24);
  p[1] = uint8_t(v >> 16);
  p[2] = uint8_t(v >> 8);
  p[3] = uint8_t(v);
}

bool DetectShaNi() { return Sha256ShaNiAvailable(); }

// Chosen once; a relaxed atomic because the test hook may flip it while
// worker threads hash (each read sees one of two valid functions).
std::atomic<bool> g_force_portable{false};
const bool g_has_shani = DetectShaNi();

}  // namespace

void Sha256CompressPortable(uint32_t state[8], const uint8_t* blocks, size_t nblocks) {
  uint32_t w[64];
  for (; nblocks > 0; --nblocks, blocks += kSha256BlockBytes) {
    for (int t = 0; t < 16; ++t) w[t] = LoadBe32(blocks + 4 * t);
    for (int t = 16; t < 64; ++t) {
      uint32_t s0 = Rotr(w[t - 15], 7) ^ Rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
      uint32_t s1 = Rotr(w[t - 2], 17) ^ Rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
      w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
    for (int t = 0; t < 64; ++t) {
      uint32_t big_s1 = Rotr(e, 6) ^ Rotr(e, 11) ^ Rotr(e, 25);
      uint32_t ch = (e & f) ^ (~e & g);
      uint32_t t1 = h + big_s1 + ch + kSha256RoundConstants[t] + w[t];
      uint32_t big_s0 = Rotr(a, 2) ^ Rotr(a, 13) ^ Rotr(a, 22);
      uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
      uint32_t t2 = big_s0 + maj;
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
    state[4] += e;
    state[5] += f;
    state[6] += g;
    state[7] += h;
  }
}

Sha256CompressFn Sha256Compress() {
  if (g_has_shani && !g_force_portable.load(std::memory_order_relaxed)) return Sha256CompressShaNi;
  return Sha256CompressPortable;
}

const char* Sha256ImplName() {
  return Sha256Compress() == Sha256CompressPortable ? "portable" : "sha-ni";
}

void Sha256ForcePortable(bool force) { g_force_portable.store(force, std::memory_order_relaxed); }

void Sha256::Reset() { ResumeFrom(kSha256InitialState, 0); }

void Sha256::ResumeFrom(const uint32_t midstate[8], uint64_t absorbed) {
  std::memcpy(h, midstate, sizeof(h));
  total_bytes = absorbed;
  pending_len = 0;
}

void Sha256::Update(const uint8_t* data, size_t len) {
  if (len == 0) return;
  Sha256CompressFn compress = Sha256Compress();
  total_bytes += len;
  if (pending_len > 0) {
    size_t take = kSha256BlockBytes - pending_len;
    if (take > len) take = len;
    std::memcpy(pending + pending_len, data, take);
    pending_len += take;
    data += take;
    len -= take;
    if (pending_len < kSha256BlockBytes) return;
    compress(h, pending, 1);
    pending_len = 0;
  }
  size_t whole = len / kSha256BlockBytes;
  if (whole > 0) {
    compress(h, data, whole);
    data += whole * kSha256BlockBytes;
    len -= whole * kSha256BlockBytes;
  }
  if (len > 0) {
    std::memcpy(pending, data, len);
    pending_len = len;
  }
}

void Sha256::Final(uint8_t out[kSha256DigestBytes]) {
  Sha256CompressFn compress = Sha256Compress();
  uint64_t bit_len = total_bytes * 8;
  // Padding: 0x80, zeros, then the 64-bit big-endian bit length; one or two blocks.
  uint8_t tail[2 * kSha256BlockBytes] = {0};
  std::memcpy(tail, pending, pending_len);
  tail[pending_len] = 0x80;
  size_t tail_len = pending_len + 9 <= kSha256BlockBytes ? kSha256BlockBytes : 2 * kSha256BlockBytes;
  for (int i = 0; i < 8; ++i) tail[tail_len - 1 - i] = uint8_t(bit_len >> (8 * i));
  compress(h, tail, tail_len / kSha256BlockBytes);
  for (int i = 0; i < 8; ++i) StoreBe32(out + 4 * i, h[i]);
  pending_len = 0;
}

void Sha256Digest(const uint8_t* data, size_t len, uint8_t out[kSha256DigestBytes]) {
  Sha256 ctx;
  ctx.Update(data, len);
  ctx.Final(out);
}

}  // namespace gk
