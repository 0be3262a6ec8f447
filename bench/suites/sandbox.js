// KernelSandbox.checkMessages on 1M-message batches, one thread: the C++
// checker vs the TypeScript checker on the same traffic (1,024 kernels, 64
// topics, every rule active: ACL with a deny list, topic list, connection
// limit, token buckets, memory), ~5% of messages refused.
'use strict';
const gk = require('../../dist/index.js');
const { runCases } = require('../harness');
const { makeSandbox, makeTraffic } = require('../sandbox-traffic');

const N = 1 << 20;
const batch = makeTraffic(N, 12345);
const out = new Uint8Array(N);
const jsBox = makeSandbox(gk);
const nativeBox = makeSandbox(gk);
let now = 1;
// Show the mix once, on stderr.
const mix = makeSandbox(gk).checkMessages(batch, 0).violations;
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
