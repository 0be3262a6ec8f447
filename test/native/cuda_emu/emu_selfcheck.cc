// Holds the CPU emulator itself to account (test/cuda-emulated.test.ts): its
// barriers and shuffles compute what a GPU computes, and it refuses what a
// GPU refuses. Written as CUDA (launches rewritten like the addon's).
// Usage: emu_selfcheck ok | refusals | stale-shared | divergent-barrier |
//   half-warp-shuffle
#include <cuda_runtime.h>

#include <cstdio>
#include <string>
#include <vector>

namespace {

// Each block reverses its slice through shared memory: right only if every
// thread's store lands before any thread's load (the barrier).
__global__ void ReverseKernel(const unsigned* in, unsigned* out) {
  __shared__ unsigned slice[256];
  const unsigned base = blockIdx.x * blockDim.x;
  slice[threadIdx.x] = in[base + threadIdx.x];
  __syncthreads();
  out[base + threadIdx.x] = slice[blockDim.x - 1 - threadIdx.x];
}

// Every lane ends with its warp's sum (a butterfly of 64-bit shuffles).
__global__ void WarpSumKernel(const unsigned* in, unsigned long long* out) {
  const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
  unsigned long long v = in[i];
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  out[i] = v;
}

__global__ void TouchKernel(unsigned* out) { out[threadIdx.x] = threadIdx.x + 1; }

// Reads its shared slice before writing it (a bug on a GPU), then marks it
// with its block's number: what a block reads must be noise.
__global__ void StaleSharedKernel(unsigned* seen) {
  __shared__ unsigned slice[256];
  seen[blockIdx.x * blockDim.x + threadIdx.x] = slice[threadIdx.x];
  slice[threadIdx.x] = 0xb10c0000u + blockIdx.x;
}

__global__ void DivergentBarrierKernel(unsigned* out) {
  if (threadIdx.x % 2 == 1) return;
  __syncthreads();
  out[threadIdx.x] = 1;
}

__global__ void HalfWarpShuffleKernel(unsigned* out) {
  if (threadIdx.x < 16) out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, threadIdx.x, 1);
}

int Ok() {
  const unsigned blocks = 5;
  const unsigned threads = 256;
  const unsigned n = blocks * threads;
  std::vector<unsigned> in(n);
  for (unsigned i = 0; i < n; ++i) in[i] = i * 2654435761u;
  unsigned* d_in = nullptr;
  unsigned* d_out = nullptr;
  unsigned long long* d_sum = nullptr;
  if (cudaMalloc(&d_in, n * 4) != cudaSuccess || cudaMalloc(&d_out, n * 4) != cudaSuccess || cudaMalloc(&d_sum, n * 8) != cudaSuccess) return 2;
  cudaMemcpy(d_in, in.data(), n * 4, cudaMemcpyHostToDevice);
  ReverseKernel<<<blocks, threads>>>(d_in, d_out);
  WarpSumKernel<<<blocks, threads>>>(d_in, d_sum);
  if (cudaGetLastError() != cudaSuccess) return 3;
  std::vector<unsigned> out(n);
  std::vector<unsigned long long> sum(n);
  cudaMemcpy(out.data(), d_out, n * 4, cudaMemcpyDeviceToHost);
  cudaMemcpy(sum.data(), d_sum, n * 8, cudaMemcpyDeviceToHost);
  int wrong = 0;
  for (unsigned i = 0; i < n; ++i) {
    const unsigned b = i / threads;
    if (out[i] != in[b * threads + threads - 1 - i % threads]) ++wrong;
    unsigned long long expected = 0;
    for (unsigned j = i / 32 * 32; j < i / 32 * 32 + 32; ++j) expected += in[j];
    if (sum[i] != expected) ++wrong;
  }
  cudaFree(d_in);
  cudaFree(d_out);
  cudaFree(d_sum);
  std::printf("wrong %d\n", wrong);
  return wrong == 0 ? 0 : 1;
}

void Say(const char* what, cudaError_t err) { std::printf("%s %s\n", what, cudaGetErrorName(err)); }

int Refusals() {
  unsigned* d = nullptr;
  cudaMalloc(&d, 32 * 4);
  std::vector<unsigned> host(33, 0);
  TouchKernel<<<1, 32>>>(host.data());
  Say("host-pointer-argument", cudaGetLastError());
  std::printf("host-memory-untouched %d\n", host[0] == 0 && host[31] == 0 ? 1 : 0);
  TouchKernel<<<1, 2048>>>(d);
  Say("block-of-2048", cudaGetLastError());
  TouchKernel<<<0, 32>>>(d);
  Say("grid-of-0", cudaGetLastError());
  TouchKernel<<<1, 32>>>(d);
  Say("valid-launch", cudaGetLastError());
  Say("memcpy-wrong-direction", cudaMemcpy(d, host.data(), 32 * 4, cudaMemcpyDeviceToHost));
  Say("memcpy-past-the-end", cudaMemcpy(d, host.data(), 33 * 4, cudaMemcpyHostToDevice));
  Say("memcpy-in-range", cudaMemcpy(host.data(), d, 32 * 4, cudaMemcpyDeviceToHost));
  std::printf("kernel-wrote %d\n", host[0] == 1 && host[31] == 32 ? 1 : 0);
  Say("memset-past-the-end", cudaMemset(d + 1, 0, 32 * 4));
  Say("free", cudaFree(d));
  Say("double-free", cudaFree(d));
  return 0;
}

// Counts reads of unwritten shared memory that were zero, the previous
// block's marker, or the same as the previous block's read.
int StaleShared() {
  const unsigned blocks = 8;
  const unsigned threads = 256;
  unsigned* d = nullptr;
  if (cudaMalloc(&d, blocks * threads * 4) != cudaSuccess) return 2;
  StaleSharedKernel<<<blocks, threads>>>(d);
  StaleSharedKernel<<<blocks, threads>>>(d);  // a second launch reads noise too
  std::vector<unsigned> seen(blocks * threads);
  if (cudaMemcpy(seen.data(), d, seen.size() * 4, cudaMemcpyDeviceToHost) != cudaSuccess) return 3;
  cudaFree(d);
  int zeros = 0, stale = 0, repeated = 0;
  for (unsigned b = 0; b < blocks; ++b) {
    for (unsigned t = 0; t < threads; ++t) {
      const unsigned v = seen[b * threads + t];
      zeros += v == 0;
      stale += v == 0xb10c0000u + (b == 0 ? blocks - 1 : b - 1);
      repeated += b > 0 && v == seen[(b - 1) * threads + t];
    }
  }
  std::printf("zeros %d stale %d repeated %d\n", zeros, stale, repeated);
  return 0;
}

int Aborting(bool barrier) {
  unsigned* d = nullptr;
  cudaMalloc(&d, 64 * 4);
  if (barrier) {
    DivergentBarrierKernel<<<1, 64>>>(d);
  } else {
    HalfWarpShuffleKernel<<<1, 32>>>(d);
  }
  std::printf("returned\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "ok") return Ok();
  if (mode == "refusals") return Refusals();
  if (mode == "stale-shared") return StaleShared();
  if (mode == "divergent-barrier") return Aborting(true);
  if (mode == "half-warp-shuffle") return Aborting(false);
  std::fprintf(stderr, "usage: emu_selfcheck ok | refusals | stale-shared | divergent-barrier | half-warp-shuffle\n");
  return 2;
}
