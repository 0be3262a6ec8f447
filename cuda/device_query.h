// Host-side view of CUDA devices, free of CUDA headers so the N-API glue can
// be compiled by the host compiler alone.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace gk {

struct DeviceInfo {
  int index;
  std::string name;
  int major;
  int minor;
  uint64_t total_memory;
  int multiprocessors;
};

// Number of devices; any CUDA error (35 when no driver is installed) is zero
// devices with the error's text in `error`.
int CudaDeviceCount(std::string* error);
// Properties of each device; an error leaves the list short and sets `error`.
std::vector<DeviceInfo> CudaDevices(std::string* error);
// Runs the self-test kernel on `device` over `n` words; false and `error` on failure.
bool CudaSelfTest(int device, uint32_t seed, uint32_t* out, size_t n, std::string* error);
// CUDA runtime version the addon was built with (e.g. 13000).
int CudaRuntimeVersion();

}  // namespace gk
