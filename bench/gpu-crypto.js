// AES-GCM figures for `npm run bench:gpu` (bench/suites/gpu.js), as rows in
// the harness's shape:
// - deviceRows(): data already on the GPU, CUDA events (the addon's
//   gcmBench/sealBlocksBench), what issue #6's GB/s targets are about;
// - thresholdRows(): host bytes in and out (transfers included), CPU vs GPU
//   over a sweep of sizes, to measure where MemoryEncryption's device
//   'auto' should start sending work to the GPU.
'use strict';
const crypto = require('node:crypto');
const { performance } = require('node:perf_hooks');

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const max = (xs) => xs.reduce((a, b) => Math.max(a, b), 0);
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const gbPerSec = (bytes, ms) => bytes / (ms * 1e6);

function row(group, name, msRuns, bytes, extra = {}) {
  const p50 = median(msRuns);
  return {
    group,
    name,
    baseline: false,
    meanNs: mean(msRuns) * 1e6,
    p50Ns: p50 * 1e6,
    p99Ns: max(msRuns) * 1e6,
    opsPerSec: 1e3 / mean(msRuns),
    samples: msRuns.length,
    gbPerSec: Number(gbPerSec(bytes, p50).toFixed(1)),
    note: `${gbPerSec(bytes, p50).toFixed(1)} GB/s at p50`,
    ...extra,
  };
}

/** @param {import('../lib/native/addon-types').CudaAddon} addon */
function deviceRows(addon, reps = 20) {
  const rows = [];
  const MiB64 = 64 << 20;
  for (const [keyBytes, name] of [[32, 'AES-256-GCM'], [16, 'AES-128-GCM']]) {
    const r = addon.gcmBench(keyBytes, MiB64, reps);
    const ctr = median([...r.ctrMs]);
    const ghash = median([...r.ghashMs]);
    const whole = [...r.wholeMs];
    rows.push(
      row(`${name} seal, 64 MiB already on the GPU (CUDA events)`, 'whole seal (host setup and tag included)', whole, MiB64, {
        ctrMsP50: ctr,
        ghashMsP50: ghash,
        note: `${gbPerSec(MiB64, median(whole)).toFixed(1)} GB/s at p50; CTR kernel ${ctr.toFixed(3)} ms (${gbPerSec(MiB64, ctr).toFixed(0)} GB/s), GHASH ${ghash.toFixed(3)} ms (${gbPerSec(MiB64, ghash).toFixed(0)} GB/s)`,
      }),
    );
  }
  for (const [blockSize, count] of [[4096, 4096], [4096, 16384], [256, 65536]]) {
    const r = addon.sealBlocksBench(blockSize, count, reps);
    rows.push(row(`encryptBlocks body, one launch, already on the GPU (CUDA events)`, `${count.toLocaleString('en-US')} × ${blockSize} B (AES-256-GCM)`, [...r.wholeMs], blockSize * count));
  }
  return rows;
}

// Median ms of fn over enough calls for ~`budgetMs` (at least 3).
function timeCalls(fn, budgetMs) {
  fn();
  const runs = [];
  const start = performance.now();
  while (runs.length < 3 || (performance.now() - start < budgetMs && runs.length < 200)) {
    const t = performance.now();
    fn();
    runs.push(performance.now() - t);
  }
  return median(runs);
}

// The smallest size from which the GPU was faster at every larger size too.
function crossover(points) {
  let from = null;
  for (let i = points.length - 1; i >= 0 && points[i].gpuMs < points[i].cpuMs; i--) from = points[i].size;
  return from;
}

// A sweep point: the GPU's time for a call doing `perCall` operations, with
// the CPU's beside it.
function sweepRow(group, name, cpuMs, gpuMs, perCall = 1, cpuName = "the CPU's") {
  const ns = (gpuMs * 1e6) / perCall;
  return { group, name, baseline: false, meanNs: ns, p50Ns: ns, p99Ns: ns, opsPerSec: perCall / (gpuMs / 1e3), samples: 1, cpuMs, gpuMs, note: `GPU ${(gpuMs / cpuMs).toFixed(2)}× ${cpuName} time` };
}

// The row that states where the GPU started winning (no timings of its own).
function crossoverRow(group, name, fields, note) {
  return { group, name, baseline: false, meanNs: 0, p50Ns: 0, p99Ns: 0, opsPerSec: 0, samples: 1, ...fields, note };
}

/** @param {typeof import('../lib/index')} gk */
function thresholdRows(gk, budgetMs = 150) {
  const rows = [];
  const key = crypto.randomBytes(32);
  const iv = crypto.randomBytes(12);
  const seal = [];
  for (let size = 4 << 10; size <= 16 << 20; size *= 4) {
    const data = crypto.randomBytes(size);
    const cpuMs = timeCalls(() => gk.aead.seal('aes-256-gcm', key, iv, data, undefined, { backend: 'native' }), budgetMs);
    const gpuMs = timeCalls(() => gk.aead.seal('aes-256-gcm', key, iv, data, undefined, { backend: 'cuda' }), budgetMs);
    seal.push({ size, cpuMs, gpuMs });
  }
  const group = "device 'auto' sweep (host bytes, transfers included)";
  for (const p of seal) {
    rows.push(sweepRow(group, `aead.seal AES-256-GCM ${p.size} B: GPU time / CPU time`, p.cpuMs, p.gpuMs));
  }
  const master = crypto.randomBytes(32);
  const cpu = new gk.MemoryEncryption({ key: master, device: 'cpu' });
  const gpu = new gk.MemoryEncryption({ key: master, device: 'cuda' });
  const blockSweeps = {};
  for (const blockSize of [256, 4096]) {
    const points = [];
    for (let count = 16; count <= 16384; count *= 4) {
      const data = crypto.randomBytes(blockSize * count);
      const cpuMs = timeCalls(() => cpu.encryptBlocks(data, blockSize), budgetMs);
      const gpuMs = timeCalls(() => gpu.encryptBlocks(data, blockSize), budgetMs);
      points.push({ size: count, cpuMs, gpuMs });
      rows.push(sweepRow(group, `encryptBlocks ${count} × ${blockSize} B: GPU time / CPU time`, cpuMs, gpuMs));
    }
    blockSweeps[blockSize] = crossover(points);
  }
  const bytesFrom = crossover(seal);
  rows.push(
    crossoverRow(
      group,
      'measured crossovers',
      { sealBytesFrom: bytesFrom, blocksFrom256: blockSweeps[256], blocksFrom4096: blockSweeps[4096] },
      `GPU faster from: aead.seal ${bytesFrom ?? 'never (in the sweep)'} B; encryptBlocks ${blockSweeps[256] ?? 'never'} × 256 B, ${blockSweeps[4096] ?? 'never'} × 4 KiB (set AUTO_GPU_MIN_BYTES / AUTO_GPU_MIN_BLOCKS from these)`,
    ),
  );
  return rows;
}

module.exports = { deviceRows, thresholdRows, timeCalls, crossover, sweepRow, crossoverRow };
