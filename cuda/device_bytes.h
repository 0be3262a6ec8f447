// Scratch device memory for one call (the AES-GCM kernels' copies, the
// bench's buffers), freed on every path. WipeOnFree() zeroes it first, for
// memory that held plaintext or GHASH partial sums (which depend on H).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace gk {

class DeviceBytes {
 public:
  DeviceBytes() = default;
  DeviceBytes(const DeviceBytes&) = delete;
  DeviceBytes& operator=(const DeviceBytes&) = delete;
  ~DeviceBytes() {
    if (ptr_ == nullptr) return;
    if (wipe_) cudaMemset(ptr_, 0, size_);
    cudaFree(ptr_);
  }
  cudaError_t Alloc(size_t n) {
    size_ = n == 0 ? 1 : n;
    return cudaMalloc(&ptr_, size_);
  }
  void WipeOnFree() { wipe_ = true; }
  uint8_t* get() const { return static_cast<uint8_t*>(ptr_); }

 private:
  void* ptr_ = nullptr;
  size_t size_ = 0;
  bool wipe_ = false;
};

}  // namespace gk
