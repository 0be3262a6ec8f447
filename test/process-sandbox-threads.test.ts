// The process sandbox from several worker_threads at once: each thread's
// spawns report on that thread's loop (one thread-safe function per child),
// with the right output and reason, and no cross-talk.
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { expect, test } from 'vitest';
import { repoRoot } from './helpers';
import { canSandbox, sandboxCaps } from './process-sandbox-helpers';

const dist = path.join(repoRoot, 'dist', 'index.js');

const WORK = `
  const { parentPort, workerData } = require('node:worker_threads');
  const { ProcessSandbox } = require(${JSON.stringify(dist)});
  (async () => {
    const sb = new ProcessSandbox();
    const runs = [];
    for (let i = 0; i < 4; i++) {
      let p;
      try {
        p = sb.spawn('/bin/sh', ['-c', 'echo t' + workerData.t + '-' + i + (i === 3 ? '; sleep 5' : '')], { network: i % 2 && workerData.netns ? 'none' : 'host', limits: i === 3 ? { wallMs: 200 } : {} });
      } catch (e) {
        parentPort.postMessage({ refused: e.code });
        return;
      }
      let out = '';
      p.stdout.on('data', (d) => (out += d));
      const closed = new Promise((res) => p.stdout.once('close', res));
      runs.push(Promise.all([p.result, closed]).then(([r]) => ({ out: out.trim(), reason: r.reason })));
    }
    parentPort.postMessage({ results: await Promise.all(runs) });
  })().catch((e) => parentPort.postMessage({ error: String(e && e.stack || e) }));
`;

test('spawns from several worker threads at once', async () => {
  const threads = Array.from({ length: 3 }, (_, t) => new Promise<Record<string, unknown>>((resolve, reject) => {
    const w = new Worker(WORK, { eval: true, workerData: { t, netns: sandboxCaps.networkNamespaces } });
    w.once('message', (m) => {
      resolve(m);
      void w.terminate();
    });
    w.once('error', reject);
  }));
  const all = await Promise.all(threads);
  all.forEach((m, t) => {
    expect(m.error).toBeUndefined();
    if (!canSandbox) {
      expect(m.refused).toBe('ERR_SANDBOX_UNSUPPORTED');
      return;
    }
    const results = m.results as Array<{ out: string; reason: string }>;
    expect(results.map((r) => r.out)).toEqual([0, 1, 2, 3].map((i) => `t${t}-${i}`));
    expect(results.map((r) => r.reason)).toEqual(['exit', 'exit', 'exit', 'wall']);
  });
});

test.runIf(canSandbox)('a worker that ends while its sandboxed child runs: the child dies with it, the process does not crash', async () => {
  const { allGone } = await import('./process-sandbox-helpers');
  const pids: number[] = [];
  for (let round = 0; round < 5; round++) {
    const w = new Worker(`
      const { parentPort } = require('node:worker_threads');
      const { ProcessSandbox } = require(${JSON.stringify(dist)});
      const p = new ProcessSandbox().spawn('/bin/sleep', ['30'], { stdio: 'ignore' });
      parentPort.postMessage(p.pid);
    `, { eval: true });
    const pid = await new Promise<number>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    pids.push(pid);
    await w.terminate();
  }
  expect(await allGone(pids, 5000)).toBe(true);
});
