// DecisionCache: TTL, LRU, policy-version stamping, stats, handles.
import crypto from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { DecisionCache, GuardError, carHash } from '../lib/index';
import { fakeClock } from './helpers';

const key = (i: number) => carHash({ action_type: 'file_read', agent_id: `agent-${i}` });

describe('DecisionCache semantics', () => {
  test('put/get round trip with reason, version and expiry', () => {
    const c = fakeClock();
    const cache = new DecisionCache({ capacity: 10, ttlMs: 1000, clock: c.fn });
    cache.put(key(1), { decision: 'allow', reason: 'rule file_read', policyVersion: 3 });
    expect(cache.get(key(1), 3)).toEqual({ decision: 'allow', reason: 'rule file_read', policyVersion: 3, expiresAt: c.now + 1000 });
    cache.put(key(2), { decision: 'deny', policyVersion: 3, ttlMs: 50 });
    expect(cache.get(key(2), 3)).toEqual({ decision: 'deny', policyVersion: 3, expiresAt: c.now + 50 });
    cache.put(key(3), { decision: 'pending', policyVersion: 3 });
    expect(cache.get(key(3), 3)?.decision).toBe('pending');
  });

  test('an entry made under another policy version is never returned (and is dropped)', () => {
    const cache = new DecisionCache({ capacity: 10 });
    cache.put(key(1), { decision: 'allow', policyVersion: 3 });
    expect(cache.get(key(1), 4)).toBeUndefined();
    // Dropped: even the old version no longer finds it.
    expect(cache.get(key(1), 3)).toBeUndefined();
    cache.put(key(2), { decision: 'allow', policyVersion: 5 });
    expect(cache.get(key(2), 4)).toBeUndefined();
    expect(cache.stats()).toMatchObject({ entries: 0, hits: 0, misses: 3 });
  });

  test('TTL: expired entries are misses and count as expirations', () => {
    const c = fakeClock();
    const cache = new DecisionCache({ capacity: 10, ttlMs: 100, clock: c.fn });
    cache.put(key(1), { decision: 'allow', policyVersion: 1 });
    c.now += 99;
    expect(cache.get(key(1), 1)).toBeDefined();
    c.now += 1;
    expect(cache.get(key(1), 1)).toBeUndefined();
    expect(cache.stats()).toEqual({ entries: 0, capacity: 10, hits: 1, misses: 1, evictions: 0, expirations: 1 });
  });

  test('getAt judges expiry at the instant given; now() reads the cache clock (near cache on and off)', () => {
    for (const shards of [1, 16]) {
      const c = fakeClock();
      const cache = new DecisionCache({ capacity: 4096, shards, ttlMs: 100, clock: c.fn });
      expect(cache.now()).toBe(c.now);
      cache.put(key(1), { decision: 'allow', policyVersion: 1 });
      const t = c.now;
      for (let i = 0; i < 3; i++) expect(cache.getAt(key(1), 1, t + 99)?.decision).toBe('allow');
      // The clock itself has not moved: the instant passed in decides.
      expect(cache.getAt(key(1), 1, t + 100)).toBeUndefined();
      expect(cache.get(key(1), 1)).toBeUndefined(); // expired entries are dropped
    }
  });

  test('exact LRU on a scripted trace (one shard)', () => {
    const cache = new DecisionCache({ capacity: 3, shards: 1 });
    const put = (i: number) => cache.put(key(i), { decision: 'allow', policyVersion: 1 });
    const has = (i: number) => cache.get(key(i), 1) !== undefined;
    put(1); put(2); put(3);
    expect(has(1)).toBe(true); // order now (MRU first): 1 3 2
    put(4); // evicts 2
    expect(has(2)).toBe(false);
    expect(has(3)).toBe(true); // 3 1 4 ... wait: order 3 4 1
    put(5); // evicts 1
    expect(has(1)).toBe(false);
    expect(has(4)).toBe(true);
    expect(has(3)).toBe(true);
    expect(has(5)).toBe(true);
    put(3); // update moves 3 to MRU: 3 5 4
    put(6); // evicts 4
    expect(has(4)).toBe(false);
    expect(cache.stats()).toMatchObject({ entries: 3, evictions: 3 });
  });

  test('invalidate and clear', () => {
    const cache = new DecisionCache({ capacity: 10 });
    for (let i = 0; i < 5; i++) cache.put(key(i), { decision: 'deny', policyVersion: 1 });
    expect(cache.invalidate(key(0))).toBe(true);
    expect(cache.invalidate(key(0))).toBe(false);
    expect(cache.get(key(0), 1)).toBeUndefined();
    expect(cache.clear()).toBe(4);
    expect(cache.stats().entries).toBe(0);
  });

  test('stats add up: hits + misses = gets', () => {
    const cache = new DecisionCache({ capacity: 50, shards: 4 });
    let gets = 0;
    for (let i = 0; i < 500; i++) {
      if (i % 3 === 0) cache.put(key(i % 97), { decision: 'allow', policyVersion: 1 });
      cache.get(key((i * 7) % 97), 1);
      gets++;
    }
    const s = cache.stats();
    expect(s.hits + s.misses).toBe(gets);
    expect(s.entries).toBeLessThanOrEqual(50);
  });
});

describe('DecisionCache reasons and the gate lookup', () => {
  test('many distinct reasons round trip (past the native intern bound), replaced and evicted', () => {
    for (const shards of [1, 4]) {
      const cache = new DecisionCache({ capacity: 1500, shards });
      const n = 3000;
      for (let i = 0; i < n; i++) cache.put(key(i), { decision: i % 2 ? 'deny' : 'allow', reason: `reason ${i} ${'x'.repeat(i % 300)}`, policyVersion: 1 });
      const present: number[] = [];
      for (let i = 0; i < n; i++) {
        const hit = cache.get(key(i), 1);
        if (hit === undefined) continue;
        present.push(i);
        expect(hit).toMatchObject({ decision: i % 2 ? 'deny' : 'allow', reason: `reason ${i} ${'x'.repeat(i % 300)}` });
      }
      expect(present.length).toBe(1500);
      if (shards === 1) expect(present[0]).toBe(n - 1500); // exact LRU: the newest 1500
      for (const i of present.filter((_, j) => j % 7 === 0)) cache.put(key(i), { decision: 'pending', reason: i % 3 ? 'short' : undefined, policyVersion: 1 });
      for (const i of present.filter((_, j) => j % 7 === 0)) expect(cache.get(key(i), 1)).toEqual({ decision: 'pending', ...(i % 3 ? { reason: 'short' } : {}), policyVersion: 1, expiresAt: expect.any(Number) });
      cache.clear();
      cache.put(key(1), { decision: 'allow', reason: 'reason 2 xx', policyVersion: 1 });
      expect(cache.get(key(1), 1)?.reason).toBe('reason 2 xx');
      expect(cache.stats().entries).toBe(1);
    }
  });

  test('lookupAt answers what getAt answers, with the reason in lastReason', () => {
    const c = fakeClock();
    for (const nearCache of [false, true]) {
      const cache = new DecisionCache({ capacity: 64, shards: 4, nearCache, ttlMs: 100, clock: c.fn });
      cache.put(key(1), { decision: 'deny', reason: 'r1', policyVersion: 1 });
      cache.put(key(2), { decision: 'allow', policyVersion: 1 });
      for (let i = 0; i < 3; i++) {
        expect(cache.lookupAt(key(1), 1, c.now)).toBe('deny');
        expect(cache.lastReason).toBe('r1');
        expect(cache.lookupAt(key(2), 1, undefined)).toBe('allow');
        expect(cache.lastReason).toBe('');
        expect(cache.getAt(key(1), 1, c.now)).toEqual({ decision: 'deny', reason: 'r1', policyVersion: 1, expiresAt: c.now + 100 });
      }
      expect(cache.lookupAt(key(3), 1, c.now)).toBeUndefined();
      expect(cache.lookupAt(key(1), 2, c.now)).toBeUndefined();
      expect(cache.lookupAt(key(2), 1, c.now + 100)).toBeUndefined();
      expect(cache.stats()).toMatchObject({ hits: 9, misses: 3 });
      cache.getAt = () => undefined; // an override sees every lookup
      expect(cache.lookupAt(key(2), 1, c.now)).toBeUndefined();
    }
  });

  test('near cache under churn (puts between gets) stays correct and counts every get', () => {
    const cache = new DecisionCache({ capacity: 256, shards: 4, nearCache: true });
    const keys = Array.from({ length: 97 }, (_, k) => key(k));
    const last: string[] = [];
    let gets = 0;
    for (let i = 0; i < 40000; i++) {
      const k = i % 97;
      if (i % 3 === 0) cache.put(keys[k], { decision: 'allow', reason: (last[k] = `v${i}`), policyVersion: 1 });
      const hit = cache.get(keys[k], 1);
      gets++;
      if (last[k] !== undefined) expect(hit?.reason).toBe(last[k]);
    }
    // Then a stable key: served (from near copies once they pay again) with the right answer.
    cache.put(key(500), { decision: 'deny', reason: 'stable', policyVersion: 1 });
    for (let i = 0; i < 40000; i++) {
      expect(cache.get(key(500), 1)?.reason).toBe('stable');
      gets++;
    }
    const s = cache.stats();
    expect(s.hits + s.misses).toBe(gets);
  });
});

describe('DecisionCache near cache (native, sharded)', () => {
  const opts = { capacity: 64, shards: 4, nearCache: true } as const;

  test('a near copy is retired by any change to the store, from any handle', () => {
    const name = `near-${crypto.randomUUID()}`;
    const a = DecisionCache.shared(name, opts);
    const b = DecisionCache.shared(name, opts);
    a.put(key(1), { decision: 'allow', reason: 'v1', policyVersion: 1 });
    for (let i = 0; i < 5; i++) expect(b.get(key(1), 1)?.reason).toBe('v1'); // b now holds a near copy
    a.put(key(1), { decision: 'deny', reason: 'v2', policyVersion: 1 });
    expect(b.get(key(1), 1)).toMatchObject({ decision: 'deny', reason: 'v2' });
    a.invalidate(key(1));
    expect(b.get(key(1), 1)).toBeUndefined();
    a.put(key(2), { decision: 'allow', policyVersion: 1 });
    expect(b.get(key(2), 1)).toBeDefined();
    a.clear();
    expect(b.get(key(2), 1)).toBeUndefined();
    a.close();
    b.close();
  });

  test('a near copy never serves another policy version or an expired entry', () => {
    const c = fakeClock();
    const cache = new DecisionCache({ ...opts, ttlMs: 100, clock: c.fn });
    cache.put(key(1), { decision: 'allow', policyVersion: 1 });
    expect(cache.get(key(1), 1)).toBeDefined();
    expect(cache.get(key(1), 1)).toBeDefined();
    expect(cache.get(key(1), 2)).toBeUndefined();
    cache.put(key(3), { decision: 'allow', policyVersion: 1 });
    expect(cache.get(key(3), 1)).toBeDefined();
    c.now += 100;
    expect(cache.get(key(3), 1)).toBeUndefined();
  });

  test('hashes that share the near map slot never answer for each other', () => {
    // The near map is keyed by digits 7..14 of the hash: these agree there and differ after.
    const head = 'sha256:' + 'ab12cd34';
    const allowKey = head + 'a'.repeat(56);
    const denyKey = head + 'b'.repeat(56);
    const cache = new DecisionCache(opts);
    cache.put(allowKey, { decision: 'allow', reason: 'A', policyVersion: 1 });
    cache.put(denyKey, { decision: 'deny', reason: 'B', policyVersion: 1 });
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 3; i++) expect(cache.get(allowKey, 1)).toMatchObject({ decision: 'allow', reason: 'A' });
      for (let i = 0; i < 3; i++) expect(cache.get(denyKey, 1)).toMatchObject({ decision: 'deny', reason: 'B' });
    }
    const unknown = head + 'c'.repeat(56);
    expect(cache.get(unknown, 1)).toBeUndefined();
    expect(cache.stats()).toMatchObject({ hits: 18, misses: 1 });
  });

  test('near hits count in stats, and copies go back to the store for recency', () => {
    const cache = new DecisionCache(opts);
    cache.put(key(1), { decision: 'allow', policyVersion: 1 });
    for (let i = 0; i < 1000; i++) expect(cache.get(key(1), 1)?.decision).toBe('allow');
    expect(cache.stats()).toMatchObject({ hits: 1000, misses: 0 });
  });

  test('returned entries are frozen: a caller cannot alter what others read', () => {
    const cache = new DecisionCache(opts);
    cache.put(key(1), { decision: 'deny', reason: 'r', policyVersion: 1 });
    const first = cache.get(key(1), 1)! as { decision: string; reason?: string };
    expect(Object.isFrozen(first)).toBe(true);
    expect(() => {
      first.decision = 'allow';
    }).toThrow(TypeError);
    expect(() => {
      first.reason = 'tampered';
    }).toThrow(TypeError);
    expect(cache.get(key(1), 1)).toMatchObject({ decision: 'deny', reason: 'r' });
    expect(cache.get(key(1), 1)).toMatchObject({ decision: 'deny', reason: 'r' });
  });
});

describe('DecisionCache rejects bad input', () => {
  test('options', () => {
    for (const capacity of [0, -5, 2.5, NaN, 2 ** 27]) expect(() => new DecisionCache({ capacity })).toThrow(RangeError);
    for (const ttlMs of [0, -1, 0.5]) expect(() => new DecisionCache({ ttlMs })).toThrow(RangeError);
    for (const shards of [0, 257, 1.5]) expect(() => new DecisionCache({ shards })).toThrow(RangeError);
    expect(() => new DecisionCache('x' as never)).toThrow(TypeError);
  });

  test('keys must be CAR hashes', () => {
    const cache = new DecisionCache({ capacity: 4 });
    const bad = [undefined, 5, '', 'sha256:', 'sha256:' + 'A'.repeat(64), 'sha256:' + 'g'.repeat(64), 'sha256:' + '0'.repeat(63), 'sha256:' + '0'.repeat(65), 'sha512:' + '0'.repeat(64), 'sha256:' + '\u0130'.repeat(64)];
    for (const k of bad) {
      expect(() => cache.get(k as never, 1)).toThrow(TypeError);
      expect(() => cache.put(k as never, { decision: 'allow', policyVersion: 1 })).toThrow(TypeError);
      expect(() => cache.invalidate(k as never)).toThrow(TypeError);
    }
  });

  test('one bad character anywhere in the digits is refused; every hex digit decodes to its own key', () => {
    const cache = new DecisionCache({ capacity: 64 });
    const base = '0123456789abcdef'.repeat(4);
    for (const at of [0, 1, 31, 32, 62, 63]) {
      for (const c of ['/', ':', '@', 'A', 'F', 'G', '`', 'g', 'z', ' ', '\u0000', '\u00e9', '\u0130', '\u0661', '\uff10']) {
        const k = 'sha256:' + base.slice(0, at) + c + base.slice(at + 1);
        expect(() => cache.get(k, 1)).toThrow(TypeError);
        expect(() => cache.put(k, { decision: 'allow', policyVersion: 1 })).toThrow(TypeError);
      }
    }
    // Keys that differ in one digit are different entries (no two digits decode alike).
    for (const at of [0, 63]) {
      const keys = [...'0123456789abcdef'].map((d) => 'sha256:' + base.slice(0, at) + d + base.slice(at + 1));
      keys.forEach((k, i) => cache.put(k, { decision: 'deny', reason: `r${at}-${i}`, policyVersion: 1 }));
      keys.forEach((k, i) => expect(cache.get(k, 1)?.reason).toBe(`r${at}-${i}`));
    }
  });

  test('values', () => {
    const cache = new DecisionCache({ capacity: 4 });
    const k = key(1);
    expect(() => cache.put(k, null as never)).toThrow(TypeError);
    expect(() => cache.put(k, { decision: 'maybe' as never, policyVersion: 1 })).toThrow(TypeError);
    expect(() => cache.put(k, { decision: 'allow', policyVersion: NaN })).toThrow(TypeError);
    expect(() => cache.put(k, { decision: 'allow', policyVersion: '1' as never })).toThrow(TypeError);
    expect(() => cache.put(k, { decision: 'allow', policyVersion: 1, reason: 5 as never })).toThrow(TypeError);
    expect(() => cache.put(k, { decision: 'allow', policyVersion: 1, reason: 'x'.repeat(1025) })).toThrow(TypeError);
    expect(() => cache.put(k, { decision: 'allow', policyVersion: 1, ttlMs: 0 })).toThrow(RangeError);
    expect(() => cache.get(k, Infinity)).toThrow(TypeError);
    expect(cache.stats().entries).toBe(0);
  });

  test('a closed cache is a GuardError, not a crash', () => {
    const cache = new DecisionCache({ capacity: 4 });
    cache.close();
    cache.close();
    for (const op of [() => cache.get(key(1), 1), () => cache.put(key(1), { decision: 'allow', policyVersion: 1 }), () => cache.invalidate(key(1)), () => cache.clear(), () => cache.stats()]) {
      expect(op).toThrow(GuardError);
    }
  });
});

describe('DecisionCache.shared', () => {
  test('handles of one name share entries; capacity mismatch is refused; last close frees', () => {
    const name = `cache-${crypto.randomUUID()}`;
    const a = DecisionCache.shared(name, { capacity: 8 });
    const b = DecisionCache.shared(name, { capacity: 8 });
    a.put(key(1), { decision: 'allow', policyVersion: 2, reason: 'shared' });
    expect(b.get(key(1), 2)?.reason).toBe('shared');
    expect(() => DecisionCache.shared(name, { capacity: 9 })).toThrow(/another capacity/);
    a.close();
    expect(b.get(key(1), 2)).toBeDefined();
    b.close();
    const c = DecisionCache.shared(name, { capacity: 9 });
    expect(c.get(key(1), 2)).toBeUndefined();
    c.close();
  });
});
