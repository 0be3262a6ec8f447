// HMAC-SHA256 (RFC 2104) with the key schedule done once: the inner and outer
// pads are compressed into two midstates, so each MAC costs only the message
// blocks plus one outer block.
#pragma once
#include <cstddef>
#include <cstdint>

#include "hash/sha256.h"

namespace gk {

class HmacSha256 {
 public:
  HmacSha256(const uint8_t* key, size_t key_len);
  ~HmacSha256();
  HmacSha256(const HmacSha256&) = delete;
  HmacSha256& operator=(const HmacSha256&) = delete;

  void Sign(const uint8_t* data, size_t len, uint8_t out[kSha256DigestBytes]) const;
  // Constant-time comparison of the MAC of `data` with `mac` (32 bytes).
  bool Verify(const uint8_t* data, size_t len, const uint8_t mac[kSha256DigestBytes]) const;
  // Overwrites the midstates; the object must not be used afterwards.
  void Wipe();

 private:
  uint32_t inner_[8];
  uint32_t outer_[8];
};

// Constant-time equality for equal-length byte strings.
bool ConstantTimeEqual(const uint8_t* a, const uint8_t* b, size_t len);
// Zeroes memory in a way the optimizer may not drop.
void SecureZero(void* p, size_t len);

}  // namespace gk
