// GPU tests: run only where the CUDA backend is active (npm run test:gpu on a
// GPU machine); skipped elsewhere.
import { describe, expect, test } from 'vitest';
import { backends, gpuDevices, gpuSelfTest } from '../../lib/index';
import { mix32 } from '../helpers';
import { skipWithout } from '../prerequisites';

const onGpu = !skipWithout('a CUDA GPU', backends().gpu.kind === 'cuda' ? null : (backends().gpu.reason ?? 'CPU backend'), 'GUARDKERNEL_REQUIRE_GPU');

describe.runIf(onGpu)('CUDA devices', () => {
  test('device discovery reports name, compute capability and memory', () => {
    const devices = gpuDevices();
    expect(devices.length).toBeGreaterThan(0);
    for (const d of devices) {
      expect(d.name.length).toBeGreaterThan(0);
      expect(d.computeCapability).toMatch(/^\d+\.\d+$/);
      expect(Number(d.computeCapability.split('.')[0])).toBeGreaterThanOrEqual(7);
      expect(d.totalMemoryBytes).toBeGreaterThan(1 << 30);
      expect(d.multiprocessors).toBeGreaterThan(0);
    }
  });

  test('the self-test kernel runs and matches the host math', () => {
    const out = gpuSelfTest(0);
    expect(out.length).toBe(1000);
    for (let i = 0; i < out.length; i++) expect(out[i]).toBe(mix32((i ^ 0x9e3779b9) >>> 0));
  });

  test('a bad device index is a RangeError', () => {
    expect(() => gpuSelfTest(gpuDevices().length)).toThrow(RangeError);
    expect(() => gpuSelfTest(-1)).toThrow(RangeError);
  });
});
