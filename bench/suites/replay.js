// ReplayDetector.check: fresh nonces in steady state (ring reused) and
// replays, vs lru-cache used as a nonce set, one thread.
'use strict';
const gk = require('../../dist/index.js');
const { runCases } = require('../harness');

const N = 1 << 16;
const nonces = Array.from({ length: 4 * N }, (_, i) => `nonce-${i.toString(36)}-${(i * 2654435761) >>> 0}`);
let clock = 1e12;
const detector = new gk.ReplayDetector({ capacity: N, clock: () => clock });
const ttl = N / 2; // half the ring live at any time: steady state, never saturated

// What a user would otherwise reach for: lru-cache with a TTL as a nonce set
// (not atomic across threads, and it silently evicts live nonces when full).
const { LRUCache } = require('lru-cache');
const lru = new LRUCache({ max: N, ttl: 1 });
function lruCheck(nonce, ttlMs) {
  if (lru.has(nonce)) return 'replay';
  lru.set(nonce, 1, { ttl: ttlMs });
  return 'fresh';
}

let i = 0;
let j = 0;
const replayed = nonces.slice(0, 1000);
const live = new gk.ReplayDetector({ capacity: 2048 });
const far = Date.now() + 3600_000;
for (const n of replayed) live.check(n, far);

runCases('replay', [
  { group: 'check (fresh nonce, steady state)', name: 'lru-cache has + set (ttl)', baseline: true, inner: 100, fn: () => { lruCheck(nonces[i++ & (4 * N - 1)], 60000); } },
  { group: 'check (fresh nonce, steady state)', name: 'ReplayDetector.check', inner: 100, fn: () => { clock++; detector.check(nonces[j++ & (4 * N - 1)], clock + ttl); } },
  { group: 'check (replayed nonce)', name: 'lru-cache has (ttl)', baseline: true, inner: 100, fn: () => { lruCheck(replayed[i++ % 1000], 60000); } },
  { group: 'check (replayed nonce)', name: 'ReplayDetector.check', inner: 100, fn: () => { live.check(replayed[i++ % 1000], far); } },
]).catch((e) => {
  console.error(e);
  process.exit(1);
});
