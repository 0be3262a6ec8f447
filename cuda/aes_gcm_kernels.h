// AES-GCM on the GPU (cuda/aes_gcm_kernels.cu). Plain C++ declarations so
// cuda/addon.cc needs no CUDA headers. Buffers are host memory: each call
// copies in, runs its kernels on device 0 and copies out. Every function
// returns false with *error set on a CUDA failure.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace gk {
namespace aes {

// One message: out = CTR(in), tag over aad and out. key_bytes 16 or 32.
bool CudaGcmSeal(const uint8_t* key, int key_bytes, const uint8_t iv[12], const uint8_t* aad, size_t aad_len, const uint8_t* in, size_t len,
                 uint8_t* out, uint8_t tag[16], std::string* error);

// Verifies the tag over aad and `in` first; only when it matches is
// plaintext produced into `out` (*authentic says which).
bool CudaGcmOpen(const uint8_t* key, int key_bytes, const uint8_t iv[12], const uint8_t* aad, size_t aad_len, const uint8_t* in, size_t len,
                 const uint8_t tag[16], uint8_t* out, bool* authentic, std::string* error);

// Milliseconds of device time per stage of one seal (CUDA events).
struct GcmStageTimes {
  double ctr_ms = 0;
  double ghash_ms = 0;  // the tree kernel, the XOR over blocks and the copy of the sum
};

// The same two where input and output are device memory (in == out is
// allowed); aad and tag are host memory. Open writes d_out only when the
// tag matches. `times`, when given, gets the seal's stage timings.
bool CudaGcmSealOnDevice(const uint8_t* key, int key_bytes, const uint8_t iv[12], const uint8_t* aad, size_t aad_len, const uint8_t* d_in,
                         size_t len, uint8_t* d_out, uint8_t tag[16], std::string* error, GcmStageTimes* times = nullptr);
bool CudaGcmOpenOnDevice(const uint8_t* key, int key_bytes, const uint8_t iv[12], const uint8_t* aad, size_t aad_len, const uint8_t* d_in,
                         size_t len, const uint8_t tag[16], uint8_t* d_out, bool* authentic, std::string* error);

// A block envelope body (lib/crypto/envelope.ts): count blocks of
// block_size bytes, a warp each, written as tag + ciphertext per block.
// Header and aad are host memory in both forms.
bool CudaSealBlocksOnDevice(const uint8_t* key, int key_bytes, const uint8_t* header, size_t header_len, const uint8_t prefix[4], uint64_t first,
                            const uint8_t* aad, size_t aad_len, const uint8_t* d_in, size_t block_size, uint32_t count, uint8_t* d_out,
                            std::string* error);
bool CudaSealBlocks(const uint8_t* key, int key_bytes, const uint8_t* header, size_t header_len, const uint8_t prefix[4], uint64_t first,
                    const uint8_t* aad, size_t aad_len, const uint8_t* in, size_t block_size, uint32_t count, uint8_t* out,
                    std::string* error);

// Opens a block envelope body into `out` (count * block_size bytes). When a
// block fails, *first_bad is its index and `out` is zeroed; else -1.
bool CudaOpenBlocks(const uint8_t* key, int key_bytes, const uint8_t* header, size_t header_len, const uint8_t prefix[4], uint64_t first,
                    const uint8_t* aad, size_t aad_len, const uint8_t* in, size_t block_size, uint32_t count, uint8_t* out,
                    int64_t* first_bad, std::string* error);

}  // namespace aes
}  // namespace gk
