// Store handles: collected handles free their stores; approximate (sharded)
// LRU stays close to exact LRU on a skewed trace.
import { runSync } from './child';
import path from 'node:path';
import { expect, test } from 'vitest';
import { DecisionCache, carHash } from '../lib/index';
import { core, repoRoot, rng } from './helpers';

test('a handle collected by GC releases its store (the name can start over)', () => {
  const code = `
    const g = require(${JSON.stringify(path.join(repoRoot, 'dist', 'index.js'))});
    const settle = async () => { for (let i = 0; i < 6; i++) { global.gc(); await new Promise((r) => setImmediate(r)); } };
    (async () => {
      (() => { g.ReplayDetector.shared('gc-name', { capacity: 8 }).check('a', Date.now() + 60000); })();
      (() => { g.DecisionCache.shared('gc-name', { capacity: 8 }); })();
      await settle();
      // Had the forgotten handles kept their stores alive, capacity 16 would be refused.
      const r = g.ReplayDetector.shared('gc-name', { capacity: 16 });
      const c = g.DecisionCache.shared('gc-name', { capacity: 16 });
      console.log(JSON.stringify({ fresh: r.check('a', Date.now() + 60000), entries: c.stats().entries }));
      // Many unclosed private handles do not accumulate.
      for (let i = 0; i < 2000; i++) new g.DecisionCache({ capacity: 1000 }).put('sha256:' + '0'.repeat(64), { decision: 'allow', policyVersion: 1 });
      await settle();
    })();
  `;
  const r = runSync(process.execPath, ['--expose-gc', '-e', code], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(JSON.parse(r.stdout)).toEqual({ fresh: 'fresh', entries: 0 });
});

test.runIf(core !== null)('sharded LRU hit rate on a Zipf trace is within 2 points of exact LRU', () => {
  const next = rng(77);
  const universe = 20_000;
  // Zipf(s = 1) by inverse CDF over precomputed cumulative weights.
  const cdf = new Float64Array(universe);
  let total = 0;
  for (let i = 0; i < universe; i++) cdf[i] = total += 1 / (i + 1);
  const keys = Array.from({ length: universe }, (_, i) => carHash({ action_type: 'a', agent_id: `z${i}` }));
  const draw = () => {
    const u = next() * total;
    let lo = 0;
    let hi = universe - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const trace = Array.from({ length: 100_000 }, draw);
  const hitRate = (shards: number) => {
    const c = new DecisionCache({ capacity: 2048, shards });
    for (const i of trace) if (!c.get(keys[i], 1)) c.put(keys[i], { decision: 'allow', policyVersion: 1 });
    const s = c.stats();
    return s.hits / (s.hits + s.misses);
  };
  const exact = hitRate(1);
  const sharded = hitRate(16);
  expect(exact).toBeGreaterThan(0.3);
  expect(Math.abs(exact - sharded)).toBeLessThan(0.02);
});
