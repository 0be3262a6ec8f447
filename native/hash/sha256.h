// SHA-256 (FIPS 180-4): streaming state plus a block-compression function that
// is picked once at load time (x86 SHA extensions when the CPU has them,
// portable C++ otherwise).
#pragma once
#include <cstddef>
#include <cstdint>

namespace gk {

constexpr size_t kSha256BlockBytes = 64;
constexpr size_t kSha256DigestBytes = 32;

// FIPS 180-4 round constants (16-byte aligned), shared by both implementations.
extern const uint32_t kSha256RoundConstants[64];
// FIPS 180-4 initial hash value.
extern const uint32_t kSha256InitialState[8];

// Compresses `nblocks` consecutive 64-byte blocks into `state`.
using Sha256CompressFn = void (*)(uint32_t state[8], const uint8_t* blocks, size_t nblocks);

void Sha256CompressPortable(uint32_t state[8], const uint8_t* blocks, size_t nblocks);
// Defined only where the compiler can emit SHA-NI; returns false when the CPU
// lacks the extension so the caller keeps the portable path.
bool Sha256ShaNiAvailable();
void Sha256CompressShaNi(uint32_t state[8], const uint8_t* blocks, size_t nblocks);

// The compression function every SHA-256 in the addon goes through.
Sha256CompressFn Sha256Compress();
// Name of the active implementation ("sha-ni" or "portable").
const char* Sha256ImplName();
// Test hook: force the portable path so CI on SHA-NI machines checks both.
void Sha256ForcePortable(bool force);

struct Sha256 {
  uint32_t h[8];
  uint64_t total_bytes;
  uint8_t pending[kSha256BlockBytes];
  size_t pending_len;

  Sha256() { Reset(); }
  void Reset();
  // Resume from a midstate that has already absorbed `absorbed` bytes (a
  // multiple of 64): how HMAC reuses its precomputed key blocks.
  void ResumeFrom(const uint32_t midstate[8], uint64_t absorbed);
  void Update(const uint8_t* data, size_t len);
  void Final(uint8_t out[kSha256DigestBytes]);
};

void Sha256Digest(const uint8_t* data, size_t len, uint8_t out[kSha256DigestBytes]);

}  // namespace gk
