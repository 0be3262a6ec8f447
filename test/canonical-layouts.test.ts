// Shapes seen often get a compiled writer (lib/canonical/layouts.ts). These
// tests repeat every shape past the compile threshold and hold the compiled
// writer to the string serializer, check that values are read as the loop
// reads them, that a flood of new shapes cannot force a flood of compiles,
// and that a runtime without code generation still hashes correctly.
import { runSync } from './child';
import crypto from 'node:crypto';
import path from 'node:path';
import { describe, expect, test, vi } from 'vitest';
import { canonicalize, carHash } from '../lib/index';
import { carHashes } from '../lib/canonical/car';
import { layoutStats } from '../lib/canonical/layouts';
import { randomInt, rng } from './helpers';

const viaString = (car: unknown): string =>
  'sha256:' + crypto.createHash('sha256').update(canonicalize(car as Record<string, unknown>), 'utf8').digest('hex');

// Keys that stress the literal property names of compiled code and the JCS key order.
const KEYS = ['resource', 'tool', 'args', 'constructor', 'toString', 'hasOwnProperty', '__proto__', '', 'a"b', 'back\\slash', 'new\nline', 'é', '😀', '\u2028', '1', '10', '01', 'Z', 'z', 'zz', '\u0000x', '$', 'x-y', 'valueOf'];
const STRINGS = ['', 'plain', '"quoted"', 'back\\', 'tab\t', 'é', '😀', '\u2028', '\u001f', 'x'.repeat(40)];

function randomValue(next: () => number, depth: number): unknown {
  switch (randomInt(next, 0, depth > 2 ? 3 : 5)) {
    case 0: return STRINGS[randomInt(next, 0, STRINGS.length - 1)];
    case 1: return randomInt(next, -1e6, 1e6) / (next() < 0.3 ? 8 : 1);
    case 2: return next() < 0.5;
    case 3: return null;
    case 4: return [randomValue(next, depth + 1), randomValue(next, depth + 1)];
    default: return randomObject(next, depth + 1, randomKeys(next));
  }
}

function randomKeys(next: () => number): string[] {
  const keys = new Set<string>();
  for (let i = randomInt(next, 0, 6); i > 0; i--) keys.add(KEYS[randomInt(next, 0, KEYS.length - 1)]);
  return [...keys];
}

/** Built through JSON.parse, as requests arrive: "__proto__" is then an own key. */
function randomObject(next: () => number, depth: number, keys: string[]): Record<string, unknown> {
  const parts = keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(randomValue(next, depth))}`);
  return JSON.parse(`{${parts.join(',')}}`) as Record<string, unknown>;
}

describe('compiled layout writers', () => {
  test('300 random shapes, each hashed 20 times with new values: the string serializer\'s hashes', () => {
    const next = rng(0x1a70);
    const before = layoutStats().compiles;
    for (let s = 0; s < 300; s++) {
      const keys = randomKeys(next);
      const cars = Array.from({ length: 20 }, () => ({ action_type: 'file_read', agent_id: 'agent-1', ...randomObject(next, 1, keys) }));
      for (const car of cars) expect(carHash(car)).toBe(viaString(car));
      expect(carHashes(cars)).toEqual(cars.map(viaString));
    }
    // The writers above really were compiled (else this tested only the loop).
    expect(layoutStats().codegen).toBe(true);
    expect(layoutStats().compiles).toBeGreaterThan(before);
  });

  test('an own "__proto__" key, a null-prototype object and inherited names are read as own data', () => {
    const parsed = JSON.parse('{"action_type":"a","agent_id":"b","__proto__":{"x":1},"constructor":"c"}');
    const bare = Object.assign(Object.create(null), { action_type: 'a', agent_id: 'b', toString: 's' });
    for (let i = 0; i < 20; i++) {
      expect(carHash(parsed)).toBe(viaString(parsed));
      expect(carHash(bare)).toBe(viaString(bare));
    }
    // A plain object without those keys does not pick up Object.prototype's.
    const plain = { action_type: 'a', agent_id: 'b' };
    for (let i = 0; i < 20; i++) expect(carHash(plain)).toBe(viaString(plain));
  });

  test('getters run as the loop runs them (the walk reads each once, in sorted key order), compiled or not', () => {
    const log: string[] = [];
    const make = (n: number) => {
      const o: Record<string, unknown> = {};
      for (const k of ['zeta', 'action_type', 'agent_id', 'mid']) {
        Object.defineProperty(o, k, { enumerable: true, get: () => (log.push(k), k === 'zeta' ? n : `${k}-${n}`) });
      }
      return o;
    };
    const orders: string[][] = [];
    for (let i = 0; i < 20; i++) {
      log.length = 0;
      const car = make(i);
      expect(carHash(car)).toBe(`sha256:${crypto.createHash('sha256').update(`{"action_type":"action_type-${i}","agent_id":"agent_id-${i}","mid":"mid-${i}","zeta":${i}}`).digest('hex')}`);
      orders.push(log.slice());
    }
    // The first hashes use the loop, the last the compiled writer: the same reads.
    expect(layoutStats().compiled).toBeGreaterThan(0);
    for (const order of orders) expect(order).toEqual(orders[0]);
    expect(orders[0].slice(-4)).toEqual(['action_type', 'agent_id', 'mid', 'zeta']);
  });

  test('a flood of new shapes compiles at most the budget a second', () => {
    // Fake time: the budget is per second of Date.now, so a frozen clock is
    // one second however fast or slow this machine is.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(1_000_000_000_000);
      const flood = (from: number) => {
        for (let s = from; s < from + 3000; s++) {
          // A new first key each time: layouts are grouped by their first key, 8 at most per key.
          const car = { [`k${s}`]: s, action_type: 'a', agent_id: 'b' };
          for (let i = 0; i < 10; i++) carHash(car);
        }
      };
      const before = layoutStats().compiles;
      flood(0);
      const first = layoutStats().compiles - before;
      expect(first).toBe(32); // 3,000 shapes each common enough, and the budget stops at 32
      flood(0); // the same second: nothing more
      expect(layoutStats().compiles - before).toBe(32);
      vi.advanceTimersByTime(1000); // the next second: a new budget
      flood(100_000);
      expect(layoutStats().compiles - before).toBe(64);
      expect(layoutStats().layouts).toBeLessThanOrEqual(1024);
    } finally {
      vi.useRealTimers();
    }
  });

  test('without code generation from strings, the same hashes (prepared loop only)', () => {
    const root = path.join(__dirname, '..');
    const script = `
      // car.js alone: the policy engine's schema validator (ajv) compiles
      // code at load, so the package entry does not load in such a runtime.
      const g = require('./dist/canonical/car.js');
      const { layoutStats } = require('./dist/canonical/layouts.js');
      const out = [];
      for (let i = 0; i < 20; i++) out.push(g.carHash({ action_type: 'a', agent_id: 'b', resource: '/r/' + i, args: { n: i, s: 'x"y' } }));
      console.log(JSON.stringify({ out, stats: layoutStats() }));`;
    const r = runSync(process.execPath, ['--disallow-code-generation-from-strings', '-e', script], { cwd: root, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const { out, stats } = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(stats).toMatchObject({ codegen: false, compiled: 0 });
    expect(out).toEqual(Array.from({ length: 20 }, (_, i) => viaString({ action_type: 'a', agent_id: 'b', resource: '/r/' + i, args: { n: i, s: 'x"y' } })));
  });
});
