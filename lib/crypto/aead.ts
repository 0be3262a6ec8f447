/**
 * Raw AEAD: `seal` and `open` for AES-256-GCM, AES-128-GCM,
 * ChaCha20-Poly1305 and XChaCha20-Poly1305, byte-identical to OpenSSL and
 * libsodium for the same inputs, on every backend:
 *   native  node:crypto (OpenSSL); XChaCha20 as HChaCha20 + OpenSSL's ChaCha20-Poly1305
 *   js      @noble/ciphers (audited, pure JavaScript): an independent implementation,
 *           which the differential tests hold against the native one
 *   cuda    AES-GCM in CUDA kernels (cuda/aes_gcm_kernels.cu) on device 0,
 *           host buffers copied in and out; ERR_GPU_UNAVAILABLE without a GPU
 * Nonces are the caller's business here: never seal twice under one key with
 * one nonce. MemoryEncryption manages keys and nonces for you.
 */
import crypto from 'node:crypto';
import { ErrorCodes, GuardError, describe } from '../errors';
import { type AeadAlgorithm, AEAD_ALGORITHMS, type AlgorithmInfo, algorithmInfo } from './algorithms';
import { gpuBackend } from '../native/loader';
import type { CudaAddon } from '../native/addon-types';
import { hchacha20 } from './hchacha20';

export type AeadBackend = 'cuda' | 'native' | 'js';

export interface AeadOptions {
  /** Default 'native'. */
  backend?: AeadBackend;
}

export interface Sealed {
  ciphertext: Buffer;
  tag: Buffer;
}

const TAG_BYTES = 16;

function bytesArg(value: unknown, name: string, length?: number, what?: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new TypeError(`Expected a Uint8Array for ${name} but received ${describe(value)}`);
  if (length !== undefined && value.length !== length) {
    throw new RangeError(`Expected a ${length}-byte ${name} for ${what} but received ${value.length} bytes`);
  }
  return value;
}

function algorithmArg(alg: unknown): AlgorithmInfo {
  const info = algorithmInfo(alg);
  if (info === undefined) throw new TypeError(`Expected one of ${AEAD_ALGORITHMS.join(', ')} for the algorithm but received ${describe(alg)}`);
  return info;
}

function backendArg(options: AeadOptions | undefined, info: AlgorithmInfo): AeadBackend {
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new TypeError(`Expected an options object but received ${describe(options)}`);
  }
  const backend = options?.backend ?? 'native';
  if (backend !== 'native' && backend !== 'js' && backend !== 'cuda') {
    throw new TypeError(`Expected 'native', 'js' or 'cuda' for backend but received ${describe(backend)}`);
  }
  if (backend === 'cuda' && !info.name.endsWith('-gcm')) throw new TypeError(`The cuda backend implements AES-GCM only, not ${info.name}`);
  return backend;
}

const EMPTY = new Uint8Array(0);

/** Runs a CUDA addon call, turning its coded errors into GuardErrors. */
export function onDevice<T>(call: () => T): T {
  try {
    return call();
  } catch (err) {
    if ((err as { code?: unknown }).code === ErrorCodes.GPU_UNAVAILABLE) throw new GuardError(ErrorCodes.GPU_UNAVAILABLE, (err as Error).message, { cause: err });
    throw err;
  }
}

/**
 * The CUDA addon, or ERR_GPU_UNAVAILABLE naming why there is none.
 * Used by MemoryEncryption and DeviceBuffer; not part of the public API.
 * @internal
 */
export function cudaAddon(): CudaAddon {
  const gpu = gpuBackend();
  if (gpu.kind !== 'cuda' || gpu.addon === null) throw new GuardError(ErrorCodes.GPU_UNAVAILABLE, `No CUDA backend: ${gpu.reason ?? 'unknown reason'}`);
  return gpu.addon;
}

/** A Buffer over the same memory (no copy). */
export function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/** OpenSSL's cipher name, key and nonce for `info` (XChaCha20 reduced to ChaCha20). */
function opensslParams(info: AlgorithmInfo, key: Uint8Array, nonce: Uint8Array): { cipher: string; key: Uint8Array; nonce: Uint8Array; wipe: boolean } {
  if (info.name !== 'xchacha20-poly1305') return { cipher: info.name, key, nonce, wipe: false };
  const n = new Uint8Array(12);
  n.set(nonce.subarray(16, 24), 4);
  return { cipher: 'chacha20-poly1305', key: hchacha20(key, nonce.subarray(0, 16)), nonce: n, wipe: true };
}

type NobleCipher = (key: Uint8Array, nonce: Uint8Array, aad?: Uint8Array) => { encrypt(p: Uint8Array): Uint8Array; decrypt(c: Uint8Array): Uint8Array };
let noble: Record<AeadAlgorithm, NobleCipher> | undefined;

function nobleCipher(info: AlgorithmInfo): NobleCipher {
  if (noble === undefined) {
    // Loaded on first use: most processes never take the js backend.
    const { gcm } = require('@noble/ciphers/aes') as { gcm: NobleCipher };
    const { chacha20poly1305, xchacha20poly1305 } = require('@noble/ciphers/chacha') as Record<string, NobleCipher>;
    noble = { 'aes-256-gcm': gcm, 'aes-128-gcm': gcm, 'chacha20-poly1305': chacha20poly1305, 'xchacha20-poly1305': xchacha20poly1305 };
  }
  return noble[info.name];
}

/** Encrypts and authenticates `plaintext` (and authenticates `aad`). */
export function seal(alg: AeadAlgorithm, key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array, options?: AeadOptions): Sealed {
  const info = algorithmArg(alg);
  bytesArg(key, 'key', info.keyBytes, info.name);
  bytesArg(nonce, 'nonce', info.nonceBytes, info.name);
  bytesArg(plaintext, 'plaintext');
  if (aad !== undefined) bytesArg(aad, 'aad');
  const backend = backendArg(options, info);
  if (backend === 'cuda') {
    const addon = cudaAddon();
    const ciphertext = Buffer.alloc(plaintext.length);
    const tag = Buffer.alloc(TAG_BYTES);
    onDevice(() => addon.gcmSeal(key, nonce, plaintext, aad ?? EMPTY, ciphertext, tag));
    return { ciphertext, tag };
  }
  if (backend === 'js') {
    const out = nobleCipher(info)(key, nonce, aad).encrypt(plaintext);
    const split = out.length - TAG_BYTES;
    return { ciphertext: asBuffer(out.subarray(0, split)), tag: asBuffer(out.subarray(split)) };
  }
  const p = opensslParams(info, key, nonce);
  try {
    const c = crypto.createCipheriv(p.cipher as crypto.CipherGCMTypes, p.key, p.nonce, { authTagLength: TAG_BYTES });
    if (aad !== undefined) c.setAAD(aad);
    const first = c.update(plaintext);
    const last = c.final();
    return { ciphertext: last.length === 0 ? first : Buffer.concat([first, last]), tag: c.getAuthTag() };
  } finally {
    if (p.wipe) p.key.fill(0);
  }
}

/**
 * Checks the tag and decrypts. A wrong key, nonce, tag, AAD or ciphertext is
 * `GuardError` `ERR_AUTH_FAILED`, and no plaintext is released.
 */
export function open(alg: AeadAlgorithm, key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array, aad?: Uint8Array, options?: AeadOptions): Buffer {
  const info = algorithmArg(alg);
  bytesArg(key, 'key', info.keyBytes, info.name);
  bytesArg(nonce, 'nonce', info.nonceBytes, info.name);
  bytesArg(ciphertext, 'ciphertext');
  bytesArg(tag, 'tag', info.tagBytes, info.name);
  if (aad !== undefined) bytesArg(aad, 'aad');
  const backend = backendArg(options, info);
  if (backend === 'cuda') {
    const out = Buffer.alloc(ciphertext.length);
    const addon = cudaAddon();
    if (!onDevice(() => addon.gcmOpen(key, nonce, ciphertext, aad ?? EMPTY, tag, out))) throw new GuardError(ErrorCodes.AUTH_FAILED, `${info.name}: authentication failed`);
    return out;
  }
  if (backend === 'js') {
    const joined = new Uint8Array(ciphertext.length + TAG_BYTES);
    joined.set(ciphertext);
    joined.set(tag, ciphertext.length);
    try {
      return asBuffer(nobleCipher(info)(key, nonce, aad).decrypt(joined));
    } catch (err) {
      throw new GuardError(ErrorCodes.AUTH_FAILED, `${info.name}: authentication failed`, { cause: err });
    }
  }
  const p = opensslParams(info, key, nonce);
  let plain: Buffer | undefined;
  try {
    const d = crypto.createDecipheriv(p.cipher as crypto.CipherGCMTypes, p.key, p.nonce, { authTagLength: TAG_BYTES });
    d.setAuthTag(tag);
    if (aad !== undefined) d.setAAD(aad);
    plain = d.update(ciphertext);
    // final() checks the tag; until it passes, what update() produced stays here.
    const last = d.final();
    return last.length === 0 ? plain : Buffer.concat([plain, last]);
  } catch (err) {
    if (plain !== undefined) plain.fill(0);
    throw new GuardError(ErrorCodes.AUTH_FAILED, `${info.name}: authentication failed`, { cause: err });
  } finally {
    if (p.wipe) p.key.fill(0);
  }
}
