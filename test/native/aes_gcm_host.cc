// Host build of cuda/aes_gcm.cuh. Reads cases on stdin and writes, per case,
// the ciphertext and tag computed the way the CUDA kernels compute them:
// CTR one block at a time in any order, GHASH split into chunks and summed
// in blocks of threads as cuda/gcm_parallel.cuh describes (chunk_blocks 0:
// one sequential pass with the bitwise multiplication).
// It also opens its own output (tag check + CTR) and reports a mismatch.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "gcm_parallel.cuh"
#include "stdin_reader.h"

using namespace gk::aes;

namespace {

// GHASH over aad, ciphertext and the length block. chunk_blocks 0: one
// sequential pass with GfMul (SP 800-38D algorithm 1, the reference).
// Otherwise the kernels' way: table multiplications, chunks of chunk_blocks
// counted from the end, summed in blocks of 2^log2_threads "threads" by the
// tree, each block's sum placed, then XORed (blocks in reverse order, to
// show the order does not matter).
template <typename GTable>
U128 ParallelGhash(const GTable& g, U128 h, const std::vector<uint8_t>& aad, const std::vector<uint8_t>& text, uint32_t chunk_blocks,
                   uint32_t log2_threads, bool aligned) {
  const uint64_t m = BlockCount(text.size());
  U128 s{0, 0};
  if (!aad.empty()) s = GfMul(GhashBytesT(g, U128{0, 0}, aad.data(), aad.size()), GfPow(h, m));
  const uint64_t chunks = ChunkCount(m, chunk_blocks);
  ChunkPowers powers{};  // levels past the text's stay zero (the tree multiplies only zero slots by them)
  BuildChunkPowers(h, chunk_blocks, chunks, &powers);
  const uint32_t threads = 1u << log2_threads;
  const uint64_t blocks = (chunks + threads - 1) / threads;
  std::vector<U128> slots(threads);
  for (uint64_t t = blocks; t-- > 0;) {
    for (uint32_t tau = 0; tau < threads; ++tau) {
      const uint64_t j = t * threads + tau;
      slots[tau] = j < chunks ? GhashChunkFromEnd(g, text.data(), text.size(), j, chunk_blocks, aligned) : U128{0, 0};
    }
    for (uint32_t level = 0; level < log2_threads; ++level)
      for (uint32_t tau = 0; tau < threads; tau += 2u << level) ChunkTreeLevel(slots.data(), tau, level, powers);
    s = Xor(s, PlaceBlockSum(slots[0], t, log2_threads, powers));
  }
  return GhashMulH(g, Xor(s, LengthBlock(aad.size(), text.size())));
}

// lane >= 0: read the table through the kernels' shared-memory layout, as that lane.
// aligned: read whole blocks as 16-byte words (the vector's storage is
// 16-byte aligned: operator new's alignment on 64-bit hosts).
U128 Ghash(U128 h, const std::vector<uint8_t>& aad, const std::vector<uint8_t>& text, uint32_t chunk_blocks, uint32_t log2_threads, int lane,
           bool aligned) {
  if (aligned && (reinterpret_cast<uintptr_t>(text.data()) & 15) != 0) {
    std::fprintf(stderr, "text is not 16-byte aligned\n");
    std::exit(2);
  }
  if (chunk_blocks == 0) {
    U128 s = GhashBytes(h, U128{0, 0}, aad.data(), aad.size());
    s = GhashBytes(h, s, text.data(), text.size());
    return GfMul(Xor(s, LengthBlock(aad.size(), text.size())), h);
  }
  GhashKeyTable table;
  BuildGhashTable(h, &table);
  if (lane < 0) return ParallelGhash(HostGhashTable{&table}, h, aad, text, chunk_blocks, log2_threads, aligned);
  static uint64_t m64[kGhashLaneWords64];
  static uint32_t r32[kGhashLaneWords32];
  for (uint32_t i = 0; i < kGhashLaneWords64; ++i) m64[i] = LaneGhashWord64(table, i);
  for (uint32_t i = 0; i < kGhashLaneWords32; ++i) r32[i] = LaneGhashWord32(i);
  return ParallelGhash(LaneGhashTable{m64, r32, uint32_t(lane)}, h, aad, text, chunk_blocks, log2_threads, aligned);
}

}  // namespace

template <typename Table>
void Run(const Table& t, const Key& k, const uint8_t* iv, const std::vector<uint8_t>& aad, const std::vector<uint8_t>& text,
         uint32_t chunk_blocks, uint32_t log2_threads, uint32_t c, int* failures) {
  const U128 h = HashSubkey(k, t);
  std::vector<uint8_t> ct(text.size());
  const uint64_t m = (text.size() + 15) / 16;
  // Blocks in reverse order: CTR blocks are independent. Every other case
  // takes whole blocks as little-endian words, as the kernel's 16-byte loads do.
  for (uint64_t i = m; i-- > 0;) {
    const size_t n = text.size() - i * 16 < 16 ? text.size() - i * 16 : 16;
    if (n == 16 && c % 4 < 2) {
      uint32_t in_le[4];
      uint32_t out_le[4];
      std::memcpy(in_le, text.data() + i * 16, 16);  // x86-64 and arm64 hosts are little-endian, like the GPU
      CtrWordsLe(k, t, iv, i, in_le, out_le);
      std::memcpy(ct.data() + i * 16, out_le, 16);
    } else {
      CtrBlock(k, t, iv, i, text.data() + i * 16, ct.data() + i * 16, n);
    }
  }
  uint8_t tag[16];
  FinishTag(k, t, iv, Ghash(h, aad, ct, chunk_blocks, log2_threads, c % 2 == 1 ? int(c % 32) : -1, c % 4 >= 2), tag);

  // Open: recompute the tag sequentially, compare without early exit, decrypt.
  uint8_t check[16];
  FinishTag(k, t, iv, Ghash(h, aad, ct, 0, 0, -1, false), check);
  uint8_t diff = 0;
  for (int i = 0; i < 16; ++i) diff |= uint8_t(check[i] ^ tag[i]);
  std::vector<uint8_t> back(ct.size());
  for (uint64_t i = 0; i < m; ++i) {
    const size_t n = ct.size() - i * 16 < 16 ? ct.size() - i * 16 : 16;
    CtrBlock(k, t, iv, i, ct.data() + i * 16, back.data() + i * 16, n);
  }
  if (diff != 0 || back != text) {
    std::fprintf(stderr, "case %u: open of own output failed\n", c);
    ++*failures;
  }
  if (!ct.empty()) std::fwrite(ct.data(), 1, ct.size(), stdout);
  std::fwrite(tag, 1, 16, stdout);
}

int main() {
  // Odd cases use the bank-replicated table layout the kernels use.
  const HostTable host_table{kHostTe0};
  static uint32_t replicated[256 * 32];
  for (int x = 0; x < 256; ++x)
    for (int lane = 0; lane < 32; ++lane) replicated[x * 32 + lane] = kHostTe0[x];
  const uint32_t cases = ReadU32();
  int failures = 0;
  for (uint32_t c = 0; c < cases; ++c) {
    uint8_t key_bytes = 0;
    ReadExact(&key_bytes, 1);
    uint8_t key[32];
    ReadExact(key, key_bytes);
    uint8_t iv[12];
    ReadExact(iv, 12);
    std::vector<uint8_t> aad = ReadArray<uint8_t>();
    std::vector<uint8_t> text = ReadArray<uint8_t>();
    const uint32_t chunk_blocks = ReadU32();
    const uint32_t log2_threads = ReadU32();

    Key k;
    ExpandKey(key, key_bytes, kHostSbox, &k);
    if (c % 2 == 1) {
      Run(LaneTable{replicated, c % 32}, k, iv, aad, text, chunk_blocks, log2_threads, c, &failures);
    } else {
      Run(host_table, k, iv, aad, text, chunk_blocks, log2_threads, c, &failures);
    }
  }
  return failures == 0 ? 0 : 1;
}
