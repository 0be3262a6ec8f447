// AES-GCM kernels. The math is cuda/aes_gcm.cuh and cuda/ghash_table.cuh,
// the split of the work cuda/gcm_parallel.cuh (all also built and tested on
// the host); this file holds the launches:
// - CTR: a thread per 16-byte block.
// - GHASH of one message: a thread per chunk of kChunkBlocks blocks (table
//   multiplications), a tree per block of threads, one XOR over the blocks.
// - Control blocks: 1 to 32 lanes per block by its size, summed by shuffles.
// The key schedule, H, its table and the powers of H are computed on the
// host (a few microseconds) and passed by value.
#include "aes_gcm_kernels.h"

#include <cuda_runtime.h>

#include <vector>

#include "cuda_ok.h"
#include "device_bytes.h"
#include "gcm_parallel.cuh"

namespace gk {
namespace aes {
namespace {

__constant__ uint32_t c_te0[256] = {GK_AES_TE0_VALUES};

constexpr unsigned kThreads = 256;
constexpr unsigned kLog2Threads = 8;
static_assert(1u << kLog2Threads == kThreads, "kLog2Threads");
// Blocks of ciphertext each GHASH thread folds before the tree sums them:
// 32 table multiplications against one bitwise one in the tree.
constexpr uint32_t kChunkBlocks = 32;

// Every block of threads copies Te0 into shared memory, once per bank.
__device__ LaneTable LoadLaneTable(uint32_t* shared) {
  for (unsigned i = threadIdx.x; i < 256 * 32; i += blockDim.x) shared[i] = c_te0[i / 32];
  __syncthreads();
  return LaneTable{shared, threadIdx.x & 31};
}

// The same for the key's GHASH table (one replica per lane).
__device__ LaneGhashTable LoadLaneGhashTable(const GhashKeyTable& t, uint64_t* m64, uint32_t* r32) {
  for (unsigned i = threadIdx.x; i < kGhashLaneWords64; i += blockDim.x) m64[i] = LaneGhashWord64(t, i);
  for (unsigned i = threadIdx.x; i < kGhashLaneWords32; i += blockDim.x) r32[i] = LaneGhashWord32(i);
  __syncthreads();
  return LaneGhashTable{m64, r32, threadIdx.x & 31};
}

// Whole blocks of 16-byte aligned data move with one 16-byte load and
// store (the shared-memory pipe that the T-table lookups saturate also
// carries every global load and store instruction); the rest byte by byte.
__global__ void CtrKernel(Key k, Iv iv, const uint8_t* in, uint8_t* out, size_t len) {
  __shared__ uint32_t table[256 * 32];
  const LaneTable t = LoadLaneTable(table);
  const uint64_t blocks = (len + 15) / 16;
  const bool aligned = ((reinterpret_cast<uintptr_t>(in) | reinterpret_cast<uintptr_t>(out)) & 15) == 0;
  for (uint64_t b = blockIdx.x * uint64_t(blockDim.x) + threadIdx.x; b < blocks; b += uint64_t(gridDim.x) * blockDim.x) {
    const size_t n = len - b * 16 < 16 ? len - b * 16 : 16;
    if (aligned && n == 16) {
      const uint4 v = reinterpret_cast<const uint4*>(in)[b];
      const uint32_t words[4] = {v.x, v.y, v.z, v.w};
      uint32_t sealed[4];
      CtrWordsLe(k, t, iv.bytes, b, words, sealed);
      reinterpret_cast<uint4*>(out)[b] = make_uint4(sealed[0], sealed[1], sealed[2], sealed[3]);
    } else {
      CtrBlock(k, t, iv.bytes, b, in + b * 16, out + b * 16, n);
    }
  }
}

// partial[blockIdx.x] = sum over this block's chunks j of y_j·G^j. One
// thread per chunk (no grid stride: the tree needs the block's threads).
__global__ void GhashTreeKernel(GhashKeyTable gt, ChunkPowers powers, const uint8_t* text, size_t len, uint64_t chunks, U128* partial) {
  __shared__ uint64_t m64[kGhashLaneWords64];
  __shared__ uint32_t r32[kGhashLaneWords32];
  __shared__ U128 slots[kThreads];
  const LaneGhashTable g = LoadLaneGhashTable(gt, m64, r32);
  const uint64_t j = blockIdx.x * uint64_t(kThreads) + threadIdx.x;
  const bool aligned = (reinterpret_cast<uintptr_t>(text) & 15) == 0;
  slots[threadIdx.x] = j < chunks ? GhashChunkFromEnd(g, text, len, j, kChunkBlocks, aligned) : U128{0, 0};
  __syncthreads();
  for (uint32_t level = 0; level < kLog2Threads; ++level) {
    if (threadIdx.x % (2u << level) == 0) ChunkTreeLevel(slots, threadIdx.x, level, powers);
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[blockIdx.x] = PlaceBlockSum(slots[0], blockIdx.x, kLog2Threads, powers);
}

// XOR of n values, one block of threads.
__global__ void XorReduceKernel(const U128* values, uint64_t n, U128* out) {
  __shared__ U128 acc[1024];
  U128 x{0, 0};
  for (uint64_t i = threadIdx.x; i < n; i += blockDim.x) x = Xor(x, values[i]);
  acc[threadIdx.x] = x;
  __syncthreads();
  for (unsigned stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) acc[threadIdx.x] = Xor(acc[threadIdx.x], acc[threadIdx.x + stride]);
    __syncthreads();
  }
  if (threadIdx.x == 0) *out = acc[0];
}

struct BlockJob {
  Key k;
  GhashKeyTable gt;
  ControlBlockConstants consts;
  uint8_t prefix[4];
  uint64_t first;
  size_t block_size;
  uint32_t count;
  uint32_t lanes;  // per control block: LanesPerBlock(block_size)
};

// Shared state of the control-block kernels: both tables and the
// per-launch constants (lanes index them by lane: shared, not the
// parameter bank, which would serialize that).
struct BlockShared {
  uint32_t te0[256 * 32];
  uint64_t m64[kGhashLaneWords64];
  uint32_t r32[kGhashLaneWords32];
  ControlBlockConstants consts;
};

// Fills the block's shared state (constants, both tables; one barrier)
// and returns the GHASH table's accessor; the AES table's is {te0, lane}.
__device__ LaneGhashTable LoadBlockShared(const BlockJob& job, BlockShared* sh) {
  const uint32_t* src = reinterpret_cast<const uint32_t*>(&job.consts);
  uint32_t* dst = reinterpret_cast<uint32_t*>(&sh->consts);
  for (unsigned i = threadIdx.x; i < sizeof(ControlBlockConstants) / 4; i += blockDim.x) dst[i] = src[i];
  for (unsigned i = threadIdx.x; i < 256 * 32; i += blockDim.x) sh->te0[i] = c_te0[i / 32];
  return LoadLaneGhashTable(job.gt, sh->m64, sh->r32);  // its barrier covers the stores above too
}

// This thread's warp, and how many warps the grid has.
__device__ uint64_t WarpIndex() { return (blockIdx.x * uint64_t(blockDim.x) + threadIdx.x) / 32; }
__device__ uint64_t WarpCount() { return uint64_t(gridDim.x) * blockDim.x / 32; }

// XOR over each aligned group of `lanes` lanes (a power of two): every lane
// gets its group's sum.
__device__ U128 GroupXor(U128 v, uint32_t lanes) {
  for (uint32_t offset = lanes / 2; offset > 0; offset /= 2) {
    v.hi ^= __shfl_xor_sync(0xffffffffu, v.hi, offset);
    v.lo ^= __shfl_xor_sync(0xffffffffu, v.lo, offset);
  }
  return v;
}

// Each group of job.lanes lanes seals or opens one control block
// (cuda/gcm_parallel.cuh). Sealing, `out` gets tag + ciphertext per block;
// opening, `in` holds those, `out` gets the plaintext and ok[i] is 1 when
// block i's tag matches (compared without early exit). The loop is the
// same for the whole warp (the shuffles need every lane); a group past the
// end computes nothing.
template <Direction kDir>
__global__ void BlocksKernel(BlockJob job, const uint8_t* in, uint8_t* out, uint8_t* ok) {
  __shared__ BlockShared sh;
  const LaneGhashTable g = LoadBlockShared(job, &sh);
  const LaneTable t{sh.te0, threadIdx.x & 31};
  const uint32_t sub = (threadIdx.x & 31) % job.lanes;
  const uint32_t per_warp = 32 / job.lanes;
  const size_t sealed_size = 16 + job.block_size;
  for (uint64_t first = WarpIndex() * per_warp; first < job.count; first += WarpCount() * per_warp) {
    const uint64_t i = first + (threadIdx.x & 31) / job.lanes;
    const bool active = i < job.count;
    uint8_t iv[12];
    ControlBlockIv(job.prefix, job.first, uint32_t(i), iv);
    const bool seal = kDir == Direction::kSeal;
    const uint8_t* from = seal ? in + i * job.block_size : in + i * sealed_size + 16;
    uint8_t* to = seal ? out + i * sealed_size + 16 : out + i * job.block_size;
    U128 y{0, 0};
    if (active) y = ControlBlockLane<kDir>(job.k, t, g, sh.consts, iv, uint32_t(i), from, job.block_size, to, sub);
    const U128 sum = GroupXor(y, job.lanes);
    if (!active || sub != 0) continue;
    // The tag sits in the 16 bytes before the block's ciphertext.
    if (seal) {
      ControlBlockTag(job.k, t, g, sh.consts, iv, sum, to - 16);
    } else {
      uint8_t tag[16];
      ControlBlockTag(job.k, t, g, sh.consts, iv, sum, tag);
      uint8_t diff = 0;
      for (int b = 0; b < 16; ++b) diff |= uint8_t(tag[b] ^ from[b - 16]);
      ok[i] = diff == 0 ? 1 : 0;
    }
  }
}

// Blocks of threads in one CTR or control-block launch at most; past that
// the kernels loop (grid stride). The CPU emulator's tests lower it so that
// loop runs at sizes an emulator can afford.
#ifndef GK_CUDA_MAX_GRID
#define GK_CUDA_MAX_GRID 65535
#endif

unsigned GridFor(uint64_t threads) {
  const uint64_t blocks = (threads + kThreads - 1) / kThreads;
  return unsigned(blocks == 0 ? 1 : blocks < GK_CUDA_MAX_GRID ? blocks : GK_CUDA_MAX_GRID);
}

struct Prepared {
  Key k;
  U128 h;
  GhashKeyTable gt;
};

Prepared Prepare(const uint8_t* key, int key_bytes) {
  Prepared p;
  ExpandKey(key, key_bytes, kHostSbox, &p.k);
  p.h = HashSubkey(p.k, HostTable{kHostTe0});
  BuildGhashTable(p.h, &p.gt);
  return p;
}

// Events around the stages of one seal, when a caller times them.
struct StageEvents {
  cudaEvent_t start = nullptr, ctr_done = nullptr, ghash_done = nullptr;
  explicit StageEvents(bool on) {
    if (!on) return;
    cudaEventCreate(&start);
    cudaEventCreate(&ctr_done);
    cudaEventCreate(&ghash_done);
  }
  ~StageEvents() {
    if (start != nullptr) cudaEventDestroy(start);
    if (ctr_done != nullptr) cudaEventDestroy(ctr_done);
    if (ghash_done != nullptr) cudaEventDestroy(ghash_done);
  }
  void Record(cudaEvent_t e) {
    if (e != nullptr) cudaEventRecord(e);
  }
};

// GHASH of aad and the `len` bytes at d_text (device), the length block
// included, before the final E(K, J0).
bool DeviceGhash(const Prepared& p, const uint8_t* aad, size_t aad_len, const uint8_t* d_text, size_t len, U128* s, std::string* error) {
  const HostGhashTable host_g{&p.gt};
  const uint64_t m = BlockCount(len);
  U128 acc{0, 0};
  if (aad_len > 0) acc = GfMul(GhashBytesT(host_g, U128{0, 0}, aad, aad_len), GfPow(p.h, m));
  if (m > 0) {
    const uint64_t chunks = ChunkCount(m, kChunkBlocks);
    const uint64_t blocks = (chunks + kThreads - 1) / kThreads;
    ChunkPowers powers{};
    BuildChunkPowers(p.h, kChunkBlocks, chunks, &powers);
    // The blocks' sums, then their XOR in the last slot.
    DeviceBytes scratch;
    scratch.WipeOnFree();
    cudaError_t err = scratch.Alloc((blocks + 1) * sizeof(U128));
    U128* partial = reinterpret_cast<U128*>(scratch.get());
    if (err == cudaSuccess) {
      GhashTreeKernel<<<unsigned(blocks), kThreads>>>(p.gt, powers, d_text, len, chunks, partial);
      XorReduceKernel<<<1, 1024>>>(partial, blocks, partial + blocks);
      err = cudaGetLastError();
    }
    U128 text_part{0, 0};
    if (err == cudaSuccess) err = cudaMemcpy(&text_part, partial + blocks, sizeof(U128), cudaMemcpyDeviceToHost);
    if (!CudaOk(err, error)) return false;
    acc = Xor(acc, text_part);
  }
  *s = GhashMulH(host_g, Xor(acc, LengthBlock(aad_len, len)));
  return true;
}

}  // namespace

bool CudaGcmSealOnDevice(const uint8_t* key, int key_bytes, const uint8_t iv[12], const uint8_t* aad, size_t aad_len, const uint8_t* d_in,
                         size_t len, uint8_t* d_out, uint8_t tag[16], std::string* error, GcmStageTimes* times) {
  const Prepared p = Prepare(key, key_bytes);
  Iv v;
  for (int i = 0; i < 12; ++i) v.bytes[i] = iv[i];
  cudaError_t err = cudaSetDevice(0);
  if (!CudaOk(err, error)) return false;
  StageEvents events(times != nullptr);
  events.Record(events.start);
  if (len > 0) {
    CtrKernel<<<GridFor(BlockCount(len)), kThreads>>>(p.k, v, d_in, d_out, len);
    err = cudaGetLastError();
  }
  if (!CudaOk(err, error)) return false;
  events.Record(events.ctr_done);
  U128 s;
  if (!DeviceGhash(p, aad, aad_len, d_out, len, &s, error)) return false;
  events.Record(events.ghash_done);
  FinishTag(p.k, HostTable{kHostTe0}, iv, s, tag);
  if (times != nullptr) {
    float ctr = 0;
    float ghash = 0;
    err = cudaEventSynchronize(events.ghash_done);
    if (err == cudaSuccess) err = cudaEventElapsedTime(&ctr, events.start, events.ctr_done);
    if (err == cudaSuccess) err = cudaEventElapsedTime(&ghash, events.ctr_done, events.ghash_done);
    if (!CudaOk(err, error)) return false;
    times->ctr_ms = ctr;
    times->ghash_ms = ghash;
  }
  return true;
}

bool CudaGcmOpenOnDevice(const uint8_t* key, int key_bytes, const uint8_t iv[12], const uint8_t* aad, size_t aad_len, const uint8_t* d_in,
                         size_t len, const uint8_t tag[16], uint8_t* d_out, bool* authentic, std::string* error) {
  const Prepared p = Prepare(key, key_bytes);
  *authentic = false;
  if (!CudaOk(cudaSetDevice(0), error)) return false;
  U128 s;
  if (!DeviceGhash(p, aad, aad_len, d_in, len, &s, error)) return false;
  uint8_t expected[16];
  FinishTag(p.k, HostTable{kHostTe0}, iv, s, expected);
  uint8_t diff = 0;
  for (int i = 0; i < 16; ++i) diff |= uint8_t(expected[i] ^ tag[i]);
  if (diff != 0) return true;  // not authentic: no plaintext is produced
  Iv v;
  for (int i = 0; i < 12; ++i) v.bytes[i] = iv[i];
  if (len > 0) {
    CtrKernel<<<GridFor(BlockCount(len)), kThreads>>>(p.k, v, d_in, d_out, len);
    if (!CudaOk(cudaGetLastError(), error)) return false;
  }
  *authentic = true;
  return true;
}

bool CudaGcmSeal(const uint8_t* key, int key_bytes, const uint8_t iv[12], const uint8_t* aad, size_t aad_len, const uint8_t* in, size_t len,
                 uint8_t* out, uint8_t tag[16], std::string* error) {
  DeviceBytes d;
  d.WipeOnFree();  // plaintext until the kernel has run
  cudaError_t err = cudaSetDevice(0);
  if (err == cudaSuccess) err = d.Alloc(len);
  if (err == cudaSuccess && len > 0) err = cudaMemcpy(d.get(), in, len, cudaMemcpyHostToDevice);
  if (!CudaOk(err, error)) return false;
  // In place on the device copy.
  if (!CudaGcmSealOnDevice(key, key_bytes, iv, aad, aad_len, d.get(), len, d.get(), tag, error)) return false;
  return len == 0 || CudaOk(cudaMemcpy(out, d.get(), len, cudaMemcpyDeviceToHost), error);
}

bool CudaGcmOpen(const uint8_t* key, int key_bytes, const uint8_t iv[12], const uint8_t* aad, size_t aad_len, const uint8_t* in, size_t len,
                 const uint8_t tag[16], uint8_t* out, bool* authentic, std::string* error) {
  DeviceBytes d;
  d.WipeOnFree();  // plaintext once opened
  cudaError_t err = cudaSetDevice(0);
  if (err == cudaSuccess) err = d.Alloc(len);
  if (err == cudaSuccess && len > 0) err = cudaMemcpy(d.get(), in, len, cudaMemcpyHostToDevice);
  if (!CudaOk(err, error)) return false;
  if (!CudaGcmOpenOnDevice(key, key_bytes, iv, aad, aad_len, d.get(), len, tag, d.get(), authentic, error)) return false;
  if (!*authentic) return true;
  return len == 0 || CudaOk(cudaMemcpy(out, d.get(), len, cudaMemcpyDeviceToHost), error);
}

namespace {

// The job both block kernels take: key schedule, GHASH table, and the
// constants of cuda/gcm_parallel.cuh (the AD's GHASH is done here, so
// header and aad stay on the host).
BlockJob MakeJob(const uint8_t* key, int key_bytes, const uint8_t* header, size_t header_len, const uint8_t prefix[4], uint64_t first,
                 const uint8_t* aad, size_t aad_len, size_t block_size, uint32_t count) {
  const Prepared p = Prepare(key, key_bytes);
  BlockJob job;
  job.k = p.k;
  job.gt = p.gt;
  BuildControlBlockConstants(HostGhashTable{&p.gt}, p.h, header, header_len, aad, aad_len, block_size, &job.consts);
  for (int i = 0; i < 4; ++i) job.prefix[i] = prefix[i];
  job.first = first;
  job.block_size = block_size;
  job.count = count;
  job.lanes = LanesPerBlock(block_size);
  return job;
}

// Warps that cover every control block at once (the grid may have fewer: they loop).
uint64_t WarpsFor(const BlockJob& job) {
  const uint32_t per_warp = 32 / job.lanes;
  return (uint64_t(job.count) + per_warp - 1) / per_warp;
}

}  // namespace

bool CudaSealBlocksOnDevice(const uint8_t* key, int key_bytes, const uint8_t* header, size_t header_len, const uint8_t prefix[4], uint64_t first,
                            const uint8_t* aad, size_t aad_len, const uint8_t* d_in, size_t block_size, uint32_t count, uint8_t* d_out,
                            std::string* error) {
  const BlockJob job = MakeJob(key, key_bytes, header, header_len, prefix, first, aad, aad_len, block_size, count);
  cudaError_t err = cudaSetDevice(0);
  if (err == cudaSuccess && count > 0) {
    BlocksKernel<Direction::kSeal><<<GridFor(WarpsFor(job) * 32), kThreads>>>(job, d_in, d_out, nullptr);
    err = cudaGetLastError();
  }
  return CudaOk(err, error);
}

bool CudaSealBlocks(const uint8_t* key, int key_bytes, const uint8_t* header, size_t header_len, const uint8_t prefix[4], uint64_t first,
                    const uint8_t* aad, size_t aad_len, const uint8_t* in, size_t block_size, uint32_t count, uint8_t* out,
                    std::string* error) {
  const size_t in_len = size_t(count) * block_size;
  const size_t out_len = size_t(count) * (16 + block_size);
  DeviceBytes d_in;
  d_in.WipeOnFree();
  DeviceBytes d_out;
  cudaError_t err = cudaSetDevice(0);
  if (err == cudaSuccess) err = d_in.Alloc(in_len);
  if (err == cudaSuccess) err = d_out.Alloc(out_len);
  if (err == cudaSuccess && in_len > 0) err = cudaMemcpy(d_in.get(), in, in_len, cudaMemcpyHostToDevice);
  if (!CudaOk(err, error)) return false;
  if (!CudaSealBlocksOnDevice(key, key_bytes, header, header_len, prefix, first, aad, aad_len, d_in.get(), block_size, count, d_out.get(), error)) {
    return false;
  }
  return out_len == 0 || CudaOk(cudaMemcpy(out, d_out.get(), out_len, cudaMemcpyDeviceToHost), error);
}

bool CudaOpenBlocks(const uint8_t* key, int key_bytes, const uint8_t* header, size_t header_len, const uint8_t prefix[4], uint64_t first,
                    const uint8_t* aad, size_t aad_len, const uint8_t* in, size_t block_size, uint32_t count, uint8_t* out,
                    int64_t* first_bad, std::string* error) {
  *first_bad = -1;
  const BlockJob job = MakeJob(key, key_bytes, header, header_len, prefix, first, aad, aad_len, block_size, count);
  const size_t in_len = size_t(count) * (16 + block_size);
  const size_t out_len = size_t(count) * block_size;
  DeviceBytes d_in;
  DeviceBytes d_out;
  d_out.WipeOnFree();  // plaintext, released to the host only when every tag matches
  DeviceBytes d_ok;
  cudaError_t err = cudaSetDevice(0);
  if (err == cudaSuccess) err = d_in.Alloc(in_len);
  if (err == cudaSuccess) err = d_out.Alloc(out_len);
  if (err == cudaSuccess) err = d_ok.Alloc(count);
  if (err == cudaSuccess && in_len > 0) err = cudaMemcpy(d_in.get(), in, in_len, cudaMemcpyHostToDevice);
  if (err == cudaSuccess && count > 0) {
    BlocksKernel<Direction::kOpen><<<GridFor(WarpsFor(job) * 32), kThreads>>>(job, d_in.get(), d_out.get(), d_ok.get());
    err = cudaGetLastError();
  }
  std::vector<uint8_t> ok(count);
  if (err == cudaSuccess && count > 0) err = cudaMemcpy(ok.data(), d_ok.get(), count, cudaMemcpyDeviceToHost);
  if (!CudaOk(err, error)) return false;
  for (uint32_t i = 0; i < count; ++i) {
    if (ok[i] != 1) {
      *first_bad = i;
      return true;  // the plaintext stays on the device and is wiped with d_out
    }
  }
  return out_len == 0 || CudaOk(cudaMemcpy(out, d_out.get(), out_len, cudaMemcpyDeviceToHost), error);
}

}  // namespace aes
}  // namespace gk
