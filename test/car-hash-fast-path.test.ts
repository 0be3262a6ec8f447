// carHash writes canonical bytes straight into a scratch buffer
// (lib/canonical/bytes.ts) and falls back to the string serializer for
// anything unusual. These tests hold the two paths to the same answers: the
// same hash for every value one accepts, the same error for every value one
// refuses, on random and on hostile inputs.
import crypto from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { GuardError, canonicalize, carHash, type CanonicalizeOptions } from '../lib/index';
import { core, randomInt, rng } from './helpers';

const base = { action_type: 'file_read', agent_id: 'agent-1' };

function viaString(car: unknown, options?: CanonicalizeOptions): string {
  const text = canonicalize(car as Record<string, unknown>, options);
  return 'sha256:' + crypto.createHash('sha256').update(text, 'utf8').digest('hex');
}

/** carHash and the string path agree: same hash, or the same GuardError. */
function agree(car: unknown, options?: CanonicalizeOptions): void {
  let expected: string | GuardError;
  try {
    expected = viaString(car, options);
  } catch (err) {
    if (!(err instanceof GuardError)) throw err;
    expected = err;
  }
  if (typeof expected === 'string') {
    expect(carHash(car as Record<string, unknown>, options)).toBe(expected);
  } else {
    let got: unknown;
    try {
      carHash(car as Record<string, unknown>, options);
    } catch (err) {
      got = err;
    }
    expect(got).toBeInstanceOf(GuardError);
    expect((got as GuardError).message).toBe(expected.message);
  }
}

const STRINGS = ['', 'a', 'path/to/file', 'é', 'ß', '€', '中文', '😀', '\u0000', '\u001f', '\u007f', '\u0080', '\u07ff', '\u0800', '\uffff',
  '"', '\\', '\b\f\n\r\t', '\u2028\u2029', '\ud83d\ude00x', 'a\ud800', '\udc00', 'x\ud800\ud800'];

function randomString(next: () => number): string {
  let s = '';
  for (let i = randomInt(next, 0, 4); i > 0; i--) s += STRINGS[randomInt(next, 0, STRINGS.length - 1)];
  return s;
}

function randomValue(next: () => number, depth: number): unknown {
  const r = next();
  if (depth > 5 || r < 0.4) {
    switch (randomInt(next, 0, 9)) {
      case 0: return null;
      case 1: return next() < 0.5;
      case 2: return randomInt(next, -1e6, 1e6);
      case 3: return (next() - 0.5) * 10 ** randomInt(next, -320, 308);
      case 4: return [2 ** 53, -(2 ** 53), Number.MAX_SAFE_INTEGER, -0, NaN, Infinity, 1e21, 5e-324][randomInt(next, 0, 7)];
      case 5: return [undefined, () => 1, Symbol('s'), 10n, new Date(0)][randomInt(next, 0, 4)];
      default: return randomString(next);
    }
  }
  if (r < 0.6) return Array.from({ length: randomInt(next, 0, 4) }, () => randomValue(next, depth + 1));
  const o: Record<string, unknown> = next() < 0.1 ? Object.create(null) : {};
  for (let i = randomInt(next, 0, 5); i > 0; i--) o[randomString(next) + randomInt(next, 0, 30)] = randomValue(next, depth + 1);
  return o;
}

describe('carHash fast path agrees with the string serializer', () => {
  test('20,000 random CARs, valid and invalid, including escapes, astral characters and lone surrogates', () => {
    const next = rng(0xca7);
    let valid = 0;
    for (let i = 0; i < 20_000; i++) {
      const car: Record<string, unknown> = { ...base };
      if (next() < 0.05) car.agent_id = randomValue(next, 3);
      for (let k = randomInt(next, 0, 4); k > 0; k--) car[randomString(next) || 'k'] = randomValue(next, 0);
      agree(car);
      try {
        viaString(car);
        valid++;
      } catch {
        // counted only to show both kinds occur
      }
    }
    expect(valid).toBeGreaterThan(2000);
    expect(valid).toBeLessThan(19_000);
  });

  test('integers written as digits: every power of ten and its neighbours, up to 2^53, in objects, arrays and repeated shapes', () => {
    const values: number[] = [0, -0, 1, 9, 10, 2 ** 31 - 1, 2 ** 31, 2 ** 32, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER - 1];
    for (let e = 1; e <= 15; e++) values.push(10 ** e - 1, 10 ** e, 10 ** e + 1, 10 ** e + 10 ** (e - 1) * 7);
    for (let i = 0; i < 200; i++) values.push(Math.floor(crypto.randomInt(0, 2 ** 48 - 1) * (1 + (i % 20))));
    for (const v of values) {
      for (let round = 0; round < 3; round++) agree({ ...base, args: { n: v, list: [v, -v, v / 2] } }); // the third round takes a compiled layout
    }
  });

  test('every control character and the escapes JSON.stringify uses', () => {
    for (let c = 0; c < 0x80; c++) agree({ ...base, s: String.fromCharCode(c), [String.fromCharCode(c) + 'k']: 1 });
    for (const c of [0xd7ff, 0xd800, 0xdbff, 0xdc00, 0xdfff, 0xe000, 0xfffd, 0xffff]) agree({ ...base, s: 'a' + String.fromCharCode(c) + 'b' });
  });

  test('strings copied four units at a time: every kind of unit at every position of short strings, as values and keys', () => {
    // Units on each side of each boundary the plain-ASCII copy tests for.
    const units = [0x00, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x5b, 0x5c, 0x5d, 0x7e, 0x7f, 0x80, 0xff, 0x100, 0x7ff, 0x800, 0xd7ff, 0xe000, 0xfffd, 0xffff];
    const odd = [...units.map((u) => String.fromCharCode(u)), '\u{1f600}', '\ud800', '\udc00', '\udbff\udfff'];
    for (let len = 0; len <= 11; len++) {
      for (let pos = 0; pos <= len; pos++) {
        for (const o of odd) {
          const s = 'abcdefghijk'.slice(0, pos) + o + 'ABCDEFGHIJK'.slice(pos, len);
          agree({ ...base, v: s });
          agree({ ...base, [s]: 1 });
        }
      }
      agree({ ...base, v: 'x'.repeat(len) });
    }
  });

  test('the depth limit, at and past the boundary, and with options', () => {
    for (const maxDepth of [1, 2, 3, 32]) {
      for (let d = 0; d < maxDepth + 2; d++) {
        let v: unknown = 'leaf';
        for (let i = 0; i < d; i++) v = i % 2 ? [v] : { v };
        agree({ ...base, x: v }, { maxDepth });
      }
    }
  });

  test('the size limit, counted in UTF-8 bytes, at and past the boundary', () => {
    const room = 65536 - canonicalize({ ...base, p: '' }).length;
    for (const extra of [-1, 0, 1]) agree({ ...base, p: 'a'.repeat(room + extra) });
    for (const extra of [-1, 0, 1]) agree({ ...base, p: '€'.repeat(Math.floor(room / 3) + extra) });
    for (const extra of [-1, 0, 1]) agree({ ...base, p: '\u0001'.repeat(Math.floor(room / 6) + extra) }); // \u0001 is 6 bytes
    for (const maxBytes of [2, 40, 60, 61, 100]) agree({ ...base, p: 'abc' }, { maxBytes });
    // Larger than the scratch buffer ever grows: the string path answers.
    agree({ ...base, p: 'x'.repeat(2_000_000) }, { maxBytes: 4_000_000 });
    agree({ ...base, p: '\u0001'.repeat(1_000_000) }, { maxBytes: 8_000_000 });
  });

  test('repeated object shapes (remembered key layouts) hash like the string path', () => {
    const next = rng(0x1a7);
    const keySets = [
      ['action_type', 'agent_id', 'resource', 'args'],
      ['agent_id', 'action_type', 'args', 'resource'], // same keys, another insertion order
      ['action_type', 'agent_id', 'é', '😀', 'a"b', 'c\\d', '\u0001'],
      ['action_type', 'agent_id', '10', '2', 'b', 'a'], // integer-like keys come first in Object.keys
    ];
    for (let round = 0; round < 50; round++) {
      for (const keys of keySets) {
        const car: Record<string, unknown> = {};
        for (const k of keys) car[k] = k === 'action_type' || k === 'agent_id' ? `v${round}` : randomValue(next, 2);
        agree(car);
      }
    }
  });

  test('many shapes sharing a first key, and more shapes than the layout table holds', () => {
    for (let i = 0; i < 3000; i++) {
      const car: Record<string, unknown> = { action_type: 'a', agent_id: 'b' };
      car[`k${i % 1500}`] = i;
      car[`z${i % 7}`] = [i];
      agree(car);
    }
  });

  test('a repeated shape with a key holding a lone surrogate is still refused', () => {
    for (let i = 0; i < 3; i++) agree({ action_type: 'a', agent_id: 'b', ['bad\ud800']: i });
  });

  test('a large CAR then a small one: no bytes of the first leak into the second', () => {
    const big = { ...base, p: 'y'.repeat(50_000) };
    agree(big);
    agree(base);
    agree({ ...base, q: 1 });
  });

  test('a getter that hashes another CAR while the first is being written', () => {
    const inner = { ...base, inner: true };
    const outer = {
      ...base,
      get late() {
        return carHash(inner);
      },
    };
    const expected = viaString(outer);
    expect(carHash(outer)).toBe(expected);
    expect(carHash(inner)).toBe(viaString(inner));
  });

  test('a getter that throws: the error is passed through, and the next call is clean', () => {
    const bad = {
      ...base,
      get boom(): never {
        throw new Error('getter failed');
      },
    };
    expect(() => carHash(bad)).toThrow('getter failed');
    agree(base);
  });

  test('shapes the fast path leaves to the string serializer', () => {
    class Thing {
      a = 1;
    }
    const withSymbol = { ...base, [Symbol('k')]: 1 };
    const sparse = [1, , 3]; // eslint-disable-line no-sparse-arrays
    class MyArray extends Array {}
    for (const car of [null, [], 'car', { ...base, t: new Thing() }, withSymbol, { ...base, a: sparse }, { ...base, a: MyArray.from([1]) }, { action_type: '', agent_id: 'x' }, { action_type: 'x' }]) {
      agree(car);
    }
  });
});

describe.runIf(core !== null)('carHashOfBytes (raw addon) rejects bad input', () => {
  test('lengths outside the buffer, non-integers and non-buffers', () => {
    const bytes = new Uint8Array(8);
    expect(core!.carHashOfBytes(bytes, 8)).toBe('sha256:' + crypto.createHash('sha256').update(bytes).digest('hex'));
    expect(core!.carHashOfBytes(bytes, 0)).toBe('sha256:' + crypto.createHash('sha256').update('').digest('hex'));
    for (const length of [9, -1, 1.5, NaN, Infinity, '3', undefined]) {
      expect(() => core!.carHashOfBytes(bytes, length as number)).toThrow(RangeError);
    }
    for (const notBytes of ['abc', null, new Uint16Array(4), [1, 2]]) {
      expect(() => core!.carHashOfBytes(notBytes as unknown as Uint8Array, 0)).toThrow(TypeError);
    }
  });
});
