// Every export refuses bad input with a clear TypeError/RangeError/GuardError.
import crypto from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { GuardError, HmacKey, hmacSha256, hmacSha256Hex, sha256, sha256Hex } from '../lib/index';
import { core, detachedView, sharedView } from './helpers';

const notBytes: unknown[] = [undefined, null, 42, 1n, true, {}, [1, 2], new Uint16Array(4), new DataView(new ArrayBuffer(4)), new ArrayBuffer(8), Symbol('x'), () => 1];

describe('sha256 / sha256Hex', () => {
  for (const fn of [sha256, sha256Hex]) {
    test(`${fn.name} rejects non-bytes`, () => {
      for (const v of notBytes) expect(() => fn(v as never)).toThrow(TypeError);
      expect(() => fn(42 as never)).toThrow(/Expected a Uint8Array for data but received number 42/);
    });
    test(`${fn.name} rejects detached and shared buffers`, () => {
      expect(() => fn(detachedView())).toThrow(/detached/);
      expect(() => fn(sharedView())).toThrow(/SharedArrayBuffer/);
    });
    test(`${fn.name} rejects strings with lone surrogates instead of replacing them`, () => {
      expect(() => fn('a\ud800b')).toThrow(/lone surrogate/);
      expect(() => fn('\udc00')).toThrow(TypeError);
    });
  }

  test('an empty (non-detached) buffer is fine', () => {
    expect(sha256Hex(new Uint8Array(0))).toBe(crypto.createHash('sha256').digest('hex'));
    expect(sha256Hex(Buffer.alloc(0))).toBe(crypto.createHash('sha256').digest('hex'));
  });

  test('huge inputs: 64 MiB of bytes and a 3-million-character string', () => {
    const big = crypto.randomBytes(64 << 20);
    expect(sha256(big).equals(crypto.createHash('sha256').update(big).digest())).toBe(true);
    const text = 'é€😀'.repeat(750_000);
    expect(sha256Hex(text)).toBe(crypto.createHash('sha256').update(text).digest('hex'));
    expect(new HmacKey('k').sign(text)).toBe(crypto.createHmac('sha256', 'k').update(text).digest('hex'));
  });
});

describe('hmacSha256 / HmacKey', () => {
  test('rejects empty keys', () => {
    expect(() => hmacSha256(Buffer.alloc(0), 'x')).toThrow(RangeError);
    expect(() => hmacSha256Hex('', 'x')).toThrow(/non-empty key/);
    expect(() => new HmacKey(new Uint8Array(0))).toThrow(RangeError);
    expect(() => new HmacKey('')).toThrow(RangeError);
  });

  test('rejects keys that are not bytes or strings', () => {
    for (const v of notBytes) {
      expect(() => new HmacKey(v as never)).toThrow(TypeError);
      expect(() => hmacSha256(v as never, 'x')).toThrow(TypeError);
    }
    expect(() => new HmacKey(detachedView())).toThrow(/detached/);
    expect(() => new HmacKey(sharedView())).toThrow(/SharedArrayBuffer/);
    expect(() => new HmacKey('\ud800')).toThrow(/lone surrogate/);
  });

  test('rejects bad data on every method', () => {
    const k = new HmacKey('secret');
    for (const v of notBytes) {
      expect(() => k.sign(v as never)).toThrow(TypeError);
      expect(() => k.signBytes(v as never)).toThrow(TypeError);
      expect(() => k.signInto(v as never, Buffer.alloc(32))).toThrow(TypeError);
      expect(() => k.verify(v as never, Buffer.alloc(32))).toThrow(TypeError);
      expect(() => hmacSha256('k', v as never)).toThrow(TypeError);
    }
    expect(() => k.sign(detachedView())).toThrow(/detached/);
    expect(() => k.sign(sharedView())).toThrow(/SharedArrayBuffer/);
  });

  test('signInto checks the output buffer and offset', () => {
    const k = new HmacKey('secret');
    expect(() => k.signInto('x', Buffer.alloc(31))).toThrow(RangeError);
    expect(() => k.signInto('x', Buffer.alloc(32), 1)).toThrow(/at least 32 bytes/);
    for (const off of [-1, 0.5, NaN, Infinity, '0', null]) {
      expect(() => k.signInto('x', Buffer.alloc(64), off as never)).toThrow(RangeError);
    }
    expect(() => k.signInto('x', new Uint16Array(32) as never)).toThrow(TypeError);
    expect(() => k.signInto('x', detachedView())).toThrow(/detached/);
    expect(() => k.signInto('x', new Uint8Array(new SharedArrayBuffer(32)))).toThrow(/SharedArrayBuffer/);
  });

  test('verify: wrong MAC types throw, wrong MAC shapes are simply false', () => {
    const k = new HmacKey('secret');
    const good = k.signBytes('msg');
    for (const v of [undefined, null, 1, {}, [1]]) expect(() => k.verify('msg', v as never)).toThrow(TypeError);
    expect(k.verify('msg', good)).toBe(true);
    expect(k.verify('msg', good.toString('hex').toUpperCase())).toBe(true);
    expect(k.verify('msg', good.subarray(0, 31))).toBe(false);
    expect(k.verify('msg', Buffer.concat([good, Buffer.alloc(1)]))).toBe(false);
    expect(k.verify('msg', '')).toBe(false);
    expect(k.verify('msg', 'zz' + good.toString('hex').slice(2))).toBe(false);
    expect(k.verify('msg', good.toString('hex').slice(0, 63))).toBe(false);
    expect(k.verify('other', good)).toBe(false);
    expect(new HmacKey('secreT').verify('msg', good)).toBe(false);
  });

  test('a destroyed key refuses every operation with ERR_CLOSED', () => {
    const k = new HmacKey('secret');
    k.destroy();
    k.destroy(); // idempotent
    expect(k.destroyed).toBe(true);
    for (const op of [() => k.sign('x'), () => k.signBytes('x'), () => k.signInto('x', Buffer.alloc(32)), () => k.verify('x', Buffer.alloc(32))]) {
      expect(op).toThrow(GuardError);
      try {
        op();
      } catch (e) {
        expect((e as GuardError).code).toBe('ERR_CLOSED');
      }
    }
  });
});

describe.runIf(core !== null)('the raw addon re-checks its arguments', () => {
  test('wrong types and out-of-range offsets are exceptions, never crashes', () => {
    const out = Buffer.alloc(32);
    const c = core!;
    expect(() => c.sha256Into(42 as never, out, 0)).toThrow(TypeError);
    expect(() => c.sha256Into('x', {} as never, 0)).toThrow(TypeError);
    expect(() => c.sha256Into('x', new Uint16Array(16) as never, 0)).toThrow(TypeError);
    expect(() => c.sha256Into('x', out, 1)).toThrow(RangeError);
    expect(() => c.sha256Into('x', out, -1)).toThrow(RangeError);
    expect(() => c.sha256Into('x', out, NaN)).toThrow(RangeError);
    expect(() => c.sha256Into('x', out, 2 ** 60)).toThrow(RangeError);
    expect(() => c.sha256Into('x', out, '0' as never)).toThrow(TypeError);
    expect(() => c.hmacSha256Into('k' as never, 'x', out, 0)).toThrow(TypeError);
    expect(() => new c.HmacKey('k' as never)).toThrow(TypeError);
    expect(() => c.sha256Hex(undefined as never, false)).toThrow(TypeError);
    const k = new c.HmacKey(Buffer.from('k'));
    expect(() => k.signInto('x', Buffer.alloc(31), 0)).toThrow(RangeError);
    expect(k.verify('x', Buffer.alloc(3))).toBe(false);
    k.destroy();
    expect(() => k.signHex('x')).toThrow(/destroyed/);
    expect(() => k.verify('x', Buffer.alloc(32))).toThrow(/destroyed/);
  });

  test('refuses strings too long for its scratch space (the TS layer passes those as Buffers)', () => {
    expect(() => core!.sha256Hex('a'.repeat(2 << 20), false)).toThrow(RangeError);
  });
});
