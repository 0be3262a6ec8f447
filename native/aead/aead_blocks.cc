#include "aead/aead_blocks.h"

#include <openssl/evp.h>

#include <cstring>
#include <memory>

#include "args.h"

namespace gk {
namespace {

constexpr size_t kTagBytes = 16;
constexpr size_t kPrefixBytes = 4;  // 12-byte nonce = 4-byte prefix || BE64 counter
constexpr size_t kNonceBytes = 12;
// 2^53: the counter arrives as a double and must stay exact.
constexpr double kMaxFirst = 9007199254740992.0;

struct CtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using Ctx = std::unique_ptr<EVP_CIPHER_CTX, CtxFree>;

// The algorithm by its name in lib/crypto/algorithms.ts, with its key size.
const EVP_CIPHER* CipherArg(const Napi::CallbackInfo& info, size_t* key_bytes) {
  if (!info[0].IsString()) ThrowTypeError(info.Env(), "Expected an algorithm name");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  if (name == "aes-256-gcm") {
    *key_bytes = 32;
    return EVP_aes_256_gcm();
  }
  if (name == "aes-128-gcm") {
    *key_bytes = 16;
    return EVP_aes_128_gcm();
  }
  if (name == "chacha20-poly1305") {
    *key_bytes = 32;
    return EVP_chacha20_poly1305();
  }
  ThrowRangeError(info.Env(), "Expected aes-256-gcm, aes-128-gcm or chacha20-poly1305");
}

// The arguments both directions share:
// (alg, key, header, prefix, first, aad, data, blockSize, out)
struct BlockArgs {
  const EVP_CIPHER* cipher;
  ByteView key, header, prefix, aad, data;
  MutableByteView out;
  uint64_t first;
  size_t block_size;
  size_t count;
};

BlockArgs ReadArgs(const Napi::CallbackInfo& info, bool sealing) {
  Napi::Env env = info.Env();
  BlockArgs a{};
  size_t key_bytes = 0;
  a.cipher = CipherArg(info, &key_bytes);
  a.key = BytesArg(info, 1, "key");
  if (a.key.len != key_bytes) ThrowRangeError(env, "Expected a key of the algorithm's size");
  a.header = BytesArg(info, 2, "header");
  a.prefix = BytesArg(info, 3, "prefix");
  if (a.prefix.len != kPrefixBytes) ThrowRangeError(env, "Expected a 4-byte nonce prefix");
  double first = FiniteArg(info, 4, "Expected the first counter as a number");
  if (first < 0 || first >= kMaxFirst || first != static_cast<double>(static_cast<uint64_t>(first))) {
    ThrowRangeError(env, "Expected the first counter as an integer in [0, 2^53)");
  }
  a.first = static_cast<uint64_t>(first);
  a.aad = BytesArg(info, 5, "aad");
  // OpenSSL takes int lengths: bound every piece fed to it.
  if (a.header.len > (1u << 30) || a.aad.len > (1u << 30)) ThrowRangeError(env, "Associated data too large");
  a.data = BytesArg(info, 6, "data");
  a.block_size = PositiveIntegerArg(info, 7, 1 << 30, "Expected a block size in [1, 2^30]");
  const size_t sealed_block = kTagBytes + a.block_size;
  // Sealing: data holds plaintext blocks, out tag+ciphertext; opening: the reverse.
  const size_t in_block = sealing ? a.block_size : sealed_block;
  const size_t out_block = sealing ? sealed_block : a.block_size;
  if (a.data.len % in_block != 0) ThrowRangeError(env, "Expected data to hold whole blocks");
  a.count = a.data.len / in_block;
  if (a.count > 0xffffffffu) ThrowRangeError(env, "Expected at most 2^32 - 1 blocks");
  if (static_cast<double>(a.first) + static_cast<double>(a.count) > kMaxFirst) ThrowRangeError(env, "Counter range passes 2^53");
  Napi::Value o = info[8];
  if (!o.IsTypedArray() || o.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) ThrowTypeError(env, "Expected a Uint8Array for out");
  Napi::Uint8Array out = o.As<Napi::Uint8Array>();
  if (out.ByteLength() != a.count * out_block) ThrowRangeError(env, "Expected out to hold exactly the blocks");
  a.out = {out.Data(), out.ByteLength()};
  return a;
}

void PutBe(uint8_t* p, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; i--) {
    p[i] = static_cast<uint8_t>(v);
    v >>= 8;
  }
}

// One context keyed once; each block sets its nonce, then feeds
// header || BE32(index) || aad as associated data.
Ctx KeyedContext(Napi::Env env, const BlockArgs& a, bool sealing) {
  Ctx ctx(EVP_CIPHER_CTX_new());
  if (!ctx || EVP_CipherInit_ex(ctx.get(), a.cipher, nullptr, nullptr, nullptr, sealing ? 1 : 0) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_IVLEN, static_cast<int>(kNonceBytes), nullptr) != 1 ||
      EVP_CipherInit_ex(ctx.get(), nullptr, nullptr, a.key.data, nullptr, -1) != 1) {
    ThrowTypeError(env, "OpenSSL refused the cipher");
  }
  return ctx;
}

bool StartBlock(EVP_CIPHER_CTX* ctx, const BlockArgs& a, size_t i) {
  uint8_t nonce[kNonceBytes];
  std::memcpy(nonce, a.prefix.data, kPrefixBytes);
  PutBe(nonce + kPrefixBytes, a.first + i, 8);
  uint8_t index[4];
  PutBe(index, i, 4);
  int n = 0;
  // Lengths passed to OpenSSL are ints: ReadArgs bounded each piece to 1 GiB.
  return EVP_CipherInit_ex(ctx, nullptr, nullptr, nullptr, nonce, -1) == 1 &&
         (a.header.len == 0 || EVP_CipherUpdate(ctx, nullptr, &n, a.header.data, static_cast<int>(a.header.len)) == 1) &&
         EVP_CipherUpdate(ctx, nullptr, &n, index, 4) == 1 &&
         (a.aad.len == 0 || EVP_CipherUpdate(ctx, nullptr, &n, a.aad.data, static_cast<int>(a.aad.len)) == 1);
}

// sealBlocks(alg, key, header, prefix, first, aad, plain, blockSize, out):
// out = (tag || ciphertext) per block.
Napi::Value SealBlocks(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  BlockArgs a = ReadArgs(info, true);
  Ctx ctx = KeyedContext(env, a, true);
  for (size_t i = 0; i < a.count; i++) {
    const uint8_t* plain = a.data.data + i * a.block_size;
    uint8_t* tag = a.out.data + i * (kTagBytes + a.block_size);
    uint8_t* cipher = tag + kTagBytes;
    int n = 0, tail = 0;
    if (!StartBlock(ctx.get(), a, i) || EVP_CipherUpdate(ctx.get(), cipher, &n, plain, static_cast<int>(a.block_size)) != 1 ||
        EVP_CipherFinal_ex(ctx.get(), cipher + n, &tail) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kTagBytes), tag) != 1) {
      std::memset(a.out.data, 0, a.out.len);
      ThrowTypeError(env, "OpenSSL failed to seal a block");
    }
  }
  return env.Undefined();
}

// openBlocks(alg, key, header, prefix, first, aad, body, blockSize, out):
// -1 when every tag verifies; else the first failing index, and out is zeroed.
Napi::Value OpenBlocks(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  BlockArgs a = ReadArgs(info, false);
  Ctx ctx = KeyedContext(env, a, false);
  for (size_t i = 0; i < a.count; i++) {
    const uint8_t* tag = a.data.data + i * (kTagBytes + a.block_size);
    const uint8_t* cipher = tag + kTagBytes;
    uint8_t* plain = a.out.data + i * a.block_size;
    uint8_t tag_copy[kTagBytes];
    std::memcpy(tag_copy, tag, kTagBytes);
    int n = 0, tail = 0;
    bool ok = StartBlock(ctx.get(), a, i) && EVP_CipherUpdate(ctx.get(), plain, &n, cipher, static_cast<int>(a.block_size)) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_TAG, static_cast<int>(kTagBytes), tag_copy) == 1 &&
              EVP_CipherFinal_ex(ctx.get(), plain + n, &tail) == 1;
    if (!ok) {
      std::memset(a.out.data, 0, a.out.len);  // release no plaintext
      return Napi::Number::New(env, static_cast<double>(i));
    }
  }
  return Napi::Number::New(env, -1);
}

}  // namespace

void RegisterAeadBlockFunctions(Napi::Env env, Napi::Object exports) {
  exports.Set("aeadSealBlocks", Napi::Function::New<SealBlocks>(env, "aeadSealBlocks"));
  exports.Set("aeadOpenBlocks", Napi::Function::New<OpenBlocks>(env, "aeadOpenBlocks"));
}

}  // namespace gk
