// GHASH multiplication by a fixed H with a 4-bit table (Shoup's method):
// 32 steps of "shift by four bits, reduce, add a multiple of H" instead of
// the 128 bit steps of GfMul. The kernels hash every ciphertext block with
// it; GfMul stays for the few products by varying powers of H.
//
// The table is per key (16 multiples of H, built on the host) and is read
// through an accessor, like the AES tables: the host reads it directly, a
// kernel reads a copy in shared memory with one replica per lane, so the
// data-dependent lookups of a warp never meet in a bank.
#pragma once
#include "aes_gcm.cuh"

namespace gk {
namespace aes {

// m[v] = v·H, where nibble v is read most significant bit first as the
// coefficients of x^0..x^3 (GCM's bit order).
struct GhashKeyTable {
  U128 m[16];
};

// Multiplication by x: one right shift, reduced by x^128 = 1 + x + x^2 + x^7.
GK_HD U128 GfMulX(U128 v) {
  const uint64_t carry = 0 - (v.lo & 1);
  return U128{(v.hi >> 1) ^ (0xe100000000000000ull & carry), (v.lo >> 1) | (v.hi << 63)};
}

GK_HD void BuildGhashTable(U128 h, GhashKeyTable* t) {
  t->m[0] = U128{0, 0};
  t->m[8] = h;
  t->m[4] = GfMulX(t->m[8]);
  t->m[2] = GfMulX(t->m[4]);
  t->m[1] = GfMulX(t->m[2]);
  for (int i = 2; i < 16; i *= 2)
    for (int j = 1; j < i; ++j) t->m[i + j] = Xor(t->m[i], t->m[j]);
}

// Top 32 bits of the reduction term for the four low bits shifted out when
// a value is multiplied by x^4: low bit b stands for x^(127-b), which becomes
// x^(3-b)·x^128 = x^(3-b)·(1 + x + x^2 + x^7).
GK_HD uint32_t GhashReduce4(uint32_t rem) {
  uint32_t r = 0;
  for (int b = 0; b < 4; ++b) r ^= (0u - ((rem >> b) & 1)) & (0xe1000000u >> (3 - b));
  return r;
}

// Host accessor: the table as built, the reduction terms computed.
struct HostGhashTable {
  const GhashKeyTable* t;
  GK_HD U128 M(uint32_t v) const { return t->m[v]; }
  GK_HD uint32_t R(uint32_t rem) const { return GhashReduce4(rem); }
};

// Shared-memory layout, one replica per lane: half w (0 = hi, 1 = lo) of
// m[v] at m64[(v * 2 + w) * 32 + lane], the reduction term for rem at
// r32[rem * 32 + lane]. 64-bit loads go by half-warps, 16 lanes covering
// the 32 banks once, so no lookup waits on another lane's.
constexpr unsigned kGhashLaneWords64 = 16 * 2 * 32;
constexpr unsigned kGhashLaneWords32 = 16 * 32;

struct LaneGhashTable {
  const uint64_t* m64;
  const uint32_t* r32;
  uint32_t lane;  // 0..31
  GK_HD U128 M(uint32_t v) const { return U128{m64[(v * 2) * 32 + lane], m64[(v * 2 + 1) * 32 + lane]}; }
  GK_HD uint32_t R(uint32_t rem) const { return r32[rem * 32 + lane]; }
};

// Entry i of the lane layout (for filling it: a kernel's threads split i).
GK_HD uint64_t LaneGhashWord64(const GhashKeyTable& t, uint32_t i) {
  const uint32_t half = (i / 32) % 2;
  const uint32_t v = i / 64;
  return half == 0 ? t.m[v].hi : t.m[v].lo;
}
GK_HD uint32_t LaneGhashWord32(uint32_t i) { return GhashReduce4(i / 32); }

// x·H by Horner over x's 32 nibbles, last (highest powers) first.
template <typename GTable>
GK_HD U128 GhashMulH(const GTable& g, U128 x) {
  U128 z{0, 0};
  for (int half = 0; half < 2; ++half) {
    uint64_t w = half == 0 ? x.lo : x.hi;
    for (int i = 0; i < 16; ++i) {
      const uint32_t rem = uint32_t(z.lo & 0xf);
      z.lo = (z.lo >> 4) | (z.hi << 60);
      z.hi = (z.hi >> 4) ^ (uint64_t(g.R(rem)) << 32);
      z = Xor(z, g.M(uint32_t(w & 0xf)));
      w >>= 4;
    }
  }
  return z;
}

// GhashBytes with the table: Horner over `len` bytes (the last block
// zero-padded), starting from y.
template <typename GTable>
GK_HD U128 GhashBytesT(const GTable& g, U128 y, const uint8_t* data, size_t len) {
  size_t i = 0;
  for (; i + 16 <= len; i += 16) y = GhashMulH(g, Xor(y, Load128(data + i)));
  if (i < len) {
    uint8_t last[16] = {0};
    for (size_t j = 0; i + j < len; ++j) last[j] = data[i + j];
    y = GhashMulH(g, Xor(y, Load128(last)));
  }
  return y;
}

// A whole block loaded as little-endian words, in GCM's big-endian order.
GK_HD U128 Load128Words(const hd::Words4& v) {
  return U128{(uint64_t(hd::Bswap32(v.x)) << 32) | hd::Bswap32(v.y), (uint64_t(hd::Bswap32(v.z)) << 32) | hd::Bswap32(v.w)};
}

// GHASH over a byte string given in pieces (a control block's header, index
// and AAD), padded to 16 bytes only at its end, as GCM pads the AAD.
template <typename GTable>
struct GhashStreamT {
  U128 y;
  uint8_t buf[16];
  int n;
  GK_HD void Init() {
    y = U128{0, 0};
    n = 0;
  }
  GK_HD void Add(const GTable& g, const uint8_t* p, size_t len) {
    for (size_t i = 0; i < len; ++i) {
      buf[n++] = p[i];
      if (n == 16) {
        y = GhashMulH(g, Xor(y, Load128(buf)));
        n = 0;
      }
    }
  }
  // Ends the string.
  GK_HD void Pad(const GTable& g) {
    if (n == 0) return;
    for (int i = n; i < 16; ++i) buf[i] = 0;
    y = GhashMulH(g, Xor(y, Load128(buf)));
    n = 0;
  }
};

}  // namespace aes
}  // namespace gk
