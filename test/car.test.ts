// RFC 8785 canonical form and the CAR hash.
import crypto from 'node:crypto';
import jcsReference from 'canonicalize';
import { describe, expect, test } from 'vitest';
import { GuardError, canonicalize, canonicalizeJson, carHash, isCarHash } from '../lib/index';
import { carHashForDecision, carHashes } from '../lib/canonical/car';
import rfc from './fixtures/jcs-rfc8785.json';
import { randomInt, rng } from './helpers';

function expectCarError(fn: () => unknown, path: string, message?: RegExp): void {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(GuardError);
  const err = thrown as GuardError;
  expect(err.code).toBe('ERR_CAR_INVALID');
  expect(err.path).toBe(path);
  expect(err.message.startsWith(path + ':')).toBe(true);
  if (message) expect(err.message).toMatch(message);
}

const base = { action_type: 'file_read', agent_id: 'agent-1' };

describe('RFC 8785 published examples', () => {
  for (const n of rfc.numbers) {
    const value = Buffer.from(n.ieee, 'hex').readDoubleBE(0);
    test(`number ${n.ieee}`, () => {
      if (n.error) {
        expect(() => canonicalizeJson([value])).toThrow(GuardError);
        expectCarError(() => canonicalize({ ...base, n: value }), 'car.n', /not representable/);
      } else {
        expect(canonicalizeJson([value])).toBe(`[${n.canonical}]`);
      }
    });
  }

  test('key sorting by UTF-16 code units', () => {
    const parsed = JSON.parse(rfc.sorting.inputJson) as Record<string, string>;
    const out = JSON.parse(canonicalizeJson(parsed)) as Record<string, string>;
    // JSON.parse keeps insertion order for non-index keys except integer-like
    // ones, so read the order from the text itself.
    const text = canonicalizeJson(parsed);
    const order = rfc.sorting.valueOrder.map((v) => text.indexOf(JSON.stringify(v)));
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(Object.keys(out).length).toBe(7);
  });

  test('the sample object', () => {
    expect(canonicalizeJson(JSON.parse(rfc.sample.inputJson))).toBe(rfc.sample.canonical);
  });
});

describe('canonicalize / carHash', () => {
  test('carHash is sha256: + hex SHA-256 of the UTF-8 canonical form', () => {
    const car = { ...base, resource: '/srv/data/a.txt', args: { mode: 'r', n: 1.5, list: [3, 'é', null, true] }, tool: 'fs', server_id: 's1' };
    const text = canonicalize(car);
    expect(text).toBe(
      '{"action_type":"file_read","agent_id":"agent-1","args":{"list":[3,"é",null,true],"mode":"r","n":1.5},"resource":"/srv/data/a.txt","server_id":"s1","tool":"fs"}',
    );
    expect(carHash(car)).toBe('sha256:' + crypto.createHash('sha256').update(text, 'utf8').digest('hex'));
  });

  test('key order and whitespace do not change the hash; values do', () => {
    const a = { agent_id: 'x', action_type: 'y', args: { b: 1, a: 2 } };
    const b = JSON.parse('{ "args": {"a":2, "b":1}, "action_type":"y", "agent_id":"x" }');
    expect(carHash(a)).toBe(carHash(b));
    expect(carHash({ ...a, args: { b: 1, a: 3 } })).not.toBe(carHash(a));
  });

  test('no Unicode normalization: NFC and NFD file names hash differently', () => {
    const nfc = 'caf\u00e9.txt';
    const nfd = 'cafe\u0301.txt';
    expect(nfc.normalize('NFC')).toBe(nfd.normalize('NFC'));
    expect(carHash({ ...base, resource: nfc })).not.toBe(carHash({ ...base, resource: nfd }));
  });

  test('numbers that look different but are the same double hash the same; -0 is 0', () => {
    expect(canonicalize({ ...base, n: -0 })).toBe(canonicalize({ ...base, n: 0 }));
    expect(canonicalize({ ...base, n: 1.0 })).toContain('"n":1}');
    expect(canonicalize({ ...base, n: 1e-7 })).toContain('"n":1e-7}');
  });

  test('differential vs the canonicalize package on random JSON', () => {
    const next = rng(1234);
    const strings = ['', 'a', 'é', '😀', '\u0000', '"\\', '\u2028', 'key', 'Z', '\u00ff', '\ufb33'];
    const gen = (depth: number): unknown => {
      const r = next();
      if (depth > 4 || r < 0.35) {
        const p = randomInt(next, 0, 5);
        if (p === 0) return null;
        if (p === 1) return next() < 0.5;
        if (p === 2) return randomInt(next, -1e9, 1e9);
        if (p === 3) return (next() - 0.5) * 10 ** randomInt(next, -30, 30);
        return strings[randomInt(next, 0, strings.length - 1)] + String(randomInt(next, 0, 99));
      }
      if (r < 0.6) return Array.from({ length: randomInt(next, 0, 5) }, () => gen(depth + 1));
      const o: Record<string, unknown> = {};
      for (let i = randomInt(next, 0, 6); i > 0; i--) o[strings[randomInt(next, 0, strings.length - 1)] + randomInt(next, 0, 20)] = gen(depth + 1);
      return o;
    };
    for (let i = 0; i < 3000; i++) {
      const v = gen(0);
      expect(canonicalizeJson(v)).toBe(jcsReference(v));
      // canonical text re-parsed canonicalizes to itself
      const text = canonicalizeJson(v);
      expect(canonicalizeJson(JSON.parse(text))).toBe(text);
    }
  });

  test('deep and wide objects within the limits', () => {
    let deep: unknown = 'leaf';
    for (let i = 0; i < 31; i++) deep = { d: deep };
    expect(canonicalize({ ...base, args: deep as Record<string, unknown> })).toContain('"leaf"');
    const wide: Record<string, number> = {};
    for (let i = 0; i < 5000; i++) wide[`k${i}`] = i;
    const text = canonicalize({ ...base, args: wide });
    const keys = Object.keys(JSON.parse(text).args);
    expect(keys).toEqual(Object.keys(wide).sort());
    const longArray = Array.from({ length: 5000 }, (_, i) => i);
    expect(canonicalize({ ...base, args: { a: longArray } }).length).toBeGreaterThan(20000);
  });
});

describe('rejection rules (ERR_CAR_INVALID, naming the path)', () => {
  test('non-objects', () => {
    for (const v of [null, undefined, 1, 'x', true, [base]]) expectCarError(() => canonicalize(v as never), 'car', /plain object/);
    expectCarError(() => canonicalize(new Date() as never), 'car.action_type', /required/);
    expectCarError(() => canonicalize(Object.assign(new Map(), base) as never), 'car', /not a plain JSON object/);
    class Req {
      action_type = 'a';
      agent_id = 'b';
    }
    expectCarError(() => canonicalize(new Req() as never), 'car', /not a plain JSON object/);
  });

  test('required fields', () => {
    expectCarError(() => canonicalize({ agent_id: 'a' } as never), 'car.action_type', /required/);
    expectCarError(() => canonicalize({ action_type: 'a' } as never), 'car.agent_id', /required/);
    expectCarError(() => canonicalize({ action_type: '', agent_id: 'a' }), 'car.action_type');
    expectCarError(() => canonicalize({ action_type: 'x', agent_id: 7 } as never), 'car.agent_id', /number 7/);
  });

  test('required fields must be own enumerable properties: inherited or hidden ones would be read but not hashed', () => {
    const hidden = { action_type: 'file_read' };
    Object.defineProperty(hidden, 'agent_id', { value: 'agent-1', enumerable: false });
    const inherited = Object.assign(Object.create({ agent_id: 'agent-1' }), { action_type: 'file_read' });
    const nullProtoHidden = Object.create(null);
    nullProtoHidden.agent_id = 'agent-1';
    Object.defineProperty(nullProtoHidden, 'action_type', { value: 'file_read', enumerable: false });
    for (const [car, path] of [[hidden, 'car.agent_id'], [nullProtoHidden, 'car.action_type']] as const) {
      // Each twice: the second sighting of a key shape goes through the prepared layout.
      for (let i = 0; i < 12; i++) {
        expectCarError(() => carHash(car as never), path, /own enumerable property \(it is inherited or non-enumerable\)/);
        expectCarError(() => canonicalize(car as never), path, /own enumerable/);
      }
    }
    // A prototype other than Object.prototype is refused before the fields are looked at.
    expect(() => carHash(inherited)).toThrow(GuardError);
    // A polluted Object.prototype does not stand in for a missing field.
    Object.defineProperty(Object.prototype, 'agent_id', { value: 'agent-1', configurable: true, writable: true });
    try {
      for (let i = 0; i < 12; i++) expectCarError(() => carHash({ action_type: 'file_read' } as never), 'car.agent_id', /inherited or non-enumerable/);
    } finally {
      delete (Object.prototype as Record<string, unknown>).agent_id;
    }
  });

  test('lone surrogates in values and keys', () => {
    expectCarError(() => canonicalize({ ...base, args: { path: 'a\ud800' } }), 'car.args.path', /lone surrogate/);
    expectCarError(() => canonicalize({ ...base, args: { list: ['ok', '\udfff'] } }), 'car.args.list[1]', /lone surrogate/);
    expectCarError(() => canonicalize({ ...base, ['k\ud800']: 1 }), 'car["k\\ud800"]', /key contains a lone surrogate/);
  });

  test('NaN and Infinity', () => {
    expectCarError(() => canonicalize({ ...base, args: { n: NaN } }), 'car.args.n', /NaN/);
    expectCarError(() => canonicalize({ ...base, args: { n: Infinity } }), 'car.args.n', /Infinity/);
    expectCarError(() => canonicalize({ ...base, args: { n: [-Infinity] } }), 'car.args.n[0]');
  });

  test('integers beyond ±(2^53-1) (they would collide)', () => {
    expect(canonicalize({ ...base, n: Number.MAX_SAFE_INTEGER })).toContain('9007199254740991');
    expect(canonicalize({ ...base, n: -Number.MAX_SAFE_INTEGER })).toContain('-9007199254740991');
    // 2^53 and 2^53+1 are the same double: accepting it would make two requests one.
    expect(2 ** 53).toBe(2 ** 53 + 1);
    expectCarError(() => canonicalize({ ...base, n: 2 ** 53 }), 'car.n', /outside/);
    expectCarError(() => canonicalize({ ...base, args: { n: -(2 ** 53) } }), 'car.args.n');
    expectCarError(() => canonicalize({ ...base, args: { n: 1e21 } }), 'car.args.n');
    expect(canonicalize({ ...base, n: 1.5e-300 })).toContain('1.5e-300');
  });

  test('depth > 32 (configurable)', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 32; i++) deep = [deep];
    expectCarError(() => canonicalize({ ...base, args: { x: deep } }), 'car.args.x' + '[0]'.repeat(30), /deeper than 32/);
    let ok: unknown = 1;
    for (let i = 0; i < 30; i++) ok = [ok];
    expect(() => canonicalize({ ...base, args: { x: ok } })).not.toThrow();
    expectCarError(() => canonicalize({ ...base, args: { x: {} } }, { maxDepth: 2 }), 'car.args.x', /deeper than 2/);
    expect(() => canonicalize({ ...base, args: { x: deep } }, { maxDepth: 40 })).not.toThrow();
  });

  test('cycles are caught by the depth limit, not a stack overflow', () => {
    const cyclic: Record<string, unknown> = { ...base };
    cyclic.self = cyclic;
    expectCarError(() => canonicalize(cyclic), 'car' + '.self'.repeat(32), /deeper/);
  });

  test('canonical size > 64 KiB (configurable), counted in UTF-8 bytes', () => {
    const room = 65536 - canonicalize({ ...base, p: '' }).length;
    expect(() => canonicalize({ ...base, p: 'a'.repeat(room) })).not.toThrow();
    expectCarError(() => canonicalize({ ...base, p: 'a'.repeat(room + 1) }), 'car', /larger than 65536/);
    // '€' is one UTF-16 unit but three UTF-8 bytes.
    expectCarError(() => canonicalize({ ...base, p: '€'.repeat(Math.ceil(room / 3) + 1) }), 'car');
    expect(() => canonicalize({ ...base, p: '€'.repeat(Math.floor(room / 3)) })).not.toThrow();
    expectCarError(() => canonicalize({ ...base, p: 'abc' }, { maxBytes: 40 }), 'car', /larger than 40/);
  });

  test('values JSON cannot carry are refused, not dropped', () => {
    expectCarError(() => canonicalize({ ...base, args: { u: undefined } }), 'car.args.u', /undefined/);
    expectCarError(() => canonicalize({ ...base, f: () => 1 }), 'car.f', /function/);
    expectCarError(() => canonicalize({ ...base, s: Symbol('x') }), 'car.s', /symbol/);
    expectCarError(() => canonicalize({ ...base, b: 10n }), 'car.b', /bigint/);
    expectCarError(() => canonicalize({ ...base, d: new Date(0) }), 'car.d', /Date/);
    expectCarError(() => canonicalize({ ...base, m: new Map() }), 'car.m', /Map/);
    expectCarError(() => canonicalize({ ...base, t: new Uint8Array(2) }), 'car.t', /Uint8Array/);
    // eslint-disable-next-line no-sparse-arrays
    expectCarError(() => canonicalize({ ...base, a: [1, , 3] }), 'car.a[1]', /undefined/);
    expectCarError(() => canonicalize({ ...base, [Symbol('k')]: 1 }), 'car', /symbol keys/);
    expectCarError(() => canonicalize({ ...base, 'odd key': { 'x.y': NaN } }), 'car["odd key"]["x.y"]');
  });

  test('bad options are TypeErrors/RangeErrors', () => {
    expect(() => canonicalize(base, 5 as never)).toThrow(TypeError);
    expect(() => canonicalize(base, { maxDepth: 0 })).toThrow(RangeError);
    expect(() => canonicalize(base, { maxDepth: 1.5 })).toThrow(RangeError);
    expect(() => canonicalize(base, { maxBytes: -1 })).toThrow(RangeError);
    expect(() => carHash(base, { maxBytes: NaN })).toThrow(RangeError);
  });

  test('objects with a null prototype are plain', () => {
    const o = Object.assign(Object.create(null), base);
    expect(carHash(o)).toBe(carHash(base));
  });
});

test('isCarHash accepts exactly the carHash form', () => {
  expect(isCarHash(carHash(base))).toBe(true);
  for (const v of [undefined, null, 5, '', 'sha256:', 'sha256:' + 'A'.repeat(64), 'sha256:' + '0'.repeat(63), 'sha256:' + '0'.repeat(64) + '\n', 'SHA256:' + '0'.repeat(64), ['sha256:' + '0'.repeat(64)]]) {
    expect(isCarHash(v)).toBe(false);
  }
});

function nest(depth: number): unknown {
  let v: unknown = 'bottom';
  for (let i = 0; i < depth; i++) v = { d: v };
  return v;
}

describe('carHashForDecision (the gate\'s carHash): returns the error carHash throws, without throwing', () => {
  const inherited = Object.create({ agent_id: 'a' }) as Record<string, unknown>;
  inherited.action_type = 'x';
  const hidden: Record<string, unknown> = { action_type: 'x' };
  Object.defineProperty(hidden, 'agent_id', { value: 'a', enumerable: false });
  const invalid: Array<[string, unknown]> = [
    ['not an object', 'x'],
    ['null', null],
    ['an array', [{ action_type: 'x', agent_id: 'a' }]],
    ['empty', {}],
    ['agent_id missing', { action_type: 'x' }],
    ['action_type missing', { agent_id: 'a' }],
    ['agent_id a number', { action_type: 'x', agent_id: 42 }],
    ['action_type an array', { action_type: ['x'], agent_id: 'a' }],
    ['action_type null', { action_type: null, agent_id: 'a' }],
    ['agent_id empty', { action_type: 'x', agent_id: '' }],
    ['agent_id inherited', inherited],
    ['agent_id non-enumerable', hidden],
    ['a value JSON cannot carry', { action_type: 'x', agent_id: 'a', n: NaN }],
    ['a lone surrogate deep down', { action_type: 'x', agent_id: 'a', args: { list: [1, { s: 'a\ud800' }] } }],
    ['an unsafe integer', { action_type: 'x', agent_id: 'a', n: 2 ** 60 }],
    ['a Date', { action_type: 'x', agent_id: 'a', at: new Date(0) }],
    ['nested past the depth limit', { action_type: 'x', agent_id: 'a', args: nest(40) }],
    ['nested past the limit inside an array', { action_type: 'x', agent_id: 'a', list: [1, [nest(31)]] }],
    ['a key with a lone surrogate', { action_type: 'x', agent_id: 'a', ['k\ud800']: 1 }],
    ['symbol keys', { action_type: 'x', agent_id: 'a', [Symbol('s')]: 1 }],
    ['an array subclass', { action_type: 'x', agent_id: 'a', list: new (class extends Array {})() }],
    ['a form past the size limit', { action_type: 'x', agent_id: 'a', blob: 'x'.repeat(64 * 1024) }],
  ];
  test.each(invalid)('%s: the same code, message and path', (_name, car) => {
    let thrown: unknown;
    try {
      carHash(car as never);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(GuardError);
    const before = Error.stackTraceLimit;
    const got = carHashForDecision(car as never);
    expect(Error.stackTraceLimit).toBe(before);
    expect(got).toBeInstanceOf(GuardError);
    const e = got as GuardError;
    const t = thrown as GuardError;
    expect([e.code, e.message, e.path]).toEqual([t.code, t.message, t.path]);
    // The batch form too, between valid CARs.
    const ok = { action_type: 'x', agent_id: 'a' };
    const batch = carHashes([ok, car, ok]);
    expect(batch[0]).toBe(carHash(ok));
    const b = batch[1] as GuardError;
    expect([b instanceof GuardError, b.code, b.message, b.path]).toEqual([true, t.code, t.message, t.path]);
  });

  test('a value that turns valid between the serializer\'s passes is named as changed, not hashed', () => {
    let reads = 0;
    const car = { action_type: 'x', agent_id: 'a', get n(): number { return ++reads === 1 ? NaN : 1; } };
    expectCarError(() => canonicalize(car), 'car', /value changed while it was being read/);
    expect(reads).toBe(2);
  });

  test('a valid CAR the canonical writer cannot take (it is busy: called from a getter during a write) is hashed, not refused', () => {
    const inner = { action_type: 'y', agent_id: 'b', args: { n: 1 } };
    let seen: unknown;
    const outer = { action_type: 'x', agent_id: 'a', get h(): unknown { seen = carHashForDecision(inner); return 1; } };
    carHash(outer);
    expect(seen).toBe(carHash(inner));
  });

  test('a valid CAR gives carHash\'s hash; a getter that throws still throws', () => {
    const car = { action_type: 'x', agent_id: 'a', args: { n: 1, s: 'é' } };
    expect(carHashForDecision(car)).toBe(carHash(car));
    const hostile = { action_type: 'x', agent_id: 'a', get resource(): string { throw new Error('boom'); } };
    expect(() => carHashForDecision(hostile as never)).toThrow('boom');
  });
});
