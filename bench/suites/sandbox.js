// KernelSandbox.checkMessages on 1M-message batches, one thread: the C++
// checker vs the TypeScript checker on the same traffic (1,024 kernels, 64
// topics, every rule active: ACL with a deny list, topic list, connection
// limit, token buckets, memory), ~5% of messages refused.
'use strict';
const gk = require('../../dist/index.js');
const { runCases } = require('../harness');

const N = 1 << 20;
const KERNELS = 1024;
const TOPICS = 64;

function makeSandbox() {
  const limits = new gk.ResourceLimits()
    .maxMemoryBytes(2 ** 52)
    .maxMessagesPerSecond(1e9)
    .maxK2kConnections(KERNELS)
    .maxExecutionTime(60_000);
  const policy = gk.SandboxPolicy.permissive().denyK2kTo(['admin_*']).allowTopics(['public.*', 'metrics.*']);
  const box = new gk.KernelSandbox(limits, policy);
  for (let k = 0; k < KERNELS; k++) box.registerKernel(k % 50 === 0 ? `admin_${k}` : `worker_${k}`);
  for (let t = 0; t < TOPICS; t++) box.registerTopic(t % 32 === 0 ? `private.${t}` : `public.${t}`);
  return box;
}

let seed = 12345;
const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
const batch = { src: new Uint32Array(N), dst: new Uint32Array(N), topic: new Uint32Array(N), bytes: new Uint32Array(N) };
for (let i = 0; i < N; i++) {
  batch.src[i] = Math.floor(rand() * KERNELS);
  batch.dst[i] = Math.floor(rand() * KERNELS);
  batch.topic[i] = Math.floor(rand() * TOPICS);
  batch.bytes[i] = Math.floor(rand() * 256);
}
const out = new Uint8Array(N);
const jsBox = makeSandbox();
const nativeBox = makeSandbox();
let now = 1;
// Show the mix once, on stderr.
const mix = makeSandbox().checkMessages(batch, 0).violations;
process.stderr.write(`sandbox bench mix: ${JSON.stringify(mix.byVerdict)}\n`);

const cases = [
  { group: 'checkMessages, 1M-message batch (per message)', name: 'TypeScript checker', baseline: true, perOpDivisor: N, fn: () => { jsBox.checkMessages(batch, now++, { backend: 'js', out }); } },
];
if (gk.backends().core.kind === 'native') {
  cases.push({ group: 'checkMessages, 1M-message batch (per message)', name: 'native C++ checker', perOpDivisor: N, fn: () => { nativeBox.checkMessages(batch, now++, { backend: 'native', out }); } });
}
runCases('sandbox', cases, { time: 1500 }).catch((e) => {
  console.error(e);
  process.exit(1);
});
