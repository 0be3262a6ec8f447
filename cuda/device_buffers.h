// Device memory for DeviceBuffer (plain C++ declarations; cuda/device_buffers.cu
// holds the CUDA calls). Every function returns false with *error set on a
// CUDA failure.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace gk {
namespace devmem {

bool Alloc(size_t bytes, void** ptr, std::string* error);
// Zeroes, then frees.
bool WipeAndFree(void* ptr, size_t bytes, std::string* error);
bool CopyIn(void* dst, const void* src, size_t bytes, std::string* error);
bool CopyOut(void* dst, const void* src, size_t bytes, std::string* error);
bool CopyOnDevice(void* dst, const void* src, size_t bytes, std::string* error);

}  // namespace devmem

}  // namespace gk
