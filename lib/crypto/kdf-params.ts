/**
 * Input checks shared by the asynchronous KDFs (kdf.ts) and the blocking
 * password path of the MemoryEncryption constructor (password.ts), so both
 * refuse exactly the same weak or malformed parameters.
 */
import { describe } from '../errors';

/** Fewest PBKDF2 iterations accepted (OWASP's 2023 figure for SHA-256 is 600,000; 1 is allowed for test vectors only via `allowWeak`). */
export const PBKDF2_MIN_ITERATIONS = 100_000;
export const MIN_SALT_BYTES = 16;

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

export function bytes(value: unknown, name: string): Uint8Array {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (!(value instanceof Uint8Array)) throw new TypeError(`Expected a Uint8Array or string for ${name} but received ${describe(value)}`);
  return value;
}

export function integer(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`Expected an integer in [${min}, ${max}] for ${name} but received ${describe(value)}`);
  }
  return value;
}

/** PBKDF2-HMAC-SHA256 inputs, checked: password and salt as bytes. */
export function pbkdf2Inputs(password: unknown, salt: unknown, iterations: unknown, length: unknown, allowWeak: boolean): { p: Uint8Array; s: Uint8Array; iterations: number; length: number } {
  const p = bytes(password, 'password');
  const s = bytes(salt, 'salt');
  integer(iterations, 'iterations', allowWeak ? 1 : PBKDF2_MIN_ITERATIONS, 2 ** 31 - 1);
  integer(length, 'length', 1, 1024);
  if (!allowWeak && s.length < MIN_SALT_BYTES) throw new RangeError(`Expected a salt of at least ${MIN_SALT_BYTES} bytes but received ${s.length}`);
  return { p, s, iterations: iterations as number, length: length as number };
}

/** Argon2id inputs, checked (RFC 9106's bounds): password and salt as bytes, every cost filled in. */
export function argon2Inputs(password: unknown, salt: unknown, options: unknown): { p: Uint8Array; s: Uint8Array; memoryCost: number; timeCost: number; parallelism: number; length: number } {
  const p = bytes(password, 'password');
  const s = bytes(salt, 'salt');
  if (typeof options !== 'object' || options === null) throw new TypeError(`Expected Argon2id options but received ${describe(options)}`);
  const o = options as Partial<Argon2idOptions>;
  const parallelism = integer(o.parallelism, 'parallelism', 1, 255);
  const memoryCost = integer(o.memoryCost, 'memoryCost', 8 * parallelism, 2 ** 32 - 1);
  const timeCost = integer(o.timeCost, 'timeCost', 1, 2 ** 32 - 1);
  const length = integer(o.length ?? 32, 'length', 4, 1024);
  if (s.length < 8) throw new RangeError(`Expected a salt of at least 8 bytes (RFC 9106) but received ${s.length}`);
  return { p, s, memoryCost, timeCost, parallelism, length };
}
