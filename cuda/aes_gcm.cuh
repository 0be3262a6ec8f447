// AES (FIPS 197) and GCM (NIST SP 800-38D) math for the CUDA kernels and
// for the host: every function is GK_HD, and the CPU tests build this header
// with g++ and compare its output with node:crypto (test/aes-gcm-host.test.ts).
//
// AES uses one T-table (Te0; the other three are its byte rotations) and the
// S-box for the last round; the tables are passed in, so a kernel can hand in
// a copy in shared memory and the host the constants below. GfMul multiplies
// in GF(2^128) bit by bit (SP 800-38D algorithm 1): the kernels use it only
// for products by varying powers of H, and GhashBytes (built on it) is the
// tests' reference. Hashing by a fixed H goes through the table of
// cuda/ghash_table.cuh; cuda/gcm_parallel.cuh splits the work.
#pragma once
#include "hd.cuh"

// The S-box and Te0, generated from their definitions (GF(2^8) inversion and
// the affine map; Te0[x] = 2·S[x] | S[x] | S[x] | 3·S[x]).
#define GK_AES_SBOX_VALUES \
    0x63, 0x7c, 0x77, 0x7b, 0xf2, 0x6b, 0x6f, 0xc5, 0x30, 0x01, 0x67, 0x2b, 0xfe, 0xd7, 0xab, 0x76, \
    0xca, 0x82, 0xc9, 0x7d, 0xfa, 0x59, 0x47, 0xf0, 0xad, 0xd4, 0xa2, 0xaf, 0x9c, 0xa4, 0x72, 0xc0, \
    0xb7, 0xfd, 0x93, 0x26, 0x36, 0x3f, 0xf7, 0xcc, 0x34, 0xa5, 0xe5, 0xf1, 0x71, 0xd8, 0x31, 0x15, \
    0x04, 0xc7, 0x23, 0xc3, 0x18, 0x96, 0x05, 0x9a, 0x07, 0x12, 0x80, 0xe2, 0xeb, 0x27, 0xb2, 0x75, \
    0x09, 0x83, 0x2c, 0x1a, 0x1b, 0x6e, 0x5a, 0xa0, 0x52, 0x3b, 0xd6, 0xb3, 0x29, 0xe3, 0x2f, 0x84, \
    0x53, 0xd1, 0x00, 0xed, 0x20, 0xfc, 0xb1, 0x5b, 0x6a, 0xcb, 0xbe, 0x39, 0x4a, 0x4c, 0x58, 0xcf, \
    0xd0, 0xef, 0xaa, 0xfb, 0x43, 0x4d, 0x33, 0x85, 0x45, 0xf9, 0x02, 0x7f, 0x50, 0x3c, 0x9f, 0xa8, \
    0x51, 0xa3, 0x40, 0x8f, 0x92, 0x9d, 0x38, 0xf5, 0xbc, 0xb6, 0xda, 0x21, 0x10, 0xff, 0xf3, 0xd2, \
    0xcd, 0x0c, 0x13, 0xec, 0x5f, 0x97, 0x44, 0x17, 0xc4, 0xa7, 0x7e, 0x3d, 0x64, 0x5d, 0x19, 0x73, \
    0x60, 0x81, 0x4f, 0xdc, 0x22, 0x2a, 0x90, 0x88, 0x46, 0xee, 0xb8, 0x14, 0xde, 0x5e, 0x0b, 0xdb, \
    0xe0, 0x32, 0x3a, 0x0a, 0x49, 0x06, 0x24, 0x5c, 0xc2, 0xd3, 0xac, 0x62, 0x91, 0x95, 0xe4, 0x79, \
    0xe7, 0xc8, 0x37, 0x6d, 0x8d, 0xd5, 0x4e, 0xa9, 0x6c, 0x56, 0xf4, 0xea, 0x65, 0x7a, 0xae, 0x08, \
    0xba, 0x78, 0x25, 0x2e, 0x1c, 0xa6, 0xb4, 0xc6, 0xe8, 0xdd, 0x74, 0x1f, 0x4b, 0xbd, 0x8b, 0x8a, \
    0x70, 0x3e, 0xb5, 0x66, 0x48, 0x03, 0xf6, 0x0e, 0x61, 0x35, 0x57, 0xb9, 0x86, 0xc1, 0x1d, 0x9e, \
    0xe1, 0xf8, 0x98, 0x11, 0x69, 0xd9, 0x8e, 0x94, 0x9b, 0x1e, 0x87, 0xe9, 0xce, 0x55, 0x28, 0xdf, \
    0x8c, 0xa1, 0x89, 0x0d, 0xbf, 0xe6, 0x42, 0x68, 0x41, 0x99, 0x2d, 0x0f, 0xb0, 0x54, 0xbb, 0x16,
#define GK_AES_TE0_VALUES \
    0xc66363a5u, 0xf87c7c84u, 0xee777799u, 0xf67b7b8du, 0xfff2f20du, 0xd66b6bbdu, 0xde6f6fb1u, 0x91c5c554u, \
    0x60303050u, 0x02010103u, 0xce6767a9u, 0x562b2b7du, 0xe7fefe19u, 0xb5d7d762u, 0x4dababe6u, 0xec76769au, \
    0x8fcaca45u, 0x1f82829du, 0x89c9c940u, 0xfa7d7d87u, 0xeffafa15u, 0xb25959ebu, 0x8e4747c9u, 0xfbf0f00bu, \
    0x41adadecu, 0xb3d4d467u, 0x5fa2a2fdu, 0x45afafeau, 0x239c9cbfu, 0x53a4a4f7u, 0xe4727296u, 0x9bc0c05bu, \
    0x75b7b7c2u, 0xe1fdfd1cu, 0x3d9393aeu, 0x4c26266au, 0x6c36365au, 0x7e3f3f41u, 0xf5f7f702u, 0x83cccc4fu, \
    0x6834345cu, 0x51a5a5f4u, 0xd1e5e534u, 0xf9f1f108u, 0xe2717193u, 0xabd8d873u, 0x62313153u, 0x2a15153fu, \
    0x0804040cu, 0x95c7c752u, 0x46232365u, 0x9dc3c35eu, 0x30181828u, 0x379696a1u, 0x0a05050fu, 0x2f9a9ab5u, \
    0x0e070709u, 0x24121236u, 0x1b80809bu, 0xdfe2e23du, 0xcdebeb26u, 0x4e272769u, 0x7fb2b2cdu, 0xea75759fu, \
    0x1209091bu, 0x1d83839eu, 0x582c2c74u, 0x341a1a2eu, 0x361b1b2du, 0xdc6e6eb2u, 0xb45a5aeeu, 0x5ba0a0fbu, \
    0xa45252f6u, 0x763b3b4du, 0xb7d6d661u, 0x7db3b3ceu, 0x5229297bu, 0xdde3e33eu, 0x5e2f2f71u, 0x13848497u, \
    0xa65353f5u, 0xb9d1d168u, 0x00000000u, 0xc1eded2cu, 0x40202060u, 0xe3fcfc1fu, 0x79b1b1c8u, 0xb65b5bedu, \
    0xd46a6abeu, 0x8dcbcb46u, 0x67bebed9u, 0x7239394bu, 0x944a4adeu, 0x984c4cd4u, 0xb05858e8u, 0x85cfcf4au, \
    0xbbd0d06bu, 0xc5efef2au, 0x4faaaae5u, 0xedfbfb16u, 0x864343c5u, 0x9a4d4dd7u, 0x66333355u, 0x11858594u, \
    0x8a4545cfu, 0xe9f9f910u, 0x04020206u, 0xfe7f7f81u, 0xa05050f0u, 0x783c3c44u, 0x259f9fbau, 0x4ba8a8e3u, \
    0xa25151f3u, 0x5da3a3feu, 0x804040c0u, 0x058f8f8au, 0x3f9292adu, 0x219d9dbcu, 0x70383848u, 0xf1f5f504u, \
    0x63bcbcdfu, 0x77b6b6c1u, 0xafdada75u, 0x42212163u, 0x20101030u, 0xe5ffff1au, 0xfdf3f30eu, 0xbfd2d26du, \
    0x81cdcd4cu, 0x180c0c14u, 0x26131335u, 0xc3ecec2fu, 0xbe5f5fe1u, 0x359797a2u, 0x884444ccu, 0x2e171739u, \
    0x93c4c457u, 0x55a7a7f2u, 0xfc7e7e82u, 0x7a3d3d47u, 0xc86464acu, 0xba5d5de7u, 0x3219192bu, 0xe6737395u, \
    0xc06060a0u, 0x19818198u, 0x9e4f4fd1u, 0xa3dcdc7fu, 0x44222266u, 0x542a2a7eu, 0x3b9090abu, 0x0b888883u, \
    0x8c4646cau, 0xc7eeee29u, 0x6bb8b8d3u, 0x2814143cu, 0xa7dede79u, 0xbc5e5ee2u, 0x160b0b1du, 0xaddbdb76u, \
    0xdbe0e03bu, 0x64323256u, 0x743a3a4eu, 0x140a0a1eu, 0x924949dbu, 0x0c06060au, 0x4824246cu, 0xb85c5ce4u, \
    0x9fc2c25du, 0xbdd3d36eu, 0x43acacefu, 0xc46262a6u, 0x399191a8u, 0x319595a4u, 0xd3e4e437u, 0xf279798bu, \
    0xd5e7e732u, 0x8bc8c843u, 0x6e373759u, 0xda6d6db7u, 0x018d8d8cu, 0xb1d5d564u, 0x9c4e4ed2u, 0x49a9a9e0u, \
    0xd86c6cb4u, 0xac5656fau, 0xf3f4f407u, 0xcfeaea25u, 0xca6565afu, 0xf47a7a8eu, 0x47aeaee9u, 0x10080818u, \
    0x6fbabad5u, 0xf0787888u, 0x4a25256fu, 0x5c2e2e72u, 0x381c1c24u, 0x57a6a6f1u, 0x73b4b4c7u, 0x97c6c651u, \
    0xcbe8e823u, 0xa1dddd7cu, 0xe874749cu, 0x3e1f1f21u, 0x964b4bddu, 0x61bdbddcu, 0x0d8b8b86u, 0x0f8a8a85u, \
    0xe0707090u, 0x7c3e3e42u, 0x71b5b5c4u, 0xcc6666aau, 0x904848d8u, 0x06030305u, 0xf7f6f601u, 0x1c0e0e12u, \
    0xc26161a3u, 0x6a35355fu, 0xae5757f9u, 0x69b9b9d0u, 0x17868691u, 0x99c1c158u, 0x3a1d1d27u, 0x279e9eb9u, \
    0xd9e1e138u, 0xebf8f813u, 0x2b9898b3u, 0x22111133u, 0xd26969bbu, 0xa9d9d970u, 0x078e8e89u, 0x339494a7u, \
    0x2d9b9bb6u, 0x3c1e1e22u, 0x15878792u, 0xc9e9e920u, 0x87cece49u, 0xaa5555ffu, 0x50282878u, 0xa5dfdf7au, \
    0x038c8c8fu, 0x59a1a1f8u, 0x09898980u, 0x1a0d0d17u, 0x65bfbfdau, 0xd7e6e631u, 0x844242c6u, 0xd06868b8u, \
    0x824141c3u, 0x299999b0u, 0x5a2d2d77u, 0x1e0f0f11u, 0x7bb0b0cbu, 0xa85454fcu, 0x6dbbbbd6u, 0x2c16163au,

namespace gk {
namespace aes {

inline constexpr uint8_t kHostSbox[256] = {GK_AES_SBOX_VALUES};
inline constexpr uint32_t kHostTe0[256] = {GK_AES_TE0_VALUES};

// Table accessors. The S-box is byte 2 of Te0 (Te0[x] = 2s|s|s|3s), so one
// table serves every round.
struct HostTable {
  const uint32_t* te0;
  GK_HD uint32_t Te(uint32_t x) const { return te0[x]; }
  GK_HD uint32_t S(uint32_t x) const { return (te0[x] >> 8) & 0xff; }
};

// Te0 replicated once per shared-memory bank: entry x of lane L sits at
// x * 32 + L, so the 32 threads of a warp always read 32 different banks
// (no conflicts, whatever indices the data gives them).
struct LaneTable {
  const uint32_t* te0x32;
  uint32_t lane;  // 0..31
  GK_HD uint32_t Te(uint32_t x) const { return te0x32[x * 32 + lane]; }
  GK_HD uint32_t S(uint32_t x) const { return (Te(x) >> 8) & 0xff; }
};

struct Key {
  uint32_t rk[60];  // round keys, big-endian words
  int rounds;       // 10 (AES-128) or 14 (AES-256)
};

GK_HD uint32_t Rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

GK_HD uint32_t SubWord(const uint8_t* sbox, uint32_t w) {
  return (uint32_t(sbox[w >> 24]) << 24) | (uint32_t(sbox[(w >> 16) & 0xff]) << 16) | (uint32_t(sbox[(w >> 8) & 0xff]) << 8) |
         uint32_t(sbox[w & 0xff]);
}

// key_bytes: 16 or 32.
GK_HD void ExpandKey(const uint8_t* key, int key_bytes, const uint8_t* sbox, Key* out) {
  const int nk = key_bytes / 4;
  out->rounds = nk + 6;
  const int total = 4 * (out->rounds + 1);
  for (int i = 0; i < nk; ++i) out->rk[i] = hd::LoadBe32(key + 4 * i);
  uint32_t rcon = 0x01;
  for (int i = nk; i < total; ++i) {
    uint32_t t = out->rk[i - 1];
    if (i % nk == 0) {
      t = SubWord(sbox, (t << 8) | (t >> 24)) ^ (rcon << 24);
      rcon = (rcon << 1) ^ ((rcon & 0x80) ? 0x11b : 0);
    } else if (nk > 6 && i % nk == 4) {
      t = SubWord(sbox, t);
    }
    out->rk[i] = out->rk[i - nk] ^ t;
  }
}

// One block as four big-endian words, encrypted in place.
template <typename Table>
GK_HD void EncryptWords(const Key& k, const Table& t, uint32_t w[4]) {
  const uint32_t* rk = k.rk;
  uint32_t s0 = w[0] ^ rk[0];
  uint32_t s1 = w[1] ^ rk[1];
  uint32_t s2 = w[2] ^ rk[2];
  uint32_t s3 = w[3] ^ rk[3];
  for (int r = 1; r < k.rounds; ++r) {
    rk += 4;
    const uint32_t t0 = t.Te(s0 >> 24) ^ Rotr(t.Te((s1 >> 16) & 0xff), 8) ^ Rotr(t.Te((s2 >> 8) & 0xff), 16) ^ Rotr(t.Te(s3 & 0xff), 24) ^ rk[0];
    const uint32_t t1 = t.Te(s1 >> 24) ^ Rotr(t.Te((s2 >> 16) & 0xff), 8) ^ Rotr(t.Te((s3 >> 8) & 0xff), 16) ^ Rotr(t.Te(s0 & 0xff), 24) ^ rk[1];
    const uint32_t t2 = t.Te(s2 >> 24) ^ Rotr(t.Te((s3 >> 16) & 0xff), 8) ^ Rotr(t.Te((s0 >> 8) & 0xff), 16) ^ Rotr(t.Te(s1 & 0xff), 24) ^ rk[2];
    const uint32_t t3 = t.Te(s3 >> 24) ^ Rotr(t.Te((s0 >> 16) & 0xff), 8) ^ Rotr(t.Te((s1 >> 8) & 0xff), 16) ^ Rotr(t.Te(s2 & 0xff), 24) ^ rk[3];
    s0 = t0;
    s1 = t1;
    s2 = t2;
    s3 = t3;
  }
  rk += 4;
  const uint32_t o0 = ((t.S(s0 >> 24) << 24) | (t.S((s1 >> 16) & 0xff) << 16) | (t.S((s2 >> 8) & 0xff) << 8) | t.S(s3 & 0xff)) ^ rk[0];
  const uint32_t o1 = ((t.S(s1 >> 24) << 24) | (t.S((s2 >> 16) & 0xff) << 16) | (t.S((s3 >> 8) & 0xff) << 8) | t.S(s0 & 0xff)) ^ rk[1];
  const uint32_t o2 = ((t.S(s2 >> 24) << 24) | (t.S((s3 >> 16) & 0xff) << 16) | (t.S((s0 >> 8) & 0xff) << 8) | t.S(s1 & 0xff)) ^ rk[2];
  const uint32_t o3 = ((t.S(s3 >> 24) << 24) | (t.S((s0 >> 16) & 0xff) << 16) | (t.S((s1 >> 8) & 0xff) << 8) | t.S(s2 & 0xff)) ^ rk[3];
  w[0] = o0;
  w[1] = o1;
  w[2] = o2;
  w[3] = o3;
}

template <typename Table>
GK_HD void EncryptBlock(const Key& k, const Table& t, const uint8_t in[16], uint8_t out[16]) {
  uint32_t w[4] = {hd::LoadBe32(in), hd::LoadBe32(in + 4), hd::LoadBe32(in + 8), hd::LoadBe32(in + 12)};
  EncryptWords(k, t, w);
  for (int i = 0; i < 4; ++i) hd::StoreBe32(out + 4 * i, w[i]);
}

// ---- GF(2^128) in GCM's bit order (bit 0 is the most significant) ------------

struct U128 {
  uint64_t hi;
  uint64_t lo;
};

// A 96-bit IV by value (kernel parameters cannot be arrays).
struct Iv {
  uint8_t bytes[12];
};

GK_HD U128 Load128(const uint8_t* p) {
  U128 v;
  v.hi = (uint64_t(hd::LoadBe32(p)) << 32) | hd::LoadBe32(p + 4);
  v.lo = (uint64_t(hd::LoadBe32(p + 8)) << 32) | hd::LoadBe32(p + 12);
  return v;
}

GK_HD void Store128(uint8_t* p, U128 v) {
  hd::StoreBe32(p, uint32_t(v.hi >> 32));
  hd::StoreBe32(p + 4, uint32_t(v.hi));
  hd::StoreBe32(p + 8, uint32_t(v.lo >> 32));
  hd::StoreBe32(p + 12, uint32_t(v.lo));
}

GK_HD U128 Xor(U128 a, U128 b) { return U128{a.hi ^ b.hi, a.lo ^ b.lo}; }

// SP 800-38D algorithm 1. Branch-free on the secret bits (masks, not ifs).
GK_HD U128 GfMul(U128 x, U128 y) {
  U128 z{0, 0};
  U128 v = y;
  for (int i = 0; i < 128; ++i) {
    const uint64_t word = i < 64 ? x.hi : x.lo;
    const uint64_t bit = (word >> (63 - (i & 63))) & 1;
    const uint64_t take = 0 - bit;
    z.hi ^= v.hi & take;
    z.lo ^= v.lo & take;
    const uint64_t carry = 0 - (v.lo & 1);
    v.lo = (v.lo >> 1) | (v.hi << 63);
    v.hi = (v.hi >> 1) ^ (0xe100000000000000ull & carry);
  }
  return z;
}

// The multiplicative identity is the element whose bit 0 is set.
GK_HD U128 GfOne() { return U128{0x8000000000000000ull, 0}; }

// h^e by square and multiply.
GK_HD U128 GfPow(U128 h, uint64_t e) {
  U128 result = GfOne();
  U128 base = h;
  while (e != 0) {
    if (e & 1) result = GfMul(result, base);
    base = GfMul(base, base);
    e >>= 1;
  }
  return result;
}

// Horner over `len` bytes (the last block zero-padded), starting from y.
GK_HD U128 GhashBytes(U128 h, U128 y, const uint8_t* data, size_t len) {
  size_t i = 0;
  for (; i + 16 <= len; i += 16) y = GfMul(Xor(y, Load128(data + i)), h);
  if (i < len) {
    uint8_t last[16] = {0};
    for (size_t j = 0; i + j < len; ++j) last[j] = data[i + j];
    y = GfMul(Xor(y, Load128(last)), h);
  }
  return y;
}

// ---- GCM pieces ---------------------------------------------------------------

// Counter block for data block `index` (0-based): IV || BE32(2 + index), as
// GCM increments J0 = IV || 1 (mod 2^32).
GK_HD void CounterBlock(const uint8_t iv[12], uint64_t index, uint8_t out[16]) {
  for (int i = 0; i < 12; ++i) out[i] = iv[i];
  hd::StoreBe32(out + 12, uint32_t(2 + index));
}

// XORs the keystream for data block `index` into up to 16 bytes.
template <typename Table>
GK_HD void CtrBlock(const Key& k, const Table& t, const uint8_t iv[12], uint64_t index, const uint8_t* in, uint8_t* out, size_t n) {
  uint8_t counter[16];
  uint8_t stream[16];
  CounterBlock(iv, index, counter);
  EncryptBlock(k, t, counter, stream);
  for (size_t i = 0; i < n; ++i) out[i] = in[i] ^ stream[i];
}

// CTR over one whole block held as four little-endian words, as a kernel
// reads it with one 16-byte load: the keystream's big-endian words are
// byte-swapped instead of the data being split into bytes.
template <typename Table>
GK_HD void CtrWordsLe(const Key& k, const Table& t, const uint8_t iv[12], uint64_t index, const uint32_t in_le[4], uint32_t out_le[4]) {
  uint32_t w[4] = {hd::LoadBe32(iv), hd::LoadBe32(iv + 4), hd::LoadBe32(iv + 8), uint32_t(2 + index)};
  EncryptWords(k, t, w);
  for (int i = 0; i < 4; ++i) out_le[i] = in_le[i] ^ hd::Bswap32(w[i]);
}

// The last GHASH block: bit lengths of the AAD and the ciphertext.
GK_HD U128 LengthBlock(uint64_t aad_len, uint64_t text_len) { return U128{aad_len * 8, text_len * 8}; }

// Tag = E(K, J0) xor S, where S is the GHASH of AAD, ciphertext and lengths.
template <typename Table>
GK_HD void FinishTag(const Key& k, const Table& t, const uint8_t iv[12], U128 s, uint8_t tag[16]) {
  uint8_t j0[16];
  uint8_t ej0[16];
  for (int i = 0; i < 12; ++i) j0[i] = iv[i];
  hd::StoreBe32(j0 + 12, 1);
  EncryptBlock(k, t, j0, ej0);
  Store128(tag, Xor(Load128(ej0), s));
}

// GHASH subkey H = E(K, 0^128).
template <typename Table>
GK_HD U128 HashSubkey(const Key& k, const Table& t) {
  uint8_t zero[16] = {0};
  uint8_t h[16];
  EncryptBlock(k, t, zero, h);
  return Load128(h);
}

}  // namespace aes
}  // namespace gk
