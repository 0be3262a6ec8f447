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
import { type Argon2idOptions, argon2Inputs, bytes, integer, pbkdf2Inputs } from './kdf-params';

export type HkdfHash = 'sha256' | 'sha384';
export type { Argon2idOptions } from './kdf-params';
export { MIN_SALT_BYTES, PBKDF2_MIN_ITERATIONS } from './kdf-params';

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
  const { p, s } = pbkdf2Inputs(password, salt, iterations, length, options.allowWeak === true);
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
  const { p, s, memoryCost, timeCost, parallelism, length } = argon2Inputs(password, salt, options);
  const argon2 = require('argon2') as Argon2Module;
  const extra: Record<string, unknown> = {};
  if (options.secret !== undefined) extra.secret = Buffer.from(bytes(options.secret, 'secret'));
  if (options.associatedData !== undefined) extra.associatedData = Buffer.from(bytes(options.associatedData, 'associatedData'));
  return argon2.hash(Buffer.from(p), Object.assign(extra, { type: argon2.argon2id, memoryCost, timeCost, parallelism, hashLength: length, salt: Buffer.from(s), raw: true, version: 0x13 }));
}
