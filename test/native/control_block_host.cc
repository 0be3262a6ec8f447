// Host build of the control-block kernels' work (cuda/gcm_parallel.cuh):
// for each block of MemoryEncryption.encryptBlocks, its "lanes" (1 to 32,
// by its size) seal their parts in any order, their values are XORed as the
// warp's shuffles do, and lane 0 makes the tag. Reads cases on stdin, writes the envelope body
// (tag + ciphertext per block) for each. It also opens its own output the
// way the open kernel does and reports on stderr if that fails.
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "gcm_parallel.cuh"
#include "stdin_reader.h"

using namespace gk::aes;

namespace {

template <typename Table, typename GTable>
bool SealAndOpen(const Key& k, const Table& t, const GTable& g, const ControlBlockConstants& consts, const uint8_t prefix[4], uint64_t first,
                 const std::vector<uint8_t>& plain, uint32_t block_size, uint32_t count, std::vector<uint8_t>* out) {
  // Blocks in reverse order, lanes in reverse order: neither order matters.
  for (uint32_t i = count; i-- > 0;) {
    uint8_t iv[12];
    ControlBlockIv(prefix, first, i, iv);
    uint8_t* sealed = out->data() + size_t(i) * (16 + block_size);
    U128 sum{0, 0};
    for (uint32_t lane = LanesPerBlock(block_size); lane-- > 0;) {
      sum = Xor(sum, ControlBlockLane<Direction::kSeal>(k, t, g, consts, iv, i, plain.data() + size_t(i) * block_size, block_size, sealed + 16, lane));
    }
    ControlBlockTag(k, t, g, consts, iv, sum, sealed);
  }
  std::vector<uint8_t> back(plain.size());
  for (uint32_t i = 0; i < count; ++i) {
    uint8_t iv[12];
    ControlBlockIv(prefix, first, i, iv);
    const uint8_t* sealed = out->data() + size_t(i) * (16 + block_size);
    U128 sum{0, 0};
    for (uint32_t lane = 0; lane < LanesPerBlock(block_size); ++lane) {
      sum = Xor(sum, ControlBlockLane<Direction::kOpen>(k, t, g, consts, iv, i, sealed + 16, block_size, back.data() + size_t(i) * block_size, lane));
    }
    uint8_t tag[16];
    ControlBlockTag(k, t, g, consts, iv, sum, tag);
    for (int b = 0; b < 16; ++b)
      if (tag[b] != sealed[b]) return false;
  }
  return back == plain;
}

}  // namespace

int main() {
  static uint32_t replicated[256 * 32];
  for (int x = 0; x < 256; ++x)
    for (int lane = 0; lane < 32; ++lane) replicated[x * 32 + lane] = kHostTe0[x];
  static uint64_t m64[kGhashLaneWords64];
  static uint32_t r32[kGhashLaneWords32];
  const HostTable host_table{kHostTe0};
  const uint32_t cases = ReadU32();
  int failures = 0;
  for (uint32_t c = 0; c < cases; ++c) {
    const std::vector<uint8_t> key = ReadArray<uint8_t>();
    const std::vector<uint8_t> header = ReadArray<uint8_t>();
    uint8_t prefix[4];
    ReadExact(prefix, 4);
    uint64_t first = 0;
    ReadExact(&first, 8);
    const std::vector<uint8_t> aad = ReadArray<uint8_t>();
    const uint32_t block_size = ReadU32();
    const std::vector<uint8_t> plain = ReadArray<uint8_t>();
    Key k;
    ExpandKey(key.data(), int(key.size()), kHostSbox, &k);
    const U128 h = HashSubkey(k, host_table);
    GhashKeyTable gtable;
    BuildGhashTable(h, &gtable);
    const HostGhashTable host_g{&gtable};
    ControlBlockConstants consts;
    BuildControlBlockConstants(host_g, h, header.data(), header.size(), aad.data(), aad.size(), block_size, &consts);
    const uint32_t count = uint32_t(plain.size() / block_size);
    std::vector<uint8_t> out(size_t(count) * (16 + block_size));
    bool ok = false;
    if (c % 2 == 1) {
      // The kernels' shared-memory layouts, read as lane c % 32.
      for (uint32_t i = 0; i < kGhashLaneWords64; ++i) m64[i] = LaneGhashWord64(gtable, i);
      for (uint32_t i = 0; i < kGhashLaneWords32; ++i) r32[i] = LaneGhashWord32(i);
      ok = SealAndOpen(k, LaneTable{replicated, c % 32}, LaneGhashTable{m64, r32, c % 32}, consts, prefix, first, plain, block_size, count, &out);
    } else {
      ok = SealAndOpen(k, host_table, host_g, consts, prefix, first, plain, block_size, count, &out);
    }
    if (!ok) {
      std::fprintf(stderr, "case %u: open of own output failed\n", c);
      ++failures;
    }
    if (!out.empty()) std::fwrite(out.data(), 1, out.size(), stdout);
  }
  return failures == 0 ? 0 : 1;
}
