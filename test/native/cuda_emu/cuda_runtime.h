// A CUDA runtime for the CPU, for tests only: with this directory first on
// the include path, g++ builds the addon's .cu files (their `<<<...>>>`
// launches rewritten to gk_emu::Launch by test/cuda-emulator.ts) into a
// guardkernel_cuda.node that runs its kernels on the host. It is strict
// where a GPU is lenient, so launch and host/device mix-ups surface here:
// - every thread of a block is a fiber; __syncthreads() waits for all of
//   them and __shfl_xor_sync() for the whole warp; a thread that exits while
//   others wait at either is reported, as is a barrier no one can pass;
// - blocks run one after another, their threads in a shuffled order, each
//   on shared memory filled with garbage;
// - device memory is separate allocations: a kernel pointer argument or a
//   cudaMemcpy/cudaMemset range outside them is an error, not a quiet copy;
// - launch configurations are checked as the driver checks them.
// What it cannot see: races inside one barrier interval beyond what the
// shuffled order exposes, host code dereferencing a device pointer, and
// speed. With GK_EMU_REPORT=<file>, each cudaMalloc/cudaFree appends a line
// (see emu_runtime.cc) so tests can check what device memory held when freed.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __constant__
// One block runs at a time (launches hold a lock), so a function's static
// is that block's shared memory. All of them share one section, which the
// scheduler fills with fresh garbage before each block: a kernel that reads
// shared memory before writing it gets noise, as on a GPU, not the values
// the previous block left (nor zeros in the first).
#define __shared__ static __attribute__((section("gk_emu_shared")))

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

struct alignas(16) uint4 {
  unsigned x, y, z, w;
};
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return uint4{x, y, z, w}; }

// The running fiber's coordinates (set by the scheduler before each resume).
extern dim3 threadIdx;
extern dim3 blockIdx;
extern dim3 blockDim;
extern dim3 gridDim;

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorInvalidResourceHandle = 400,
};

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  int major;
  int minor;
  int multiProcessorCount;
};

struct CUevent_st;
using cudaEvent_t = CUevent_st*;
using cudaStream_t = void*;

// C linkage, as in the real runtime: a file built against the real headers
// (sandbox_kernels.cu, for Thrust's CPP system) links to these too.
extern "C" {
const char* cudaGetErrorName(cudaError_t err);
const char* cudaGetErrorString(cudaError_t err);
cudaError_t cudaGetLastError();
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaRuntimeGetVersion(int* version);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaMalloc(void** ptr, size_t size);
cudaError_t cudaFree(void* ptr);
cudaError_t cudaMemset(void* ptr, int value, size_t count);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t count, cudaMemcpyKind kind);
cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);
}

template <typename T>
cudaError_t cudaMalloc(T** ptr, size_t size) {
  return cudaMalloc(reinterpret_cast<void**>(ptr), size);
}

void __syncthreads();
unsigned long long __shfl_xor_bits(unsigned mask, unsigned long long bits, int lane_mask);
template <typename T>
T __shfl_xor_sync(unsigned mask, T value, int lane_mask) {
  static_assert(std::is_trivially_copyable<T>::value && sizeof(T) <= 8, "shuffles move 4 or 8 bytes");
  unsigned long long bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  bits = __shfl_xor_bits(mask, bits, lane_mask);
  std::memcpy(&value, &bits, sizeof(T));
  return value;
}

namespace gk_emu {

struct LaunchConfig {
  dim3 grid, block;
  LaunchConfig(dim3 g, dim3 b, size_t dynamic_shared = 0, cudaStream_t stream = nullptr) : grid(g), block(b) {
    (void)stream;
    if (dynamic_shared != 0) grid.x = 0;  // not emulated: reported as a bad launch
  }
};

// Whether p lies inside a live device allocation (or is null).
bool IsDevicePointer(const void* p);
// Runs body once per thread of the grid; false (and the sticky error set,
// as the driver does) when the configuration is invalid.
bool RunGrid(const LaunchConfig& config, const std::function<void()>& body);
void SetLaunchError(cudaError_t err, const char* why);

template <typename T>
bool ArgOnDevice(const T& arg) {
  if constexpr (std::is_pointer<T>::value) {
    return IsDevicePointer(reinterpret_cast<const void*>(arg));
  } else {
    return true;
  }
}

// kernel<<<config>>>(args...): the arguments are copied once, as the driver
// copies them; every thread calls the kernel with its own copy of those.
template <typename... P, typename... A>
void Launch(const LaunchConfig& config, void (*kernel)(P...), A&&... args) {
  const std::tuple<std::decay_t<P>...> params(std::forward<A>(args)...);
  const bool on_device = std::apply([](const auto&... p) { return (ArgOnDevice(p) && ...); }, params);
  if (!on_device) {
    SetLaunchError(cudaErrorInvalidDevicePointer, "a kernel's pointer argument is not device memory");
    return;
  }
  RunGrid(config, [&] {
    std::tuple<std::decay_t<P>...> mine = params;
    std::apply(kernel, mine);
  });
}

}  // namespace gk_emu
