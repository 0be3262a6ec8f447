// Device-side timings for `npm run bench:gpu` (cuda/aes_gcm_bench.cu): the
// data is already on the GPU and every figure comes from CUDA events, so
// they say what the kernels reach without the PCIe copies. Plain C++
// declarations; false with *error set on a CUDA failure.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace gk {
namespace aes {

struct GcmBenchRuns {
  std::vector<double> whole_ms;  // one CudaGcmSealOnDevice each (host setup and the tag's copy back included)
  std::vector<double> ctr_ms;    // its CTR kernel
  std::vector<double> ghash_ms;  // its GHASH kernels and the sum's copy back
};

// Seals `len` random bytes in place on device 0, `reps` times after one warm-up.
bool CudaGcmBench(int key_bytes, size_t len, int reps, GcmBenchRuns* runs, std::string* error);

struct BlocksBenchRuns {
  std::vector<double> whole_ms;  // one CudaSealBlocksOnDevice each (the host's per-launch constants included)
};

// Seals `count` blocks of `block_size` random bytes, device to device, AES-256-GCM.
bool CudaSealBlocksBench(size_t block_size, uint32_t count, int reps, BlocksBenchRuns* runs, std::string* error);

}  // namespace aes
}  // namespace gk
