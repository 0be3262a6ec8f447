// The GPU machine's scripts (bench/gpu-crypto.js, bench/gpu-sandbox.js,
// scripts/gpu-workload.js, scripts/device-check.sh) only run where a GPU is
// lent, and device time is short: run their code here with the CPU standing
// in for the device, so a slip in them cannot waste a device run. The
// figures mean nothing.
import { runSync } from './child';
import path from 'node:path';
import { expect, test } from 'vitest';
import * as gk from '../lib';
import { repoRoot } from './helpers';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { deviceRows, thresholdRows } = require('../bench/gpu-crypto.js');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { sandboxThresholdRows } = require('../bench/gpu-sandbox.js');

test('bench/gpu-crypto.js: device rows and the threshold sweep produce well-formed rows', () => {
  const ms = (n: number): Float64Array => Float64Array.from({ length: n }, (_, i) => 1 + i / 10);
  const fakeAddon = {
    gcmBench: (keyBytes: number, bytes: number, reps: number) => {
      expect([16, 32]).toContain(keyBytes);
      expect(bytes).toBe(64 << 20);
      return { wholeMs: ms(reps), ctrMs: ms(reps), ghashMs: ms(reps) };
    },
    sealBlocksBench: (_size: number, _count: number, reps: number) => ({ wholeMs: ms(reps) }),
  };
  const device = deviceRows(fakeAddon, 5);
  expect(device).toHaveLength(5);
  for (const r of device) {
    expect(r.p50Ns).toBeGreaterThan(0);
    expect(r.gbPerSec).toBeGreaterThan(0);
    expect(typeof r.note).toBe('string');
  }
  // 64 MiB in 1.2 ms (the median of 1.0..1.4) is 55.9 GB/s.
  expect(device[0].gbPerSec).toBeCloseTo((64 << 20) / 1.2e6, 1);

  // The CPU stands in for the GPU: aead 'cuda' -> 'native', MemoryEncryption 'cuda' -> 'cpu'.
  const standIn = {
    aead: { seal: (alg: 'aes-256-gcm', key: Buffer, iv: Buffer, data: Buffer) => gk.aead.seal(alg, key, iv, data, undefined, { backend: 'native' }) },
    MemoryEncryption: class extends gk.MemoryEncryption {
      constructor(options: { key: Uint8Array }) {
        super({ ...options, device: 'cpu' });
      }
    },
  };
  const sweep = thresholdRows(standIn, 1);
  const last = sweep[sweep.length - 1];
  expect(last.name).toBe('measured crossovers');
  expect(sweep.filter((r: { name: string }) => r.name.startsWith('aead.seal'))).toHaveLength(7);
  expect(sweep.filter((r: { name: string }) => r.name.startsWith('encryptBlocks'))).toHaveLength(12);
  for (const r of sweep.slice(0, -1)) expect(r.cpuMs > 0 && r.gpuMs > 0).toBe(true);
}, 60_000);

test('bench/gpu-sandbox.js: the sandbox sweep produces a row per size and a crossover row', () => {
  const rows = sandboxThresholdRows(gk, 1, { cpu: gk.backends().core.kind === 'native' ? 'native' : 'js', gpu: 'js' }, 1 << 14);
  expect(rows.map((r: { name: string }) => r.name)).toEqual(['4096 messages: GPU time / CPU time', '16384 messages: GPU time / CPU time', 'measured crossover']);
  for (const r of rows.slice(0, -1)) expect(r.cpuMs > 0 && r.gpuMs > 0 && r.p50Ns > 0).toBe(true);
}, 60_000);

test('scripts/gpu-workload.js: its checks pass with the CPU backends in place of the GPU ones, and it refuses to run without a GPU otherwise', () => {
  const script = path.join(repoRoot, 'scripts', 'gpu-workload.js');
  const dry = runSync(process.execPath, [script, '--cpu-dry-run'], { encoding: 'utf8' });
  expect(dry.stderr).toBe('');
  expect(dry.stdout).toContain('dry run on the CPU passed');
  expect(dry.status).toBe(0);
  if (gk.backends().gpu.kind !== 'cuda') {
    const real = runSync(process.execPath, [script], { encoding: 'utf8' });
    expect(real.status).toBe(2);
    expect(real.stderr).toContain('no CUDA backend');
  }
}, 60_000);

test('the device shell scripts parse', () => {
  for (const name of ['device-check.sh', 'device-kit.sh']) {
    const r = runSync('bash', ['-n', path.join(repoRoot, 'scripts', name)], { encoding: 'utf8' });
    expect(r.stderr, name).toBe('');
    expect(r.status, name).toBe(0);
  }
});
