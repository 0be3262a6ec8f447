// ReplayDetector: atomic check-and-insert, bounded ring, saturation, handles.
import { describe, expect, test } from 'vitest';
import { GuardError, ReplayDetector } from '../lib/index';
import { fakeClock } from './helpers';

describe('ReplayDetector semantics', () => {
  test('seen() answers without inserting, and forgets expired nonces', () => {
    const c = fakeClock();
    const r = new ReplayDetector({ capacity: 4, clock: c.fn });
    expect(r.seen('s1')).toBe(false);
    expect(r.seen('s1')).toBe(false); // asking twice inserts nothing
    expect(r.check('s1', c.now + 100)).toBe('fresh');
    expect(r.seen('s1')).toBe(true);
    c.now += 100;
    expect(r.seen('s1')).toBe(false); // expired
    expect(r.stats().accepted).toBe(1);
    expect(() => r.seen('')).toThrow(TypeError);
    expect(() => r.seen('x'.repeat(1025))).toThrow(TypeError);
    expect(() => r.seen('\ud800')).toThrow(TypeError);
    r.close();
    expect(() => r.seen('s1')).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }));
  });

  test('fresh once, then replay until expiry, then fresh again', () => {
    const c = fakeClock();
    const r = new ReplayDetector({ capacity: 8, clock: c.fn });
    expect(r.check('n1', c.now + 100)).toBe('fresh');
    expect(r.check('n1', c.now + 100)).toBe('replay');
    expect(r.check('n1', c.now + 5000)).toBe('replay'); // a later expiry does not reset it
    c.now += 99;
    expect(r.check('n1', c.now + 100)).toBe('replay');
    c.now += 1; // expiry reached
    expect(r.check('n1', c.now + 100)).toBe('fresh');
    expect(r.stats()).toEqual({ size: 1, capacity: 8, replays: 3, saturated: 0, accepted: 2 });
  });

  test('saturation: full of live nonces, a new one is saturated and an old one is still a replay', () => {
    const c = fakeClock();
    const r = new ReplayDetector({ capacity: 4, clock: c.fn });
    for (const n of ['a', 'b', 'c', 'd']) expect(r.check(n, c.now + 1000)).toBe('fresh');
    expect(r.check('e', c.now + 1000)).toBe('saturated');
    expect(r.check('a', c.now + 1000)).toBe('replay');
    expect(r.check('e', c.now + 1000)).toBe('saturated'); // not remembered while saturated
    expect(r.stats()).toMatchObject({ size: 4, replays: 1, saturated: 2, accepted: 4 });
    // Live nonces were never evicted: every one is still a replay.
    for (const n of ['a', 'b', 'c', 'd']) expect(r.check(n, c.now + 1000)).toBe('replay');
    c.now += 1000; // all expired: room again, oldest slots reused
    expect(r.check('e', c.now + 1000)).toBe('fresh');
    expect(r.check('a', c.now + 1000)).toBe('fresh');
  });

  test('ring reuse keeps memory bounded over many nonces', () => {
    const c = fakeClock();
    const r = new ReplayDetector({ capacity: 64, clock: c.fn });
    for (let i = 0; i < 10_000; i++) {
      c.now += 1;
      expect(r.check(`nonce-${i}`, c.now + 50)).toBe('fresh');
    }
    const s = r.stats();
    expect(s.size).toBeLessThanOrEqual(64);
    expect(s.accepted).toBe(10_000);
    // The last 50 are live: replays.
    for (let i = 9_951; i < 10_000; i++) expect(r.check(`nonce-${i}`, c.now + 50)).toBe('replay');
  });

  test('nonces are compared exactly (no normalization, case matters)', () => {
    const r = new ReplayDetector({ capacity: 16 });
    const exp = Date.now() + 60_000;
    expect(r.check('caf\u00e9', exp)).toBe('fresh');
    expect(r.check('cafe\u0301', exp)).toBe('fresh');
    expect(r.check('CAF\u00c9', exp)).toBe('fresh');
    expect(r.check('caf\u00e9', exp)).toBe('replay');
  });
});

describe('ReplayDetector rejects bad input', () => {
  test('constructor options', () => {
    for (const capacity of [0, -1, 1.5, NaN, 2 ** 27, '10']) {
      expect(() => new ReplayDetector({ capacity: capacity as never })).toThrow(RangeError);
    }
    expect(() => new ReplayDetector(5 as never)).toThrow(TypeError);
    expect(() => new ReplayDetector({ clock: 5 as never })).toThrow(TypeError);
    expect(() => ReplayDetector.shared('' as never)).toThrow(TypeError);
    expect(() => ReplayDetector.shared(7 as never)).toThrow(TypeError);
  });

  test('check arguments', () => {
    const r = new ReplayDetector({ capacity: 4 });
    const exp = Date.now() + 1000;
    for (const n of [undefined, null, 5, '', 'x'.repeat(1025), Buffer.from('x'), '\ud800']) {
      expect(() => r.check(n as never, exp)).toThrow(TypeError);
    }
    for (const e of [undefined, '1', NaN, Infinity]) expect(() => r.check('n', e as never)).toThrow(TypeError);
    expect(() => r.check('n', Date.now() - 1)).toThrow(RangeError);
    expect(r.stats().accepted).toBe(0);
  });

  test('a closed detector is a GuardError, not a crash; close is idempotent', () => {
    const r = new ReplayDetector({ capacity: 4 });
    r.close();
    r.close();
    expect(r.closed).toBe(true);
    expect(() => r.check('n', Date.now() + 1000)).toThrow(GuardError);
    expect(() => r.stats()).toThrow(/closed/);
  });
});

describe('ReplayDetector.shared', () => {
  test('two handles of one name share nonces; the store outlives a closed handle', () => {
    const name = `shared-${Math.random()}`;
    const a = ReplayDetector.shared(name, { capacity: 32 });
    const b = ReplayDetector.shared(name, { capacity: 32 });
    const exp = Date.now() + 60_000;
    expect(a.check('x', exp)).toBe('fresh');
    expect(b.check('x', exp)).toBe('replay');
    a.close();
    expect(b.check('x', exp)).toBe('replay');
    expect(b.stats().replays).toBe(2);
    expect(() => ReplayDetector.shared(name, { capacity: 64 })).toThrow(/another capacity/);
    b.close();
    // Every handle gone: the name starts over with a new, empty store.
    const c = ReplayDetector.shared(name, { capacity: 64 });
    expect(c.check('x', exp)).toBe('fresh');
    c.close();
  });
});
