#include "sandbox_kernels.h"

#include <cuda_runtime.h>

#include <chrono>
#include <exception>

#include "sandbox_parallel.cuh"

namespace gk {
namespace sandbox {

namespace {

double MsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

bool Sync(std::string* error) {
  cudaError_t status = cudaDeviceSynchronize();
  if (status != cudaSuccess) {
    *error = cudaGetErrorString(status);
    return false;
  }
  return true;
}

}  // namespace

bool CudaCheckMessages(const StateView& state, const BatchView& batch, double now_ms, uint8_t* verdicts, double* counts, double* timings_ms,
                       std::string* error) {
  try {
    const auto start = std::chrono::steady_clock::now();
    ParallelCheck check(state, batch);
    if (!Sync(error)) return false;
    const auto compute_start = std::chrono::steady_clock::now();
    check.Run(now_ms);
    if (!Sync(error)) return false;
    const double compute_ms = MsSince(compute_start);
    check.Download(verdicts, counts);
    if (timings_ms != nullptr) {
      timings_ms[0] = MsSince(start);
      timings_ms[1] = compute_ms;
    }
    return true;
  } catch (const std::exception& e) {
    // Thrust reports CUDA failures (no device, out of memory) as exceptions.
    *error = e.what();
    return false;
  }
}

}  // namespace sandbox
}  // namespace gk
