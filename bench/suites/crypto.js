// AEAD and KDF choices, measured: guardkernel's aead on the native backend
// (OpenSSL via node:crypto; XChaCha20 = HChaCha20 + OpenSSL ChaCha20-Poly1305)
// and the js backend (@noble/ciphers) vs calling node:crypto directly;
// MemoryEncryption envelopes and block envelopes. Argon2id has its own suite
// (bench/suites/argon2.js).
'use strict';
const crypto = require('node:crypto');
const gk = require('../../dist/index.js');
const { runCases } = require('../harness');

const key = crypto.randomBytes(32);
const nonce12 = crypto.randomBytes(12);
const nonce24 = crypto.randomBytes(24);
const small = crypto.randomBytes(256);
const large = crypto.randomBytes(64 * 1024);
const kib4 = crypto.randomBytes(4096);
const mib1 = crypto.randomBytes(1 << 20);

// 4,096 control blocks of 4 KiB: the encryptBlocks case.
const controlBlocks = crypto.randomBytes(4096 * 4096);

/**
 * What a user would write without encryptBlocks: a JS loop over
 * createCipheriv with a counter nonce and the block index in the AAD.
 */
function jsLoopOverCreateCipheriv(data, blockSize) {
  const count = data.length / blockSize;
  const out = Buffer.alloc(count * (16 + blockSize));
  const nonce = Buffer.alloc(12);
  const index = Buffer.alloc(4);
  for (let i = 0; i < count; i++) {
    nonce.writeUInt32BE(i, 8);
    index.writeUInt32BE(i, 0);
    const c = crypto.createCipheriv('aes-256-gcm', key, nonce);
    c.setAAD(index);
    const ct = c.update(data.subarray(i * blockSize, (i + 1) * blockSize));
    c.final();
    c.getAuthTag().copy(out, i * (16 + blockSize));
    ct.copy(out, i * (16 + blockSize) + 16);
  }
  return out;
}

function nodeGcm(data) {
  const c = crypto.createCipheriv('aes-256-gcm', key, nonce12);
  const out = Buffer.concat([c.update(data), c.final()]);
  return [out, c.getAuthTag()];
}

const enc = new gk.MemoryEncryption({ key });
const blocks = crypto.randomBytes(256 * 1000);

runCases('crypto', [
  { group: 'AES-256-GCM seal, 256 B', name: 'node:crypto createCipheriv', baseline: true, inner: 20, fn: () => { nodeGcm(small); } },
  { group: 'AES-256-GCM seal, 256 B', name: 'aead.seal (native)', inner: 20, fn: () => { gk.aead.seal('aes-256-gcm', key, nonce12, small, undefined, { backend: 'native' }); } },
  { group: 'AES-256-GCM seal, 256 B', name: 'aead.seal (js, @noble/ciphers)', inner: 20, fn: () => { gk.aead.seal('aes-256-gcm', key, nonce12, small, undefined, { backend: 'js' }); } },
  { group: 'AES-256-GCM seal, 64 KiB', name: 'node:crypto createCipheriv', baseline: true, fn: () => { nodeGcm(large); } },
  { group: 'AES-256-GCM seal, 64 KiB', name: 'aead.seal (native)', fn: () => { gk.aead.seal('aes-256-gcm', key, nonce12, large, undefined, { backend: 'native' }); } },
  { group: 'AES-256-GCM seal, 64 KiB', name: 'aead.seal (js, @noble/ciphers)', fn: () => { gk.aead.seal('aes-256-gcm', key, nonce12, large, undefined, { backend: 'js' }); } },
  { group: 'AES-256-GCM seal, 4 KiB', name: 'node:crypto createCipheriv', baseline: true, inner: 10, fn: () => { nodeGcm(kib4); } },
  { group: 'AES-256-GCM seal, 4 KiB', name: 'aead.seal (native)', inner: 10, fn: () => { gk.aead.seal('aes-256-gcm', key, nonce12, kib4, undefined, { backend: 'native' }); } },
  { group: 'AES-256-GCM seal, 1 MiB', name: 'node:crypto createCipheriv', baseline: true, fn: () => { nodeGcm(mib1); } },
  { group: 'AES-256-GCM seal, 1 MiB', name: 'aead.seal (native)', fn: () => { gk.aead.seal('aes-256-gcm', key, nonce12, mib1, undefined, { backend: 'native' }); } },
  { group: 'XChaCha20-Poly1305 seal, 256 B', name: 'aead.seal (js, @noble/ciphers)', baseline: true, inner: 20, fn: () => { gk.aead.seal('xchacha20-poly1305', key, nonce24, small, undefined, { backend: 'js' }); } },
  { group: 'XChaCha20-Poly1305 seal, 256 B', name: 'aead.seal (native: HChaCha20 + OpenSSL)', inner: 20, fn: () => { gk.aead.seal('xchacha20-poly1305', key, nonce24, small, undefined, { backend: 'native' }); } },
  { group: 'XChaCha20-Poly1305 seal, 64 KiB', name: 'aead.seal (js, @noble/ciphers)', baseline: true, fn: () => { gk.aead.seal('xchacha20-poly1305', key, nonce24, large, undefined, { backend: 'js' }); } },
  { group: 'XChaCha20-Poly1305 seal, 64 KiB', name: 'aead.seal (native: HChaCha20 + OpenSSL)', fn: () => { gk.aead.seal('xchacha20-poly1305', key, nonce24, large, undefined, { backend: 'native' }); } },
  { group: 'MemoryEncryption, 256 B', name: 'aead.seal (native), caller-managed nonce', baseline: true, inner: 20, fn: () => { gk.aead.seal('aes-256-gcm', key, nonce12, small, undefined); } },
  { group: 'MemoryEncryption, 256 B', name: 'encrypt (envelope, random nonce, rotation checks)', inner: 20, fn: () => { enc.encrypt(small); } },
  { group: 'MemoryEncryption.encryptBlocks, 1,000 × 256 B (per block)', name: 'aead.seal (native) per block', baseline: true, perOpDivisor: 1000, fn: () => { for (let i = 0; i < 1000; i++) gk.aead.seal('aes-256-gcm', key, nonce12, blocks.subarray(i * 256, (i + 1) * 256)); } },
  { group: 'MemoryEncryption.encryptBlocks, 1,000 × 256 B (per block)', name: 'encryptBlocks (CPU)', perOpDivisor: 1000, fn: () => { enc.encryptBlocks(blocks, 256); } },
  { group: 'encryptBlocks, 4,096 × 4 KiB (per block)', name: 'JS loop over createCipheriv', baseline: true, perOpDivisor: 4096, fn: () => { jsLoopOverCreateCipheriv(controlBlocks, 4096); } },
  { group: 'encryptBlocks, 4,096 × 4 KiB (per block)', name: 'MemoryEncryption.encryptBlocks (CPU)', perOpDivisor: 4096, fn: () => { enc.encryptBlocks(controlBlocks, 4096); } },
], { time: 600 }).catch((e) => {
  console.error(e);
  process.exit(1);
});
