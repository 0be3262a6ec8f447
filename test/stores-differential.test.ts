// Native stores vs the TypeScript fallback: the same random operation
// sequence, run in a native process and a GUARDKERNEL_NATIVE=0 process,
// must give the same answers (and the same stats).
import { runSync } from './child';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { repoRoot } from './helpers';
import { skipWithout } from './prerequisites';

const script = `
  const g = require(${JSON.stringify(path.join(repoRoot, 'dist', 'index.js'))});
  const crypto = require('node:crypto');
  let s = Number(process.argv[1]);
  const rand = (n) => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s % n; };
  const clock = { now: 1e9 };
  const out = [];
  const r = new g.ReplayDetector({ capacity: 64, clock: () => clock.now });
  for (let i = 0; i < 6000; i++) {
    clock.now += rand(5);
    const nonce = 'n' + rand(150);
    // seen() is read-only: asked before and after, it must agree with check.
    if (rand(3) === 0) out.push('seen:' + r.seen(nonce));
    out.push(r.check(nonce, clock.now + 1 + rand(400)));
  }
  out.push(JSON.stringify(r.stats()));
  const keys = Array.from({ length: 40 }, (_, i) => 'sha256:' + crypto.createHash('sha256').update('k' + i).digest('hex'));
  const c = new g.DecisionCache({ capacity: 16, shards: 1, ttlMs: 300, clock: () => clock.now });
  const decisions = ['allow', 'deny', 'pending'];
  for (let i = 0; i < 8000; i++) {
    clock.now += rand(4);
    const k = keys[rand(40)];
    const op = rand(10);
    if (op < 5) out.push(JSON.stringify(c.get(k, 1 + rand(2)) ?? null));
    else if (op < 9) { c.put(k, { decision: decisions[rand(3)], reason: rand(2) ? 'why' + rand(9) : undefined, policyVersion: 1 + rand(2), ttlMs: rand(3) ? undefined : 1 + rand(500) }); out.push('put'); }
    else out.push(String(c.invalidate(k)));
    if (i % 2000 === 1999) out.push('clear:' + c.clear());
  }
  out.push(JSON.stringify(c.stats()));
  console.log(JSON.stringify({ backend: g.backends().core.kind, out }));
`;

function run(seed: number, env: Record<string, string>) {
  const r = runSync(process.execPath, ['-e', script, String(seed)], { env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 64 << 20, timeout: 60_000 });
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout) as { backend: string; out: string[] };
}

// The native side needs the built addon; CI builds it, so there its absence fails.
const probe = runSync(process.execPath, ['-e', `console.log(require(${JSON.stringify(path.join(repoRoot, 'dist', 'index.js'))}).backends().core.reason ?? '')`], {
  env: { ...process.env, GUARDKERNEL_NATIVE: '' },
  encoding: 'utf8',
  timeout: 60_000,
});
const noAddon = skipWithout('the native addon', probe.status === 0 && probe.stdout.trim() === '' ? null : probe.stdout.trim() || probe.stderr);

describe.skipIf(noAddon)('native vs TypeScript fallback stores', () => {
  for (const seed of [1, 42, 20261122]) {
    test(`random operation sequence, seed ${seed}`, () => {
      const native = run(seed, { GUARDKERNEL_NATIVE: '' });
      const js = run(seed, { GUARDKERNEL_NATIVE: '0' });
      expect(js.backend).toBe('js');
      expect(native.backend).toBe('native');
      expect(native.out.length).toBe(js.out.length);
      for (let i = 0; i < js.out.length; i++) {
        if (native.out[i] !== js.out[i]) expect({ step: i, native: native.out[i] }).toEqual({ step: i, native: js.out[i] });
      }
      // The sequence exercised every outcome.
      for (const v of ['fresh', 'replay', 'saturated', 'put', 'true', 'false', 'null', 'seen:true', 'seen:false']) expect(js.out).toContain(v);
    });
  }
});
