#include "device_buffers.h"

#include <cuda_runtime.h>

#include "cuda_ok.h"

namespace gk {
namespace devmem {

bool Alloc(size_t bytes, void** ptr, std::string* error) {
  cudaError_t err = cudaSetDevice(0);
  if (err == cudaSuccess) err = cudaMalloc(ptr, bytes == 0 ? 1 : bytes);
  if (err == cudaSuccess) err = cudaMemset(*ptr, 0, bytes == 0 ? 1 : bytes);
  return CudaOk(err, error);
}

bool WipeAndFree(void* ptr, size_t bytes, std::string* error) {
  cudaError_t err = cudaMemset(ptr, 0, bytes == 0 ? 1 : bytes);
  cudaError_t freed = cudaFree(ptr);
  return CudaOk(err != cudaSuccess ? err : freed, error);
}

bool CopyIn(void* dst, const void* src, size_t bytes, std::string* error) {
  return bytes == 0 || CudaOk(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), error);
}

bool CopyOut(void* dst, const void* src, size_t bytes, std::string* error) {
  return bytes == 0 || CudaOk(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), error);
}

bool CopyOnDevice(void* dst, const void* src, size_t bytes, std::string* error) {
  return bytes == 0 || CudaOk(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice), error);
}

}  // namespace devmem
}  // namespace gk
