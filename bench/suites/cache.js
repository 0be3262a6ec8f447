// DecisionCache.get hit vs lru-cache get (with and without TTL), put, and the
// shared native store's get throughput with 1 and 2 worker threads.
'use strict';
const crypto = require('node:crypto');
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const { LRUCache } = require('lru-cache');
const gk = require('../../dist/index.js');
const { runCases } = require('../harness');

const keys = Array.from({ length: 1000 }, (_, i) => 'sha256:' + crypto.createHash('sha256').update('k' + i).digest('hex'));
const cache = new gk.DecisionCache({ capacity: 10000 });
const lru = new LRUCache({ max: 10000 });
const lruTtl = new LRUCache({ max: 10000, ttl: 60000 });
for (const k of keys) {
  cache.put(k, { decision: 'allow', reason: 'rule file_read', policyVersion: 3 });
  lru.set(k, { decision: 'allow', reason: 'rule file_read', policyVersion: 3 });
  lruTtl.set(k, { decision: 'allow', reason: 'rule file_read', policyVersion: 3 });
}

// Measures gets per second over all threads, each thread on its own handle of
// one shared store, for a fixed wall time.
function sharedThroughput(threads, ms) {
  const name = `bench-${Math.random()}`;
  const keeper = gk.DecisionCache.shared(name, { capacity: 10000 });
  for (const k of keys) keeper.put(k, { decision: 'allow', policyVersion: 3 });
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const g = require(workerData.dist);
    const c = g.DecisionCache.shared(workerData.name, { capacity: 10000 });
    const keys = workerData.keys;
    let n = 0; const end = Date.now() + workerData.ms;
    while (Date.now() < end) { for (let i = 0; i < 1000; i++) c.get(keys[(n + i) % 1000], 3); n += 1000; }
    parentPort.postMessage(n);
  `;
  const dist = path.join(__dirname, '..', '..', 'dist', 'index.js');
  return Promise.all(
    Array.from({ length: threads }, () => new Promise((resolve, reject) => {
      const w = new Worker(code, { eval: true, workerData: { name, keys, ms, dist } });
      w.once('message', resolve);
      w.once('error', reject);
    })),
  ).then((counts) => {
    keeper.close();
    return counts.reduce((a, b) => a + b, 0) / (ms / 1000);
  });
}

let i = 0;
const g = 'get hit (1000 hot keys)';
const p = 'put (replace)';
runCases('cache', [
  { group: g, name: 'lru-cache get (no TTL)', baseline: true, inner: 200, fn: () => lru.get(keys[i++ % 1000]) },
  { group: g, name: 'lru-cache get (ttl: 60 s)', inner: 200, fn: () => lruTtl.get(keys[i++ % 1000]) },
  { group: g, name: 'DecisionCache.get', inner: 200, fn: () => cache.get(keys[i++ % 1000], 3) },
  { group: p, name: 'lru-cache set', baseline: true, inner: 200, fn: () => lru.set(keys[i++ % 1000], { decision: 'deny', policyVersion: 3 }) },
  { group: p, name: 'DecisionCache.put', inner: 200, fn: () => cache.put(keys[i++ % 1000], { decision: 'deny', policyVersion: 3 }) },
], { extraRows: gk.backends().core.kind === 'native' ? async () => {
  const one = await sharedThroughput(1, 1500);
  const two = await sharedThroughput(2, 1500);
  const row = (name, ops, baseline) => ({ group: 'shared store get throughput (all threads)', name, baseline, meanNs: 1e9 / ops, p50Ns: 1e9 / ops, p99Ns: 1e9 / ops, opsPerSec: ops, samples: 1 });
  return [row('1 worker thread', one, true), row('2 worker threads', two, false)];
} : undefined }).catch((e) => {
  console.error(e);
  process.exit(1);
});
