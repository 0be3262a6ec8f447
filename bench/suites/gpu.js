// `npm run bench:gpu`: AES-GCM on the GPU (one large message, many control
// blocks) with the data already on the device (CUDA events) and with host
// bytes (transfers included) against the CPU, the sweep that measures device
// 'auto''s thresholds (bench/gpu-crypto.js), and the K2K sandbox on the GPU
// for 16M-message batches, with transfers (the whole checkMessages call) and
// without (device work alone, timed inside the addon between
// synchronizations), vs the native C++ checker on the same batch. Measures
// nothing without a GPU.
'use strict';
const gk = require('../../dist/index.js');
const { runCases } = require('../harness');
const { gpuBackend } = require('../../dist/native/loader.js');
const { KERNELS, TOPICS, kernelName, topicName, makePolicy, makeSandbox, makeTraffic } = require('../sandbox-traffic');
const { deviceRows, thresholdRows } = require('../gpu-crypto');
const { sandboxThresholdRows } = require('../gpu-sandbox');

const N = 1 << 24;
const ROUNDS = 8;

const gpu = gpuBackend();
if (gpu.kind !== 'cuda') {
  process.stderr.write(`bench gpu: no CUDA backend (${gpu.reason}); nothing measured\n`);
  process.stdout.write('[]\n');
  process.exit(0);
}

const batch = makeTraffic(N, 99);
const out = new Uint8Array(N);
const gpuBox = makeSandbox(gk);
const cpuBox = makeSandbox(gk);
let now = 1;

// Device work alone: the addon's own timings over a few whole calls.
function deviceOnlyRow() {
  const { SandboxState } = require('../../dist/k2k/state.js');
  const s = new SandboxState(1e9, 2 ** 52, KERNELS, false);
  const policy = makePolicy(gk);
  for (let k = 0; k < KERNELS; k++) s.addKernel(policy.allowsK2kTo(kernelName(k)));
  for (let t = 0; t < TOPICS; t++) s.addTopic(policy.allowsTopic(topicName(t)));
  const timings = new Float64Array(2);
  const counts = new Float64Array(8);
  const compute = [];
  const whole = [];
  for (let r = 0; r < ROUNDS + 1; r++) {
    gpu.addon.sandboxCheck(s.params, s.kernelF64, s.kernelI32, s.violations, s.dstAllowed, s.topicAllowed, s.connBits, batch.src, batch.dst, batch.topic, batch.bytes, now++, out, counts, timings);
    if (r > 0) { whole.push(timings[0]); compute.push(timings[1]); } // first call warms up
  }
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const row = (name, ms) => ({ group: 'checkMessages, 16M-message batch (per message)', name, baseline: false, meanNs: (mean(ms) * 1e6) / N, p50Ns: (ms.sort((a, b) => a - b)[ms.length >> 1] * 1e6) / N, p99Ns: (Math.max(...ms) * 1e6) / N, opsPerSec: N / (mean(ms) / 1e3), samples: ms.length });
  return [row('CUDA, device work only (transfers excluded)', compute), row('CUDA, whole call timed in the addon (transfers included)', whole)];
}

// AES-GCM: one 16 MiB message, and 65,536 control blocks of 256 B.
const crypto = require('node:crypto');
const aesKey = crypto.randomBytes(32);
const aesIv = crypto.randomBytes(12);
const big = crypto.randomBytes(16 << 20);
const master = crypto.randomBytes(32);
const gpuEnc = new gk.MemoryEncryption({ key: master, device: 'cuda' });
const cpuEnc = new gk.MemoryEncryption({ key: master, device: 'cpu' });
const controlBlocks = crypto.randomBytes(65536 * 256);
const pages = crypto.randomBytes(4096 * 4096);

runCases('gpu', [
  { group: 'AES-256-GCM seal, 16 MiB (per byte)', name: 'aead.seal native (OpenSSL, one core)', baseline: true, perOpDivisor: 16 << 20, fn: () => { gk.aead.seal('aes-256-gcm', aesKey, aesIv, big, undefined, { backend: 'native' }); } },
  { group: 'AES-256-GCM seal, 16 MiB (per byte)', name: 'aead.seal cuda (transfers included)', perOpDivisor: 16 << 20, fn: () => { gk.aead.seal('aes-256-gcm', aesKey, aesIv, big, undefined, { backend: 'cuda' }); } },
  { group: 'encryptBlocks, 65,536 × 256 B (per block)', name: 'CPU (OpenSSL, one native call)', baseline: true, perOpDivisor: 65536, fn: () => { cpuEnc.encryptBlocks(controlBlocks, 256); } },
  { group: 'encryptBlocks, 65,536 × 256 B (per block)', name: 'CUDA, one launch (transfers included)', perOpDivisor: 65536, fn: () => { gpuEnc.encryptBlocks(controlBlocks, 256); } },
  { group: 'encryptBlocks, 4,096 × 4 KiB (per block)', name: 'CPU (OpenSSL, one native call)', baseline: true, perOpDivisor: 4096, fn: () => { cpuEnc.encryptBlocks(pages, 4096); } },
  { group: 'encryptBlocks, 4,096 × 4 KiB (per block)', name: 'CUDA, one launch (transfers included)', perOpDivisor: 4096, fn: () => { gpuEnc.encryptBlocks(pages, 4096); } },
  { group: 'checkMessages, 16M-message batch (per message)', name: 'native C++ checker (one core)', baseline: true, perOpDivisor: N, fn: () => { cpuBox.checkMessages(batch, now++, { backend: 'native', out }); } },
  { group: 'checkMessages, 16M-message batch (per message)', name: 'CUDA via KernelSandbox.checkMessages (transfers included)', perOpDivisor: N, fn: () => { gpuBox.checkMessages(batch, now++, { backend: 'cuda', out }); } },
], { time: 1500, warmupTime: 300, extraRows: async () => [...deviceOnlyRow(), ...deviceRows(gpu.addon), ...thresholdRows(gk), ...sandboxThresholdRows(gk)] }).catch((e) => {
  console.error(e);
  process.exit(1);
});
