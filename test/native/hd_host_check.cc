// Compiled by the host compiler (no nvcc) to prove cuda/*.cuh device math
// builds and runs on the CPU; prints values the vitest suite checks.
#include <cstdio>

#include "hd.cuh"

int main() {
  uint8_t buf[4];
  gk::hd::StoreBe32(buf, 0x01020304u);
  std::printf("be %u %u %u %u %u\n", buf[0], buf[1], buf[2], buf[3], gk::hd::LoadBe32(buf));
  std::printf("rotl %u\n", gk::hd::Rotl32(0x80000001u, 1));
  for (uint32_t i = 0; i < 5; ++i) std::printf("mix %u %u\n", i, gk::hd::Mix32(i ^ 0x9e3779b9u));
  return 0;
}
