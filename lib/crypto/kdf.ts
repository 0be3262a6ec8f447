/**
 * Key derivation:
 *   hkdf('sha256' | 'sha384', ikm, salt, info, length)   RFC 5869, node:crypto, sync
 *   pbkdf2Sha256(password, salt, iterations, length)     node:crypto, async (libuv pool)
 *   argon2id(password, salt, { memoryCost, timeCost, parallelism, ... })
 *                                                        RFC 9106, the `argon2` package, async
 * Argon2id comes from `argon2` (the reference C implementation behind N-API,
 * shipped with prebuilt binaries): it was the fastest of the candidates
 * measured (see README) and it takes the RFC's secret and associated data.
 * Weak parameters are refused rather than silently accepted; the async
 * functions report bad input as a rejected promise.
 */
import crypto from 'node:crypto';
import { describe } from '../errors';

export type HkdfHash = 'sha256' | 'sha384';

export interface Argon2idOptions {
  /** KiB of memory (at least 8 × parallelism). */
  memoryCost: number;
  /** Passes over memory (at least 1). */
  timeCost: number;
  /** Lanes (1 to 255). */
  parallelism: number;
  /** Output bytes; default 32. */
  length?: number;
  /** Optional secret (RFC 9106 K). */
  secret?: Uint8Array;
  /** Optional associated data (RFC 9106 X). */
  associatedData?: Uint8Array;
}

/** Fewest PBKDF2 iterations accepted (OWASP's 2023 figure for SHA-256 is 600,000; 1 is allowed for test vectors only via `allowWeak`). */
export const PBKDF2_MIN_ITERATIONS = 100_000;
export const MIN_SALT_BYTES = 16;

function bytes(value: unknown, name: string): Uint8Array {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (!(value instanceof Uint8Array)) throw new TypeError(`Expected a Uint8Array or string for ${name} but received ${describe(value)}`);
  return value;
}

function integer(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`Expected an integer in [${min}, ${max}] for ${name} but received ${describe(value)}`);
  }
  return value;
}

/** RFC 5869 HKDF (extract then expand). */
export function hkdf(hash: HkdfHash, ikm: Uint8Array | string, salt: Uint8Array | string, info: Uint8Array | string, length: number): Buffer {
  if (hash !== 'sha256' && hash !== 'sha384') throw new TypeError(`Expected 'sha256' or 'sha384' for hash but received ${describe(hash)}`);
  const max = 255 * (hash === 'sha256' ? 32 : 48);
  integer(length, 'length', 1, max);
  return Buffer.from(crypto.hkdfSync(hash, bytes(ikm, 'ikm'), bytes(salt, 'salt'), bytes(info, 'info'), length));
}

/**
 * PBKDF2-HMAC-SHA256. Refuses fewer than PBKDF2_MIN_ITERATIONS iterations
 * or a salt under 16 bytes unless `allowWeak` (published test vectors use both).
 */
export async function pbkdf2Sha256(password: Uint8Array | string, salt: Uint8Array | string, iterations: number, length: number, options: { allowWeak?: boolean } = {}): Promise<Buffer> {
  const p = bytes(password, 'password');
  const s = bytes(salt, 'salt');
  integer(iterations, 'iterations', options.allowWeak ? 1 : PBKDF2_MIN_ITERATIONS, 2 ** 31 - 1);
  integer(length, 'length', 1, 1024);
  if (!options.allowWeak && s.length < MIN_SALT_BYTES) throw new RangeError(`Expected a salt of at least ${MIN_SALT_BYTES} bytes but received ${s.length}`);
  return new Promise((resolve, reject) => {
    crypto.pbkdf2(p, s, iterations, length, 'sha256', (err, key) => (err ? reject(err) : resolve(key)));
  });
}

interface Argon2Module {
  argon2id: number;
  hash(password: Buffer, options: Record<string, unknown>): Promise<Buffer>;
}

/** RFC 9106 Argon2id (version 0x13), raw output. */
export async function argon2id(password: Uint8Array | string, salt: Uint8Array | string, options: Argon2idOptions): Promise<Buffer> {
  const p = bytes(password, 'password');
  const s = bytes(salt, 'salt');
  if (typeof options !== 'object' || options === null) throw new TypeError(`Expected Argon2id options but received ${describe(options)}`);
  const parallelism = integer(options.parallelism, 'parallelism', 1, 255);
  const memoryCost = integer(options.memoryCost, 'memoryCost', 8 * parallelism, 2 ** 32 - 1);
  const timeCost = integer(options.timeCost, 'timeCost', 1, 2 ** 32 - 1);
  const length = integer(options.length ?? 32, 'length', 4, 1024);
  if (s.length < 8) throw new RangeError(`Expected a salt of at least 8 bytes (RFC 9106) but received ${s.length}`);
  const argon2 = require('argon2') as Argon2Module;
  const extra: Record<string, unknown> = {};
  if (options.secret !== undefined) extra.secret = Buffer.from(bytes(options.secret, 'secret'));
  if (options.associatedData !== undefined) extra.associatedData = Buffer.from(bytes(options.associatedData, 'associatedData'));
  return argon2.hash(Buffer.from(p), Object.assign(extra, { type: argon2.argon2id, memoryCost, timeCost, parallelism, hashLength: length, salt: Buffer.from(s), raw: true, version: 0x13 }));
}
