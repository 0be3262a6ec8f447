// The one way the CUDA sources turn a cudaError_t into the `*error` text
// their plain C++ interfaces return ("cudaErrorX: description").
#pragma once
#include <cuda_runtime.h>

#include <string>

namespace gk {

inline bool CudaOk(cudaError_t err, std::string* error) {
  if (err == cudaSuccess) return true;
  *error = std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
  return false;
}

}  // namespace gk
