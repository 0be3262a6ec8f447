// How the AES-GCM kernels split their work, as GK_HD pieces the CPU tests
// put together the way the kernels do (test/native/aes_gcm_host.cc and
// control_block_host.cc) and hold to node:crypto.
//
// GHASH is linear: over text blocks C_0..C_{m-1} it is the sum of
// C_i·H^(m-i). Counting blocks from the END makes every split regular:
//
// One large message: chunk j is the K blocks whose distance from the end is
// in [jK, (j+1)K). Its Horner value y_j (from zero, table multiplications)
// needs G^j more, G = H^K. A block of T threads sums its T chunks in a
// tree whose level l multiplies by G^(2^l); the block's sum then needs
// G^(T·t) more (t: the block's index), a product of the same powers. So the
// host hands the kernels G^(2^l) for every level, nothing else.
//
// Control blocks (MemoryEncryption.encryptBlocks): L lanes per block, L the
// smallest power of two >= its 16-byte blocks, at most 32, so a warp takes
// 32 / L small blocks at once or one large one. Lane r of a block takes the
// q blocks at distances [rq, (r+1)q) from the end, and its value needs
// H^(rq) more (q = ceil(blocks / L)). The block's associated data (header ||
// BE32(index) || aad) is the same for every block but for the index, so its
// GHASH is a constant plus one term per set index bit: lane r adds the terms
// of bits r, r + L, ... Shuffles sum each block's lanes; its lane 0 adds the
// length block and encrypts J0 for the tag.
#pragma once
#include "ghash_table.cuh"

namespace gk {
namespace aes {

// ---- one large message ----------------------------------------------------------

// Levels of G^(2^l) the host provides: enough for 2^40 chunks of blocks.
constexpr uint32_t kChunkPowerLevels = 40;

struct ChunkPowers {
  U128 g2[kChunkPowerLevels];  // G^(2^l), G = H^K
};

GK_HD uint64_t BlockCount(size_t len) { return (uint64_t(len) + 15) / 16; }
GK_HD uint64_t ChunkCount(uint64_t blocks, uint32_t k) { return (blocks + k - 1) / k; }

// Fills the levels a text of `chunks` chunks uses (the rest stay unset).
GK_HD void BuildChunkPowers(U128 h, uint32_t k, uint64_t chunks, ChunkPowers* p) {
  p->g2[0] = GfPow(h, k);
  for (uint32_t l = 1; l < kChunkPowerLevels && (uint64_t(1) << (l - 1)) < chunks; ++l) p->g2[l] = GfMul(p->g2[l - 1], p->g2[l - 1]);
}

// Horner value of chunk j (j < ChunkCount), from zero. With `aligned`
// (text 16-byte aligned), whole blocks are read as words (one 16-byte load
// each on the device) and only a partial last block byte by byte.
template <typename GTable>
GK_HD U128 GhashChunkFromEnd(const GTable& g, const uint8_t* text, size_t len, uint64_t j, uint32_t k, bool aligned) {
  const uint64_t end = BlockCount(len) - j * k;
  uint64_t begin = end > k ? end - k : 0;
  const size_t to = end * 16 < len ? size_t(end * 16) : len;
  U128 y{0, 0};
  if (aligned) {
    const hd::Words4* words = reinterpret_cast<const hd::Words4*>(text);
    for (; begin * 16 + 16 <= to; ++begin) y = GhashMulH(g, Xor(y, Load128Words(words[begin])));
  }
  return GhashBytesT(g, y, text + begin * 16, to - size_t(begin * 16));
}

// Tree level `level` of a block: slot tau (a multiple of 2^(level+1))
// absorbs slot tau + 2^level, whose chunks are 2^level further from the end.
GK_HD void ChunkTreeLevel(U128* slots, uint32_t tau, uint32_t level, const ChunkPowers& p) {
  slots[tau] = Xor(slots[tau], GfMul(slots[tau + (1u << level)], p.g2[level]));
}

// A block's sum moved to its place: times G^(T·t), T = 2^log2_threads.
GK_HD U128 PlaceBlockSum(U128 w, uint64_t t, uint32_t log2_threads, const ChunkPowers& p) {
  for (uint32_t b = 0; (t >> b) != 0; ++b) {
    if ((t >> b) & 1) w = GfMul(w, p.g2[log2_threads + b]);
  }
  return w;
}

// ---- control blocks -------------------------------------------------------------

constexpr uint32_t kWarpLanes = 32;

// The nonce of control block `index`: prefix || BE64(first + index).
GK_HD void ControlBlockIv(const uint8_t prefix[4], uint64_t first, uint32_t index, uint8_t iv[12]) {
  for (int i = 0; i < 4; ++i) iv[i] = prefix[i];
  const uint64_t counter = first + index;
  hd::StoreBe32(iv + 4, uint32_t(counter >> 32));
  hd::StoreBe32(iv + 8, uint32_t(counter));
}

GK_HD bool IsAligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

// L: lanes per control block (a power of two, 1 to 32).
GK_HD uint32_t LanesPerBlock(size_t size) {
  const uint64_t nb = BlockCount(size);
  uint32_t lanes = 1;
  while (lanes < kWarpLanes && lanes < nb) lanes *= 2;
  return lanes;
}

GK_HD uint32_t BlocksPerLane(size_t size) {
  const uint32_t lanes = LanesPerBlock(size);
  return uint32_t((BlockCount(size) + lanes - 1) / lanes);
}

// Lane `lane`'s 16-byte blocks [*begin, *end) of a control block (may be empty).
GK_HD void LaneBlocks(size_t size, uint32_t lane, uint32_t q, uint64_t* begin, uint64_t* end) {
  const uint64_t nb = BlockCount(size);
  const uint64_t skip = uint64_t(lane) * q;
  *end = nb > skip ? nb - skip : 0;
  *begin = *end > q ? *end - q : 0;
}

// What the host computes once per launch for the control blocks.
struct ControlBlockConstants {
  U128 lane_power[kWarpLanes];  // H^(r·q) for lane r of a block (r < L)
  U128 index_bit[32];           // GHASH term of index bit b (AD and text lengths fixed)
  U128 base;                    // GHASH of the AD with index 0, times H^blocks, plus the length block
};

// header || BE32(index) || aad, zero-padded, Horner from zero: the GHASH of
// the associated data alone.
template <typename GTable>
GK_HD U128 AdGhash(const GTable& g, const uint8_t* header, size_t header_len, uint32_t index, const uint8_t* aad, size_t aad_len) {
  uint8_t index_be[4];
  hd::StoreBe32(index_be, index);
  GhashStreamT<GTable> s;
  s.Init();
  s.Add(g, header, header_len);
  s.Add(g, index_be, 4);
  s.Add(g, aad, aad_len);
  s.Pad(g);
  return s.y;
}

// The AD's GHASH is affine in the index bits, so one evaluation per bit
// (minus the index-0 value) gives its linear part.
template <typename GTable>
GK_HD void BuildControlBlockConstants(const GTable& g, U128 h, const uint8_t* header, size_t header_len, const uint8_t* aad, size_t aad_len,
                                      size_t size, ControlBlockConstants* c) {
  const uint64_t nb = BlockCount(size);
  const uint32_t q = BlocksPerLane(size);
  const U128 shift = GfPow(h, nb);
  const U128 zero_index = AdGhash(g, header, header_len, 0, aad, aad_len);
  c->base = Xor(GfMul(zero_index, shift), LengthBlock(header_len + 4 + aad_len, size));
  const U128 hq = GfPow(h, q);
  c->lane_power[0] = GfOne();
  for (uint32_t l = 1; l < kWarpLanes; ++l) c->lane_power[l] = GfMul(c->lane_power[l - 1], hq);
  for (uint32_t b = 0; b < 32; ++b) {
    c->index_bit[b] = GfMul(Xor(AdGhash(g, header, header_len, 1u << b, aad, aad_len), zero_index), shift);
  }
}

enum class Direction { kSeal, kOpen };

// Lane `lane` (< LanesPerBlock) of control block `index`: CTR over its
// blocks from `from` into `to` (plaintext to ciphertext when sealing, back
// when opening; when opening the caller releases `to` only if the tag
// matches), the GHASH of their ciphertext moved to its place, plus the
// terms of its index bits. The lanes' values XOR to the whole GHASH but for
// the final multiplication by H. `from` and `to` may be the same memory.
template <Direction kDir, typename Table, typename GTable>
GK_HD U128 ControlBlockLane(const Key& k, const Table& t, const GTable& g, const ControlBlockConstants& c, const uint8_t iv[12],
                            uint32_t index, const uint8_t* from, size_t size, uint8_t* to, uint32_t lane) {
  uint64_t begin = 0;
  uint64_t end = 0;
  LaneBlocks(size, lane, BlocksPerLane(size), &begin, &end);
  const bool aligned = IsAligned16(from) && IsAligned16(to);
  U128 y{0, 0};
  for (uint64_t b = begin; b < end; ++b) {
    const size_t n = size - b * 16 < 16 ? size_t(size - b * 16) : 16;
    // The ciphertext block is hashed before CTR when opening (so `to` may be
    // `from`), after it when sealing: word by word for whole aligned blocks,
    // else byte by byte, zero-padded.
    if (aligned && n == 16) {
      const hd::Words4 src = reinterpret_cast<const hd::Words4*>(from)[b];
      if (kDir == Direction::kOpen) y = GhashMulH(g, Xor(y, Load128Words(src)));
      const uint32_t in_le[4] = {src.x, src.y, src.z, src.w};
      uint32_t out_le[4];
      CtrWordsLe(k, t, iv, b, in_le, out_le);
      const hd::Words4 dst{out_le[0], out_le[1], out_le[2], out_le[3]};
      reinterpret_cast<hd::Words4*>(to)[b] = dst;
      if (kDir == Direction::kSeal) y = GhashMulH(g, Xor(y, Load128Words(dst)));
      continue;
    }
    const uint8_t* ct = kDir == Direction::kSeal ? to : from;
    if (kDir == Direction::kSeal) CtrBlock(k, t, iv, b, from + b * 16, to + b * 16, n);
    uint8_t block[16] = {0};
    for (size_t i = 0; i < n; ++i) block[i] = ct[b * 16 + i];
    y = GhashMulH(g, Xor(y, Load128(block)));
    if (kDir == Direction::kOpen) CtrBlock(k, t, iv, b, from + b * 16, to + b * 16, n);
  }
  if (lane != 0) y = GfMul(y, c.lane_power[lane]);
  // (lanes is found here, not before the loop: holding it through the loop
  // cost the open kernel 8 registers on sm_90.)
  const uint32_t lanes = LanesPerBlock(size);
  for (uint32_t bit = lane; bit < 32; bit += lanes) {
    if ((index >> bit) & 1) y = Xor(y, c.index_bit[bit]);
  }
  return y;
}

// Lane 0, after the lanes are summed: the tag.
template <typename Table, typename GTable>
GK_HD void ControlBlockTag(const Key& k, const Table& t, const GTable& g, const ControlBlockConstants& c, const uint8_t iv[12], U128 lanes_sum,
                           uint8_t tag[16]) {
  FinishTag(k, t, iv, GhashMulH(g, Xor(lanes_sum, c.base)), tag);
}

}  // namespace aes
}  // namespace gk
