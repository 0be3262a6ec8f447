// The K2K sandbox check on the GPU: cuda/sandbox_parallel.cuh built by nvcc.
// Plain C++ declarations so cuda/addon.cc needs no CUDA headers.
#pragma once
#include <string>

#include "sandbox_rules.cuh"

namespace gk {
namespace sandbox {

// Copies the state and the batch to the current device, checks the batch,
// copies verdicts and the updated state back. timings_ms (may be null) gets
// [whole call including transfers, device work alone]. On failure returns
// false with *error set and leaves the state untouched.
bool CudaCheckMessages(const StateView& state, const BatchView& batch, double now_ms, uint8_t* verdicts, double* counts, double* timings_ms,
                       std::string* error);

}  // namespace sandbox
}  // namespace gk
