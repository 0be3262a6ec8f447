// `new MemoryEncryption({ password, kdf, salt })`: the constructor cannot
// await, so it derives the master key while blocking (PBKDF2 through
// crypto.pbkdf2Sync, Argon2id on a worker thread woken through Atomics). It
// must give exactly the key `fromPassword` gives for the same input, refuse
// what `fromPassword` refuses, and never hang on a worker that dies.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { MemoryEncryption, kdf } from '../lib';
import { argon2idBlocking, blockingArgon2LimitMs } from '../lib/crypto/argon2-blocking';

const fast = { name: 'argon2id' as const, memoryCost: 1024, timeCost: 1, parallelism: 1 };

function opens(sealer: MemoryEncryption, opener: MemoryEncryption): boolean {
  const data = crypto.randomBytes(100);
  try {
    return (opener.decrypt(sealer.encrypt(data)) as Buffer).equals(data);
  } catch {
    return false;
  }
}

describe('the blocking Argon2id', () => {
  test('equals kdf.argon2id on random passwords, salts and costs', async () => {
    for (let i = 0; i < 12; i++) {
      const password = crypto.randomBytes(crypto.randomInt(1, 100));
      const salt = crypto.randomBytes(crypto.randomInt(8, 40));
      const settings = { memoryCost: 8 * crypto.randomInt(1, 5) * 16, timeCost: crypto.randomInt(1, 4), parallelism: crypto.randomInt(1, 5), length: crypto.randomInt(4, 80) };
      const blocking = argon2idBlocking(password, salt, settings);
      expect(blocking.toString('hex')).toBe((await kdf.argon2id(password, salt, settings)).toString('hex'));
    }
  });

  test('reports the worker’s error, and gives up on a worker that dies without a word', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-argon2-stub-'));
    const write = (name: string, body: string): string => {
      const file = path.join(dir, name);
      fs.writeFileSync(file, body);
      return file;
    };
    const settings = { memoryCost: 64, timeCost: 1, parallelism: 1, length: 32 };
    const rejecting = write('rejecting.js', "module.exports = { argon2id: () => Promise.reject(new Error('out of memory, say')) };");
    expect(() => argon2idBlocking(Buffer.from('pw'), Buffer.alloc(16), settings, { hashWasmPath: rejecting })).toThrow(/Argon2id failed: out of memory, say/);
    const throwing = write('throwing.js', "throw new Error('no such binary');");
    expect(() => argon2idBlocking(Buffer.from('pw'), Buffer.alloc(16), settings, { hashWasmPath: throwing })).toThrow(/Argon2id failed: no such binary/);
    const short = write('short.js', 'module.exports = { argon2id: async () => new Uint8Array(5) };');
    expect(() => argon2idBlocking(Buffer.from('pw'), Buffer.alloc(16), settings, { hashWasmPath: short })).toThrow(/returned 5 bytes, expected 32/);
    const dying = write('dying.js', 'module.exports = { argon2id: () => process.exit(3) };');
    expect(() => argon2idBlocking(Buffer.from('pw'), Buffer.alloc(16), settings, { hashWasmPath: dying, limitMs: 300 })).toThrow(/did not finish within 300 ms/);
    // A caller that gives up marks the result abandoned and wipes the shared
    // memory; the late worker (terminated too) leaves no key there.
    const late = write('late.js', `module.exports = { argon2id: () => new Promise((resolve) => setTimeout(() => resolve(new Uint8Array(32).fill(0xab)), 400)) };`);
    let memory: SharedArrayBuffer | undefined;
    expect(() => argon2idBlocking(Buffer.from('pw'), Buffer.alloc(16), settings, { hashWasmPath: late, limitMs: 50, shared: (m) => (memory = m) })).toThrow(/did not finish within 50 ms/);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 800); // the worker's timer fires meanwhile
    const words = new Int32Array(memory!, 0, 2);
    expect(words[0]).toBe(5); // ABANDONED, never WRITING or DONE
    expect(new Uint8Array(memory!, 8).every((b) => b === 0)).toBe(true);
    // The same module within the limit gives its key.
    expect(argon2idBlocking(Buffer.from('pw'), Buffer.alloc(16), settings, { hashWasmPath: late }).equals(Buffer.alloc(32, 0xab))).toBe(true);
    fs.rmSync(dir, { recursive: true, force: true });
    // The real limit leaves room for slow machines and grows with the work.
    expect(blockingArgon2LimitMs({ memoryCost: 65536, timeCost: 3, parallelism: 4, length: 32 })).toBeGreaterThan(60_000);
    expect(blockingArgon2LimitMs({ memoryCost: 1 << 22, timeCost: 4, parallelism: 4, length: 32 })).toBeGreaterThan(blockingArgon2LimitMs({ memoryCost: 65536, timeCost: 3, parallelism: 4, length: 32 }));
  });
});

describe('new MemoryEncryption({ password })', () => {
  test('derives the key fromPassword derives, for each KDF (by name or with parameters)', async () => {
    const salt = crypto.randomBytes(16);
    const pbkdf2 = { name: 'pbkdf2-sha256' as const, iterations: 100_000 };
    for (const choice of [fast, pbkdf2]) {
      const sync = new MemoryEncryption({ password: 'correct horse', kdf: choice, salt });
      const async_ = await MemoryEncryption.fromPassword('correct horse', { kdf: choice, salt });
      expect(opens(sync, async_)).toBe(true);
      expect(opens(async_, sync)).toBe(true);
      expect(sync.settings().kdf).toEqual(async_.settings().kdf);
      expect(sync.kdfSalt?.equals(salt)).toBe(true);
      expect(opens(sync, new MemoryEncryption({ password: 'correct horsE', kdf: choice, salt }))).toBe(false);
      expect(opens(sync, new MemoryEncryption({ password: 'correct horse', kdf: choice, salt: crypto.randomBytes(16) }))).toBe(false);
    }
    // Bytes and the same text as a string are the same password.
    expect(opens(new MemoryEncryption({ password: Buffer.from('correct horse'), kdf: fast, salt }), await MemoryEncryption.fromPassword('correct horse', { kdf: fast, salt }))).toBe(true);
  });

  test('with no KDF given: Argon2id at RFC 9106’s second recommendation and a random salt', async () => {
    const enc = new MemoryEncryption({ password: 'pw', rotateEveryMs: 60_000 });
    expect(enc.settings().kdf).toEqual({ name: 'argon2id', memoryCost: 65536, timeCost: 3, parallelism: 4, saltBytes: 16 });
    expect(enc.settings().rotateEveryMs).toBe(60_000);
    expect(enc.kdfSalt?.length).toBe(16);
    const again = await MemoryEncryption.fromPassword('pw', { salt: enc.kdfSalt });
    expect(opens(enc, again)).toBe(true);
    // The name alone picks that KDF's defaults.
    const named = new MemoryEncryption({ password: 'pw', kdf: 'pbkdf2-sha256' });
    expect(named.settings().kdf).toEqual({ name: 'pbkdf2-sha256', iterations: 600_000, saltBytes: 16 });
    expect(opens(named, await MemoryEncryption.fromPassword('pw', { kdf: 'pbkdf2-sha256', salt: named.kdfSalt }))).toBe(true);
  });

  test('rejects bad input, as fromPassword does', async () => {
    const key = crypto.randomBytes(32);
    expect(() => new MemoryEncryption({ key, password: 'pw' })).toThrow(/not both/);
    expect(() => new MemoryEncryption({ key, kdf: fast })).toThrow(/with a password/);
    expect(() => new MemoryEncryption({ key, salt: crypto.randomBytes(16) })).toThrow(/with a password/);
    expect(() => new MemoryEncryption({})).toThrow(/a key of at least 32 bytes \(or a password\)/);
    const bad: [Record<string, unknown>, RegExp | ErrorConstructor][] = [
      [{ password: '' }, RangeError],
      [{ password: 42 }, TypeError],
      [{ password: 'pw', salt: Buffer.alloc(8) }, /salt of at least 16/],
      [{ password: 'pw', salt: 'not bytes' }, /Uint8Array salt/],
      [{ password: 'pw', kdf: { name: 'pbkdf2-sha256', iterations: 10 } }, /iterations/],
      [{ password: 'pw', kdf: { name: 'argon2id', memoryCost: 4, timeCost: 1, parallelism: 1 } }, /memoryCost/],
      [{ password: 'pw', kdf: { name: 'argon2id', memoryCost: 1024, timeCost: 0, parallelism: 1 } }, /timeCost/],
      [{ password: 'pw', kdf: 'scrypt' }, /'argon2id' or 'pbkdf2-sha256'/],
      [{ password: 'pw', kdf: null }, TypeError],
      [{ password: 'pw', algorithm: 'des' }, TypeError],
    ];
    for (const [options, error] of bad) {
      expect(() => new MemoryEncryption(options as never), JSON.stringify(options)).toThrow(error);
      await expect(MemoryEncryption.fromPassword((options.password ?? 'pw') as string, { ...options, password: undefined } as never), JSON.stringify(options)).rejects.toThrow(error);
    }
  });
});
