// The canonical writer (lib/canonical/writer.ts) gives up on input the string
// serializer must judge by setting `stop` and returning, never by throwing,
// and stops walking at the first such value. Why: a throw unwinding through
// every level of a deep value was the costliest thing an attacker could send
// (a CAR 70 objects deep cost dozens of valid ones), and a walk that went on
// after giving up would do work nobody reads.
import crypto from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { GuardError, canonicalize, carHash } from '../lib/index';
import { carHashes } from '../lib/canonical/car';
import { ABORT, CanonicalWriter, FULL } from '../lib/canonical/writer';
import { appendCanonicalCar, SCRATCH_FULL, writeCanonicalCar } from '../lib/canonical/bytes';

const base = { action_type: 'file_read', agent_id: 'agent-1' };

function nest(depth: number, leaf: unknown, arrays: boolean): unknown {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = arrays ? [v] : { k: v };
  return v;
}

function writer(maxDepth = 32): CanonicalWriter {
  const w = new CanonicalWriter();
  w.maxDepth = maxDepth;
  w.limit = 1 << 20;
  return w;
}

/** What `f` throws (undefined if it returns). */
function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (err) {
    return err;
  }
  return undefined;
}

/** The message carHash throws for `car`, which must be the string serializer's. */
function refusal(car: unknown): string {
  const viaString = thrown(() => canonicalize(car as Record<string, unknown>));
  expect(viaString).toBeInstanceOf(GuardError);
  const got = thrown(() => carHash(car as Record<string, unknown>));
  expect(got).toBeInstanceOf(GuardError);
  expect((got as Error).message).toBe((viaString as Error).message);
  return (got as Error).message;
}

describe('the writer gives up by returning', () => {
  const invalid: Array<[string, unknown]> = [
    ['objects nested past the limit', nest(70, 1, false)],
    ['arrays nested past the limit', nest(70, 1, true)],
    ['a lone surrogate 20 levels down', nest(20, 'x\ud800y', false)],
    ['NaN', { n: NaN }],
    ['Infinity in an array', [1, 2, -Infinity]],
    ['an integer beyond 2^53 - 1', { n: 2 ** 53 }],
    ['a function', { f: () => 1 }],
    ['undefined', [undefined]],
    ['a bigint', { b: 1n }],
    ['a class instance', { t: new (class Thing {})() }],
    ['an array subclass', { a: new (class MyArray extends Array {})() }],
    ['a symbol key', { [Symbol('s')]: 1 }],
  ];
  for (const [name, value] of invalid) {
    test(`${name}: no throw, stop is ABORT`, () => {
      const w = writer();
      expect(() => w.value(value, 0)).not.toThrow();
      expect(w.stop).toBe(ABORT);
    });
  }

  test('a value past the byte limit: no throw, stop is ABORT', () => {
    const w = writer();
    w.limit = 100;
    w.value({ s: 'x'.repeat(10_000) }, 0);
    expect(w.stop).toBe(ABORT);
  });

  test('valid values leave stop at 0', () => {
    const w = writer();
    w.value({ ...base, a: [1, 2.5, -3, 'é\u{1F600}', null, true, { z: {} }], n: 2 ** 53 - 1 }, 0);
    expect(w.stop).toBe(0);
  });

  test('deep and invalid CARs give -1 from the byte writer, and carHash throws the string path\'s error', () => {
    for (const [, value] of invalid) {
      const car = { ...base, args: value };
      expect(writeCanonicalCar(car, 32, 1 << 20)).toBe(-1);
      refusal(car);
    }
    expect(refusal({ ...base, args: nest(70, 1, false) })).toMatch(/nesting deeper than 32/);
  });

  test('a batch past the scratch buffer asks to be flushed (FULL), and the hashes are right', () => {
    expect(FULL).not.toBe(ABORT);
    // 4 MiB of scratch holds about 80 of these 50 kB CARs.
    const big = { ...base, s: 'y'.repeat(50_000) };
    const first = appendCanonicalCar(big, 0, 32, 65_536);
    expect(first).toBeGreaterThan(50_000);
    let at = first;
    let full = false;
    for (let i = 0; i < 200 && !full; i++) {
      const next = appendCanonicalCar(big, at, 32, 65_536);
      if (next === SCRATCH_FULL) full = true;
      else at = next;
    }
    expect(full).toBe(true);
    const want = 'sha256:' + crypto.createHash('sha256').update(canonicalize(big), 'utf8').digest('hex');
    expect(carHashes(Array.from({ length: 200 }, () => big))).toEqual(Array.from({ length: 200 }, () => want));
  });
});

describe('the walk stops at the first value it gives up on', () => {
  /** An object whose one key is a getter that counts its reads. */
  function counted(): { o: Record<string, unknown>; reads: () => number } {
    let n = 0;
    const o = {};
    Object.defineProperty(o, 'x', { enumerable: true, get: () => (n++, 1) });
    return { o, reads: () => n };
  }

  test('in an array', () => {
    const { o, reads } = counted();
    const w = writer();
    w.value([NaN, o], 0);
    expect(w.stop).toBe(ABORT);
    expect(reads()).toBe(0);
  });

  test('in an object of a new shape (the sorting loop)', () => {
    const { o, reads } = counted();
    const w = writer();
    w.value({ [`a${crypto.randomUUID()}`]: NaN, zz: o }, 0);
    expect(w.stop).toBe(ABORT);
    expect(reads()).toBe(0);
  });

  test('in objects of a common shape (the prepared loop and the compiled writer)', () => {
    for (let i = 0; i < 30; i++) {
      const { o, reads } = counted();
      const w = writer();
      w.value({ aa_give_up: { deep: nest(40, 1, false) }, ab_later: o }, 0);
      expect(w.stop).toBe(ABORT);
      expect(reads()).toBe(0);
      // A valid object of the same shape still writes (the shape is common).
      const ok = writer();
      ok.value({ aa_give_up: 1, ab_later: 2 }, 0);
      expect(ok.stop).toBe(0);
      expect(ok.buf.subarray(0, ok.pos).toString()).toBe('{"aa_give_up":1,"ab_later":2}');
    }
  });

  test('carHash of such a CAR reads no getter after the invalid value', () => {
    for (let i = 0; i < 30; i++) {
      const { o, reads } = counted();
      refusal({ ...base, a_first: [Infinity], z_last: o });
      expect(reads()).toBe(0);
    }
  });
});
