#include <cuda_runtime.h>

#include "device_query.h"
#include "hd.cuh"

namespace gk {
namespace {

std::string Describe(cudaError_t err) {
  return std::string(cudaGetErrorName(err)) + " (" + std::to_string(int(err)) + "): " + cudaGetErrorString(err);
}

__global__ void SelfTestKernel(uint32_t seed, uint32_t* out, size_t n) {
  size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = hd::Mix32(uint32_t(i) ^ seed);
}

}  // namespace

int CudaDeviceCount(std::string* error) {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky-free error so later calls start clean
    if (error) *error = Describe(err);
    return 0;
  }
  return count;
}

std::vector<DeviceInfo> CudaDevices(std::string* error) {
  std::vector<DeviceInfo> out;
  int count = CudaDeviceCount(error);
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop;
    cudaError_t err = cudaGetDeviceProperties(&prop, i);
    if (err != cudaSuccess) {
      if (error) *error = Describe(err);
      break;
    }
    out.push_back({i, prop.name, prop.major, prop.minor, uint64_t(prop.totalGlobalMem), prop.multiProcessorCount});
  }
  return out;
}

bool CudaSelfTest(int device, uint32_t seed, uint32_t* out, size_t n, std::string* error) {
  cudaError_t err = cudaSetDevice(device);
  uint32_t* d_out = nullptr;
  if (err == cudaSuccess) err = cudaMalloc(&d_out, n * sizeof(uint32_t));
  if (err == cudaSuccess) {
    unsigned threads = 256;
    unsigned blocks = unsigned((n + threads - 1) / threads);
    SelfTestKernel<<<blocks, threads>>>(seed, d_out, n);
    err = cudaGetLastError();
  }
  if (err == cudaSuccess) err = cudaMemcpy(out, d_out, n * sizeof(uint32_t), cudaMemcpyDeviceToHost);
  if (d_out) cudaFree(d_out);
  if (err != cudaSuccess) {
    if (error) *error = Describe(err);
    return false;
  }
  return true;
}

int CudaRuntimeVersion() {
  int v = 0;
  cudaRuntimeGetVersion(&v);
  return v;
}

}  // namespace gk
