/**
 * SHA-256 and HMAC-SHA256. The native addon computes them (SHA-NI where the
 * CPU has it); the fallback uses node:crypto. Both give identical bytes.
 *
 * Forms: `sha256` / `hmacSha256` / `HmacKey#signBytes` return a new 32-byte
 * Buffer; the `...Hex` forms and `HmacKey#sign` return lower-case hex;
 * `HmacKey#signInto` writes into a caller's buffer (the fastest form).
 * Strings are hashed as UTF-8; strings with lone surrogates are refused.
 */
import crypto from 'node:crypto';
import { binaryForNative, checkBinary, checkBytes, checkOut, type BinaryLike } from '../native/bytes';
import { ErrorCodes, GuardError, describe } from '../errors';
import { CAR_HASH_TEXT_BYTES, carHashText } from './hash-texts';
import { coreAddon } from '../native/loader';
import type { NativeHmacKey } from '../native/addon-types';

export type { BinaryLike } from '../native/bytes';

/** Length of a SHA-256 digest and of an HMAC-SHA256 tag, in bytes. */
export const DIGEST_BYTES = 32;

const native = coreAddon();

// crypto.hash (Node >= 20.12) is the cheapest one-shot digest node:crypto has.
const oneShotHash = (crypto as { hash?: (alg: string, data: BinaryLike, enc: 'hex' | 'buffer') => string | Buffer })
  .hash;

function jsSha256(data: BinaryLike): Buffer {
  if (oneShotHash) return oneShotHash('sha256', data, 'buffer') as Buffer;
  return crypto.createHash('sha256').update(data).digest();
}

function jsSha256Hex(data: BinaryLike): string {
  if (oneShotHash) return oneShotHash('sha256', data, 'hex') as string;
  return crypto.createHash('sha256').update(data).digest('hex');
}

/** SHA-256 of `data` as a new 32-byte Buffer. */
export function sha256(data: BinaryLike): Buffer {
  if (native) {
    const out = Buffer.allocUnsafe(DIGEST_BYTES);
    native.sha256Into(binaryForNative(data, 'data'), out, 0);
    return out;
  }
  return jsSha256(checkBinary(data, 'data'));
}

/** SHA-256 of `data` as 64 lower-case hex characters. */
export function sha256Hex(data: BinaryLike): string {
  if (native) return native.sha256Hex(binaryForNative(data, 'data'), false);
  return jsSha256Hex(checkBinary(data, 'data'));
}

/**
 * `"sha256:" + hex(SHA-256(text))` for text that is already well formed (the
 * CAR-hash form). Internal: callers have validated `text`.
 */
export function prefixedSha256OfText(text: string): string {
  if (native) {
    return native.sha256Hex(text.length <= 65536 ? text : Buffer.from(text, 'utf8'), true);
  }
  return 'sha256:' + jsSha256Hex(text);
}

/**
 * `"sha256:" + hex(SHA-256(bytes[0..length)))`. Internal: the CAR hash of a
 * canonical form in car.ts's scratch buffer.
 */
export function carHashOfBytes(bytes: Uint8Array, length: number): string {
  if (native) return native.carHashOfBytes(bytes, length);
  return 'sha256:' + jsSha256Hex(bytes.subarray(0, length));
}

/** Batches up to this many hashes reuse the kept buffers; larger ones get their own. */
const KEPT_HASHES = 4096;
let hashText = Buffer.allocUnsafeSlow(0);
let hashDigests = Buffer.allocUnsafeSlow(0);
let hashWords = new Int32Array(0);

/**
 * Internal: the CAR hashes of `count` forms written back to back into
 * `bytes` (see car.ts); hash k goes to out[at[k]]. The addon writes every
 * hash as text and as a raw digest in one call; a digest seen recently gets
 * its earlier string back (car-hash-texts), a new one a slice of the text.
 */
export function carHashesOfBytes(bytes: Uint8Array, ends: Uint32Array, count: number, out: unknown[], at: Uint32Array): void {
  if (native) {
    let text = hashText;
    let digests = hashDigests;
    let words = hashWords;
    if (digests.length < count * DIGEST_BYTES) {
      text = Buffer.allocUnsafeSlow(count * CAR_HASH_TEXT_BYTES);
      digests = Buffer.allocUnsafeSlow(count * DIGEST_BYTES); // its own ArrayBuffer: aligned for the words view
      words = new Int32Array(digests.buffer, digests.byteOffset, count * 8);
      if (count <= KEPT_HASHES) {
        hashText = text;
        hashDigests = digests;
        hashWords = words;
      }
    }
    native.carHashesInto(bytes, ends, count, text, digests);
    for (let k = 0; k < count; k++) out[at[k]] = carHashText(words, text, k);
    return;
  }
  for (let k = 0, start = 0; k < count; start = ends[k], k++) out[at[k]] = 'sha256:' + jsSha256Hex(bytes.subarray(start, ends[k]));
}

function checkKey(key: unknown): Uint8Array {
  const bytes = typeof key === 'string' ? Buffer.from(checkBinary(key, 'key') as string, 'utf8') : checkBytes(key, 'key');
  if (bytes.byteLength === 0) {
    throw new RangeError('Expected a non-empty key but received 0 bytes (an empty HMAC key authenticates nothing)');
  }
  return bytes;
}

/** HMAC-SHA256 of `data` under `key` as a new 32-byte Buffer. Prefer `HmacKey` for repeated use. */
export function hmacSha256(key: BinaryLike, data: BinaryLike): Buffer {
  const k = checkKey(key);
  if (native) {
    const out = Buffer.allocUnsafe(DIGEST_BYTES);
    native.hmacSha256Into(k, binaryForNative(data, 'data'), out, 0);
    return out;
  }
  return crypto.createHmac('sha256', k).update(checkBinary(data, 'data')).digest();
}

/** HMAC-SHA256 of `data` under `key` as 64 lower-case hex characters. */
export function hmacSha256Hex(key: BinaryLike, data: BinaryLike): string {
  return hmacSha256(key, data).toString('hex');
}

const HEX_MAC = /^[0-9a-fA-F]{64}$/;

function macBytes(mac: unknown): Uint8Array | null {
  if (typeof mac === 'string') return HEX_MAC.test(mac) ? Buffer.from(mac, 'hex') : null;
  const bytes = checkBytes(mac, 'mac');
  return bytes.byteLength === DIGEST_BYTES ? bytes : null;
}

/**
 * A key prepared once for many HMAC-SHA256 operations. Natively the inner and
 * outer pad blocks are compressed at construction, so each MAC costs only the
 * message blocks plus one block. `destroy()` wipes the key state.
 */
export class HmacKey {
  #native: NativeHmacKey | null = null;
  #jsKey: crypto.KeyObject | null = null;
  #destroyed = false;

  /** @param key secret bytes, or a string used as its UTF-8 bytes; must not be empty. */
  constructor(key: BinaryLike) {
    const bytes = checkKey(key);
    if (native) this.#native = new native.HmacKey(bytes);
    else this.#jsKey = crypto.createSecretKey(Buffer.from(bytes));
  }

  /**
   * @internal The native key object; null without the addon or once
   * destroyed. The audit log seals its decision lines through it in one call.
   */
  get nativeKey(): NativeHmacKey | null {
    return this.#native;
  }

  /** True once `destroy()` has run. */
  get destroyed(): boolean {
    return this.#destroyed;
  }

  #closed(): never {
    throw new GuardError(ErrorCodes.CLOSED, 'HmacKey has been destroyed');
  }

  #jsMac(data: BinaryLike): Buffer {
    return crypto.createHmac('sha256', this.#jsKey!).update(checkBinary(data, 'data')).digest();
  }

  /** The MAC of `data` as 64 lower-case hex characters. */
  sign(data: BinaryLike): string {
    if (this.#native) return this.#native.signHex(binaryForNative(data, 'data'));
    if (this.#destroyed) this.#closed();
    return this.#jsMac(data).toString('hex');
  }

  /** The MAC of `data` as a new 32-byte Buffer. */
  signBytes(data: BinaryLike): Buffer {
    const out = Buffer.allocUnsafe(DIGEST_BYTES);
    this.signInto(data, out, 0);
    return out;
  }

  /** Writes the 32-byte MAC of `data` into `out` at `offset`; returns `out`. */
  signInto<T extends Uint8Array>(data: BinaryLike, out: T, offset = 0): T {
    checkOut(out, offset, DIGEST_BYTES);
    if (this.#native) {
      this.#native.signInto(binaryForNative(data, 'data'), out, offset);
    } else {
      if (this.#destroyed) this.#closed();
      out.set(this.#jsMac(data), offset);
    }
    return out;
  }

  /**
   * Constant-time check of `mac` (32 bytes, or 64 hex characters) against the
   * MAC of `data`. A MAC of the wrong length or with non-hex characters is
   * simply not valid: `false`, not an exception.
   */
  verify(data: BinaryLike, mac: Uint8Array | string): boolean {
    if (typeof mac !== 'string' && !(mac instanceof Uint8Array)) {
      throw new TypeError(`Expected a Uint8Array or hex string for mac but received ${describe(mac)}`);
    }
    if (this.#destroyed) this.#closed();
    const input = binaryForNative(data, 'data');
    const expected = macBytes(mac);
    // A MAC's length is public: rejecting a malformed one early leaks nothing.
    if (expected === null) return false;
    if (this.#native) return this.#native.verify(input, expected);
    return crypto.timingSafeEqual(this.#jsMac(input), expected);
  }

  /** Wipes the key state; every later call throws `GuardError` `ERR_CLOSED`. Idempotent. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#native?.destroy();
    this.#native = null;
    this.#jsKey = null;
  }
}
