// Recent CAR hash strings found again by raw digest (lib/crypto/hash-texts.ts):
// a digest must only ever get its own text back, whatever shares its slot.
import crypto from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { carHashes } from '../lib/canonical/car';
import { CAR_HASH_TEXT_BYTES, carHashText, carHashTextCount, carHashTextPaused } from '../lib/crypto/hash-texts';
import { randomInt, rng } from './helpers';

/** One digest's words and a text buffer holding `text` for it. */
function input(words: number[], text: string): { words: Int32Array; text: Buffer } {
  return { words: Int32Array.from(words), text: Buffer.from(text, 'latin1') };
}

const textFor = (tag: string): string => 'sha256:' + crypto.createHash('sha256').update(tag).digest('hex');

describe('carHashText', () => {
  test('a digest seen before gets its earlier text; one that differs in any word gets its own', () => {
    const base = [0x12345678, 1, 2, 3, 4, 5, 6, 7];
    const first = input(base, textFor('first'));
    expect(carHashText(first.words, first.text, 0)).toBe(textFor('first'));
    // Same digest, other text in the buffer: the remembered string comes back (no new slice).
    const again = input(base, textFor('not used'));
    expect(carHashText(again.words, again.text, 0)).toBe(textFor('first'));
    // Same slot (first word equal, or equal below the slot mask): every word is compared.
    for (let w = 0; w < 8; w++) {
      // A miss replaces the slot's string: put base back first, so each variant is compared with it.
      expect(carHashText(first.words, first.text, 0)).toBe(textFor('first'));
      expect(carHashText(again.words, again.text, 0)).toBe(textFor('first'));
      const other = base.slice();
      other[w] = w === 0 ? base[0] ^ 0x40000000 : other[w] + 1;
      const x = input(other, textFor(`word ${w}`));
      expect(carHashText(x.words, x.text, 0)).toBe(textFor(`word ${w}`));
    }
  });

  test('reads digest k and text k of a batch', () => {
    const n = 5;
    const words = new Int32Array(8 * n);
    const texts: string[] = [];
    for (let k = 0; k < n; k++) {
      crypto.randomFillSync(words.subarray(8 * k, 8 * k + 8));
      texts.push(textFor(`batch ${k}`));
    }
    const text = Buffer.from(texts.join(''), 'latin1');
    expect(text.length).toBe(n * CAR_HASH_TEXT_BYTES);
    for (let k = n - 1; k >= 0; k--) expect(carHashText(words, text, k)).toBe(texts[k]);
  });

  test('stays bounded under a flood of distinct digests', () => {
    const words = new Int32Array(8);
    const text = Buffer.from(textFor('flood'), 'latin1');
    for (let i = 0; i < 20_000; i++) {
      crypto.randomFillSync(words);
      carHashText(words, text, 0);
      expect(carHashTextCount()).toBeLessThanOrEqual(4096);
    }
  });
});

describe('the table pauses where digests seldom repeat', () => {
  test('emptied and paused by distinct digests, kept again once they repeat; each text is its own digest\'s throughout', () => {
    const words = new Int32Array(8);
    const texts = Array.from({ length: 16 }, (_, i) => textFor(`t${i}`));
    // Distinct digests: after a window the table is emptied and stops keeping strings.
    for (let i = 0; i < 5000; i++) {
      crypto.randomFillSync(words);
      const t = texts[i % 16];
      expect(carHashText(words, Buffer.from(t, 'latin1'), 0)).toBe(t);
    }
    expect(carHashTextPaused()).toBeGreaterThan(0);
    expect(carHashTextCount()).toBe(0);
    // One digest over and over: once the pause is over, its string is kept (and found) again.
    const one = input([9, 8, 7, 6, 5, 4, 3, 2], textFor('one'));
    for (let i = 0; i < 40_000; i++) expect(carHashText(one.words, one.text, 0)).toBe(textFor('one'));
    expect(carHashTextPaused()).toBe(0);
    expect(carHashTextCount()).toBe(1);
    expect(carHashText(one.words, Buffer.from(textFor('not used'), 'latin1'), 0)).toBe(textFor('one'));
  });
});

describe('carHashes with repeated CARs (the strings are reused)', () => {
  test('equal node:crypto on batches full of repeats, interleaved with new CARs', () => {
    const next = rng(0x7e47);
    const pool = Array.from({ length: 40 }, (_, i) => ({ action_type: `op_${i % 7}`, agent_id: `agent-${i}`, args: { n: i, s: 'x'.repeat(i * 3) } }));
    for (let round = 0; round < 30; round++) {
      const cars = Array.from({ length: randomInt(next, 1, 600) }, () => (next() < 0.8 ? pool[randomInt(next, 0, pool.length - 1)] : { action_type: 'fresh', agent_id: `a-${next()}` }));
      const got = carHashes(cars);
      const want = cars.map((c) => 'sha256:' + crypto.createHash('sha256').update(JSON.stringify(c, Object.keys(c).concat(['n', 's']).sort())).digest('hex'));
      expect(got).toEqual(want);
    }
  });
});
