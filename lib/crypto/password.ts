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

/** Argon2id defaults: RFC 9106's second recommended setting (memoryCost in KiB). */
export const DEFAULT_ARGON2 = Object.freeze({ memoryCost: 65536, timeCost: 3, parallelism: 4 });
/** PBKDF2-HMAC-SHA256 default: OWASP's 2023 figure. */
export const DEFAULT_PBKDF2_ITERATIONS = 600_000;

/** The KDF a master key was stretched with, every parameter filled in. */
export type ResolvedPasswordKdf =
  | { name: 'argon2id'; memoryCost: number; timeCost: number; parallelism: number; saltBytes: number }
  | { name: 'pbkdf2-sha256'; iterations: number; saltBytes: number };

/** The 32-byte master key for `password`, the salt used and the KDF parameters. */
export async function derivePasswordKey(password: string | Uint8Array, options: PasswordOptions): Promise<{ master: Buffer; salt: Buffer; kdf: ResolvedPasswordKdf }> {
  if (typeof password !== 'string' && !(password instanceof Uint8Array)) throw new TypeError(`Expected a string or Uint8Array password but received ${describe(password)}`);
  if (password.length === 0) throw new RangeError('Expected a non-empty password');
  const salt = options.salt === undefined ? crypto.randomBytes(16) : Buffer.from(options.salt);
  if (salt.length < 16) throw new RangeError(`Expected a salt of at least 16 bytes but received ${salt.length}`);
  const kdf = options.kdf ?? { name: 'argon2id' };
  if (kdf.name === 'argon2id') {
    const o = Object.assign({}, DEFAULT_ARGON2, kdf);
    const master = await argon2id(password, salt, { memoryCost: o.memoryCost, timeCost: o.timeCost, parallelism: o.parallelism, length: 32 });
    return { master, salt, kdf: { name: 'argon2id', memoryCost: o.memoryCost, timeCost: o.timeCost, parallelism: o.parallelism, saltBytes: salt.length } };
  }
  if (kdf.name === 'pbkdf2-sha256') {
    const iterations = kdf.iterations ?? DEFAULT_PBKDF2_ITERATIONS;
    return { master: await pbkdf2Sha256(password, salt, iterations, 32), salt, kdf: { name: 'pbkdf2-sha256', iterations, saltBytes: salt.length } };
  }
  throw new TypeError(`Expected kdf.name 'argon2id' or 'pbkdf2-sha256' but received ${describe((kdf as { name: unknown }).name)}`);
}
