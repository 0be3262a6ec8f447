// Shared native stores hammered from several worker_threads at once.
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, test } from 'vitest';
import { DecisionCache, ReplayDetector } from '../lib/index';
import { core, repoRoot } from './helpers';

const dist = path.join(repoRoot, 'dist', 'index.js');

function runWorkers<T>(n: number, code: string, data: object): Promise<T[]> {
  return Promise.all(
    Array.from({ length: n }, (_, id) =>
      new Promise<T>((resolve, reject) => {
        const w = new Worker(code, { eval: true, workerData: { ...data, id, dist } });
        w.once('message', resolve);
        w.once('error', reject);
      }),
    ),
  );
}

describe.runIf(core !== null)('shared stores across worker_threads', () => {
  test('every nonce is accepted exactly once across 4 threads', async () => {
    const name = `replay-${Math.random()}`;
    const NONCES = 20_000;
    const main = ReplayDetector.shared(name, { capacity: NONCES });
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const g = require(workerData.dist);
      const r = g.ReplayDetector.shared(workerData.name, { capacity: workerData.n });
      const order = Array.from({ length: workerData.n }, (_, i) => i);
      // each thread walks the nonces in its own order
      for (let i = order.length - 1; i > 0; i--) { const j = (i * 7919 + workerData.id * 104729) % (i + 1); [order[i], order[j]] = [order[j], order[i]]; }
      const exp = Date.now() + 600000;
      const counts = { fresh: 0, replay: 0, saturated: 0 };
      for (const i of order) counts[r.check('nonce-' + i, exp)]++;
      parentPort.postMessage(counts);
    `;
    const results = await runWorkers<{ fresh: number; replay: number; saturated: number }>(4, code, { name, n: NONCES });
    const fresh = results.reduce((s, r) => s + r.fresh, 0);
    const replays = results.reduce((s, r) => s + r.replay, 0);
    expect(fresh).toBe(NONCES);
    expect(replays).toBe(3 * NONCES);
    expect(results.every((r) => r.saturated === 0)).toBe(true);
    const stats = main.stats();
    expect(stats).toMatchObject({ size: NONCES, accepted: NONCES, replays: 3 * NONCES, saturated: 0 });
    main.close();
  });

  test('the cache never returns a value that was not put, and stats add up', async () => {
    const name = `cache-${Math.random()}`;
    const main = DecisionCache.shared(name, { capacity: 512, shards: 8 });
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const crypto = require('node:crypto');
      const g = require(workerData.dist);
      const c = g.DecisionCache.shared(workerData.name, { capacity: 512, shards: 8 });
      const keys = Array.from({ length: 2000 }, (_, i) => 'sha256:' + crypto.createHash('sha256').update('k' + i).digest('hex'));
      const decisions = ['allow', 'deny', 'pending'];
      let gets = 0, hits = 0, wrong = 0;
      for (let n = 0; n < 40000; n++) {
        const i = (n * 31 + workerData.id * 17) % 2000;
        if (n % 4 === 0) {
          // every thread puts the same value for a key: a key's value is a function of the key
          c.put(keys[i], { decision: decisions[i % 3], reason: 'r' + i, policyVersion: 7 });
        } else {
          gets++;
          const e = c.get(keys[i], 7);
          if (e) { hits++; if (e.decision !== decisions[i % 3] || e.reason !== 'r' + i || e.policyVersion !== 7) wrong++; }
        }
      }
      c.close(); // reports this handle's near-cache hits to the store
      parentPort.postMessage({ gets, hits, wrong });
    `;
    const results = await runWorkers<{ gets: number; hits: number; wrong: number }>(4, code, { name });
    expect(results.every((r) => r.wrong === 0)).toBe(true);
    const s = main.stats();
    const gets = results.reduce((a, r) => a + r.gets, 0);
    expect(s.hits + s.misses).toBe(gets);
    expect(s.hits).toBe(results.reduce((a, r) => a + r.hits, 0));
    expect(s.entries).toBeLessThanOrEqual(512);
    main.close();
  });

  test('a shared store lives while any thread holds it', async () => {
    const name = `live-${Math.random()}`;
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const g = require(workerData.dist);
      const r = g.ReplayDetector.shared(workerData.name, { capacity: 16 });
      r.check('from-worker', Date.now() + 600000);
      r.close();
      parentPort.postMessage('done');
    `;
    const keeper = ReplayDetector.shared(name, { capacity: 16 });
    await runWorkers(1, code, { name });
    expect(keeper.check('from-worker', Date.now() + 600000)).toBe('replay');
    keeper.close();
  });
});
