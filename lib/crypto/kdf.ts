/**
 * Key derivation:
 *   hkdf('sha256' | 'sha384', ikm, salt, info, length)   RFC 5869, node:crypto, sync
 *   pbkdf2Sha256(password, salt, iterations, length)     node:crypto, async (libuv pool)
 *   argon2id(password, salt, { memoryCost, timeCost, parallelism, ... })
 *                                                        RFC 9106, WebAssembly (hash-wasm), async
 * Argon2id needs no compiler on any platform: `hash-wasm` (WebAssembly) runs
 * it, at about the speed of the reference C code (bench/suites/argon2.js).
 * hash-wasm takes the RFC's secret but not its associated data, nor an empty
 * password; those inputs go to `@noble/hashes` 2 (audited, pure JavaScript,
 * several times slower; its 1.x truncated outputs over 64 bytes to a
 * multiple of 4). Both give the reference implementation's output byte for
 * byte (test/crypto-kdf.test.ts: the RFC 9106 vector and outputs recorded
 * from the `argon2` package this replaced).
 * Weak parameters are refused rather than silently accepted; the async
 * functions report bad input as a rejected promise.
 */
import crypto from 'node:crypto';
import { pathToFileURL } from 'node:url';
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

interface HashWasmArgon2 {
  argon2id(options: {
    password: Uint8Array;
    salt: Uint8Array;
    secret?: Uint8Array;
    iterations: number;
    parallelism: number;
    memorySize: number;
    hashLength: number;
    outputType: 'binary';
  }): Promise<Uint8Array>;
}

interface NobleArgon2 {
  argon2idAsync(password: Uint8Array, salt: Uint8Array, options: { t: number; m: number; p: number; dkLen: number; version: number; key?: Uint8Array; personalization?: Uint8Array }): Promise<Uint8Array>;
}

// @noble/hashes 2 is ES modules only: require() loads it from Node 20.19 on
// (its own minimum); on an older Node, an import() compiled at run time (this
// CommonJS build would turn a written one into require()) of the resolved file.
let nobleArgon2: Promise<NobleArgon2> | undefined;
function loadNoble(): Promise<NobleArgon2> {
  nobleArgon2 ??= (async () => {
    try {
      return require('@noble/hashes/argon2.js') as NobleArgon2;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ERR_REQUIRE_ESM') throw e;
      const importModule = new Function('url', 'return import(url)') as (url: string) => Promise<NobleArgon2>;
      return importModule(pathToFileURL(require.resolve('@noble/hashes/argon2.js')).href);
    }
  })();
  return nobleArgon2;
}

const asBuffer = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

/** RFC 9106 Argon2id (version 0x13), raw output. */
export async function argon2id(password: Uint8Array | string, salt: Uint8Array | string, options: Argon2idOptions): Promise<Buffer> {
  const { p, s, memoryCost, timeCost, parallelism, length } = argon2Inputs(password, salt, options);
  const secret = options.secret === undefined ? undefined : bytes(options.secret, 'secret');
  const associatedData = options.associatedData === undefined ? undefined : bytes(options.associatedData, 'associatedData');
  // Empty associated data is the same input to H0 as none (a zero length).
  if (p.length > 0 && (associatedData === undefined || associatedData.length === 0)) {
    const wasm = require('hash-wasm') as HashWasmArgon2;
    const tag = await wasm.argon2id({ password: p, salt: s, secret, iterations: timeCost, parallelism, memorySize: memoryCost, hashLength: length, outputType: 'binary' });
    return asBuffer(tag);
  }
  const noble = await loadNoble();
  const tag = await noble.argon2idAsync(p, s, { t: timeCost, m: memoryCost, p: parallelism, dkLen: length, version: 0x13, key: secret, personalization: associatedData });
  return asBuffer(tag);
}
