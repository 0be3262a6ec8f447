// Shared by CUDA kernels and host code: GK_HD marks functions that compile
// for both, so the CPU test suite can build and check the exact device math.
#pragma once
#include <cstddef>
#include <cstdint>

#if defined(__CUDACC__)
#define GK_HD __host__ __device__ __forceinline__
#else
#define GK_HD inline
#endif

namespace gk {
namespace hd {

// Sixteen bytes as four little-endian words, 16-byte aligned: the device's
// uint4 (one 16-byte load or store), and the same layout on the host.
#if defined(__CUDACC__)
using Words4 = uint4;
#else
struct alignas(16) Words4 {
  uint32_t x, y, z, w;
};
#endif

GK_HD uint32_t LoadBe32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

GK_HD void StoreBe32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24);
  p[1] = uint8_t(v >> 16);
  p[2] = uint8_t(v >> 8);
  p[3] = uint8_t(v);
}

GK_HD uint32_t Rotl32(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

// Byte reversal: one PRMT on the device (result byte n = x's byte 3 - n).
GK_HD uint32_t Bswap32(uint32_t x) {
#if defined(__CUDA_ARCH__)
  return __byte_perm(x, 0, 0x0123);
#else
  return (x >> 24) | ((x >> 8) & 0xff00u) | ((x << 8) & 0xff0000u) | (x << 24);
#endif
}

// A fixed integer mix (the 32-bit finalizer of MurmurHash3). The self-test
// kernel writes Mix32(i ^ seed) for every index, and the host recomputes it
// with this same function: a launch that ran, on the right data, proves the
// toolchain and the driver end to end.
GK_HD uint32_t Mix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

}  // namespace hd
}  // namespace gk
