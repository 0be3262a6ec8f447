/**
 * Passwords for MemoryEncryption: the KDF choice, its defaults (Argon2id at
 * RFC 9106's second recommendation: 64 MiB, t=3, p=4; PBKDF2 at 600,000
 * iterations) and the salt (random when not given). `fromPassword` derives
 * asynchronously; the constructor, which cannot await, blocks the thread
 * while the same KDF runs (PBKDF2 through crypto.pbkdf2Sync, Argon2id on a
 * worker: argon2-blocking.ts), and both give the same key for the same input.
 */
import crypto from 'node:crypto';
import { describe } from '../errors';
import { argon2idBlocking } from './argon2-blocking';
import { argon2id, pbkdf2Sha256 } from './kdf';
import { argon2Inputs, pbkdf2Inputs } from './kdf-params';
import type { MemoryEncryptionOptions, PasswordKdf, ResolvedPasswordKdf } from './memory-encryption-options';

export type { PasswordKdf, ResolvedPasswordKdf } from './memory-encryption-options';

/** Options of `fromPassword`: the constructor's, less the key and the password. */
export type PasswordOptions = Omit<MemoryEncryptionOptions, 'key' | 'password'>;

/** Argon2id defaults: RFC 9106's second recommended setting (memoryCost in KiB). */
export const DEFAULT_ARGON2 = Object.freeze({ memoryCost: 65536, timeCost: 3, parallelism: 4 });
/** PBKDF2-HMAC-SHA256 default: OWASP's 2023 figure. */
export const DEFAULT_PBKDF2_ITERATIONS = 600_000;

interface PasswordPlan {
  password: string | Uint8Array;
  salt: Buffer;
  kdf: ResolvedPasswordKdf;
}

/** Checks the password, picks the salt and fills in the KDF's parameters (and checks them, before any work). */
function plan(password: unknown, options: PasswordOptions): PasswordPlan {
  if (typeof password !== 'string' && !(password instanceof Uint8Array)) throw new TypeError(`Expected a string or Uint8Array password but received ${describe(password)}`);
  if (password.length === 0) throw new RangeError('Expected a non-empty password');
  if (options.salt !== undefined && !(options.salt instanceof Uint8Array)) throw new TypeError(`Expected a Uint8Array salt but received ${describe(options.salt)}`);
  const salt = options.salt === undefined ? crypto.randomBytes(16) : Buffer.from(options.salt);
  if (salt.length < 16) throw new RangeError(`Expected a salt of at least 16 bytes but received ${salt.length}`);
  const given = options.kdf === undefined ? 'argon2id' : options.kdf;
  const kdf = typeof given === 'string' ? { name: given } : given;
  if (typeof kdf !== 'object' || kdf === null) throw new TypeError(`Expected a KDF name or { name, ... } for kdf but received ${describe(kdf)}`);
  if (kdf.name === 'argon2id') {
    const o = Object.assign({}, DEFAULT_ARGON2, kdf);
    argon2Inputs(password, salt, { ...o, length: 32 });
    return { password, salt, kdf: { name: 'argon2id', memoryCost: o.memoryCost, timeCost: o.timeCost, parallelism: o.parallelism, saltBytes: salt.length } };
  }
  if (kdf.name === 'pbkdf2-sha256') {
    const iterations = (kdf as { iterations?: number }).iterations ?? DEFAULT_PBKDF2_ITERATIONS;
    pbkdf2Inputs(password, salt, iterations, 32, false);
    return { password, salt, kdf: { name: 'pbkdf2-sha256', iterations, saltBytes: salt.length } };
  }
  throw new TypeError(`Expected kdf 'argon2id' or 'pbkdf2-sha256' but received ${describe((kdf as { name: unknown }).name)}`);
}

export interface DerivedPasswordKey {
  /** 32 bytes; the caller zeroes it. */
  master: Buffer;
  salt: Buffer;
  kdf: ResolvedPasswordKdf;
}

/** The 32-byte master key for `password`, the salt used and the KDF parameters. */
export async function derivePasswordKey(password: string | Uint8Array, options: PasswordOptions): Promise<DerivedPasswordKey> {
  const { salt, kdf } = plan(password, options);
  const master =
    kdf.name === 'argon2id'
      ? await argon2id(password, salt, { memoryCost: kdf.memoryCost, timeCost: kdf.timeCost, parallelism: kdf.parallelism, length: 32 })
      : await pbkdf2Sha256(password, salt, kdf.iterations, 32);
  return { master, salt, kdf };
}

/** derivePasswordKey, blocking this thread until the KDF is done. */
export function derivePasswordKeySync(password: string | Uint8Array, options: PasswordOptions): DerivedPasswordKey {
  const { salt, kdf } = plan(password, options);
  const p = typeof password === 'string' ? Buffer.from(password, 'utf8') : password;
  try {
    const master =
      kdf.name === 'argon2id'
        ? argon2idBlocking(p, salt, { memoryCost: kdf.memoryCost, timeCost: kdf.timeCost, parallelism: kdf.parallelism, length: 32 })
        : crypto.pbkdf2Sync(p, salt, kdf.iterations, 32, 'sha256');
    return { master, salt, kdf };
  } finally {
    if (p !== password) p.fill(0);
  }
}
