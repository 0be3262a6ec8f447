// Published vectors: NIST SHA-256 and RFC 4231 HMAC-SHA256, on every form.
import { describe, expect, test } from 'vitest';
import { HmacKey, hmacSha256, hmacSha256Hex, sha256, sha256Hex } from '../lib/index';
import nist from './fixtures/sha256-nist.json';
import rfc4231 from './fixtures/hmac-sha256-rfc4231.json';
import { core } from './helpers';

describe('SHA-256 NIST vectors', () => {
  for (const v of nist.vectors) {
    test(v.name, () => {
      const text = v.ascii.repeat(v.repeat);
      expect(sha256Hex(text)).toBe(v.digest);
      expect(sha256(Buffer.from(text)).toString('hex')).toBe(v.digest);
    });
  }

  test.runIf(core !== null)('the portable C++ path passes them too', () => {
    try {
      expect(core!.forcePortableSha(true)).toBe('portable');
      for (const v of nist.vectors) expect(sha256Hex(v.ascii.repeat(v.repeat))).toBe(v.digest);
    } finally {
      core!.forcePortableSha(false);
    }
  });
});

describe('HMAC-SHA256 RFC 4231 vectors', () => {
  for (const v of rfc4231.vectors) {
    test(`test case ${v.case}`, () => {
      const key = Buffer.from(v.keyHex, 'hex');
      const data = Buffer.from(v.dataHex, 'hex');
      const n = v.macHex.length;
      expect(hmacSha256(key, data).toString('hex').slice(0, n)).toBe(v.macHex);
      expect(hmacSha256Hex(key, data).slice(0, n)).toBe(v.macHex);
      const k = new HmacKey(key);
      expect(k.sign(data).slice(0, n)).toBe(v.macHex);
      expect(k.signBytes(data).toString('hex').slice(0, n)).toBe(v.macHex);
      const out = Buffer.alloc(40, 0xee);
      k.signInto(data, out, 5);
      expect(out.subarray(5, 37).toString('hex').slice(0, n)).toBe(v.macHex);
      expect(out[4]).toBe(0xee);
      expect(out[37]).toBe(0xee);
      if (!v.truncatedTo) expect(k.verify(data, v.macHex)).toBe(true);
    });
  }
});
