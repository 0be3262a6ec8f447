// MemoryEncryption: the envelope layout checked byte by byte (and opened
// independently from docs/gpu.md's description), rotation, block envelopes
// with unique nonces, password KDFs, tampering and bad input; DeviceBuffer.
import crypto from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { AEAD_ALGORITHMS, type AeadAlgorithm, DeviceBuffer, ErrorCodes, GuardError, MemoryEncryption, aead, backends } from '../lib';

const master = crypto.randomBytes(32);
const NONCE: Record<AeadAlgorithm, number> = { 'aes-256-gcm': 12, 'aes-128-gcm': 12, 'chacha20-poly1305': 12, 'xchacha20-poly1305': 24 };
const KEY: Record<AeadAlgorithm, number> = { 'aes-256-gcm': 32, 'aes-128-gcm': 16, 'chacha20-poly1305': 32, 'xchacha20-poly1305': 32 };
const ALG_ID: Record<AeadAlgorithm, number> = { 'aes-256-gcm': 1, 'aes-128-gcm': 2, 'chacha20-poly1305': 3, 'xchacha20-poly1305': 4 };

/** The version key as docs/gpu.md documents it. */
function documentedKey(secret: Uint8Array, alg: AeadAlgorithm, version: number): Buffer {
  return Buffer.from(crypto.hkdfSync('sha256', secret, Buffer.from('guardkernel/memory-encryption/v1'), Buffer.from(`${alg}:${version}`), KEY[alg]));
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof GuardError ? e.code : `not a GuardError: ${String(e)}`;
  }
  return undefined;
}

describe.each(AEAD_ALGORITHMS.map((a) => [a]))('%s', (alg) => {
  test('envelope v1 layout, byte by byte, opened independently with aead.open', () => {
    const enc = new MemoryEncryption({ algorithm: alg, key: master });
    const data = crypto.randomBytes(333);
    const aad = Buffer.from('control-block-7');
    const env = enc.encrypt(data, aad) as Buffer;
    const n = NONCE[alg];
    expect(env.length).toBe(9 + n + 16 + data.length);
    expect(env.subarray(0, 4).toString('latin1')).toBe('GKE1');
    expect(env[4]).toBe(ALG_ID[alg]);
    expect(env.readUInt32BE(5)).toBe(1);
    const nonce = env.subarray(9, 9 + n);
    const tag = env.subarray(9 + n, 25 + n);
    const ct = env.subarray(25 + n);
    const plain = aead.open(alg, documentedKey(master, alg, 1), nonce, ct, tag, Buffer.concat([env.subarray(0, 9), aad]));
    expect(plain.equals(data)).toBe(true);
    expect((enc.decrypt(env, aad) as Buffer).equals(data)).toBe(true);
    // The master itself never encrypts.
    expect(codeOf(() => aead.open(alg, master.subarray(0, KEY[alg]), nonce, ct, tag, Buffer.concat([env.subarray(0, 9), aad])))).toBe(ErrorCodes.AUTH_FAILED);
  });

  test('every changed byte (header, nonce, tag, ciphertext) and a changed AAD fail authentication', () => {
    const enc = new MemoryEncryption({ algorithm: alg, key: master });
    const env = enc.encrypt(crypto.randomBytes(40), Buffer.from('a')) as Buffer;
    for (let i = 0; i < env.length; i++) {
      const bad = Buffer.from(env);
      bad[i] ^= 0x80;
      const code = codeOf(() => enc.decrypt(bad, Buffer.from('a')));
      expect([ErrorCodes.AUTH_FAILED, ErrorCodes.ENVELOPE_INVALID], `byte ${i}`).toContain(code);
    }
    expect(codeOf(() => enc.decrypt(env, Buffer.from('b')))).toBe(ErrorCodes.AUTH_FAILED);
    expect(codeOf(() => enc.decrypt(env))).toBe(ErrorCodes.AUTH_FAILED);
  });

  test('block envelopes: each block opens independently with its documented nonce and AAD', () => {
    const enc = new MemoryEncryption({ algorithm: alg, key: master });
    const blockSize = 48;
    const data = crypto.randomBytes(blockSize * 5);
    const env = enc.encryptBlocks(data, blockSize, Buffer.from('x'));
    const p = NONCE[alg] - 8;
    const headerBytes = 25 + p;
    expect(env.subarray(0, 4).toString('latin1')).toBe('GKB1');
    expect(env[4]).toBe(ALG_ID[alg]);
    expect(env.readUInt32BE(5)).toBe(1);
    expect(env.readUInt32BE(9)).toBe(blockSize);
    expect(env.readUInt32BE(13)).toBe(5);
    expect(env.length).toBe(headerBytes + 5 * (16 + blockSize));
    const first = env.readBigUInt64BE(17 + p);
    for (let i = 0; i < 5; i++) {
      const nonce = Buffer.concat([env.subarray(17, 17 + p), Buffer.alloc(8)]);
      nonce.writeBigUInt64BE(first + BigInt(i), p);
      const idx = Buffer.alloc(4);
      idx.writeUInt32BE(i);
      const at = headerBytes + i * (16 + blockSize);
      const block = aead.open(alg, documentedKey(master, alg, 1), nonce, env.subarray(at + 16, at + 16 + blockSize), env.subarray(at, at + 16), Buffer.concat([env.subarray(0, headerBytes), idx, Buffer.from('x')]));
      expect(block.equals(data.subarray(i * blockSize, (i + 1) * blockSize))).toBe(true);
    }
    expect(enc.decryptBlocks(env, Buffer.from('x')).equals(data)).toBe(true);
  });
});

test('DeviceBuffer in, DeviceBuffer out; host bytes in, host bytes out', () => {
  const enc = new MemoryEncryption({ key: master });
  const data = crypto.randomBytes(100);
  const dev = DeviceBuffer.from(data);
  const env = enc.encrypt(dev);
  expect(env).toBeInstanceOf(DeviceBuffer);
  const back = enc.decrypt(env);
  expect(back).toBeInstanceOf(DeviceBuffer);
  expect((back as DeviceBuffer).toHost().equals(data)).toBe(true);
  expect(Buffer.isBuffer(enc.encrypt(data))).toBe(true);
  expect(enc.encryptBlocks(DeviceBuffer.from(data), 10).length).toBeGreaterThan(100);
});

test('rotation: old versions decrypt only, new envelopes carry the new version; any instance with the master decrypts', () => {
  const enc = new MemoryEncryption({ key: master });
  const v1 = enc.encrypt(Buffer.from('one')) as Buffer;
  expect(enc.rotateKey()).toBe(2);
  const v2 = enc.encrypt(Buffer.from('two')) as Buffer;
  expect(v1.readUInt32BE(5)).toBe(1);
  expect(v2.readUInt32BE(5)).toBe(2);
  expect((enc.decrypt(v1) as Buffer).toString()).toBe('one');
  const other = new MemoryEncryption({ key: master });
  expect((other.decrypt(v2) as Buffer).toString()).toBe('two');
  expect(codeOf(() => new MemoryEncryption({ key: crypto.randomBytes(32) }).decrypt(v2))).toBe(ErrorCodes.AUTH_FAILED);
  expect(enc.stats()).toMatchObject({ keyVersion: 2, rotations: 1, invocations: 1, device: backends().gpu.kind === 'cuda' ? 'cuda' : 'cpu' });
  expect(new MemoryEncryption({ key: master, device: 'cpu' }).stats().device).toBe('cpu');
  expect(new MemoryEncryption({ key: master, algorithm: 'chacha20-poly1305' }).stats().device).toBe('cpu');
});

test('automatic rotation by invocation count and by time', () => {
  let now = 1000;
  const enc = new MemoryEncryption({ key: master, maxInvocationsPerKey: 3, rotateEveryMs: 60_000, clock: () => now });
  const versions = Array.from({ length: 7 }, () => (enc.encrypt(Buffer.from('x')) as Buffer).readUInt32BE(5));
  expect(versions).toEqual([1, 1, 1, 2, 2, 2, 3]);
  now += 60_000;
  expect((enc.encrypt(Buffer.from('x')) as Buffer).readUInt32BE(5)).toBe(4);
  // A block batch that does not fit the current version's budget moves to the next one first.
  const blocks = enc.encryptBlocks(Buffer.alloc(30), 10);
  expect(blocks.readUInt32BE(5)).toBe(5);
  expect(() => enc.encryptBlocks(Buffer.alloc(40), 10)).toThrow(/maxInvocationsPerKey/);
});

test('block nonces never repeat under one key, across encryptBlocks calls', () => {
  const enc = new MemoryEncryption({ key: master });
  const seen = new Set<string>();
  let total = 0;
  for (let call = 0; call < 50; call++) {
    const count = 1 + (call % 7);
    const env = enc.encryptBlocks(crypto.randomBytes(count * 16), 16);
    const prefix = env.subarray(17, 21).toString('hex');
    const first = env.readBigUInt64BE(21);
    for (let i = 0; i < count; i++) seen.add(`${env.readUInt32BE(5)}:${prefix}:${first + BigInt(i)}`);
    total += count;
  }
  expect(seen.size).toBe(total);
});

test('10^6 blocks over many encryptBlocks calls and key rotations: no (key, nonce) pair twice, and the nonce documented is the one used', () => {
  // Rotation both ways: by count (maxInvocationsPerKey) and by rotateKey().
  const enc = new MemoryEncryption({ key: master, maxInvocationsPerKey: 250_000 });
  const used = new Map<string, Array<[bigint, bigint]>>(); // version:prefix -> counter ranges [first, end)
  const TOTAL = 1_000_000;
  let total = 0;
  let state = 0x5eed;
  for (let call = 0; total < TOTAL; call++) {
    state = (state * 1103515245 + 12345) >>> 0;
    const count = Math.min(TOTAL - total, 1 + (state % 8192));
    if (call % 41 === 40) enc.rotateKey();
    const env = enc.encryptBlocks(Buffer.alloc(count * 4, call & 0xff), 4);
    const version = env.readUInt32BE(5);
    const prefix = env.subarray(17, 21);
    const first = env.readBigUInt64BE(21);
    expect(env.readUInt32BE(13)).toBe(count);
    const ranges = used.get(`${version}:${prefix.toString('hex')}`) ?? [];
    ranges.push([first, first + BigInt(count)]);
    used.set(`${version}:${prefix.toString('hex')}`, ranges);
    if (call % 25 === 0) {
      // The last block opens with the nonce the header documents, under the documented version key.
      const i = count - 1;
      const nonce = Buffer.alloc(12);
      prefix.copy(nonce, 0);
      nonce.writeBigUInt64BE(first + BigInt(i), 4);
      const idx = Buffer.alloc(4);
      idx.writeUInt32BE(i);
      const at = 29 + i * (16 + 4);
      const block = aead.open('aes-256-gcm', documentedKey(master, 'aes-256-gcm', version), nonce, env.subarray(at + 16, at + 20), env.subarray(at, at + 16), Buffer.concat([env.subarray(0, 29), idx]));
      expect(block.equals(Buffer.alloc(4, call & 0xff))).toBe(true);
    }
    total += count;
  }
  let blocks = 0n;
  for (const ranges of used.values()) {
    ranges.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    for (let k = 1; k < ranges.length; k++) expect(ranges[k][0] >= ranges[k - 1][1]).toBe(true);
    for (const [a, b] of ranges) blocks += b - a;
  }
  expect(blocks).toBe(BigInt(TOTAL));
  expect(used.size).toBeGreaterThan(6); // versions from both kinds of rotation
}, 120_000);

test('blocks cannot be reordered, moved between envelopes or miscounted', () => {
  const enc = new MemoryEncryption({ key: master });
  const env = enc.encryptBlocks(crypto.randomBytes(64), 16);
  const headerBytes = 25 + 4;
  const swapped = Buffer.from(env);
  env.copy(swapped, headerBytes, headerBytes + 32, headerBytes + 64);
  env.copy(swapped, headerBytes + 32, headerBytes, headerBytes + 32);
  expect(() => enc.decryptBlocks(swapped)).toThrow(/Block 0 failed authentication/);
  const other = enc.encryptBlocks(crypto.randomBytes(64), 16);
  const moved = Buffer.from(env);
  other.copy(moved, headerBytes + 32, headerBytes + 32, headerBytes + 64);
  expect(() => enc.decryptBlocks(moved)).toThrow(/Block 1 failed/);
  const miscounted = Buffer.from(env);
  miscounted.writeUInt32BE(3, 13);
  expect(codeOf(() => enc.decryptBlocks(miscounted))).toBe(ErrorCodes.ENVELOPE_INVALID);
  const shorter = Buffer.concat([miscounted.subarray(0, headerBytes + 3 * 32)]);
  expect(codeOf(() => enc.decryptBlocks(shorter))).toBe(ErrorCodes.AUTH_FAILED);
});

test('envelopes that are not ours, truncated, or of another algorithm are ERR_ENVELOPE_INVALID', () => {
  const enc = new MemoryEncryption({ key: master });
  const env = enc.encrypt(Buffer.from('hello')) as Buffer;
  expect(codeOf(() => enc.decrypt(Buffer.from('nope')))).toBe(ErrorCodes.ENVELOPE_INVALID);
  expect(codeOf(() => enc.decrypt(env.subarray(0, 20)))).toBe(ErrorCodes.ENVELOPE_INVALID);
  const zeroVersion = Buffer.from(env);
  zeroVersion.writeUInt32BE(0, 5);
  expect(codeOf(() => enc.decrypt(zeroVersion))).toBe(ErrorCodes.ENVELOPE_INVALID);
  const chacha = new MemoryEncryption({ key: master, algorithm: 'chacha20-poly1305' });
  expect(codeOf(() => chacha.decrypt(env))).toBe(ErrorCodes.ENVELOPE_INVALID);
  expect(codeOf(() => enc.decrypt(enc.encryptBlocks(Buffer.alloc(16), 16)))).toBe(ErrorCodes.ENVELOPE_INVALID);
});

test('native and js backends read each other’s envelopes', () => {
  for (const algorithm of AEAD_ALGORITHMS) {
    const a = new MemoryEncryption({ key: master, algorithm, backend: 'native' });
    const b = new MemoryEncryption({ key: master, algorithm, backend: 'js' });
    const data = crypto.randomBytes(1000);
    expect((b.decrypt(a.encrypt(data)) as Buffer).equals(data)).toBe(true);
    expect((a.decrypt(b.encrypt(data)) as Buffer).equals(data)).toBe(true);
    expect(a.decryptBlocks(b.encryptBlocks(data, 100)).equals(data)).toBe(true);
  }
});

describe('passwords', () => {
  const fast = { name: 'argon2id' as const, memoryCost: 1024, timeCost: 1, parallelism: 1 };
  test('the same password and salt give the same keys; the KDF choice is used', async () => {
    const salt = crypto.randomBytes(16);
    const a = await MemoryEncryption.fromPassword('correct horse', { kdf: fast, salt });
    const b = await MemoryEncryption.fromPassword('correct horse', { kdf: fast, salt });
    const env = a.encrypt(Buffer.from('secret'));
    expect((b.decrypt(env) as Buffer).toString()).toBe('secret');
    expect(a.kdfSalt?.equals(salt)).toBe(true);
    const wrong = await MemoryEncryption.fromPassword('correct horsE', { kdf: fast, salt });
    expect(codeOf(() => wrong.decrypt(env))).toBe(ErrorCodes.AUTH_FAILED);
    const otherCost = await MemoryEncryption.fromPassword('correct horse', { kdf: { ...fast, timeCost: 2 }, salt });
    expect(codeOf(() => otherCost.decrypt(env))).toBe(ErrorCodes.AUTH_FAILED);
    const pbkdf2 = await MemoryEncryption.fromPassword('correct horse', { kdf: { name: 'pbkdf2-sha256', iterations: 100_000 }, salt });
    expect(codeOf(() => pbkdf2.decrypt(env))).toBe(ErrorCodes.AUTH_FAILED);
    const pbkdf2Again = await MemoryEncryption.fromPassword('correct horse', { kdf: { name: 'pbkdf2-sha256', iterations: 100_000 }, salt });
    expect((pbkdf2Again.decrypt(pbkdf2.encrypt(Buffer.from('p'))) as Buffer).toString()).toBe('p');
  });

  test('a random salt is generated and exposed; weak input is refused', async () => {
    const a = await MemoryEncryption.fromPassword('pw', { kdf: fast });
    expect(a.kdfSalt?.length).toBe(16);
    await expect(MemoryEncryption.fromPassword('', { kdf: fast })).rejects.toThrow(RangeError);
    await expect(MemoryEncryption.fromPassword('pw', { kdf: fast, salt: Buffer.alloc(8) })).rejects.toThrow(/salt/);
    await expect(MemoryEncryption.fromPassword('pw', { kdf: { name: 'pbkdf2-sha256', iterations: 10 } })).rejects.toThrow(/iterations/);
    await expect(MemoryEncryption.fromPassword('pw', { kdf: { name: 'scrypt' } as never })).rejects.toThrow(TypeError);
  });
});

describe('rejects bad input', () => {
  test('options', () => {
    expect(() => new MemoryEncryption({ key: crypto.randomBytes(16) })).toThrow(/at least 32 bytes/);
    expect(() => new MemoryEncryption({ key: master, algorithm: 'aes-192-gcm' as AeadAlgorithm })).toThrow(TypeError);
    expect(() => new MemoryEncryption({ key: master, rotateEveryMs: 0 })).toThrow(RangeError);
    expect(() => new MemoryEncryption({ key: master, maxInvocationsPerKey: 2 ** 33 })).toThrow(RangeError);
    expect(() => new MemoryEncryption({ key: master, backend: 'gpu' as 'js' })).toThrow(TypeError);
    expect(() => new MemoryEncryption({ key: master, device: 'tpu' as 'cpu' })).toThrow(TypeError);
    if (backends().gpu.kind !== 'cuda') expect(codeOf(() => new MemoryEncryption({ key: master, device: 'cuda' }))).toBe(ErrorCodes.GPU_UNAVAILABLE);
    expect(() => new MemoryEncryption({ key: master, device: 'cuda', algorithm: 'xchacha20-poly1305' })).toThrow(/AES-GCM only/);
    expect(() => new MemoryEncryption(null as never)).toThrow(TypeError);
  });

  test('data, aad and block sizes', () => {
    const enc = new MemoryEncryption({ key: master });
    expect(() => enc.encrypt('text' as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => enc.encrypt(Buffer.alloc(1), 'aad' as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => enc.encryptBlocks(Buffer.alloc(10), 3)).toThrow(/multiple of blockSize/);
    expect(() => enc.encryptBlocks(Buffer.alloc(10), 0)).toThrow(RangeError);
    expect(() => enc.encryptBlocks(Buffer.alloc(10), 2 ** 24 + 1)).toThrow(RangeError);
  });

  test('closed instances and freed buffers', () => {
    const enc = new MemoryEncryption({ key: master });
    const env = enc.encrypt(Buffer.from('x'));
    enc.close();
    enc.close(); // idempotent
    expect(codeOf(() => enc.encrypt(Buffer.from('x')))).toBe(ErrorCodes.CLOSED);
    expect(codeOf(() => enc.decrypt(env))).toBe(ErrorCodes.CLOSED);
    expect(codeOf(() => enc.rotateKey())).toBe(ErrorCodes.CLOSED);
  });
});

describe('DeviceBuffer', () => {
  test('alloc, from, copyFrom, toHost, free', () => {
    const b = DeviceBuffer.alloc(8);
    expect(b.backend).toBe('cpu');
    expect(b.byteLength).toBe(8);
    expect(b.toHost().equals(Buffer.alloc(8))).toBe(true);
    b.copyFrom(Buffer.from([1, 2, 3]), 5);
    b.copyFrom(DeviceBuffer.from(Buffer.from([9])), 0);
    expect([...b.toHost()]).toEqual([9, 0, 0, 0, 0, 1, 2, 3]);
    const host = b.toHost();
    host[0] = 7; // a copy
    expect(b.toHost()[0]).toBe(9);
    b.free();
    expect(b.freed).toBe(true);
  });

  test('double free and use after free are GuardErrors; bad sizes and offsets are refused', () => {
    const b = DeviceBuffer.from(Buffer.from('abc'));
    b.free();
    expect(codeOf(() => b.free())).toBe(ErrorCodes.CLOSED);
    expect(codeOf(() => b.toHost())).toBe(ErrorCodes.CLOSED);
    expect(codeOf(() => b.byteLength)).toBe(ErrorCodes.CLOSED);
    expect(codeOf(() => DeviceBuffer.alloc(4).copyFrom(b))).toBe(ErrorCodes.CLOSED);
    expect(codeOf(() => new MemoryEncryption({ key: master }).encrypt(b))).toBe(ErrorCodes.CLOSED);
    expect(() => DeviceBuffer.alloc(-1)).toThrow(RangeError);
    expect(() => DeviceBuffer.alloc(1.5)).toThrow(RangeError);
    expect(() => DeviceBuffer.from('abc' as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => DeviceBuffer.alloc(2).copyFrom(Buffer.alloc(3))).toThrow(RangeError);
    expect(() => DeviceBuffer.alloc(4).copyFrom(Buffer.alloc(1), 4)).toThrow(RangeError);
    expect(codeOf(() => DeviceBuffer.alloc(4, { device: 'cuda' }))).toBe(ErrorCodes.GPU_UNAVAILABLE);
  });
});

test('random nonces from the pool: 20,000 envelopes, no nonce twice, none zero, across pool refills', () => {
  for (const algorithm of ['aes-256-gcm', 'xchacha20-poly1305'] as const) {
    const enc = new MemoryEncryption({ key: master, algorithm });
    const n = NONCE[algorithm];
    const seen = new Set<string>();
    for (let i = 0; i < 20_000; i++) {
      const nonce = (enc.encrypt(Buffer.alloc(1)) as Buffer).subarray(9, 9 + n);
      expect(nonce.every((b) => b === 0)).toBe(false);
      seen.add(nonce.toString('hex'));
    }
    expect(seen.size).toBe(20_000);
  }
});
