// The raw addon's store functions re-check everything: a handle of the wrong
// kind, a foreign object, a closed handle or a bad argument is an exception,
// never a crash or a type confusion.
import { describe, expect, test } from 'vitest';
import { core } from './helpers';

const KEY = 'sha256:' + 'ab'.repeat(32);

describe.runIf(core !== null)('raw store functions', () => {
  test('handles are type-tagged: the wrong kind or a foreign value is refused', () => {
    const c = core!;
    const cache = c.cacheCreate(8, 1);
    const replay = c.replayCreate(8);
    const out = new Uint8Array(48);
    expect(() => c.replayCheck(cache as never, 'n', 2e12, 1e12)).toThrow(/ReplayDetector handle/);
    expect(() => c.cacheGet(replay as never, KEY, 1, 0, out, 0)).toThrow(/DecisionCache handle/);
    for (const bogus of [undefined, null, 1, 'handle', {}, [], new Uint8Array(8)]) {
      expect(() => c.cacheGet(bogus as never, KEY, 1, 0, out, 0)).toThrow(TypeError);
      expect(() => c.replayCheck(bogus as never, 'n', 2e12, 1e12)).toThrow(TypeError);
      expect(() => c.cacheClose(bogus as never)).toThrow(TypeError);
    }
  });

  test('closed handles throw ERR_CLOSED', () => {
    const c = core!;
    const cache = c.cacheCreate(8, 1);
    c.cacheClose(cache);
    c.cacheClose(cache);
    let err: unknown;
    try {
      c.cachePut(cache, KEY, 0, 1, 2e12, '');
    } catch (e) {
      err = e;
    }
    expect((err as { code?: string }).code).toBe('ERR_CLOSED');
    const replay = c.replayCreate(8);
    c.replayClose(replay);
    expect(() => c.replayCheck(replay, 'n', 2e12, 1e12)).toThrow(/destroyed|closed/);
    expect(() => c.replayContains(replay, 'n', 1e12)).toThrow(/destroyed|closed/);
  });

  test('bad arguments', () => {
    const c = core!;
    for (const cap of [0, -1, 1.5, NaN, 2 ** 27, '8']) {
      expect(() => c.cacheCreate(cap as never, 1)).toThrow();
      expect(() => c.replayCreate(cap as never)).toThrow();
    }
    expect(() => c.cacheCreate(8, 0)).toThrow(RangeError);
    expect(() => c.cacheCreate(8, 300)).toThrow(RangeError);
    const cache = c.cacheCreate(8, 1);
    const out = new Uint8Array(48);
    expect(() => c.cacheGet(cache, KEY, 1, 0, new Uint8Array(8), 0)).toThrow(RangeError);
    expect(() => c.cacheGet(cache, KEY, NaN, 0, out, 0)).toThrow(TypeError);
    expect(() => c.cachePut(cache, KEY, 3, 1, 2e12, '')).toThrow(RangeError);
    expect(() => c.cachePut(cache, KEY, 0, 1, 2e12, 5 as never)).toThrow(TypeError);
    expect(() => c.cachePut(cache, KEY, 0, 1, 2e12, 'x'.repeat(5000))).toThrow(RangeError);
    expect(() => c.cachePut(cache, 'sha256:' + 'AB'.repeat(32), 0, 1, 2e12, '')).toThrow(TypeError);
    expect(() => c.cacheAddNearHits(cache, -1)).toThrow(RangeError);
    const replay = c.replayCreate(8);
    expect(() => c.replayCheck(replay, 5 as never, 2e12, 1e12)).toThrow(TypeError);
    expect(() => c.replayCheck(replay, 'n', Infinity, 1e12)).toThrow(TypeError);
    expect(() => c.replayContains(replay, 5 as never, 1e12)).toThrow(TypeError);
    expect(() => c.replayContains(replay, 'n', NaN)).toThrow(TypeError);
    expect(() => c.replayContains({} as never, 'n', 1e12)).toThrow(TypeError);
    expect(() => c.replayStats(replay, new Uint8Array(39), 0)).toThrow(RangeError);
    expect(() => c.replayShared(5 as never, 8)).toThrow(TypeError);
  });
});
