// VelocityGuard: exact integer refill, burst, sessions, bounded memory, fail closed.
import { describe, expect, test } from 'vitest';
import { VelocityGuard } from '../lib/index';
import { fakeClock } from './helpers';

function countAllowed(g: VelocityGuard, clock: { now: number }, untilMs: number, stepMs: number, agent = 'a', session?: string): number {
  let n = 0;
  for (; clock.now <= untilMs; clock.now += stepMs) if (g.check(agent, session).allowed) n++;
  return n;
}

describe('exact refill', () => {
  test('10 per 60 s: exactly 10, then a deny with the exact wait, then one per 6 s', () => {
    const c = fakeClock(0);
    const g = new VelocityGuard({ maxPerAgent: 10, windowMs: 60_000, clock: c.fn });
    for (let i = 0; i < 10; i++) expect(g.check('a').allowed).toBe(true);
    expect(g.check('a')).toEqual({ allowed: false, scope: 'agent', retry_after_ms: 6000 });
    c.now = 5999;
    expect(g.check('a')).toEqual({ allowed: false, scope: 'agent', retry_after_ms: 1 });
    c.now = 6000;
    expect(g.check('a').allowed).toBe(true);
    expect(g.check('a').allowed).toBe(false);
  });

  test('10 per 60 s over ten minutes in 7 ms steps: 10 + 100, not rounded up to 60/min', () => {
    const c = fakeClock(0);
    const g = new VelocityGuard({ maxPerAgent: 10, windowMs: 60_000, clock: c.fn });
    // Odd steps exercise the carried remainder: 10 tokens per 60000 ms is 1/6
    // milli-token per ms. Demand always exceeds supply, so the count is the
    // initial bucket plus every whole token earned by the last attempt (t = 599998).
    expect(countAllowed(g, c, 600_000, 7)).toBe(10 + Math.floor((599_998 * 10) / 60_000));
    expect(10 + Math.floor((599_998 * 10) / 60_000)).toBe(109);
    // One more millisecond earns the 100th refill token.
    c.now = 600_000;
    expect(g.check('a').allowed).toBe(true);
  });

  test('100 per 60 s likewise, and 7 per 1000 ms (a rate with no exact ms period)', () => {
    const c = fakeClock(0);
    const g = new VelocityGuard({ maxPerAgent: 100, windowMs: 60_000, clock: c.fn });
    // last attempt at t = 599990 (13 * 46153)
    expect(countAllowed(g, c, 600_000, 13)).toBe(100 + Math.floor((599_990 * 100) / 60_000));
    const c2 = fakeClock(0);
    const g2 = new VelocityGuard({ maxPerAgent: 7, windowMs: 1000, clock: c2.fn });
    expect(countAllowed(g2, c2, 30_000, 3)).toBe(7 + 210); // 30000 is a multiple of 3
  });

  test('burst factor: a bucket of limit * burst, refilled at the limit', () => {
    const c = fakeClock(0);
    const g = new VelocityGuard({ maxPerAgent: 10, windowMs: 60_000, burst: 2, clock: c.fn });
    let n = 0;
    while (g.check('a').allowed) n++;
    expect(n).toBe(20);
    c.now = 60_000;
    n = 0;
    while (g.check('a').allowed) n++;
    expect(n).toBe(10);
  });

  test('a clock that steps back adds nothing', () => {
    const c = fakeClock(1_000_000);
    const g = new VelocityGuard({ maxPerAgent: 1, windowMs: 1000, clock: c.fn });
    expect(g.check('a').allowed).toBe(true);
    c.now -= 500_000;
    expect(g.check('a').allowed).toBe(false);
    c.now += 500_999;
    expect(g.check('a').allowed).toBe(false);
    c.now += 1;
    expect(g.check('a').allowed).toBe(true);
  });
});

describe('scopes', () => {
  test('agents are independent; sessions are limited inside their agent', () => {
    const c = fakeClock(0);
    const g = new VelocityGuard({ maxPerAgent: 5, maxPerSession: 2, windowMs: 1000, clock: c.fn });
    expect(g.check('a', 's1').allowed).toBe(true);
    expect(g.check('a', 's1').allowed).toBe(true);
    expect(g.check('a', 's1')).toMatchObject({ allowed: false, scope: 'session' });
    expect(g.check('a', 's2').allowed).toBe(true);
    expect(g.check('a', 's2').allowed).toBe(true);
    expect(g.check('a').allowed).toBe(true); // no session: agent bucket only (4 used, now 5)
    expect(g.check('a', 's3')).toMatchObject({ allowed: false, scope: 'agent' });
    expect(g.check('b', 's1').allowed).toBe(true);
    // the denied session request charged nothing to the agent
    expect(g.stats()).toMatchObject({ allowed: 6, denied: 2 });
  });
});

describe('bounded memory and fail closed', () => {
  test('one million distinct agents over time keep at most maxBuckets buckets', () => {
    const c = fakeClock(0);
    const g = new VelocityGuard({ maxPerAgent: 10, windowMs: 1000, maxBuckets: 10_000, clock: c.fn });
    let denied = 0;
    for (let i = 0; i < 1_000_000; i++) {
      c.now += 1; // each bucket refills within 1000 ms: old ones become evictable
      if (!g.check(`agent-${i}`).allowed) denied++;
    }
    const s = g.stats();
    expect(s.agents).toBeLessThanOrEqual(10_000);
    expect(s.evicted).toBeGreaterThan(980_000);
    expect(denied).toBe(0);
  });

  test('a table full of draining buckets denies new agents instead of resetting anyone', () => {
    const c = fakeClock(0);
    const g = new VelocityGuard({ maxPerAgent: 1, windowMs: 60_000, maxBuckets: 3, clock: c.fn });
    for (const a of ['a', 'b', 'c']) expect(g.check(a).allowed).toBe(true);
    expect(g.check('d')).toEqual({ allowed: false, scope: 'capacity', retry_after_ms: 0 });
    expect(g.check('a').allowed).toBe(false); // a was not evicted and reset
    c.now = 60_000;
    expect(g.check('d').allowed).toBe(true); // idle buckets are full again: evictable
  });

  test('a failing clock is a deny', () => {
    const g = new VelocityGuard({ maxPerAgent: 10, windowMs: 1000, clock: () => { throw new Error('clock'); } });
    expect(g.check('a')).toMatchObject({ allowed: false, scope: 'capacity' });
    const nan = new VelocityGuard({ maxPerAgent: 10, windowMs: 1000, clock: () => NaN });
    expect(nan.check('a').allowed).toBe(false);
  });
});

describe('VelocityGuard rejects bad input', () => {
  test('options', () => {
    expect(() => new VelocityGuard(undefined as never)).toThrow(RangeError);
    for (const windowMs of [0, -1, 1.5, NaN, 86_400_001, '1000']) expect(() => new VelocityGuard({ maxPerAgent: 1, windowMs: windowMs as never })).toThrow(RangeError);
    for (const maxPerAgent of [0, -1, 2.5, 1e7, '5']) expect(() => new VelocityGuard({ maxPerAgent: maxPerAgent as never, windowMs: 1000 })).toThrow(RangeError);
    for (const burst of [0.5, 0, 101, NaN]) expect(() => new VelocityGuard({ maxPerAgent: 1, windowMs: 1000, burst })).toThrow(RangeError);
    expect(() => new VelocityGuard({ maxPerAgent: 1, windowMs: 1000, burst: 1.0001 })).toThrow(/milli-tokens/);
    expect(() => new VelocityGuard({ maxPerAgent: 1_000_000, windowMs: 86_400_000, burst: 100 })).toThrow(/too large/);
    expect(() => new VelocityGuard({ maxPerAgent: 1, windowMs: 1000, maxBuckets: 0 })).toThrow(RangeError);
    expect(() => new VelocityGuard({ maxPerAgent: 1, windowMs: 1000, clock: 1 as never })).toThrow(TypeError);
  });

  test('check arguments', () => {
    const g = new VelocityGuard({ maxPerAgent: 1, windowMs: 1000 });
    for (const a of [undefined, '', 5, null]) expect(() => g.check(a as never)).toThrow(TypeError);
    expect(() => g.check('a', '' as never)).toThrow(TypeError);
    expect(() => g.check('a', 5 as never)).toThrow(TypeError);
    expect(g.stats().allowed).toBe(0);
  });
});
