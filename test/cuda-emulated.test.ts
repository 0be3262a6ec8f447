// The CUDA backend with no GPU: the addon's own sources built with g++ over a
// CPU emulator of the CUDA runtime (test/cuda-emulator.ts), put in place of
// lib/native's GPU backend for this file. The library's 'cuda' paths, the
// bindings, every launch and every kernel then run here, in CI, through the
// same suites test/gpu/ runs on a device (smaller sizes; the emulated grid is
// capped at 64 blocks so the grid-stride loops still run). Also: device
// copies of plaintext are wiped before they are freed, nothing is left
// allocated, the bench entry points run, and the emulator refuses what a GPU
// refuses. Under `npm run test:asan` the emulated addon is built with
// ASan/UBSan, which then checks every device access the kernels make.
import { runSync } from './child';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test, vi } from 'vitest';
import { DeviceBuffer, MemoryEncryption, aead, backends } from '../lib/index';
import { gpuBackend } from '../lib/native/loader';
import { mix32 } from './helpers';
import { skipWithout } from './prerequisites';
import { buildEmulatorSelfCheck, emulatorMissing, pruneEmulatorCache } from './cuda-emulator';
import { cudaCryptoSuite } from './gpu/crypto-suite';
import { cudaSandboxSuite } from './gpu/sandbox-suite';

vi.mock('../lib/native/loader', async (importOriginal) => {
  const real = await importOriginal<typeof import('../lib/native/loader')>();
  const emulator = await import('./cuda-emulator');
  if (emulator.emulatorMissing !== null) return real;
  const gpu = await emulator.emulatedGpu();
  return {
    ...real,
    gpuBackend: () => gpu,
    backends: () => ({ ...real.backends(), gpu: { kind: 'cuda' as const, devices: gpu.devices, path: gpu.path } }),
  };
});

const emulated = !skipWithout('the CUDA emulator (g++ and the CUDA toolkit headers)', emulatorMissing);

test('the emulator cache drops builds unused for a week, and keeps the rest and the one in use', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-emu-cache-'));
  const day = 24 * 3600 * 1000;
  const now = Date.now();
  const make = (name: string, ageDays: number): string => {
    const dir = path.join(root, name);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'guardkernel_cuda.node'), 'x');
    const at = new Date(now - ageDays * day);
    fs.utimesSync(dir, at, at);
    return dir;
  };
  make('stale', 8);
  make('recent', 6);
  const inUse = make('in-use', 30);
  pruneEmulatorCache(root, inUse, now);
  expect(fs.readdirSync(root).sort()).toEqual(['in-use', 'recent']);
  pruneEmulatorCache(path.join(root, 'missing'), inUse, now); // no cache yet: nothing to do
  fs.rmSync(root, { recursive: true, force: true });
});

describe.runIf(emulated)('the CUDA emulator', () => {
  test('is the GPU backend in this file, and its self-test kernel matches the host math', () => {
    const gpu = backends().gpu;
    expect(gpu.kind).toBe('cuda');
    expect(gpu.devices[0].name).toBe('guardkernel CUDA emulator (CPU)');
    const addon = gpuBackend().addon!;
    const out = addon.selfTest(0);
    expect(out.length).toBe(1000);
    for (let i = 0; i < out.length; i++) expect(out[i]).toBe(mix32((i ^ 0x9e3779b9) >>> 0));
  });

  test('computes barriers and shuffles as a GPU does, gives each block noise for shared memory, and refuses what a GPU refuses', async () => {
    const exe = await buildEmulatorSelfCheck();
    const ok = runSync(exe, ['ok'], { encoding: 'utf8' });
    expect(ok.stdout).toBe('wrong 0\n');
    expect(ok.status).toBe(0);
    const refusals = runSync(exe, ['refusals'], { encoding: 'utf8' });
    expect(refusals.status).toBe(0);
    expect(refusals.stdout.trim().split('\n')).toEqual([
      'host-pointer-argument cudaErrorInvalidDevicePointer',
      'host-memory-untouched 1',
      'block-of-2048 cudaErrorInvalidConfiguration',
      'grid-of-0 cudaErrorInvalidConfiguration',
      'valid-launch cudaSuccess',
      'memcpy-wrong-direction cudaErrorInvalidValue',
      'memcpy-past-the-end cudaErrorInvalidValue',
      'memcpy-in-range cudaSuccess',
      'kernel-wrote 1',
      'memset-past-the-end cudaErrorInvalidValue',
      'free cudaSuccess',
      'double-free cudaErrorInvalidDevicePointer',
    ]);
    // Shared memory a kernel reads before writing holds fresh noise in every
    // block, not zeros or what the previous block (or launch) left there.
    const stale = runSync(exe, ['stale-shared'], { encoding: 'utf8' });
    expect(stale.status).toBe(0);
    expect(stale.stdout).toBe('zeros 0 stale 0 repeated 0\n');
    const barrier = runSync(exe, ['divergent-barrier'], { encoding: 'utf8' });
    expect(barrier.status).not.toBe(0);
    expect(barrier.stdout).not.toContain('returned');
    expect(barrier.stderr).toMatch(/returned while others wait at __syncthreads/);
    const shuffle = runSync(exe, ['half-warp-shuffle'], { encoding: 'utf8' });
    expect(shuffle.status).not.toBe(0);
    expect(shuffle.stderr).toMatch(/waits at a shuffle|deadlock/);
  }, 120_000);

  // GK_EMU_REPORT gets a line per cudaMalloc/cudaFree; GK_EMU_CANARY names
  // bytes to look for in memory as it is freed.
  test('device copies of plaintext are wiped before they are freed, and nothing stays allocated', () => {
    const report = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gk-emu-report-')), 'report.txt');
    const canary = crypto.randomBytes(16);
    const plaintext = Buffer.concat([crypto.randomBytes(1000), canary, crypto.randomBytes(70_000), canary, crypto.randomBytes(333)]);
    const frees = (): string[] => fs.readFileSync(report, 'utf8').split('\n').filter((l) => l.startsWith('free '));
    process.env.GK_EMU_REPORT = report;
    process.env.GK_EMU_CANARY = canary.toString('hex');
    try {
      const key = crypto.randomBytes(32);
      const nonce = crypto.randomBytes(12);
      const sealed = aead.seal('aes-256-gcm', key, nonce, plaintext, undefined, { backend: 'cuda' });
      expect(aead.open('aes-256-gcm', key, nonce, sealed.ciphertext, sealed.tag, undefined, { backend: 'cuda' }).equals(plaintext)).toBe(true);
      const me = new MemoryEncryption({ key: crypto.randomBytes(32), device: 'cuda' });
      const blocks = me.encryptBlocks(plaintext.subarray(0, 64 * 1000), 64);
      expect(me.decryptBlocks(blocks).equals(plaintext.subarray(0, 64 * 1000))).toBe(true);
      const tampered = Buffer.from(blocks);
      tampered[tampered.length - 1] ^= 1; // every block but the last opens: their plaintext is on the device
      expect(() => me.decryptBlocks(tampered)).toThrow(/failed/);
      const onDevice = DeviceBuffer.from(plaintext, { device: 'cuda' });
      const envelope = me.encrypt(onDevice) as DeviceBuffer;
      const opened = me.decrypt(envelope) as DeviceBuffer;
      expect(opened.toHost().equals(plaintext)).toBe(true);
      for (const b of [onDevice, envelope, opened]) b.free();

      const lines = frees();
      expect(lines.length).toBeGreaterThan(10);
      expect(lines.filter((l) => l.endsWith('canary=1'))).toEqual([]);
      const live = fs.readFileSync(report, 'utf8').trim().split('\n').pop()!;
      expect(Number(/live=(\d+)/.exec(live)![1])).toBe(gpuBackend().addon!.liveDeviceBuffers());

      // The detector itself: the sealed input of decryptBlocks is ciphertext,
      // which its device copy keeps unwiped, so that free holds this canary.
      fs.writeFileSync(report, '');
      process.env.GK_EMU_CANARY = blocks.subarray(29 + 5 * (16 + 64), 29 + 5 * (16 + 64) + 16).toString('hex');
      me.decryptBlocks(blocks);
      expect(frees().filter((l) => l.endsWith('canary=1')).length).toBe(1);
    } finally {
      delete process.env.GK_EMU_REPORT;
      delete process.env.GK_EMU_CANARY;
    }
  });

  test('the bench entry points time seals on the device and free what they allocate', () => {
    const addon = gpuBackend().addon!;
    const before = addon.liveDeviceBuffers();
    for (const keyBytes of [16, 32] as const) {
      const r = addon.gcmBench(keyBytes, (1 << 18) + 5, 2);
      for (const series of [r.wholeMs, r.ctrMs, r.ghashMs]) {
        expect(series.length).toBe(2);
        for (const ms of series) expect(ms).toBeGreaterThan(0);
      }
    }
    const blocks = addon.sealBlocksBench(4096, 100, 2);
    expect(blocks.wholeMs.length).toBe(2);
    expect(addon.liveDeviceBuffers()).toBe(before);
  });
});

describe.runIf(emulated)('on the CUDA emulator', () => {
  cudaCryptoSuite('emulator', {
    randomInputs: 240,
    // GHASH thread blocks hold 128 KiB; with 64 blocks of threads the CTR grid strides past 256 KiB.
    largeMessages: [128 << 10, (128 << 10) + 1, (1 << 20) + 3, (2 << 20) + 5, (129 << 20) + 7],
    // 20,000 × 16 B and 1,100 × 512 B: more blocks than the grid's 64 × 8 warps hold.
    blockCases: [[17, 1001], [40, 999], [100, 333], [257, 300], [513, 300], [8213, 20], [100_000, 3], [16, 20_000], [512, 1100]],
    envelopeSizes: [0, 1, 15, 16, 1000, 1 << 20],
  });
  cudaSandboxSuite('emulator', { seeds: 15, alternatingSeeds: 8, maxBatch: 20_000, bigBatch: 1 << 18 });
});
