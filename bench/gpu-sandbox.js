// The K2K sandbox's share of `npm run bench:gpu`'s sweep: the whole
// checkMessages call (transfers included) on the native C++ checker and on
// CUDA, for batches of 4,096 to 4M messages, to measure where
// KernelSandbox's backend 'auto' should start using the GPU (CUDA_MIN_BATCH).
'use strict';
const { makeSandbox, makeTraffic } = require('./sandbox-traffic');
const { timeCalls, crossover } = require('./gpu-crypto');

/**
 * @param {typeof import('../lib/index')} gk
 * @param {{ cpu: string, gpu: string }} backends which backends stand for the CPU and the GPU (the test swaps in the CPU ones)
 */
function sandboxThresholdRows(gk, budgetMs = 150, backends = { cpu: 'native', gpu: 'cuda' }, largest = 1 << 22) {
  const group = "KernelSandbox backend 'auto' sweep (whole checkMessages call, transfers included)";
  const rows = [];
  const points = [];
  const cpuBox = makeSandbox(gk);
  const gpuBox = makeSandbox(gk);
  let now = 1;
  for (let n = 1 << 12; n <= largest; n *= 4) {
    const batch = makeTraffic(n, n);
    const out = new Uint8Array(n);
    const cpuMs = timeCalls(() => cpuBox.checkMessages(batch, now++, { backend: backends.cpu, out }), budgetMs);
    const gpuMs = timeCalls(() => gpuBox.checkMessages(batch, now++, { backend: backends.gpu, out }), budgetMs);
    points.push({ size: n, cpuMs, gpuMs });
    rows.push({ group, name: `${n} messages: GPU time / CPU time`, baseline: false, meanNs: (gpuMs * 1e6) / n, p50Ns: (gpuMs * 1e6) / n, p99Ns: (gpuMs * 1e6) / n, opsPerSec: n / (gpuMs / 1e3), samples: 1, cpuMs, gpuMs, note: `GPU ${(gpuMs / cpuMs).toFixed(2)}× the native checker's time` });
  }
  const from = crossover(points);
  rows.push({ group, name: 'measured crossover', baseline: false, meanNs: 0, p50Ns: 0, p99Ns: 0, opsPerSec: 0, samples: 1, batchFrom: from, note: `GPU faster from ${from ?? 'never (in the sweep)'} messages (set CUDA_MIN_BATCH from this)` });
  return rows;
}

module.exports = { sandboxThresholdRows };
