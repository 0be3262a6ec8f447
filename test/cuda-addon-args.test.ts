// The CUDA addon's AES-GCM entry points, called directly: bad lengths are
// refused before any copy, and without a device every call fails with
// ERR_GPU_UNAVAILABLE instead of crashing. (test/gpu/ runs them on a device.)
import fs from 'node:fs';
import path from 'node:path';
import { expect, test } from 'vitest';
import { backends } from '../lib';
import type { CudaAddon } from '../lib/native/addon-types';
import { repoRoot } from './helpers';

const file = path.join(repoRoot, 'build-cuda', 'Release', 'guardkernel_cuda.node');
const addon: CudaAddon | null = fs.existsSync(file) ? (require(file) as CudaAddon) : null;
const b = (n: number): Buffer => Buffer.alloc(n);

test.runIf(addon !== null)('AES-GCM entry points refuse bad lengths', () => {
  const a = addon as CudaAddon;
  const bad: [string, () => unknown][] = [
    ['24-byte key', () => a.gcmSeal(b(24), b(12), b(5), b(0), b(5), b(16))],
    ['16-byte IV', () => a.gcmSeal(b(32), b(16), b(5), b(0), b(5), b(16))],
    ['short out', () => a.gcmSeal(b(32), b(12), b(5), b(0), b(4), b(16))],
    ['short tag buffer', () => a.gcmSeal(b(32), b(12), b(5), b(0), b(5), b(15))],
    ['string data', () => a.gcmSeal(b(32), b(12), 'x' as unknown as Uint8Array, b(0), b(5), b(16))],
    ['open: 15-byte tag', () => a.gcmOpen(b(32), b(12), b(5), b(0), b(15), b(5))],
    ['open: short out', () => a.gcmOpen(b(32), b(12), b(5), b(0), b(16), b(1))],
    ['blocks: 3-byte prefix', () => a.sealBlocks(b(32), b(29), b(3), 0, b(0), b(10), 5, b(100))],
    ['blocks: partial block', () => a.sealBlocks(b(32), b(29), b(4), 0, b(0), b(10), 3, b(100))],
    ['blocks: block size 0', () => a.sealBlocks(b(32), b(29), b(4), 0, b(0), b(10), 0, b(100))],
    ['blocks: negative counter', () => a.sealBlocks(b(32), b(29), b(4), -1, b(0), b(10), 5, b(100))],
    ['blocks: fractional counter', () => a.sealBlocks(b(32), b(29), b(4), 0.5, b(0), b(10), 5, b(100))],
    ['blocks: short out', () => a.sealBlocks(b(32), b(29), b(4), 0, b(0), b(10), 5, b(41))],
    ['open blocks: not whole sealed blocks', () => a.openBlocks(b(32), b(29), b(4), 0, b(0), b(20), 5, b(100))],
    ['too few arguments', () => (a.gcmSeal as (...x: unknown[]) => void)(b(32))],
    ['bench: 24-byte key', () => a.gcmBench(24 as 32, 1024, 1)],
    ['bench: 0 bytes', () => a.gcmBench(32, 0, 1)],
    ['bench: 0 reps', () => a.gcmBench(32, 1024, 0)],
    ['bench: 1,001 reps', () => a.gcmBench(32, 1024, 1001)],
    ['bench: fractional size', () => a.gcmBench(16, 10.5, 1)],
    ['blocks bench: block size 0', () => a.sealBlocksBench(0, 10, 1)],
    ['blocks bench: block size 2^24 + 1', () => a.sealBlocksBench(2 ** 24 + 1, 10, 1)],
    ['blocks bench: 0 blocks', () => a.sealBlocksBench(16, 0, 1)],
    ['blocks bench: string reps', () => a.sealBlocksBench(16, 10, '1' as unknown as number)],
  ];
  for (const [name, call] of bad) expect(call, name).toThrow();
});

test.runIf(addon !== null && backends().gpu.kind !== 'cuda')('without a device, every AES-GCM call is ERR_GPU_UNAVAILABLE', () => {
  const a = addon as CudaAddon;
  const gpuError = expect.objectContaining({ code: 'ERR_GPU_UNAVAILABLE' });
  expect(() => a.gcmSeal(b(32), b(12), b(5), b(0), b(5), b(16))).toThrow(gpuError);
  expect(() => a.gcmOpen(b(16), b(12), b(5), b(3), b(16), b(5))).toThrow(gpuError);
  expect(() => a.sealBlocks(b(32), b(29), b(4), 0, b(0), b(10), 5, b(42))).toThrow(gpuError);
  expect(() => a.openBlocks(b(32), b(29), b(4), 0, b(0), b(42), 5, b(10))).toThrow(gpuError);
  expect(() => a.gcmBench(32, 1024, 1)).toThrow(gpuError);
  expect(() => a.sealBlocksBench(4096, 16, 1)).toThrow(gpuError);
});

test.runIf(addon !== null)('device memory entry points refuse foreign handles and bad sizes; without a device, allocation is ERR_GPU_UNAVAILABLE', () => {
  const a = addon as CudaAddon;
  const notAHandle = {} as never;
  expect(() => a.deviceFree(notAHandle)).toThrow(TypeError);
  expect(() => a.deviceRead(notAHandle, b(1), 0)).toThrow(TypeError);
  expect(() => a.deviceWrite(notAHandle, b(1), 0)).toThrow(TypeError);
  expect(() => a.deviceCopy(notAHandle, 0, notAHandle)).toThrow(TypeError);
  expect(() => a.gcmSealDevice(b(32), b(12), b(0), notAHandle, 0, 0, notAHandle, 0, b(16))).toThrow(TypeError);
  expect(() => a.gcmOpenDevice(b(32), b(12), b(0), notAHandle, 0, 0, b(16), notAHandle, 0)).toThrow(TypeError);
  expect(() => a.gcmSealDevice(b(24), b(12), b(0), notAHandle, 0, 0, notAHandle, 0, b(16))).toThrow(RangeError);
  expect(() => a.deviceAlloc(-1)).toThrow(RangeError);
  expect(() => a.deviceAlloc(1.5)).toThrow(RangeError);
  if (backends().gpu.kind !== 'cuda') {
    expect(() => a.deviceAlloc(16)).toThrow(expect.objectContaining({ code: 'ERR_GPU_UNAVAILABLE' }));
    expect(a.liveDeviceBuffers()).toBe(0);
  }
});
