// The addon remembers the SHA-256 of recent canonical CAR forms by content
// (native/hash/form_memo.h). A remembered digest may only ever answer for exactly
// the same bytes: forms that differ in one byte, in length, or that share a
// placement must each get their own hash.
import crypto from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { canonicalize, carHash } from '../lib/index';
import { carHashes } from '../lib/canonical/car';
import { core, randomInt, rng } from './helpers';

const reference = (car: Record<string, unknown>): string => 'sha256:' + crypto.createHash('sha256').update(canonicalize(car), 'utf8').digest('hex');

/** CARs whose canonical forms are near each other: one character apart, one longer, sizes around the memo's 384-byte bound. */
function nearForms(next: () => number): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const size of [0, 1, 7, 8, 9, 100, 300, 316, 317, 318, 319, 320, 400, 700]) {
    const pad = 'p'.repeat(size);
    const base = { action_type: 'file_read', agent_id: 'agent-1', pad };
    out.push(base, { ...base, pad: pad + 'q' }, { ...base, agent_id: 'agent-2' });
    if (size > 0) {
      const at = randomInt(next, 0, size - 1);
      out.push({ ...base, pad: pad.slice(0, at) + 'r' + pad.slice(at + 1) });
      out.push({ ...base, pad: pad.slice(0, -1) });
    }
  }
  return out;
}

describe('CAR form digests remembered by content', () => {
  test('near-identical forms, each hashed many times, single and batched, equal node:crypto', () => {
    const next = rng(0xf0e1);
    const forms = nearForms(next);
    const want = forms.map(reference);
    for (let round = 0; round < 20; round++) {
      const order = Array.from({ length: forms.length * 3 }, () => randomInt(next, 0, forms.length - 1));
      expect(order.map((i) => carHash(forms[i]))).toEqual(order.map((i) => want[i]));
      expect(carHashes(order.map((i) => forms[i]))).toEqual(order.map((i) => want[i]));
    }
  });

  test('a flood of distinct forms (far more than the memo holds) mixed with repeats', () => {
    const next = rng(0x5eed);
    const pool = Array.from({ length: 3000 }, (_, i) => ({ action_type: `op_${i % 13}`, agent_id: `agent-${i}`, args: { n: i, s: 'x'.repeat(i % 200) } }));
    const want = pool.map(reference);
    for (let round = 0; round < 6; round++) {
      const order = Array.from({ length: 2000 }, () => (next() < 0.5 ? randomInt(next, 0, 20) : randomInt(next, 0, pool.length - 1)));
      expect(carHashes(order.map((i) => pool[i]))).toEqual(order.map((i) => want[i]));
      expect(order.slice(0, 300).map((i) => carHash(pool[i]))).toEqual(order.slice(0, 300).map((i) => want[i]));
    }
  });

  test.runIf(core !== null)('raw addon: byte spans that are prefixes of each other, or differ only past a shorter one, get their own digests', () => {
    const bytes = Buffer.from('{"action_type":"a","agent_id":"b"}{"action_type":"a","agent_id":"b"}x', 'latin1');
    const spans: Array<[number, number]> = [[0, 34], [0, 33], [0, 35], [34, 68], [34, 69], [0, 1], [0, 0], [34, 67]];
    for (let round = 0; round < 3; round++) {
      for (const [from, to] of spans) {
        const want = 'sha256:' + crypto.createHash('sha256').update(bytes.subarray(from, to)).digest('hex');
        expect(core!.carHashOfBytes(bytes.subarray(from), to - from)).toBe(want);
        const text = Buffer.alloc(71);
        const digests = Buffer.alloc(32);
        core!.carHashesInto(bytes.subarray(from, to), new Uint32Array([to - from]), 1, text, digests);
        expect(text.toString('latin1')).toBe(want);
      }
    }
  });

  test.runIf(core !== null)('a repeated form is answered from the memo; one past its size bound is hashed every time', () => {
    const car = { action_type: 'file_read', agent_id: 'memo-test', n: Math.random() };
    const [hits0, misses0] = core!.carFormMemoStats();
    carHash(car);
    carHash(car);
    carHashes([car, car, car]);
    const [hits1, misses1] = core!.carFormMemoStats();
    expect(misses1 - misses0).toBe(1);
    expect(hits1 - hits0).toBe(4);
    const big = { ...car, pad: 'x'.repeat(400) };
    carHash(big);
    carHash(big);
    expect(core!.carFormMemoStats()).toEqual([hits1, misses1]); // not looked up at all
  });
});
