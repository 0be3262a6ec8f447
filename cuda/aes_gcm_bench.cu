#include "aes_gcm_bench.h"

#include <cuda_runtime.h>

#include <random>

#include "aes_gcm_kernels.h"
#include "cuda_ok.h"
#include "device_bytes.h"

namespace gk {
namespace aes {
namespace {


// Device memory of n bytes, random when `fill`.
bool AllocRandom(DeviceBytes* d, size_t n, bool fill, std::string* error) {
  if (!CudaOk(d->Alloc(n), error)) return false;
  if (!fill || n == 0) return true;
  std::vector<uint8_t> host(n);
  std::mt19937_64 rng(n);
  for (size_t i = 0; i < n; ++i) host[i] = uint8_t(rng());
  return CudaOk(cudaMemcpy(d->get(), host.data(), n, cudaMemcpyHostToDevice), error);
}

// Times fn() between two events on the default stream.
template <typename Fn>
bool TimeOnDevice(Fn fn, double* ms, std::string* error) {
  cudaEvent_t start = nullptr;
  cudaEvent_t stop = nullptr;
  bool ok = CudaOk(cudaEventCreate(&start), error) && CudaOk(cudaEventCreate(&stop), error) && CudaOk(cudaEventRecord(start), error) && fn() &&
            CudaOk(cudaEventRecord(stop), error) && CudaOk(cudaEventSynchronize(stop), error);
  float elapsed = 0;
  if (ok) ok = CudaOk(cudaEventElapsedTime(&elapsed, start, stop), error);
  if (start != nullptr) cudaEventDestroy(start);
  if (stop != nullptr) cudaEventDestroy(stop);
  *ms = elapsed;
  return ok;
}

}  // namespace

bool CudaGcmBench(int key_bytes, size_t len, int reps, GcmBenchRuns* runs, std::string* error) {
  if (!CudaOk(cudaSetDevice(0), error)) return false;
  DeviceBytes data;
  if (!AllocRandom(&data, len, true, error)) return false;
  uint8_t key[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
  uint8_t iv[12] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2};
  uint8_t tag[16];
  for (int r = -1; r < reps; ++r) {
    GcmStageTimes stages;
    double whole = 0;
    auto seal = [&] { return CudaGcmSealOnDevice(key, key_bytes, iv, nullptr, 0, data.get(), len, data.get(), tag, error, &stages); };
    if (!TimeOnDevice(seal, &whole, error)) return false;
    if (r < 0) continue;  // warm-up: module load, first allocations
    runs->whole_ms.push_back(whole);
    runs->ctr_ms.push_back(stages.ctr_ms);
    runs->ghash_ms.push_back(stages.ghash_ms);
  }
  return true;
}

bool CudaSealBlocksBench(size_t block_size, uint32_t count, int reps, BlocksBenchRuns* runs, std::string* error) {
  if (!CudaOk(cudaSetDevice(0), error)) return false;
  DeviceBytes in;
  DeviceBytes out;
  if (!AllocRandom(&in, block_size * count, true, error) || !AllocRandom(&out, (16 + block_size) * count, false, error)) return false;
  uint8_t key[32] = {32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1};
  // An envelope header's shape (29 bytes) and a 4-byte nonce prefix.
  uint8_t header[29] = {0x47, 0x4b, 0x42, 0x31, 1};
  uint8_t prefix[4] = {1, 2, 3, 4};
  for (int r = -1; r < reps; ++r) {
    double whole = 0;
    auto seal = [&] {
      return CudaSealBlocksOnDevice(key, 32, header, sizeof header, prefix, uint64_t(r + 1) * count, nullptr, 0, in.get(), block_size, count, out.get(),
                                    error);
    };
    if (!TimeOnDevice(seal, &whole, error)) return false;
    if (r >= 0) runs->whole_ms.push_back(whole);
  }
  return true;
}

}  // namespace aes
}  // namespace gk
