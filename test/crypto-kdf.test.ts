// KDFs: published vectors (RFC 5869, RFC 7914 PBKDF2-HMAC-SHA256, RFC 9106),
// HKDF-SHA384 against node:crypto, and refusal of weak or malformed input.
import crypto from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { type Argon2idOptions, kdf } from '../lib';
import vectors from './fixtures/kdf-vectors.json';
import reference from './fixtures/argon2id-reference.json';

const hex = (s: string): Buffer => Buffer.from(s, 'hex');

test.each(vectors.hkdf.map((v) => [v.source, v] as const))('HKDF %s', (_n, v) => {
  expect(kdf.hkdf(v.hash as 'sha256', hex(v.ikm), hex(v.salt), hex(v.info), v.length).toString('hex')).toBe(v.okm);
});

test('HKDF-SHA384 matches node:crypto on random inputs, up to 255 blocks', () => {
  for (let i = 0; i < 200; i++) {
    const ikm = crypto.randomBytes(i % 64);
    const salt = crypto.randomBytes(i % 48);
    const info = crypto.randomBytes(i % 20);
    const length = 1 + ((i * 61) % (255 * 48));
    expect(kdf.hkdf('sha384', ikm, salt, info, length).equals(Buffer.from(crypto.hkdfSync('sha384', ikm, salt, info, length)))).toBe(true);
  }
});

test.each(vectors.pbkdf2.map((v) => [`${v.source}, ${v.iterations} iteration(s)`, v] as const))('PBKDF2-HMAC-SHA256 %s', async (_n, v) => {
  expect((await kdf.pbkdf2Sha256(hex(v.password), hex(v.salt), v.iterations, v.length, { allowWeak: true })).toString('hex')).toBe(v.dk);
});

test('Argon2id: the RFC 9106 vector (with secret and associated data)', async () => {
  for (const v of vectors.argon2id) {
    const tag = await kdf.argon2id(hex(v.password), hex(v.salt), {
      memoryCost: v.memoryCost,
      timeCost: v.timeCost,
      parallelism: v.parallelism,
      length: v.length,
      secret: hex(v.secret),
      associatedData: hex(v.associatedData),
    });
    expect(tag.toString('hex')).toBe(v.tag);
  }
});

// Outputs of the `argon2` package (the reference C code) that kdf.argon2id
// was built on before hash-wasm, recorded on fixed inputs: empty and long
// passwords, salts of 8 to 100 bytes, memory from 8 KiB (8 × p) to 64 MiB,
// 1 to 10 passes, 1 to 16 lanes, 4 to 1,024 output bytes, with and without
// a secret and associated data (these and the empty password take the
// @noble/hashes path; the rest hash-wasm).
test.each(reference.cases.map((c, i) => [i, `m=${c.memoryCost} t=${c.timeCost} p=${c.parallelism} len=${c.length} pw=${c.password.length / 2}B salt=${c.salt.length / 2}B${'secret' in c ? ' +secret' : ''}${'associatedData' in c ? ' +ad' : ''}`, c] as const))(
  'Argon2id: the former argon2 package’s output, case %i (%s)',
  async (_i, _name, c) => {
    const options: Argon2idOptions = { memoryCost: c.memoryCost, timeCost: c.timeCost, parallelism: c.parallelism, length: c.length };
    if ('secret' in c) options.secret = hex(c.secret as string);
    if ('associatedData' in c) options.associatedData = hex(c.associatedData as string);
    expect((await kdf.argon2id(hex(c.password), hex(c.salt), options)).toString('hex')).toBe(c.tag);
  },
  60_000,
);

test('Argon2id: strings are hashed as UTF-8, as before', async () => {
  for (const c of reference.strings) {
    expect((await kdf.argon2id(c.password, c.salt, c)).toString('hex')).toBe(c.tag);
  }
});

test('Argon2id: the two backends (hash-wasm, @noble/hashes) agree on random inputs, lengths over 64 included', async () => {
  const noble = await import('@noble/hashes/argon2.js');
  for (let i = 0; i < 10; i++) {
    const password = crypto.randomBytes(crypto.randomInt(1, 80));
    const salt = crypto.randomBytes(crypto.randomInt(8, 48));
    const parallelism = crypto.randomInt(1, 6);
    const options = { memoryCost: 8 * parallelism + crypto.randomInt(0, 200), timeCost: crypto.randomInt(1, 4), parallelism, length: i < 4 ? 65 + i : crypto.randomInt(4, 140), secret: crypto.randomBytes(crypto.randomInt(0, 40)) };
    const wasm = await kdf.argon2id(password, salt, options);
    const js = noble.argon2id(password, salt, { t: options.timeCost, m: options.memoryCost, p: parallelism, dkLen: options.length, key: options.secret });
    expect(wasm.toString('hex')).toBe(Buffer.from(js).toString('hex'));
  }
});

test('every Argon2id parameter changes the output (none is ignored)', async () => {
  const base = { memoryCost: 64, timeCost: 1, parallelism: 1, length: 32 };
  const salt = Buffer.alloc(16, 7);
  const ref = await kdf.argon2id('pw', salt, base);
  const variants = [
    await kdf.argon2id('pw', salt, { ...base, memoryCost: 72 }),
    await kdf.argon2id('pw', salt, { ...base, timeCost: 2 }),
    await kdf.argon2id('pw', salt, { ...base, parallelism: 2 }),
    await kdf.argon2id('pw', salt, { ...base, secret: Buffer.from('k') }),
    await kdf.argon2id('pw', salt, { ...base, associatedData: Buffer.from('x') }),
    await kdf.argon2id('pw', Buffer.alloc(16, 8), base),
    await kdf.argon2id('pW', salt, base),
  ];
  for (const v of variants) expect(v.equals(ref)).toBe(false);
  expect((await kdf.argon2id('pw', salt, { ...base, length: 48 })).length).toBe(48);
});

describe('rejects bad input', () => {
  test('HKDF', () => {
    expect(() => kdf.hkdf('sha1' as 'sha256', 'a', 'b', 'c', 32)).toThrow(TypeError);
    expect(() => kdf.hkdf('sha256', 'a', 'b', 'c', 0)).toThrow(RangeError);
    expect(() => kdf.hkdf('sha256', 'a', 'b', 'c', 255 * 32 + 1)).toThrow(RangeError);
    expect(() => kdf.hkdf('sha256', 5 as unknown as string, 'b', 'c', 32)).toThrow(TypeError);
  });

  test('PBKDF2: weak iteration counts and short salts need allowWeak', async () => {
    await expect(kdf.pbkdf2Sha256('pw', Buffer.alloc(16), 1000, 32)).rejects.toThrow(/iterations/);
    await expect(kdf.pbkdf2Sha256('pw', Buffer.alloc(8), 600_000, 32)).rejects.toThrow(/salt of at least 16/);
    await expect(kdf.pbkdf2Sha256('pw', Buffer.alloc(16), 600_000, 0)).rejects.toThrow(RangeError);
    expect((await kdf.pbkdf2Sha256('pw', Buffer.alloc(8), 1000, 32, { allowWeak: true })).length).toBe(32);
  });

  test('Argon2id', async () => {
    const salt = Buffer.alloc(16);
    await expect(kdf.argon2id('pw', salt, { memoryCost: 7, timeCost: 1, parallelism: 1 })).rejects.toThrow(RangeError);
    await expect(kdf.argon2id('pw', salt, { memoryCost: 64, timeCost: 0, parallelism: 1 })).rejects.toThrow(RangeError);
    await expect(kdf.argon2id('pw', salt, { memoryCost: 64, timeCost: 1, parallelism: 256 })).rejects.toThrow(RangeError);
    await expect(kdf.argon2id('pw', Buffer.alloc(4), { memoryCost: 64, timeCost: 1, parallelism: 1 })).rejects.toThrow(/salt/);
    await expect(kdf.argon2id('pw', salt, null as unknown as { memoryCost: 1; timeCost: 1; parallelism: 1 })).rejects.toThrow(TypeError);
  });
});
