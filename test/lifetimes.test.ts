// Object lifetimes and threads: handles used after destroy, GC of live and
// forgotten handles, and the addon in several worker_threads at once.
import { runSync } from './child';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, test } from 'vitest';
import { repoRoot } from './helpers';

const dist = path.join(repoRoot, 'dist', 'index.js');

describe('lifetimes', () => {
  test('forgotten HmacKeys are finalized; a live one keeps working through GC', () => {
    const code = `
      const g = require(${JSON.stringify(dist)});
      const crypto = require('node:crypto');
      const { coreAddon } = require(${JSON.stringify(path.join(repoRoot, 'dist', 'native', 'loader.js'))});
      const live = new g.HmacKey('live-key');
      const settle = async () => { for (let i = 0; i < 5; i++) { global.gc(); await new Promise((r) => setImmediate(r)); } };
      (async () => {
        for (let round = 0; round < 10; round++) {
          for (let i = 0; i < 5000; i++) new g.HmacKey('k' + i).sign('m');
          await settle();
          if (live.sign('x') !== crypto.createHmac('sha256', 'live-key').update('x').digest('hex')) process.exit(3);
        }
        const destroyed = new g.HmacKey('d'); destroyed.destroy(); await settle();
        try { destroyed.sign('x'); process.exit(4); } catch (e) { if (e.code !== 'ERR_CLOSED') process.exit(5); }
        const native = coreAddon();
        const peak = native ? native.liveHmacKeys() : -1;
        for (let i = 0; i < 100000; i++) new g.HmacKey('k' + i);
        const afterCreate = native ? native.liveHmacKeys() : -1;
        await settle();
        console.log(JSON.stringify({ native: !!native, peak, afterCreate, afterGc: native ? native.liveHmacKeys() : -1 }));
      })();
    `;
    const r = runSync(process.execPath, ['--expose-gc', '-e', code], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const counts = JSON.parse(r.stdout);
    if (counts.native) {
      expect(counts.afterCreate).toBeGreaterThan(counts.peak);
      // Only the live key (and at most a few not yet swept) remain.
      expect(counts.afterGc).toBeLessThan(100);
      expect(counts.afterGc).toBeGreaterThanOrEqual(1);
    }
  });
});

describe('worker_threads', () => {
  test('four workers hash and sign concurrently with correct results', async () => {
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const g = require(workerData.dist);
      const crypto = require('node:crypto');
      let bad = 0;
      const key = new g.HmacKey('worker-' + workerData.id);
      for (let i = 0; i < 3000; i++) {
        const s = 'w' + workerData.id + '-' + i + 'é'.repeat(i % 50);
        if (g.sha256Hex(s) !== crypto.createHash('sha256').update(s).digest('hex')) bad++;
        if (key.sign(s) !== crypto.createHmac('sha256', 'worker-' + workerData.id).update(s).digest('hex')) bad++;
        const car = { action_type: 'a', agent_id: 'w' + workerData.id, args: { i } };
        if (g.carHash(car) !== 'sha256:' + crypto.createHash('sha256').update(g.canonicalize(car)).digest('hex')) bad++;
      }
      parentPort.postMessage({ bad, backend: g.backends().core.kind });
    `;
    const results = await Promise.all(
      [0, 1, 2, 3].map(
        (id) =>
          new Promise<{ bad: number; backend: string }>((resolve, reject) => {
            const w = new Worker(code, { eval: true, workerData: { id, dist } });
            w.once('message', resolve);
            w.once('error', reject);
          }),
      ),
    );
    for (const r of results) expect(r.bad).toBe(0);
    expect(new Set(results.map((r) => r.backend)).size).toBe(1);
  });

  test('a worker that exits mid-use does not disturb the main thread', async () => {
    const code = `
      const g = require(require('node:worker_threads').workerData.dist);
      const k = new g.HmacKey('x');
      for (let i = 0; i < 1000; i++) k.sign('m' + i);
      process.exit(0);
    `;
    for (let i = 0; i < 4; i++) {
      await new Promise<void>((resolve, reject) => {
        const w = new Worker(code, { eval: true, workerData: { dist } });
        w.once('exit', () => resolve());
        w.once('error', reject);
      });
    }
    const g = require(dist) as typeof import('../lib/index');
    expect(g.sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});
