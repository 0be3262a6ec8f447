// Host build of cuda/aes_gcm.cuh. Reads cases on stdin and writes, per case,
// the ciphertext and tag computed the way the CUDA kernels compute them:
// CTR one block at a time in any order, GHASH split into chunks of
// `chunk_blocks` blocks (0: one sequential pass) combined with powers of H.
// It also opens its own output (tag check + CTR) and reports a mismatch.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "aes_gcm.cuh"
#include "stdin_reader.h"

using namespace gk::aes;

namespace {

// GHASH over aad, ciphertext (in chunks) and the length block.
U128 Ghash(U128 h, const std::vector<uint8_t>& aad, const std::vector<uint8_t>& text, uint32_t chunk_blocks) {
  const uint64_t m = (text.size() + 15) / 16;
  U128 s = GhashBytes(h, U128{0, 0}, aad.data(), aad.size());
  if (chunk_blocks == 0) {
    s = GhashBytes(h, s, text.data(), text.size());
  } else {
    s = GfMul(s, GfPow(h, m));
    // Chunks in reverse order, to show the combination does not depend on order.
    for (uint64_t a = ((m == 0 ? 0 : m - 1) / chunk_blocks) * chunk_blocks + chunk_blocks; a >= chunk_blocks;) {
      a -= chunk_blocks;
      if (a >= m) continue;
      const uint64_t b = a + chunk_blocks < m ? a + chunk_blocks : m;
      const size_t from = size_t(a) * 16;
      const size_t to = size_t(b) * 16 < text.size() ? size_t(b) * 16 : text.size();
      const U128 y = GhashBytes(h, U128{0, 0}, text.data() + from, to - from);
      s = Xor(s, GfMul(y, GfPow(h, m - b)));
    }
  }
  return GfMul(Xor(s, LengthBlock(aad.size(), text.size())), h);
}

}  // namespace

template <typename Table>
void Run(const Table& t, const Key& k, const uint8_t* iv, const std::vector<uint8_t>& aad, const std::vector<uint8_t>& text,
         uint32_t chunk_blocks, uint32_t c, int* failures) {
  const U128 h = HashSubkey(k, t);
  std::vector<uint8_t> ct(text.size());
  const uint64_t m = (text.size() + 15) / 16;
  // Blocks in reverse order: CTR blocks are independent.
  for (uint64_t i = m; i-- > 0;) {
    const size_t n = text.size() - i * 16 < 16 ? text.size() - i * 16 : 16;
    CtrBlock(k, t, iv, i, text.data() + i * 16, ct.data() + i * 16, n);
  }
  uint8_t tag[16];
  FinishTag(k, t, iv, Ghash(h, aad, ct, chunk_blocks), tag);

  // Open: recompute the tag sequentially, compare without early exit, decrypt.
  uint8_t check[16];
  FinishTag(k, t, iv, Ghash(h, aad, ct, 0), check);
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
  std::fwrite(ct.data(), 1, ct.size(), stdout);
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

    Key k;
    ExpandKey(key, key_bytes, kHostSbox, &k);
    if (c % 2 == 1) {
      Run(LaneTable{replicated, c % 32}, k, iv, aad, text, chunk_blocks, c, &failures);
    } else {
      Run(host_table, k, iv, aad, text, chunk_blocks, c, &failures);
    }
  }
  return failures == 0 ? 0 : 1;
}
