// Differential: ours vs node:crypto on many random inputs (keys 1-200 B, data
// 0-10 KiB, views at odd offsets of larger buffers). In the native pass this
// checks the C++ code (SHA-NI and portable); in the fallback pass the TS path.
import crypto from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { HmacKey, hmacSha256, sha256, sha256Hex } from '../lib/index';
import { bytesAtOddOffset, core, randomInt, rng } from './helpers';

const CASES = 10_000;

function check(next: () => number): void {
  const key = bytesAtOddOffset(next, randomInt(next, 1, 200));
  const data = bytesAtOddOffset(next, next() < 0.5 ? randomInt(next, 0, 300) : randomInt(next, 0, 10 * 1024));
  const digest = crypto.createHash('sha256').update(data).digest();
  const mac = crypto.createHmac('sha256', key).update(data).digest();
  expect(sha256(data).equals(digest)).toBe(true);
  expect(sha256Hex(data)).toBe(digest.toString('hex'));
  expect(hmacSha256(key, data).equals(mac)).toBe(true);
  const k = new HmacKey(key);
  expect(k.sign(data)).toBe(mac.toString('hex'));
  const out = new Uint8Array(64);
  const at = randomInt(next, 0, 32);
  k.signInto(data, out, at);
  expect(Buffer.from(out.subarray(at, at + 32)).equals(mac)).toBe(true);
  expect(k.verify(data, mac)).toBe(true);
  const tampered = Buffer.from(mac);
  tampered[randomInt(next, 0, 31)] ^= 1 << randomInt(next, 0, 7);
  expect(k.verify(data, tampered)).toBe(false);
}

describe('differential vs node:crypto', () => {
  test(`${CASES} random cases`, () => {
    const next = rng(0x5eed);
    for (let i = 0; i < CASES; i++) check(next);
  });

  test('random strings, including multi-byte and astral characters', () => {
    const next = rng(7);
    const alphabet = ['a', 'Z', '0', ' ', '"', '\n', 'é', 'ß', '€', '中', '😀', '\u0000', '\u07ff', '\uffff'];
    for (let i = 0; i < 2000; i++) {
      let s = '';
      const n = randomInt(next, 0, 400);
      for (let j = 0; j < n; j++) s += alphabet[randomInt(next, 0, alphabet.length - 1)];
      const key = 'key-' + i;
      expect(sha256Hex(s)).toBe(crypto.createHash('sha256').update(s, 'utf8').digest('hex'));
      expect(new HmacKey(key).sign(s)).toBe(crypto.createHmac('sha256', key).update(s, 'utf8').digest('hex'));
    }
  });

  test.runIf(core !== null)('the portable C++ compression agrees with node:crypto', () => {
    const next = rng(99);
    try {
      core!.forcePortableSha(true);
      for (let i = 0; i < 2000; i++) check(next);
    } finally {
      core!.forcePortableSha(false);
    }
  });

  test.runIf(core !== null)('the raw addon encodes strings exactly like Buffer.from(s, "utf8"), lone surrogates as U+FFFD', () => {
    // The public API refuses lone surrogates; the addon's own UTF-8 encoder
    // (native/jcs/utf8_encode.cc) must still match Node's for direct callers.
    const next = rng(31);
    const units = [0x41, 0x7f, 0x80, 0x7ff, 0x800, 0xd7ff, 0xd800, 0xdbff, 0xdc00, 0xdfff, 0xe000, 0xffff, 0x22, 0x00];
    for (let i = 0; i < 3000; i++) {
      let s = '';
      const n = randomInt(next, 0, 70);
      for (let j = 0; j < n; j++) {
        // Long ASCII runs exercise the four-at-a-time path and its tail.
        s += next() < 0.7 ? 'abcdefgh'.slice(0, randomInt(next, 1, 8)) : String.fromCharCode(units[randomInt(next, 0, units.length - 1)]);
      }
      const expected = crypto.createHash('sha256').update(Buffer.from(s, 'utf8')).digest('hex');
      expect(core!.sha256Hex(s, false)).toBe(expected);
      // A rope (concatenation) and a two-byte string holding only ASCII.
      expect(core!.sha256Hex(s.slice(0, n) + s.slice(n), false)).toBe(expected);
    }
    const twoByteAscii = 'é'.slice(1) + 'plain ascii text in a two-byte string'.repeat(3);
    expect(core!.sha256Hex(twoByteAscii, false)).toBe(crypto.createHash('sha256').update(twoByteAscii).digest('hex'));
  });

  test.runIf(core !== null)('the raw addon handles an empty HMAC key exactly like node:crypto', () => {
    // The public API refuses empty keys; the math underneath must still be right.
    const out = Buffer.alloc(32);
    core!.hmacSha256Into(Buffer.alloc(0), 'message', out, 0);
    expect(out.equals(crypto.createHmac('sha256', Buffer.alloc(0)).update('message').digest())).toBe(true);
  });

  test('every length around block boundaries, for keys of 1..130 bytes', () => {
    const data = crypto.randomBytes(300);
    const keyBytes = crypto.randomBytes(130);
    for (let n = 0; n <= 300; n++) {
      const slice = data.subarray(0, n);
      expect(sha256Hex(slice)).toBe(crypto.createHash('sha256').update(slice).digest('hex'));
      const kb = keyBytes.subarray(0, (n % 130) + 1);
      const expected = crypto.createHmac('sha256', kb).update(slice).digest();
      expect(new HmacKey(kb).signBytes(slice).equals(expected)).toBe(true);
    }
  });
});
