// AES-GCM on the device: the CUDA kernels against node:crypto, and
// MemoryEncryption's block envelopes sealed with one launch against the CPU
// path. Skipped without a GPU.
import crypto from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { DeviceBuffer, ErrorCodes, MemoryEncryption, aead, backends } from '../../lib/index';
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

  // 128 KiB is one block of 256 GHASH threads (32 blocks of 16 bytes each);
  // past 256 MiB the CTR kernel's grid (65,535 blocks of 256 threads) strides.
  test('large messages: many GHASH thread blocks, partial blocks, AAD, and a CTR grid stride', () => {
    const next = rng(7);
    for (const len of [128 << 10, (128 << 10) + 1, (1 << 20) + 3, (9 << 20) + 5, (64 << 20) - 1, (260 << 20) + 7]) {
      const alg = len % 2 === 0 ? 'aes-256-gcm' : 'aes-128-gcm';
      const key = crypto.randomBytes(alg === 'aes-256-gcm' ? 32 : 16);
      const nonce = crypto.randomBytes(12);
      const pt = crypto.randomBytes(len);
      const aad = crypto.randomBytes(randomInt(next, 1, 100));
      const gpu = aead.seal(alg, key, nonce, pt, aad, { backend: 'cuda' });
      const cpu = aead.seal(alg, key, nonce, pt, aad, { backend: 'native' });
      expect(gpu.tag.equals(cpu.tag), `tag, ${len} bytes`).toBe(true);
      expect(gpu.ciphertext.equals(cpu.ciphertext), `ciphertext, ${len} bytes`).toBe(true);
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

  // Groups of 1 to 32 lanes per block (several blocks per warp below 497
  // bytes), lanes with several 16-byte blocks each and a partial last one;
  // and more 512-byte blocks than the grid has warps (65,535 × 8), so warps loop.
  test('encryptBlocks: small, large and odd block sizes, and more blocks than warps in the grid', () => {
    const master = crypto.randomBytes(32);
    const gpu = new MemoryEncryption({ key: master, device: 'cuda' });
    const cpu = new MemoryEncryption({ key: master, device: 'cpu' });
    for (const [blockSize, count] of [[17, 1001], [40, 999], [100, 333], [257, 300], [513, 300], [8213, 100], [100_000, 9], [16, 600_000], [512, 530_000]]) {
      const data = crypto.randomBytes(blockSize * count);
      const sealed = gpu.encryptBlocks(data, blockSize);
      expect(cpu.decryptBlocks(sealed).equals(data), `${count} × ${blockSize}`).toBe(true);
      expect(gpu.decryptBlocks(cpu.encryptBlocks(data, blockSize)).equals(data), `${count} × ${blockSize}`).toBe(true);
      const bad = Buffer.from(sealed);
      bad[29 + (count - 1) * (16 + blockSize)] ^= 0x80; // the last block's tag
      expect(() => gpu.decryptBlocks(bad)).toThrow(new RegExp(`Block ${count - 1} failed`));
    }
  });
});

describe.runIf(onGpu)('DeviceBuffer in device memory', () => {
  test('alloc, from, copyFrom (host and device), toHost, free; double free and use after free', async () => {
    const { GuardError } = await import('../../lib/index');
    const a = DeviceBuffer.alloc(8, { device: 'cuda' });
    expect(a.backend).toBe('cuda');
    expect(a.toHost().equals(Buffer.alloc(8))).toBe(true);
    a.copyFrom(Buffer.from([1, 2, 3]), 5);
    a.copyFrom(DeviceBuffer.from(Buffer.from([9]), { device: 'cuda' }), 0);
    a.copyFrom(DeviceBuffer.from(Buffer.from([7]), { device: 'cpu' }), 1);
    expect([...a.toHost()]).toEqual([9, 7, 0, 0, 0, 1, 2, 3]);
    expect(() => a.copyFrom(Buffer.alloc(4), 5)).toThrow(RangeError);
    a.free();
    expect(() => a.free()).toThrow(GuardError);
    expect(() => a.toHost()).toThrow(expect.objectContaining({ code: ErrorCodes.CLOSED }));
  });

  test('encrypt and decrypt keep DeviceBuffers on the device; envelopes match the CPU format', async () => {
    const master = crypto.randomBytes(32);
    const gpu = new MemoryEncryption({ key: master, device: 'cuda' });
    const cpu = new MemoryEncryption({ key: master, device: 'cpu' });
    for (const size of [0, 1, 15, 16, 1000, 1 << 20]) {
      const data = crypto.randomBytes(size);
      const aad = Buffer.from('cb');
      const env = gpu.encrypt(DeviceBuffer.from(data, { device: 'cuda' }), aad) as DeviceBuffer;
      expect(env.backend).toBe('cuda');
      expect((cpu.decrypt(env.toHost(), aad) as Buffer).equals(data)).toBe(true);
      const back = gpu.decrypt(DeviceBuffer.from(cpu.encrypt(data, aad) as Buffer, { device: 'cuda' }), aad) as DeviceBuffer;
      expect(back.backend).toBe('cuda');
      expect(back.toHost().equals(data)).toBe(true);
      const bad = env.toHost();
      bad[bad.length - 1] ^= 1;
      if (size > 0) expect(() => gpu.decrypt(DeviceBuffer.from(bad, { device: 'cuda' }), aad)).toThrow(expect.objectContaining({ code: ErrorCodes.AUTH_FAILED }));
    }
  });

  test('forgotten device buffers are freed by their finalizers', async () => {
    const { gpuBackend } = await import('../../lib/native');
    const addon = gpuBackend().addon!;
    const before = addon.liveDeviceBuffers();
    for (let i = 0; i < 200; i++) DeviceBuffer.alloc(1 << 16, { device: 'cuda' });
    expect(addon.liveDeviceBuffers()).toBeGreaterThanOrEqual(before + 200);
    const gc = (globalThis as { gc?: () => void }).gc;
    if (gc !== undefined) {
      for (let i = 0; i < 10; i++) {
        gc();
        await new Promise((r) => setImmediate(r));
      }
      expect(addon.liveDeviceBuffers()).toBeLessThan(before + 200);
    }
  });
});
