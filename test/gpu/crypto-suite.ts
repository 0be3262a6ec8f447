// The CUDA AES-GCM and DeviceBuffer tests, written once for two runners:
// test/gpu/crypto.test.ts on a real device, at full sizes, and
// test/cuda-emulated.test.ts on the CPU emulator of test/native/cuda_emu/,
// at sizes an emulator can afford (its grid is capped lower, so the same
// grid-stride paths still run).
import crypto from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { DeviceBuffer, ErrorCodes, GuardError, MemoryEncryption, aead } from '../../lib/index';
import { gpuBackend } from '../../lib/native/loader';
import { randomInt, rng } from '../helpers';

export interface CryptoSizes {
  /** Random (key, nonce, aad, plaintext) cases; every 40th is up to 70,000 bytes, the rest up to 5,000. */
  randomInputs: number;
  /** Messages that cross GHASH thread blocks (128 KiB each) and make the CTR grid stride. */
  largeMessages: number[];
  /** [blockSize, count] for encryptBlocks: every lane-group size, and more blocks than the grid has warps. */
  blockCases: Array<[number, number]>;
  /** Plaintext sizes for envelopes kept on the device. */
  envelopeSizes: number[];
}

export function cudaCryptoSuite(name: string, sizes: CryptoSizes): void {
  describe(`${name}: CUDA AES-GCM`, () => {
    test(`seal and open equal node:crypto on ${sizes.randomInputs} random inputs of 0 to 70,000 bytes`, () => {
      const next = rng(99);
      for (let i = 0; i < sizes.randomInputs; i++) {
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
    }, 600_000);

    test('large messages: many GHASH thread blocks, partial blocks, AAD, and a CTR grid stride', () => {
      const next = rng(7);
      for (const len of sizes.largeMessages) {
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
    }, 600_000);

    test('a bad tag on the device is ERR_AUTH_FAILED', () => {
      const key = crypto.randomBytes(32);
      const nonce = crypto.randomBytes(12);
      const { ciphertext, tag } = aead.seal('aes-256-gcm', key, nonce, crypto.randomBytes(1000), undefined, { backend: 'cuda' });
      tag[0] ^= 1;
      expect(() => aead.open('aes-256-gcm', key, nonce, ciphertext, tag, undefined, { backend: 'cuda' })).toThrow(expect.objectContaining({ code: ErrorCodes.AUTH_FAILED }));
    }, 600_000);

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
    }, 600_000);

    // Groups of 1 to 32 lanes per block (several blocks per warp below 497
    // bytes), lanes with several 16-byte blocks each and a partial last one;
    // and more blocks than the grid has warps, so warps loop.
    test('encryptBlocks: small, large and odd block sizes, and more blocks than warps in the grid', () => {
      const master = crypto.randomBytes(32);
      const gpu = new MemoryEncryption({ key: master, device: 'cuda' });
      const cpu = new MemoryEncryption({ key: master, device: 'cpu' });
      for (const [blockSize, count] of sizes.blockCases) {
        const data = crypto.randomBytes(blockSize * count);
        const sealed = gpu.encryptBlocks(data, blockSize);
        expect(cpu.decryptBlocks(sealed).equals(data), `${count} × ${blockSize}`).toBe(true);
        expect(gpu.decryptBlocks(cpu.encryptBlocks(data, blockSize)).equals(data), `${count} × ${blockSize}`).toBe(true);
        const bad = Buffer.from(sealed);
        bad[29 + (count - 1) * (16 + blockSize)] ^= 0x80; // the last block's tag
        expect(() => gpu.decryptBlocks(bad)).toThrow(new RegExp(`Block ${count - 1} failed`));
      }
    }, 600_000);
  });

  describe(`${name}: DeviceBuffer in device memory`, () => {
    test('alloc, from, copyFrom (host and device), toHost, free; double free and use after free', () => {
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
    }, 600_000);

    test('encrypt and decrypt keep DeviceBuffers on the device; envelopes match the CPU format', () => {
      const master = crypto.randomBytes(32);
      const gpu = new MemoryEncryption({ key: master, device: 'cuda' });
      const cpu = new MemoryEncryption({ key: master, device: 'cpu' });
      for (const size of sizes.envelopeSizes) {
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
    }, 600_000);

    test('forgotten device buffers are freed by their finalizers', async () => {
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
    }, 600_000);
  });
}
