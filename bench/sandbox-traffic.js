// The K2K sandbox bench setup shared by the sandbox and gpu suites: 1,024
// kernels (every 50th an admin kernel the policy refuses), 64 topics (two of
// them private), every rule active, and a reproducible random batch.
'use strict';

const KERNELS = 1024;
const TOPICS = 64;

const kernelName = (k) => (k % 50 === 0 ? `admin_${k}` : `worker_${k}`);
const topicName = (t) => (t % 32 === 0 ? `private.${t}` : `public.${t}`);

function makePolicy(gk) {
  return gk.SandboxPolicy.permissive().denyK2kTo(['admin_*']).allowTopics(['public.*', 'metrics.*']);
}

function makeSandbox(gk) {
  const limits = new gk.ResourceLimits().maxMemoryBytes(2 ** 52).maxMessagesPerSecond(1e9).maxK2kConnections(KERNELS);
  const box = new gk.KernelSandbox(limits, makePolicy(gk));
  for (let k = 0; k < KERNELS; k++) box.registerKernel(kernelName(k));
  for (let t = 0; t < TOPICS; t++) box.registerTopic(topicName(t));
  return box;
}

/** n messages between random kernels on random topics, 0..255 bytes each. */
function makeTraffic(n, seed) {
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const batch = { src: new Uint32Array(n), dst: new Uint32Array(n), topic: new Uint32Array(n), bytes: new Uint32Array(n) };
  for (let i = 0; i < n; i++) {
    batch.src[i] = Math.floor(rand() * KERNELS);
    batch.dst[i] = Math.floor(rand() * KERNELS);
    batch.topic[i] = Math.floor(rand() * TOPICS);
    batch.bytes[i] = Math.floor(rand() * 256);
  }
  return batch;
}

module.exports = { KERNELS, TOPICS, kernelName, topicName, makePolicy, makeSandbox, makeTraffic };
