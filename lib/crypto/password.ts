/**
 * Passwords for MemoryEncryption.fromPassword: the KDF choice, its defaults
 * (Argon2id at RFC 9106's second recommendation: 64 MiB, t=3, p=4; PBKDF2 at
 * 600,000 iterations) and the salt (random when not given).
 */
import crypto from 'node:crypto';
import { describe } from '../errors';
import { argon2id, pbkdf2Sha256 } from './kdf';
import type { MemoryEncryptionOptions } from './memory-encryption';

export type PasswordKdf =
  | { name: 'argon2id'; memoryCost?: number; timeCost?: number; parallelism?: number }
  | { name: 'pbkdf2-sha256'; iterations?: number };

export interface PasswordOptions extends Omit<MemoryEncryptionOptions, 'key'> {
  /** Default Argon2id with RFC 9106's second recommended setting (64 MiB, t=3, p=4). */
  kdf?: PasswordKdf;
  /** At least 16 bytes; random when omitted (then read it from `kdfSalt` and store it). */
  salt?: Uint8Array;
}

const DEFAULT_ARGON2 = { memoryCost: 65536, timeCost: 3, parallelism: 4 };
const DEFAULT_PBKDF2_ITERATIONS = 600_000;

/** The 32-byte master key for `password`, and the salt used. */
export async function derivePasswordKey(password: string | Uint8Array, options: PasswordOptions): Promise<{ master: Buffer; salt: Buffer }> {
  if (typeof password !== 'string' && !(password instanceof Uint8Array)) throw new TypeError(`Expected a string or Uint8Array password but received ${describe(password)}`);
  if (password.length === 0) throw new RangeError('Expected a non-empty password');
  const salt = options.salt === undefined ? crypto.randomBytes(16) : Buffer.from(options.salt);
  if (salt.length < 16) throw new RangeError(`Expected a salt of at least 16 bytes but received ${salt.length}`);
  const kdf = options.kdf ?? { name: 'argon2id' };
  if (kdf.name === 'argon2id') {
    const o = Object.assign({}, DEFAULT_ARGON2, kdf);
    return { master: await argon2id(password, salt, { memoryCost: o.memoryCost, timeCost: o.timeCost, parallelism: o.parallelism, length: 32 }), salt };
  }
  if (kdf.name === 'pbkdf2-sha256') {
    return { master: await pbkdf2Sha256(password, salt, kdf.iterations ?? DEFAULT_PBKDF2_ITERATIONS, 32), salt };
  }
  throw new TypeError(`Expected kdf.name 'argon2id' or 'pbkdf2-sha256' but received ${describe((kdf as { name: unknown }).name)}`);
}
