// Raw AEAD: published vectors on every CPU backend, a differential test
// (OpenSSL through node:crypto, @noble/ciphers, and node:crypto directly) on
// random inputs, tampering, and bad input.
import crypto from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { AEAD_ALGORITHMS, type AeadAlgorithm, ErrorCodes, GuardError, aead, backends } from '../lib';
import { hchacha20 } from '../lib/crypto/hchacha20';
import vectors from './fixtures/aead-vectors.json';
import { randomInt, rng } from './helpers';

const hex = (s: string): Buffer => Buffer.from(s, 'hex');
const BACKENDS = ['native', 'js'] as const;
const SIZES: Record<AeadAlgorithm, [number, number]> = {
  'aes-256-gcm': [32, 12],
  'aes-128-gcm': [16, 12],
  'chacha20-poly1305': [32, 12],
  'xchacha20-poly1305': [32, 24],
};

describe.each(BACKENDS)('published vectors on the %s backend', (backend) => {
  test.each(vectors.aead.map((v) => [v.source, v] as const))('%s', (_name, v) => {
    const alg = v.algorithm as AeadAlgorithm;
    const sealed = aead.seal(alg, hex(v.key), hex(v.nonce), hex(v.plaintext), hex(v.aad), { backend });
    expect(sealed.ciphertext.toString('hex')).toBe(v.ciphertext);
    expect(sealed.tag.toString('hex')).toBe(v.tag);
    expect(aead.open(alg, hex(v.key), hex(v.nonce), hex(v.ciphertext), hex(v.tag), hex(v.aad), { backend }).toString('hex')).toBe(v.plaintext);
  });
});

test('HChaCha20 matches the draft vector', () => {
  for (const v of vectors.hchacha20) expect(Buffer.from(hchacha20(hex(v.key), hex(v.nonce))).toString('hex')).toBe(v.subkey);
});

test('differential: native, js and node:crypto agree on 2,000 random inputs of 0 to 70,000 bytes', () => {
  const next = rng(20261123);
  let bytes = 0;
  for (let i = 0; i < 2000; i++) {
    const alg = AEAD_ALGORITHMS[i % 4];
    const [keyBytes, nonceBytes] = SIZES[alg];
    const key = crypto.randomBytes(keyBytes);
    const nonce = crypto.randomBytes(nonceBytes);
    const len = i % 50 === 0 ? randomInt(next, 0, 70_000) : randomInt(next, 0, 2_000);
    // Odd offsets inside larger buffers: views must be honoured.
    const plaintext = crypto.randomBytes(len + 3).subarray(1, 1 + len);
    const aad = next() < 0.3 ? undefined : crypto.randomBytes(randomInt(next, 0, 300));
    const a = aead.seal(alg, key, nonce, plaintext, aad, { backend: 'native' });
    const b = aead.seal(alg, key, nonce, plaintext, aad, { backend: 'js' });
    expect(b.ciphertext.equals(a.ciphertext)).toBe(true);
    expect(b.tag.equals(a.tag)).toBe(true);
    if (alg !== 'xchacha20-poly1305') {
      const c = crypto.createCipheriv(alg, key, nonce, { authTagLength: 16 } as crypto.CipherGCMOptions) as crypto.CipherGCM;
      if (aad !== undefined) c.setAAD(aad);
      expect(Buffer.concat([c.update(plaintext), c.final()]).equals(a.ciphertext)).toBe(true);
      expect(c.getAuthTag().equals(a.tag)).toBe(true);
    }
    // Each backend opens what the other sealed.
    expect(aead.open(alg, key, nonce, a.ciphertext, a.tag, aad, { backend: 'js' }).equals(plaintext)).toBe(true);
    expect(aead.open(alg, key, nonce, b.ciphertext, b.tag, aad, { backend: 'native' }).equals(plaintext)).toBe(true);
    bytes += len;
  }
  expect(bytes).toBeGreaterThan(1_000_000);
});

describe.each(BACKENDS)('tampering on the %s backend is ERR_AUTH_FAILED', (backend) => {
  test.each(AEAD_ALGORITHMS.map((a) => [a]))('%s', (alg) => {
    const [keyBytes, nonceBytes] = SIZES[alg];
    const key = crypto.randomBytes(keyBytes);
    const nonce = crypto.randomBytes(nonceBytes);
    const aad = Buffer.from('header');
    const pt = crypto.randomBytes(100);
    const { ciphertext, tag } = aead.seal(alg, key, nonce, pt, aad, { backend });
    const flip = (b: Buffer, i: number): Buffer => {
      const c = Buffer.from(b);
      c[i] ^= 1;
      return c;
    };
    const attempts: [string, () => unknown][] = [
      ['ciphertext bit', () => aead.open(alg, key, nonce, flip(ciphertext, 50), tag, aad, { backend })],
      ['tag bit', () => aead.open(alg, key, nonce, ciphertext, flip(tag, 15), aad, { backend })],
      ['aad changed', () => aead.open(alg, key, nonce, ciphertext, tag, Buffer.from('headeR'), { backend })],
      ['aad dropped', () => aead.open(alg, key, nonce, ciphertext, tag, undefined, { backend })],
      ['wrong key', () => aead.open(alg, flip(key, 0), nonce, ciphertext, tag, aad, { backend })],
      ['wrong nonce', () => aead.open(alg, key, flip(nonce, nonceBytes - 1), ciphertext, tag, aad, { backend })],
      ['truncated', () => aead.open(alg, key, nonce, ciphertext.subarray(0, 99), tag, aad, { backend })],
    ];
    for (const [name, attempt] of attempts) {
      let caught: unknown;
      let result: unknown;
      try {
        result = attempt();
      } catch (e) {
        caught = e;
      }
      expect(result, name).toBeUndefined();
      expect(caught, name).toBeInstanceOf(GuardError);
      expect((caught as GuardError).code, name).toBe(ErrorCodes.AUTH_FAILED);
    }
  });
});

describe('rejects bad input', () => {
  const key = Buffer.alloc(32);
  const nonce = Buffer.alloc(12);
  test('algorithms, lengths and types', () => {
    expect(() => aead.seal('aes-192-gcm' as AeadAlgorithm, key, nonce, Buffer.alloc(1))).toThrow(TypeError);
    // The seeds' bug: AES-128-GCM with a 32-byte key. Refused, not truncated.
    expect(() => aead.seal('aes-128-gcm', key, nonce, Buffer.alloc(1))).toThrow(/16-byte key for aes-128-gcm but received 32/);
    expect(() => aead.seal('aes-256-gcm', Buffer.alloc(16), nonce, Buffer.alloc(1))).toThrow(RangeError);
    expect(() => aead.seal('aes-256-gcm', key, Buffer.alloc(16), Buffer.alloc(1))).toThrow(/12-byte nonce/);
    expect(() => aead.seal('xchacha20-poly1305', key, nonce, Buffer.alloc(1))).toThrow(/24-byte nonce/);
    expect(() => aead.open('aes-256-gcm', key, nonce, Buffer.alloc(1), Buffer.alloc(12))).toThrow(/16-byte tag/);
    expect(() => aead.seal('aes-256-gcm', key, nonce, 'text' as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => aead.seal('aes-256-gcm', key, nonce, Buffer.alloc(1), 'aad' as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => aead.seal('aes-256-gcm', [1] as unknown as Uint8Array, nonce, Buffer.alloc(1))).toThrow(TypeError);
    expect(() => aead.seal('aes-256-gcm', key, nonce, Buffer.alloc(1), undefined, { backend: 'gpu' as 'cuda' })).toThrow(TypeError);
  });

  test('the cuda backend: GCM only, and ERR_GPU_UNAVAILABLE where there is no GPU', () => {
    expect(() => aead.seal('chacha20-poly1305', key, nonce, Buffer.alloc(1), undefined, { backend: 'cuda' })).toThrow(/AES-GCM only/);
    if (backends().gpu.kind !== 'cuda') {
      expect(() => aead.seal('aes-256-gcm', key, nonce, Buffer.alloc(1), undefined, { backend: 'cuda' })).toThrow(expect.objectContaining({ code: ErrorCodes.GPU_UNAVAILABLE }));
      expect(() => aead.open('aes-256-gcm', key, nonce, Buffer.alloc(1), Buffer.alloc(16), undefined, { backend: 'cuda' })).toThrow(expect.objectContaining({ code: ErrorCodes.GPU_UNAVAILABLE }));
    }
  });
});
