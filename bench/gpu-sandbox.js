// The K2K sandbox's share of `npm run bench:gpu`'s sweep: the whole
// checkMessages call (transfers included) on the native C++ checker and on
// CUDA, for batches of 4,096 to 4M messages, to measure where
// KernelSandbox's backend 'auto' should start using the GPU (CUDA_MIN_BATCH).
'use strict';
const { makeSandbox, makeTraffic } = require('./sandbox-traffic');
const { timeCalls, crossover, sweepRow, crossoverRow } = require('./gpu-crypto');

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
    rows.push(sweepRow(group, `${n} messages: GPU time / CPU time`, cpuMs, gpuMs, n, "the native checker's"));
  }
  const from = crossover(points);
  rows.push(crossoverRow(group, 'measured crossover', { batchFrom: from }, `GPU faster from ${from ?? 'never (in the sweep)'} messages (set CUDA_MIN_BATCH from this)`));
  return rows;
}

module.exports = { sandboxThresholdRows };
