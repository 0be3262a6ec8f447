// gate.checkBatch hashes every CAR in one native call and then runs the
// pipeline per request. It must answer exactly like `check` in order, for
// valid, invalid and hostile requests alike, and for batches larger than the
// scratch buffer the hashes are written into.
import { describe, expect, test } from 'vitest';
import { DecisionCache, Gate, GuardError, carHash } from '../lib/index';
import { carHashes } from '../lib/canonical/car';
import { core, fakeClock, randomInt, rng, sameApprovals } from './helpers';

const policy = {
  version: 1,
  mode: 'enforce',
  default: 'deny',
  // Violations lower trust within a batch, so trusted_op's cached allow stops being served part way.
  trust: { base: 0.5, violation_penalty: 0.06 },
  actions: {
    file_read: { constraints: { resource: { glob: '/srv/**' } } },
    shell_exec: { require_approval: true },
    trusted_op: { min_trust: 0.45 },
  },
};

function randomRequest(next: () => number, i: number): unknown {
  const r = next();
  const car: Record<string, unknown> = { action_type: next() < 0.6 ? 'file_read' : next() < 0.3 ? 'trusted_op' : next() < 0.5 ? 'shell_exec' : 'other', agent_id: `agent-${randomInt(next, 0, 5)}`, resource: next() < 0.8 || i < 1500 ? `/srv/${randomInt(next, 0, 30)}` : '/etc/passwd' }; // violations in the second half
  if (r < 0.03) return null;
  if (r < 0.06) return 'not a request';
  if (r < 0.09) return { car: { action_type: 'x' } };
  if (r < 0.12) return { car: { ...car, n: NaN } };
  if (r < 0.15) return { car: { ...car, s: 'bad \ud800 surrogate' } };
  if (r < 0.18) return { car: { ...car, big: 'é'.repeat(randomInt(next, 1, 40_000)) } };
  if (r < 0.25) return { car, nonce: `n-${randomInt(next, 0, 40)}` };
  return { car, sessionId: `s${i % 3}` };
}

describe('gate.checkBatch', () => {
  test('matches sequential check on 3,000 random requests, valid and invalid', () => {
    const next = rng(0xba7c4);
    const reqs = Array.from({ length: 3000 }, (_, i) => randomRequest(next, i));
    // A fixed clock: trust penalties decay with time, and the two gates run at different times.
    const clock = () => 1_000_000;
    const batched = new Gate({ policy, clock });
    const single = new Gate({ policy, clock });
    const got = batched.checkBatch(reqs as never);
    const want = reqs.map((r) => single.check(r as never));
    expect(sameApprovals(got)).toEqual(sameApprovals(want));
    const sources = new Set(want.map((d) => d.source));
    const trusted = want.filter((d, i) => (reqs[i] as { car?: { action_type?: string } } | null)?.car?.action_type === 'trusted_op');
    // trusted_op was served from the cache, then denied by the policy once trust fell.
    expect(trusted.some((d) => d.source === 'cache' && d.decision === 'allow')).toBe(true);
    expect(trusted.some((d) => d.source === 'policy' && d.decision === 'deny')).toBe(true);
    for (const s of ['validation', 'replay', 'policy', 'cache', 'error']) expect(sources.has(s as never)).toBe(true);
  });

  test('a batch larger than the 4 MiB scratch buffer is hashed in several native calls', () => {
    const cars = Array.from({ length: 300 }, (_, i) => ({ action_type: 'file_read', agent_id: 'a', resource: `/srv/${i}`, pad: 'x'.repeat(30_000) }));
    const hashes = carHashes(cars);
    expect(hashes).toEqual(cars.map((c) => carHash(c)));
    expect(new Set(hashes).size).toBe(300);
  });

  test('batches past the kept hash-text buffer, then small ones again, hash like carHash', () => {
    const make = (n: number, tag: string) => Array.from({ length: n }, (_, i) => ({ action_type: 'file_read', agent_id: `a${i % 7}`, resource: `/srv/${tag}/${i}` }));
    for (const [n, tag] of [[5000, 'big'], [3, 'small'], [4097, 'edge'], [4096, 'kept'], [1, 'one']] as const) {
      const cars = make(n, tag);
      const hashes = carHashes(cars);
      expect(hashes).toEqual(cars.map((c) => carHash(c)));
      expect(new Set(hashes).size).toBe(n);
    }
  });

  test('a getter that throws denies its own request only', () => {
    const hostile = {
      action_type: 'file_read',
      agent_id: 'a',
      get resource(): string {
        throw new Error('getter exploded');
      },
    };
    const reqs = [{ car: { action_type: 'file_read', agent_id: 'a', resource: '/srv/x' } }, { car: hostile }, { car: { action_type: 'file_read', agent_id: 'b', resource: '/srv/y' } }];
    const out = new Gate({ policy }).checkBatch(reqs);
    expect(out.map((d) => d.decision)).toEqual(['allow', 'deny', 'allow']);
    expect(out[1]).toMatchObject({ source: 'error', car_hash: null });
    expect(out[1].reason).toContain('getter exploded');
  });

  test('carHashes reports each invalid CAR as its GuardError, in place', () => {
    const out = carHashes([{ action_type: 'a', agent_id: 'b' }, { action_type: 'a' }, 7, { action_type: 'a', agent_id: 'b', x: Infinity }]);
    expect(out[0]).toBe(carHash({ action_type: 'a', agent_id: 'b' }));
    for (const i of [1, 2, 3]) expect(out[i]).toBeInstanceOf(GuardError);
    expect((out[3] as GuardError).message).toContain('car.x');
  });

  test('an empty batch', () => {
    expect(new Gate({ policy }).checkBatch([])).toEqual([]);
    expect(carHashes([])).toEqual([]);
  });
});

describe('gate.checkBatch and the cache clock', () => {
  test('a batch reads the cache clock once and judges every cached entry at that instant', () => {
    const c = fakeClock();
    let reads = 0;
    const cache = new DecisionCache({ capacity: 8192, ttlMs: 1000, clock: () => (reads++, c.now) });
    const gate = new Gate({ policy, cache });
    const cars = Array.from({ length: 50 }, (_, i) => ({ car: { action_type: 'file_read', agent_id: 'agent-1', resource: `/srv/${i}` } }));
    expect(gate.checkBatch(cars).every((d) => d.source === 'policy')).toBe(true);
    reads = 0;
    const batch = Array.from({ length: 400 }, (_, i) => cars[i % 50]);
    expect(gate.checkBatch(batch).every((d) => d.source === 'cache')).toBe(true);
    expect(reads).toBe(1);
    // Sequential checks read it for every lookup, and see the same answers.
    reads = 0;
    expect(batch.slice(0, 10).map((r) => gate.check(r).source)).toEqual(Array(10).fill('cache'));
    expect(reads).toBe(10);
    // Past the TTL every entry is a miss in the batch, as in sequential checks.
    c.now += 1000;
    expect(gate.checkBatch(batch.slice(0, 50)).every((d) => d.source === 'policy')).toBe(true);
  });
});

describe.runIf(core !== null)('carHashesInto (raw addon) rejects bad input', () => {
  const texts = (out: Uint8Array, count: number): string[] =>
    Array.from({ length: count }, (_, k) => Buffer.from(out.buffer, out.byteOffset + 71 * k, 71).toString('latin1'));
  const digestHexes = (digests: Uint8Array, count: number): string[] =>
    Array.from({ length: count }, (_, k) => 'sha256:' + Buffer.from(digests.buffer, digests.byteOffset + 32 * k, 32).toString('hex'));

  test('writes each hash as 71 bytes of text and 32 raw bytes, empty spans included', () => {
    const bytes = new Uint8Array(16).map((_, i) => i * 7);
    const out = new Uint8Array(3 * 71 + 5).fill(0xee);
    const digests = new Uint8Array(3 * 32 + 3).fill(0xee);
    core!.carHashesInto(bytes, new Uint32Array([4, 4, 16]), 3, out, digests);
    const expected = [carHashOfRange(bytes, 0, 4), carHashOfRange(bytes, 4, 4), carHashOfRange(bytes, 4, 16)];
    expect(texts(out, 3)).toEqual(expected);
    expect(digestHexes(digests, 3)).toEqual(expected);
    expect([...out.subarray(3 * 71)]).toEqual([0xee, 0xee, 0xee, 0xee, 0xee]); // nothing past the last hash
    expect([...digests.subarray(3 * 32)]).toEqual([0xee, 0xee, 0xee]);
  });

  test('ends outside the buffer, decreasing ends, counts past the ends array, small or overlapping outputs, wrong types', () => {
    const bytes = new Uint8Array(16);
    const out = new Uint8Array(4 * 71);
    const dg = new Uint8Array(4 * 32);
    expect(() => core!.carHashesInto(bytes, new Uint32Array([17]), 1, out, dg)).toThrow(RangeError);
    expect(() => core!.carHashesInto(bytes, new Uint32Array([8, 4]), 2, out, dg)).toThrow(RangeError);
    expect(() => core!.carHashesInto(bytes, new Uint32Array([8]), 2, out, dg)).toThrow(RangeError);
    expect(() => core!.carHashesInto(bytes, new Uint32Array([8]), -1, out, dg)).toThrow(RangeError);
    expect(() => core!.carHashesInto(bytes, new Uint32Array([8, 8]), 2, new Uint8Array(141), dg)).toThrow(RangeError);
    expect(() => core!.carHashesInto(bytes, new Uint32Array([8, 8]), 2, out, new Uint8Array(63))).toThrow(/32 bytes per hash/);
    const shared = new Uint8Array(400);
    expect(() => core!.carHashesInto(shared.subarray(0, 100), new Uint32Array([8]), 1, shared.subarray(50), dg)).toThrow(/overlap/);
    expect(() => core!.carHashesInto(shared.subarray(0, 100), new Uint32Array([8]), 1, out, shared.subarray(90))).toThrow(/overlap/);
    expect(() => core!.carHashesInto(bytes, new Uint32Array([8]), 1, shared.subarray(0, 71), shared.subarray(60, 92))).toThrow(/overlap/);
    expect(() => core!.carHashesInto(bytes, new Int32Array([8]) as never, 1, out, dg)).toThrow(TypeError);
    expect(() => core!.carHashesInto('x' as never, new Uint32Array([0]), 1, out, dg)).toThrow(TypeError);
    expect(() => core!.carHashesInto(bytes, new Uint32Array([0]), 1, 'x' as never, dg)).toThrow(TypeError);
    expect(() => core!.carHashesInto(bytes, new Uint32Array([0]), 1, out, undefined as never)).toThrow(TypeError);
    // Nothing was written by a refused call.
    const before = Buffer.from(dg);
    expect(() => core!.carHashesInto(bytes, new Uint32Array([4, 17]), 2, out, dg)).toThrow(RangeError);
    expect(Buffer.from(dg).equals(before)).toBe(true);
  });
});

function carHashOfRange(bytes: Uint8Array, from: number, to: number): string {
  return core!.carHashOfBytes(bytes.slice(from, to), to - from);
}
