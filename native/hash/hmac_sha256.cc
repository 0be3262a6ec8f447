#include "hash/hmac_sha256.h"

#include <cstring>

namespace gk {

void SecureZero(void* p, size_t len) {
  volatile uint8_t* v = static_cast<volatile uint8_t*>(p);
  while (len--) *v++ = 0;
}

bool ConstantTimeEqual(const uint8_t* a, const uint8_t* b, size_t len) {
  volatile uint8_t diff = 0;
  for (size_t i = 0; i < len; ++i) diff = diff | uint8_t(a[i] ^ b[i]);
  return diff == 0;
}

HmacSha256::HmacSha256(const uint8_t* key, size_t key_len) {
  uint8_t block[kSha256BlockBytes] = {0};
  if (key_len > kSha256BlockBytes) {
    Sha256Digest(key, key_len, block);  // long keys are hashed first (RFC 2104)
  } else if (key_len > 0) {
    std::memcpy(block, key, key_len);
  }
  uint8_t pad[kSha256BlockBytes];
  Sha256CompressFn compress = Sha256Compress();
  for (size_t i = 0; i < kSha256BlockBytes; ++i) pad[i] = block[i] ^ 0x36;
  std::memcpy(inner_, kSha256InitialState, sizeof(inner_));
  compress(inner_, pad, 1);
  for (size_t i = 0; i < kSha256BlockBytes; ++i) pad[i] = block[i] ^ 0x5c;
  std::memcpy(outer_, kSha256InitialState, sizeof(outer_));
  compress(outer_, pad, 1);
  SecureZero(block, sizeof(block));
  SecureZero(pad, sizeof(pad));
}

HmacSha256::~HmacSha256() { Wipe(); }

void HmacSha256::Wipe() {
  SecureZero(inner_, sizeof(inner_));
  SecureZero(outer_, sizeof(outer_));
}

void HmacSha256::Sign(const uint8_t* data, size_t len, uint8_t out[kSha256DigestBytes]) const {
  Sha256 ctx;
  ctx.ResumeFrom(inner_, kSha256BlockBytes);
  ctx.Update(data, len);
  uint8_t inner_digest[kSha256DigestBytes];
  ctx.Final(inner_digest);
  ctx.ResumeFrom(outer_, kSha256BlockBytes);
  ctx.Update(inner_digest, sizeof(inner_digest));
  ctx.Final(out);
}

bool HmacSha256::Verify(const uint8_t* data, size_t len, const uint8_t mac[kSha256DigestBytes]) const {
  uint8_t expected[kSha256DigestBytes];
  Sign(data, len, expected);
  bool ok = ConstantTimeEqual(expected, mac, kSha256DigestBytes);
  SecureZero(expected, sizeof(expected));
  return ok;
}

}  // namespace gk
