// The mixed-traffic workload of the benches (bench/workload.js, issue 27):
// seeded and reproducible, Zipf(1) over a population of at least 100,000
// distinct CARs, the configured shares of nonces, permits and invalid
// requests, and every request a valid CAR except the invalid ones. Statistical
// bounds come from the sample (binomial standard errors), never the clock.
import { describe, expect, test } from 'vitest';
import { carHash, Keyring, PolicyEngine } from '../lib/index';

interface Params {
  car: Record<string, unknown>;
  nonce?: string;
  permit?: string;
}
interface Draw {
  kind: 'plain' | 'nonce' | 'permit' | 'invalid';
  rank: number;
  params: Params;
}
interface Workload {
  options: { population: number; agents: number; nonceShare: number; permitShare: number; invalidShare: number };
  agentIds: string[];
  carAt(rank: number): Record<string, unknown>;
  zipf: { n: number; p(rank: number): number; draw(u: number): number };
  draw(): Draw;
  requests(n: number): Array<{ car: Record<string, unknown>; nonce?: string; permit?: string }>;
  lineTails(n: number): string[];
}
interface WorkloadModule {
  createWorkload(options?: Record<string, unknown>): Workload;
  describeSample(w: Workload, n: number): { kinds: Record<string, number>; actions: Record<string, number>; approvalShare: number };
  fiftyRulePolicy(): Record<string, unknown>;
  mulberry32(seed: number): () => number;
  zipf(n: number, s?: number): { n: number; p(rank: number): number; draw(u: number): number };
  LINE_HEAD: string;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const wl = require('../bench/workload.js') as WorkloadModule;

/** |observed - expected| within k binomial standard errors of a share p over n trials. */
function withinBinomial(count: number, n: number, p: number, k = 6): void {
  const sd = Math.sqrt(n * p * (1 - p));
  expect(Math.abs(count - n * p)).toBeLessThanOrEqual(k * sd + 1);
}

const isValidCar = (car: unknown): boolean => {
  try {
    carHash(car as Record<string, unknown>);
    return true;
  } catch {
    return false;
  }
};

describe('bench/workload.js', () => {
  test('the same seed gives the same request sequence; another seed another', () => {
    const a = wl.createWorkload({ seed: 7 }).lineTails(5000);
    const b = wl.createWorkload({ seed: 7 }).lineTails(5000);
    const c = wl.createWorkload({ seed: 8 }).lineTails(5000);
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
    // In-process requests follow the same sequence as the socket lines.
    const objects = wl.createWorkload({ seed: 7 }).requests(5000);
    expect(objects.map((r) => `,"method":"gate_check","params":${JSON.stringify(r)}}\n`)).toEqual(a);
    // And the 50-rule workload likewise.
    expect(wl.createWorkload({ seed: 3, policy: 'fifty' }).lineTails(2000)).toEqual(wl.createWorkload({ seed: 3, policy: 'fifty' }).lineTails(2000));
  });

  test('a line is LINE_HEAD + id + tail: one gate_check JSON-RPC request', () => {
    for (const tail of wl.createWorkload().lineTails(200)) {
      expect(tail.endsWith('}\n')).toBe(true);
      const msg = JSON.parse(wl.LINE_HEAD + 17 + tail);
      expect(msg).toMatchObject({ jsonrpc: '2.0', id: 17, method: 'gate_check' });
      expect(typeof msg.params.car).toBe('object');
    }
  });

  test('mulberry32 is seeded and uniform enough', () => {
    const r1 = wl.mulberry32(42);
    const r2 = wl.mulberry32(42);
    const xs = Array.from({ length: 10_000 }, () => r1());
    expect(Array.from({ length: 10_000 }, () => r2())).toEqual(xs);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    withinBinomial(xs.filter((x) => x < 0.5).length, xs.length, 0.5);
  });

  test('draws are Zipf(1): rank 1 about 10x rank 10, rank 1 at 1/H(n)', () => {
    const w = wl.createWorkload({ seed: 11 });
    const n = w.options.population;
    const draws = 300_000;
    const counts = new Map<number, number>();
    for (let i = 0; i < draws; i++) {
      const r = w.draw().rank;
      counts.set(r, (counts.get(r) ?? 0) + 1);
    }
    const c1 = counts.get(0) ?? 0;
    const c10 = counts.get(9) ?? 0;
    // Ratio of two counts: its relative error is about sqrt(1/c1 + 1/c10).
    const ratio = c1 / c10;
    const sd = ratio * Math.sqrt(1 / c1 + 1 / c10);
    expect(Math.abs(ratio - 10)).toBeLessThanOrEqual(6 * sd);
    let harmonic = 0;
    for (let r = 1; r <= n; r++) harmonic += 1 / r;
    expect(w.zipf.p(0)).toBeCloseTo(1 / harmonic, 12);
    withinBinomial(c1, draws, 1 / harmonic);
    withinBinomial(counts.get(99) ?? 0, draws, 1 / (100 * harmonic));
    // The top 100 ranks together: H(100) / H(n).
    let top = 0;
    for (let r = 0; r < 100; r++) top += counts.get(r) ?? 0;
    let h100 = 0;
    for (let r = 1; r <= 100; r++) h100 += 1 / r;
    withinBinomial(top, draws, h100 / harmonic);
    // The long tail is drawn too: many distinct ranks, some far down.
    expect(counts.size).toBeGreaterThan(30_000);
    expect(Math.max(...counts.keys())).toBeGreaterThan(n * 0.9);
  });

  test('inverse-CDF draw: u = 0 is rank 0, u just below 1 the last rank, and cut points land on their rank', () => {
    const z = wl.zipf(1000);
    expect(z.draw(0)).toBe(0);
    expect(z.draw(1 - 1e-12)).toBe(999);
    let cum = 0;
    for (let r = 0; r < 1000; r += 37) {
      cum = 0;
      for (let q = 0; q < r; q++) cum += z.p(q);
      expect(z.draw(cum + z.p(r) / 2)).toBe(r);
    }
  });

  test('the population holds at least 100,000 distinct CARs from 1,000-10,000 agents', () => {
    for (const policy of ['example', 'fifty']) {
      const w = wl.createWorkload({ policy });
      expect(w.options.population).toBeGreaterThanOrEqual(100_000);
      const hashes = new Set<string>();
      const agents = new Set<string>();
      for (let r = 0; r < w.options.population; r++) {
        const car = w.carAt(r);
        hashes.add(carHash(car as { action_type: string; agent_id: string }));
        agents.add(car.agent_id as string);
      }
      expect(hashes.size).toBe(w.options.population);
      expect(w.agentIds.length).toBeGreaterThanOrEqual(1000);
      expect(w.agentIds.length).toBeLessThanOrEqual(10_000);
      expect(agents.size).toBeGreaterThan(w.agentIds.length * 0.95);
    }
    expect(() => wl.createWorkload({ population: 99_999 })).toThrow(RangeError);
    expect(() => wl.createWorkload({ agents: 999 })).toThrow(RangeError);
    expect(() => wl.createWorkload({ agents: 10_001 })).toThrow(RangeError);
    expect(wl.createWorkload({ agents: 10_000, population: 150_000 }).agentIds).toHaveLength(10_000);
  });

  test('shares of nonces, permits and invalid requests; only the invalid ones are not CARs; nonces unique; permits verify', () => {
    const secret = Buffer.alloc(32, 9);
    const keyring = new Keyring({ keys: { k1: secret }, active: 'k1' });
    const shares = { nonceShare: 0.05, permitShare: 0.04, invalidShare: 0.02 };
    const w = wl.createWorkload({ seed: 5, keyring, ...shares });
    const n = 20_000;
    const nonces = new Set<string>();
    let withNonce = 0;
    let withPermit = 0;
    let invalid = 0;
    for (let i = 0; i < n; i++) {
      const d = w.draw();
      const valid = isValidCar(d.params.car);
      expect(valid).toBe(d.kind !== 'invalid');
      if (!valid) {
        invalid++;
        expect(d.params.nonce).toBeUndefined();
        expect(d.params.permit).toBeUndefined();
        // NaN-free: invalid requests still travel as JSON unchanged.
        expect(JSON.parse(JSON.stringify(d.params.car))).toEqual(d.params.car);
      }
      if (d.params.nonce !== undefined) {
        withNonce++;
        nonces.add(d.params.nonce);
      }
      if (d.params.permit !== undefined) {
        withPermit++;
        const v = keyring.verify(d.params.permit, { carHash: carHash(d.params.car as { action_type: string; agent_id: string }), consume: false });
        expect(v.valid).toBe(true);
      }
    }
    expect(nonces.size).toBe(withNonce); // each nonce once: fresh
    withinBinomial(withNonce, n, shares.nonceShare);
    withinBinomial(withPermit, n, shares.permitShare);
    withinBinomial(invalid, n, shares.invalidShare);
    // The defaults: 3 % nonces, 2 % permits, 1 % invalid.
    const s = wl.describeSample(wl.createWorkload({ seed: 6 }), 50_000);
    withinBinomial(s.kinds.nonce * 50_000, 50_000, 0.03);
    withinBinomial(s.kinds.permit * 50_000, 50_000, 0.02);
    withinBinomial(s.kinds.invalid * 50_000, 50_000, 0.01);
  });

  test('mostly non-approval traffic: require_approval rules are a small share; the 50-rule policy loads', () => {
    const example = wl.describeSample(wl.createWorkload(), 50_000);
    expect(example.approvalShare).toBeGreaterThan(0);
    expect(example.approvalShare).toBeLessThan(0.1);
    expect(example.actions.file_read).toBeGreaterThan(0.4);
    const fifty = wl.describeSample(wl.createWorkload({ policy: 'fifty' }), 20_000);
    expect(fifty.approvalShare).toBe(0);
    const engine = new PolicyEngine(wl.fiftyRulePolicy());
    expect(engine.version).toBe(1);
    // Its CARs are the ones the rules are about: most are allowed.
    const w = wl.createWorkload({ policy: 'fifty' });
    let allowed = 0;
    for (let r = 0; r < 2000; r++) if (engine.evaluate(w.carAt(r)).decision === 'allow') allowed++;
    expect(allowed / 2000).toBeGreaterThan(0.8);
  });
});
