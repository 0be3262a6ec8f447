// AES-GCM kernels. The math is cuda/aes_gcm.cuh (also built and tested on
// the host); this file holds the launches: CTR with one thread per 16-byte
// block, GHASH split into chunks hashed in parallel and combined with powers
// of H, and one thread per control block for block envelopes. The key
// schedule, H and E(K, J0) are computed on the host (a few blocks of work).
#include "aes_gcm_kernels.h"

#include <cuda_runtime.h>

#include <vector>

#include "aes_gcm.cuh"

namespace gk {
namespace aes {
namespace {

__constant__ uint32_t c_te0[256] = {GK_AES_TE0_VALUES};

constexpr unsigned kThreads = 256;
// Blocks of ciphertext each GHASH thread folds before the powers combine them.
constexpr uint64_t kChunkBlocks = 64;

// Every block of threads copies Te0 into shared memory, once per bank.
__device__ LaneTable LoadLaneTable(uint32_t* shared) {
  for (unsigned i = threadIdx.x; i < 256 * 32; i += blockDim.x) shared[i] = c_te0[i / 32];
  __syncthreads();
  return LaneTable{shared, threadIdx.x & 31};
}

__global__ void CtrKernel(Key k, Iv iv, const uint8_t* in, uint8_t* out, size_t len) {
  __shared__ uint32_t table[256 * 32];
  const LaneTable t = LoadLaneTable(table);
  const uint64_t blocks = (len + 15) / 16;
  for (uint64_t b = blockIdx.x * uint64_t(blockDim.x) + threadIdx.x; b < blocks; b += uint64_t(gridDim.x) * blockDim.x) {
    const size_t n = len - b * 16 < 16 ? len - b * 16 : 16;
    CtrBlock(k, t, iv.bytes, b, in + b * 16, out + b * 16, n);
  }
}

// partial[j] = GHASH-from-zero of chunk j, times H^(blocks after the chunk).
__global__ void GhashChunkKernel(U128 h, const uint8_t* text, size_t len, uint64_t chunks, U128* partial) {
  const uint64_t m = (len + 15) / 16;
  for (uint64_t j = blockIdx.x * uint64_t(blockDim.x) + threadIdx.x; j < chunks; j += uint64_t(gridDim.x) * blockDim.x) {
    const uint64_t a = j * kChunkBlocks;
    const uint64_t b = a + kChunkBlocks < m ? a + kChunkBlocks : m;
    const size_t to = b * 16 < len ? b * 16 : len;
    const U128 y = GhashBytes(h, U128{0, 0}, text + a * 16, to - a * 16);
    partial[j] = GfMul(y, GfPow(h, m - b));
  }
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
  U128 h;
  uint8_t prefix[4];
  uint64_t first;
  const uint8_t* header;
  size_t header_len;
  const uint8_t* aad;
  size_t aad_len;
  size_t block_size;
  uint32_t count;
};

__global__ void SealBlocksKernel(BlockJob job, const uint8_t* in, uint8_t* out) {
  __shared__ uint32_t table[256 * 32];
  const LaneTable t = LoadLaneTable(table);
  for (uint64_t i = blockIdx.x * uint64_t(blockDim.x) + threadIdx.x; i < job.count; i += uint64_t(gridDim.x) * blockDim.x) {
    SealControlBlock(job.k, t, job.h, job.header, job.header_len, job.prefix, job.first, uint32_t(i), job.aad, job.aad_len,
                     in + i * job.block_size, job.block_size, out + i * (16 + job.block_size));
  }
}

// Re-seals each block's plaintext candidate to check its tag: decrypt with
// CTR into `out`, then recompute the tag over the given ciphertext. ok[i] is
// 1 when block i's tag matches (compared without early exit).
__global__ void OpenBlocksKernel(BlockJob job, const uint8_t* in, uint8_t* out, uint8_t* ok) {
  __shared__ uint32_t table[256 * 32];
  const LaneTable t = LoadLaneTable(table);
  for (uint64_t i = blockIdx.x * uint64_t(blockDim.x) + threadIdx.x; i < job.count; i += uint64_t(gridDim.x) * blockDim.x) {
    const uint8_t* sealed = in + i * (16 + job.block_size);
    uint8_t iv[12];
    for (int b = 0; b < 4; ++b) iv[b] = job.prefix[b];
    const uint64_t counter = job.first + i;
    hd::StoreBe32(iv + 4, uint32_t(counter >> 32));
    hd::StoreBe32(iv + 8, uint32_t(counter));
    uint8_t index_be[4];
    hd::StoreBe32(index_be, uint32_t(i));
    GhashStream g;
    g.Init(job.h);
    g.Add(job.header, job.header_len);
    g.Add(index_be, 4);
    g.Add(job.aad, job.aad_len);
    g.Pad();
    g.Add(sealed + 16, job.block_size);
    g.Pad();
    uint8_t tag[16];
    FinishTag(job.k, t, iv, GfMul(Xor(g.y, LengthBlock(job.header_len + 4 + job.aad_len, job.block_size)), job.h), tag);
    uint8_t diff = 0;
    for (int b = 0; b < 16; ++b) diff |= uint8_t(tag[b] ^ sealed[b]);
    ok[i] = diff == 0 ? 1 : 0;
    uint8_t* plain = out + i * job.block_size;
    for (size_t b = 0; b * 16 < job.block_size; ++b) {
      const size_t n = job.block_size - b * 16 < 16 ? job.block_size - b * 16 : 16;
      CtrBlock(job.k, t, iv, b, sealed + 16 + b * 16, plain + b * 16, n);
    }
  }
}

// Device memory freed on every path.
class DeviceBytes {
 public:
  ~DeviceBytes() {
    if (ptr_ != nullptr) cudaFree(ptr_);
  }
  cudaError_t Alloc(size_t n) { return cudaMalloc(&ptr_, n == 0 ? 1 : n); }
  uint8_t* get() const { return static_cast<uint8_t*>(ptr_); }

 private:
  void* ptr_ = nullptr;
};

bool Fail(cudaError_t err, std::string* error) {
  if (err == cudaSuccess) return true;
  *error = std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
  return false;
}

unsigned GridFor(uint64_t items) {
  const uint64_t blocks = (items + kThreads - 1) / kThreads;
  return unsigned(blocks == 0 ? 1 : blocks < 65535 ? blocks : 65535);
}

struct Prepared {
  Key k;
  U128 h;
};

Prepared Prepare(const uint8_t* key, int key_bytes) {
  Prepared p;
  ExpandKey(key, key_bytes, kHostSbox, &p.k);
  p.h = HashSubkey(p.k, HostTable{kHostTe0});
  return p;
}

// GHASH of aad and the `len` bytes at d_text (device), the length block included.
bool DeviceGhash(const Prepared& p, const uint8_t* aad, size_t aad_len, const uint8_t* d_text, size_t len, U128* s, std::string* error) {
  const uint64_t m = (len + 15) / 16;
  U128 acc = GfMul(GhashBytes(p.h, U128{0, 0}, aad, aad_len), GfPow(p.h, m));
  if (m > 0) {
    const uint64_t chunks = (m + kChunkBlocks - 1) / kChunkBlocks;
    DeviceBytes partial;
    DeviceBytes sum;
    cudaError_t err = partial.Alloc(chunks * sizeof(U128));
    if (err == cudaSuccess) err = sum.Alloc(sizeof(U128));
    if (err == cudaSuccess) {
      GhashChunkKernel<<<GridFor(chunks), kThreads>>>(p.h, d_text, len, chunks, reinterpret_cast<U128*>(partial.get()));
      XorReduceKernel<<<1, 1024>>>(reinterpret_cast<U128*>(partial.get()), chunks, reinterpret_cast<U128*>(sum.get()));
      err = cudaGetLastError();
    }
    U128 text_part{0, 0};
    if (err == cudaSuccess) err = cudaMemcpy(&text_part, sum.get(), sizeof(U128), cudaMemcpyDeviceToHost);
    if (!Fail(err, error)) return false;
    acc = Xor(acc, text_part);
  }
  *s = GfMul(Xor(acc, LengthBlock(aad_len, len)), p.h);
  return true;
}

}  // namespace

bool CudaGcmSealOnDevice(const uint8_t* key, int key_bytes, const uint8_t iv[12], const uint8_t* aad, size_t aad_len, const uint8_t* d_in,
                         size_t len, uint8_t* d_out, uint8_t tag[16], std::string* error) {
  const Prepared p = Prepare(key, key_bytes);
  Iv v;
  for (int i = 0; i < 12; ++i) v.bytes[i] = iv[i];
  cudaError_t err = cudaSetDevice(0);
  if (err == cudaSuccess && len > 0) {
    CtrKernel<<<GridFor((len + 15) / 16), kThreads>>>(p.k, v, d_in, d_out, len);
    err = cudaGetLastError();
  }
  if (!Fail(err, error)) return false;
  U128 s;
  if (!DeviceGhash(p, aad, aad_len, d_out, len, &s, error)) return false;
  FinishTag(p.k, HostTable{kHostTe0}, iv, s, tag);
  return true;
}

bool CudaGcmOpenOnDevice(const uint8_t* key, int key_bytes, const uint8_t iv[12], const uint8_t* aad, size_t aad_len, const uint8_t* d_in,
                         size_t len, const uint8_t tag[16], uint8_t* d_out, bool* authentic, std::string* error) {
  const Prepared p = Prepare(key, key_bytes);
  *authentic = false;
  if (!Fail(cudaSetDevice(0), error)) return false;
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
    CtrKernel<<<GridFor((len + 15) / 16), kThreads>>>(p.k, v, d_in, d_out, len);
    if (!Fail(cudaGetLastError(), error)) return false;
  }
  *authentic = true;
  return true;
}

bool CudaGcmSeal(const uint8_t* key, int key_bytes, const uint8_t iv[12], const uint8_t* aad, size_t aad_len, const uint8_t* in, size_t len,
                 uint8_t* out, uint8_t tag[16], std::string* error) {
  DeviceBytes d;
  cudaError_t err = cudaSetDevice(0);
  if (err == cudaSuccess) err = d.Alloc(len);
  if (err == cudaSuccess && len > 0) err = cudaMemcpy(d.get(), in, len, cudaMemcpyHostToDevice);
  if (!Fail(err, error)) return false;
  // In place on the device copy.
  if (!CudaGcmSealOnDevice(key, key_bytes, iv, aad, aad_len, d.get(), len, d.get(), tag, error)) return false;
  return len == 0 || Fail(cudaMemcpy(out, d.get(), len, cudaMemcpyDeviceToHost), error);
}

bool CudaGcmOpen(const uint8_t* key, int key_bytes, const uint8_t iv[12], const uint8_t* aad, size_t aad_len, const uint8_t* in, size_t len,
                 const uint8_t tag[16], uint8_t* out, bool* authentic, std::string* error) {
  DeviceBytes d;
  cudaError_t err = cudaSetDevice(0);
  if (err == cudaSuccess) err = d.Alloc(len);
  if (err == cudaSuccess && len > 0) err = cudaMemcpy(d.get(), in, len, cudaMemcpyHostToDevice);
  if (!Fail(err, error)) return false;
  if (!CudaGcmOpenOnDevice(key, key_bytes, iv, aad, aad_len, d.get(), len, tag, d.get(), authentic, error)) return false;
  if (!*authentic) return true;
  return len == 0 || Fail(cudaMemcpy(out, d.get(), len, cudaMemcpyDeviceToHost), error);
}

namespace {

// Copies header and aad to the device and fills a job.
bool PrepareJob(const uint8_t* key, int key_bytes, const uint8_t* header, size_t header_len, const uint8_t prefix[4], uint64_t first,
                const uint8_t* aad, size_t aad_len, size_t block_size, uint32_t count, DeviceBytes* d_header, DeviceBytes* d_aad,
                BlockJob* job, std::string* error) {
  const Prepared p = Prepare(key, key_bytes);
  job->k = p.k;
  job->h = p.h;
  for (int i = 0; i < 4; ++i) job->prefix[i] = prefix[i];
  job->first = first;
  job->header_len = header_len;
  job->aad_len = aad_len;
  job->block_size = block_size;
  job->count = count;
  cudaError_t err = cudaSetDevice(0);
  if (err == cudaSuccess) err = d_header->Alloc(header_len);
  if (err == cudaSuccess) err = d_aad->Alloc(aad_len);
  if (err == cudaSuccess) err = cudaMemcpy(d_header->get(), header, header_len, cudaMemcpyHostToDevice);
  if (err == cudaSuccess && aad_len > 0) err = cudaMemcpy(d_aad->get(), aad, aad_len, cudaMemcpyHostToDevice);
  job->header = d_header->get();
  job->aad = d_aad->get();
  return Fail(err, error);
}

}  // namespace

bool CudaSealBlocks(const uint8_t* key, int key_bytes, const uint8_t* header, size_t header_len, const uint8_t prefix[4], uint64_t first,
                    const uint8_t* aad, size_t aad_len, const uint8_t* in, size_t block_size, uint32_t count, uint8_t* out,
                    std::string* error) {
  DeviceBytes d_header;
  DeviceBytes d_aad;
  BlockJob job;
  if (!PrepareJob(key, key_bytes, header, header_len, prefix, first, aad, aad_len, block_size, count, &d_header, &d_aad, &job, error)) return false;
  const size_t in_len = size_t(count) * block_size;
  const size_t out_len = size_t(count) * (16 + block_size);
  DeviceBytes d_in;
  DeviceBytes d_out;
  cudaError_t err = d_in.Alloc(in_len);
  if (err == cudaSuccess) err = d_out.Alloc(out_len);
  if (err == cudaSuccess && in_len > 0) err = cudaMemcpy(d_in.get(), in, in_len, cudaMemcpyHostToDevice);
  if (err == cudaSuccess && count > 0) {
    SealBlocksKernel<<<GridFor(count), kThreads>>>(job, d_in.get(), d_out.get());
    err = cudaGetLastError();
  }
  if (err == cudaSuccess && out_len > 0) err = cudaMemcpy(out, d_out.get(), out_len, cudaMemcpyDeviceToHost);
  return Fail(err, error);
}

bool CudaOpenBlocks(const uint8_t* key, int key_bytes, const uint8_t* header, size_t header_len, const uint8_t prefix[4], uint64_t first,
                    const uint8_t* aad, size_t aad_len, const uint8_t* in, size_t block_size, uint32_t count, uint8_t* out,
                    int64_t* first_bad, std::string* error) {
  *first_bad = -1;
  DeviceBytes d_header;
  DeviceBytes d_aad;
  BlockJob job;
  if (!PrepareJob(key, key_bytes, header, header_len, prefix, first, aad, aad_len, block_size, count, &d_header, &d_aad, &job, error)) return false;
  const size_t in_len = size_t(count) * (16 + block_size);
  const size_t out_len = size_t(count) * block_size;
  DeviceBytes d_in;
  DeviceBytes d_out;
  DeviceBytes d_ok;
  cudaError_t err = d_in.Alloc(in_len);
  if (err == cudaSuccess) err = d_out.Alloc(out_len);
  if (err == cudaSuccess) err = d_ok.Alloc(count);
  if (err == cudaSuccess && in_len > 0) err = cudaMemcpy(d_in.get(), in, in_len, cudaMemcpyHostToDevice);
  if (err == cudaSuccess && count > 0) {
    OpenBlocksKernel<<<GridFor(count), kThreads>>>(job, d_in.get(), d_out.get(), d_ok.get());
    err = cudaGetLastError();
  }
  std::vector<uint8_t> ok(count);
  if (err == cudaSuccess && count > 0) err = cudaMemcpy(ok.data(), d_ok.get(), count, cudaMemcpyDeviceToHost);
  if (!Fail(err, error)) return false;
  for (uint32_t i = 0; i < count; ++i) {
    if (ok[i] != 1) {
      *first_bad = i;
      // Plaintext of a failed envelope never leaves the device, and is wiped there.
      return Fail(cudaMemset(d_out.get(), 0, out_len == 0 ? 1 : out_len), error);
    }
  }
  if (out_len > 0) return Fail(cudaMemcpy(out, d_out.get(), out_len, cudaMemcpyDeviceToHost), error);
  return true;
}

}  // namespace aes
}  // namespace gk
