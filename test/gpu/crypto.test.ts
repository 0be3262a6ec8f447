// AES-GCM on the device: the CUDA kernels against node:crypto, and
// MemoryEncryption's block envelopes sealed with one launch against the CPU
// path. Skipped without a GPU.
import crypto from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { ErrorCodes, MemoryEncryption, aead, backends } from '../../lib/index';
import { randomInt, rng } from '../helpers';

const onGpu = backends().gpu.kind === 'cuda';

describe.runIf(onGpu)('CUDA AES-GCM', () => {
  test('seal and open equal node:crypto on 2,000 random inputs of 0 to 70,000 bytes', () => {
    const next = rng(99);
    for (let i = 0; i < 2000; i++) {
      const alg = i % 2 === 0 ? 'aes-256-gcm' : 'aes-128-gcm';
      const key = crypto.randomBytes(alg === 'aes-256-gcm' ? 32 : 16);
      const nonce = crypto.randomBytes(12);
      const len = i % 40 === 0 ? randomInt(next, 0, 70_000) : randomInt(next, 0, 5000);
      const pt = crypto.randomBytes(len);
      const aad = next() < 0.3 ? undefined : crypto.randomBytes(randomInt(next, 0, 300));
      const gpu = aead.seal(alg, key, nonce, pt, aad, { backend: 'cuda' });
      const cpu = aead.seal(alg, key, nonce, pt, aad, { backend: 'native' });
      expect(gpu.ciphertext.equals(cpu.ciphertext)).toBe(true);
      expect(gpu.tag.equals(cpu.tag)).toBe(true);
      expect(aead.open(alg, key, nonce, cpu.ciphertext, cpu.tag, aad, { backend: 'cuda' }).equals(pt)).toBe(true);
    }
  });

  test('a bad tag on the device is ERR_AUTH_FAILED', () => {
    const key = crypto.randomBytes(32);
    const nonce = crypto.randomBytes(12);
    const { ciphertext, tag } = aead.seal('aes-256-gcm', key, nonce, crypto.randomBytes(1000), undefined, { backend: 'cuda' });
    tag[0] ^= 1;
    expect(() => aead.open('aes-256-gcm', key, nonce, ciphertext, tag, undefined, { backend: 'cuda' })).toThrow(expect.objectContaining({ code: ErrorCodes.AUTH_FAILED }));
  });

  test('encryptBlocks in one launch: the CPU opens it, the GPU opens the CPU’s, tampering names the block', () => {
    const master = crypto.randomBytes(32);
    const gpu = new MemoryEncryption({ key: master, device: 'cuda' });
    const cpu = new MemoryEncryption({ key: master, device: 'cpu' });
    for (const blockSize of [1, 16, 64, 256, 4096]) {
      const data = crypto.randomBytes(blockSize * 1000);
      const aad = crypto.randomBytes(7);
      const sealed = gpu.encryptBlocks(data, blockSize, aad);
      expect(cpu.decryptBlocks(sealed, aad).equals(data)).toBe(true);
      expect(gpu.decryptBlocks(cpu.encryptBlocks(data, blockSize, aad), aad).equals(data)).toBe(true);
      const bad = Buffer.from(sealed);
      bad[29 + 500 * (16 + blockSize) + 3] ^= 1;
      expect(() => gpu.decryptBlocks(bad, aad)).toThrow(/Block 500 failed/);
    }
  });
});
