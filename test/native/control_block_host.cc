// Host build of gk::aes::SealControlBlock (what one GPU thread does for one
// block of MemoryEncryption.encryptBlocks). Reads cases on stdin, writes the
// envelope body (tag + ciphertext per block) for each.
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "aes_gcm.cuh"
#include "stdin_reader.h"

using namespace gk::aes;

int main() {
  const HostTable table{kHostTe0};
  const uint32_t cases = ReadU32();
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
    const U128 h = HashSubkey(k, table);
    const uint32_t count = uint32_t(plain.size() / block_size);
    std::vector<uint8_t> out(size_t(count) * (16 + block_size));
    // Any order: the blocks are independent, as the GPU threads are.
    for (uint32_t i = count; i-- > 0;) {
      SealControlBlock(k, table, h, header.data(), header.size(), prefix, first, i, aad.data(), aad.size(), plain.data() + size_t(i) * block_size,
                       block_size, out.data() + size_t(i) * (16 + block_size));
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
  }
  return 0;
}
