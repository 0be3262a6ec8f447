/**
 * MemoryEncryption: seals buffers (host bytes or DeviceBuffers) into
 * self-describing envelopes (lib/crypto/envelope.ts) under a keyring of
 * versions, and rotates keys by time and by invocation count.
 *
 * Keys: the caller's key (or a key derived from a password with Argon2id or
 * PBKDF2) is a master secret that never encrypts anything itself. Version v
 * uses HKDF-SHA256(master, salt "guardkernel/memory-encryption/v1",
 * info "<algorithm>:<v>"). Every version can therefore be re-derived from the
 * master, so an envelope from any version (from this process or another one
 * with the same master) decrypts; only the current version encrypts.
 * Rotation advances the version: automatically once `rotateEveryMs` has passed
 * or `maxInvocationsPerKey` seals (default 2^28, far below the 2^32 random
 * nonces NIST SP 800-38D allows per GCM key) were made under it, or when you
 * call `rotateKey()`. A process that restarts often should persist
 * `keyVersion` and pass it back as `startVersion` so counts keep meaning.
 *
 * Nonces: `encrypt` draws a random nonce per call. `encryptBlocks` gives
 * block i the nonce prefix || counter, with a random prefix per key version
 * and instance and a counter that only grows across calls, so no nonce
 * repeats under one key in one instance.
 *
 * Key bytes live in Buffers outside the V8 heap (allocUnsafeSlow) and are
 * zeroed on rotation (older versions are derived again when an old envelope
 * is opened) and by close(); node:crypto copies a key into OpenSSL for each call and
 * frees it after, which this class cannot zero: best effort, as documented.
 */
import crypto from 'node:crypto';
import { ErrorCodes, GuardError, describe } from '../errors';
import { open as aeadOpen, seal as aeadSeal, asBuffer, cudaAddon, onDevice } from './aead';
import { gpuBackend } from '../native/loader';
import { type AeadAlgorithm, AEAD_ALGORITHMS, type AlgorithmInfo, algorithmInfo } from './algorithms';
import { DeviceBuffer } from './device-buffer';
import {
  BLOCKS_MAGIC,
  COUNTER_BYTES,
  ENVELOPE_MAGIC,
  HEADER_BYTES,
  MAX_BLOCK_SIZE,
  TAG_BYTES,
  envelopeAad,
  readHeader,
  writeHeader,
} from './envelope';
import { openBlocksOnCpu, sealBlocksOnCpu } from './blocks';
import { openOnDevice, sealOnDevice } from './device-envelope';
import { randomInto } from './random-pool';
import { hkdf } from './kdf';
import { type DerivedPasswordKey, type PasswordOptions, type ResolvedPasswordKdf, derivePasswordKey, derivePasswordKeySync } from './password';
import type { MemoryEncryptionOptions, MemoryEncryptionSettings, MemoryEncryptionStats } from './memory-encryption-options';

export type { PasswordKdf, PasswordOptions, ResolvedPasswordKdf } from './password';
export type { MemoryEncryptionOptions, MemoryEncryptionSettings, MemoryEncryptionStats } from './memory-encryption-options';

export const DEFAULT_MAX_INVOCATIONS = 2 ** 28;
/**
 * Smallest `encrypt` input and `encryptBlocks` batch that device 'auto' sends
 * to the GPU. Not measured: no GPU was available where this was written, so
 * they are set where transfer and launch costs (tens of µs) are surely small
 * next to the work. See README.
 */
export const AUTO_GPU_MIN_BYTES = 1 << 20;
export const AUTO_GPU_MIN_BLOCKS = 4096;
const MAX_INVOCATIONS = 2 ** 32;
const MIN_MASTER_BYTES = 32;
const MAX_VERSION = 2 ** 32 - 1;
const KEY_SALT = Buffer.from('guardkernel/memory-encryption/v1');
/** Most derived version keys kept for decryption at once. */
const KEY_CACHE = 64;
const EMPTY = new Uint8Array(0);

type Input = Uint8Array | DeviceBuffer;

function positiveInteger(value: unknown, name: string, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new RangeError(`Expected an integer in [1, ${max}] for ${name} but received ${describe(value)}`);
  }
  return value;
}

function secretCopy(bytes: Uint8Array): Buffer {
  const b = Buffer.allocUnsafeSlow(bytes.length);
  b.set(bytes);
  return b;
}

export class MemoryEncryption {
  readonly #info: AlgorithmInfo;
  readonly #master: Buffer;
  readonly #rotateEveryMs: number;
  readonly #maxInvocations: number;
  readonly #backend: 'native' | 'js';
  readonly #device: 'cpu' | 'cuda';
  /** True when 'cuda' was asked for (every operation then runs there). */
  readonly #deviceForced: boolean;
  readonly #clock: () => number;
  readonly #keys = new Map<number, Buffer>();
  #version: number;
  #versionSince: number;
  #invocations = 0;
  #rotations = 0;
  /** Per-version nonce prefix and next counter for encryptBlocks. */
  #blockPrefix: Buffer;
  #blockCounter = 0n;
  #closed = false;
  /** The salt a password was stretched with (undefined when built from a key). */
  readonly kdfSalt?: Buffer;
  readonly #kdf: Readonly<ResolvedPasswordKdf> | null;

  constructor(options: MemoryEncryptionOptions, kdfSalt?: Buffer, kdf?: ResolvedPasswordKdf) {
    if (typeof options !== 'object' || options === null) throw new TypeError(`Expected MemoryEncryption options but received ${describe(options)}`);
    const withPassword = options.password !== undefined;
    if (withPassword && options.key !== undefined) throw new TypeError('Expected a key or a password, not both');
    if (!withPassword && (options.kdf !== undefined || options.salt !== undefined)) throw new TypeError('kdf and salt go with a password, not a key');
    const info = algorithmInfo(options.algorithm ?? 'aes-256-gcm');
    if (info === undefined) throw new TypeError(`Expected one of ${AEAD_ALGORITHMS.join(', ')} for algorithm but received ${describe(options.algorithm)}`);
    if (!withPassword && (!(options.key instanceof Uint8Array) || options.key.length < MIN_MASTER_BYTES)) {
      throw new RangeError(`Expected a key of at least ${MIN_MASTER_BYTES} bytes (or a password) but received ${describe(options.key)}`);
    }
    this.#info = info;
    this.#rotateEveryMs = options.rotateEveryMs === undefined ? Infinity : positiveInteger(options.rotateEveryMs, 'rotateEveryMs', 2 ** 52);
    this.#maxInvocations = options.maxInvocationsPerKey === undefined ? DEFAULT_MAX_INVOCATIONS : positiveInteger(options.maxInvocationsPerKey, 'maxInvocationsPerKey', MAX_INVOCATIONS);
    const backend = options.backend ?? 'native';
    if (backend !== 'native' && backend !== 'js') throw new TypeError(`Expected 'native' or 'js' for backend but received ${describe(backend)}`);
    this.#backend = backend;
    const device = options.device ?? 'auto';
    if (device !== 'auto' && device !== 'cpu' && device !== 'cuda') throw new TypeError(`Expected 'auto', 'cuda' or 'cpu' for device but received ${describe(device)}`);
    const gcm = info.name.endsWith('-gcm');
    if (device === 'cuda') {
      if (!gcm) throw new TypeError(`device 'cuda' implements AES-GCM only, not ${info.name}`);
      cudaAddon(); // ERR_GPU_UNAVAILABLE now rather than at the first call
    }
    this.#device = device === 'cuda' || (device === 'auto' && gcm && gpuBackend().kind === 'cuda') ? 'cuda' : 'cpu';
    this.#deviceForced = device === 'cuda';
    if (options.clock !== undefined && typeof options.clock !== 'function') throw new TypeError(`Expected a function for clock but received ${describe(options.clock)}`);
    this.#clock = options.clock ?? Date.now;
    this.#version = options.startVersion === undefined ? 1 : positiveInteger(options.startVersion, 'startVersion', MAX_VERSION);
    this.#versionSince = this.#clock();
    this.#blockPrefix = crypto.randomBytes(info.nonceBytes - COUNTER_BYTES);
    // Last, so bad options fail before a slow KDF runs.
    let derived: DerivedPasswordKey | undefined;
    if (withPassword) {
      derived = derivePasswordKeySync(options.password as string | Uint8Array, options);
      kdfSalt = derived.salt;
      kdf = derived.kdf;
    }
    try {
      this.#master = secretCopy(derived?.master ?? (options.key as Uint8Array));
    } finally {
      derived?.master.fill(0);
    }
    if (kdfSalt !== undefined) this.kdfSalt = kdfSalt;
    this.#kdf = kdf === undefined ? null : Object.freeze({ ...kdf });
  }

  /** Stretches `password` with the KDF (Argon2id by default) into the master key. */
  static async fromPassword(password: string | Uint8Array, options: PasswordOptions = {}): Promise<MemoryEncryption> {
    const { master, salt, kdf } = await derivePasswordKey(password, options);
    const { kdf: _k, salt: _s, ...rest } = options;
    try {
      return new MemoryEncryption(Object.assign(rest, { key: master }), salt, kdf);
    } finally {
      master.fill(0);
    }
  }

  get algorithm(): AeadAlgorithm {
    return this.#info.name;
  }

  /** The version new envelopes are sealed with. */
  get keyVersion(): number {
    return this.#version;
  }

  /** The configuration, for inspection (compliance reports); no key material. */
  settings(): MemoryEncryptionSettings {
    return {
      algorithm: this.#info.name,
      rotateEveryMs: this.#rotateEveryMs,
      maxInvocationsPerKey: this.#maxInvocations,
      device: this.#device,
      backend: this.#backend,
      kdf: this.#kdf,
      closed: this.#closed,
    };
  }

  stats(): MemoryEncryptionStats {
    return { algorithm: this.#info.name, keyVersion: this.#version, invocations: this.#invocations, rotations: this.#rotations, device: this.#device };
  }

  /** Moves to the next key version; older versions still decrypt. Returns the new version. */
  rotateKey(): number {
    this.#live();
    if (this.#version >= MAX_VERSION) throw new RangeError('No key versions left');
    this.#version++;
    // Retired keys are wiped now; decrypting an old envelope derives its key again.
    for (const k of this.#keys.values()) k.fill(0);
    this.#keys.clear();
    this.#versionSince = this.#clock();
    this.#invocations = 0;
    this.#rotations++;
    this.#blockPrefix = crypto.randomBytes(this.#info.nonceBytes - COUNTER_BYTES);
    this.#blockCounter = 0n;
    return this.#version;
  }

  /** Seals `data`; returns the envelope as host bytes, or as a DeviceBuffer for a DeviceBuffer. */
  encrypt(data: Input, aad?: Uint8Array): Buffer | DeviceBuffer {
    const onCudaBuffer = data instanceof DeviceBuffer && data.backend === 'cuda';
    if (onCudaBuffer && this.#device === 'cuda') {
      this.#checkAad(aad);
      this.#reserve(1);
      return sealOnDevice(this.#info, this.#version, this.#key(this.#version), data, aad);
    }
    const plain = this.#hostBytes(data, 'data');
    this.#checkAad(aad);
    this.#reserve(1);
    const info = this.#info;
    const out = Buffer.allocUnsafe(HEADER_BYTES + info.nonceBytes + TAG_BYTES + plain.length);
    writeHeader(ENVELOPE_MAGIC, info, this.#version, out);
    randomInto(out, HEADER_BYTES, info.nonceBytes);
    const nonce = out.subarray(HEADER_BYTES, HEADER_BYTES + info.nonceBytes);
    const backend = this.#onGpu(plain.length, AUTO_GPU_MIN_BYTES) ? 'cuda' : this.#backend;
    const sealed = aeadSeal(info.name, this.#key(this.#version), nonce, plain, envelopeAad(out.subarray(0, HEADER_BYTES), aad), { backend });
    sealed.tag.copy(out, HEADER_BYTES + info.nonceBytes);
    sealed.ciphertext.copy(out, HEADER_BYTES + info.nonceBytes + TAG_BYTES);
    if (onCudaBuffer) {
      (plain as Buffer).fill(0); // the host copy of device plaintext
      return DeviceBuffer.from(out, { device: 'cuda' });
    }
    return data instanceof DeviceBuffer ? DeviceBuffer.adopt(out) : out;
  }

  /** Opens an envelope from `encrypt` (any key version). ERR_AUTH_FAILED if anything was changed. */
  decrypt(envelope: Input, aad?: Uint8Array): Buffer | DeviceBuffer {
    const onCudaBuffer = envelope instanceof DeviceBuffer && envelope.backend === 'cuda';
    if (onCudaBuffer && this.#device === 'cuda') {
      this.#checkAad(aad);
      return openOnDevice(
        envelope,
        (algorithm, version) => {
          this.#sameAlgorithm(algorithm);
          return this.#key(version);
        },
        aad,
      );
    }
    const bytes = asBuffer(this.#hostBytes(envelope, 'envelope'));
    this.#checkAad(aad);
    const { algorithm, keyVersion } = readHeader(bytes, ENVELOPE_MAGIC, HEADER_BYTES + TAG_BYTES);
    this.#sameAlgorithm(algorithm);
    const n = algorithm.nonceBytes;
    const nonce = bytes.subarray(HEADER_BYTES, HEADER_BYTES + n);
    const tag = bytes.subarray(HEADER_BYTES + n, HEADER_BYTES + n + TAG_BYTES);
    const ciphertext = bytes.subarray(HEADER_BYTES + n + TAG_BYTES);
    const backend = this.#onGpu(ciphertext.length, AUTO_GPU_MIN_BYTES) ? 'cuda' : this.#backend;
    const plain = aeadOpen(algorithm.name, this.#key(keyVersion), nonce, ciphertext, tag, envelopeAad(bytes.subarray(0, HEADER_BYTES), aad), { backend });
    if (onCudaBuffer) {
      const back = DeviceBuffer.from(plain, { device: 'cuda' });
      plain.fill(0);
      return back;
    }
    return envelope instanceof DeviceBuffer ? DeviceBuffer.adopt(plain) : plain;
  }

  /**
   * Seals `buffer` as consecutive blocks of `blockSize` bytes, each with its
   * own nonce and tag (one launch on a GPU; a loop on the CPU).
   */
  encryptBlocks(buffer: Input, blockSize: number, aad?: Uint8Array): Buffer {
    const plain = this.#hostBytes(buffer, 'buffer');
    this.#checkAad(aad);
    positiveInteger(blockSize, 'blockSize', MAX_BLOCK_SIZE);
    if (plain.length % blockSize !== 0) throw new RangeError(`Expected a length that is a multiple of blockSize ${blockSize} but received ${plain.length}`);
    const count = plain.length / blockSize;
    if (count > this.#maxInvocations) throw new RangeError(`${count} blocks exceed maxInvocationsPerKey (${this.#maxInvocations})`);
    this.#reserve(count);
    const info = this.#info;
    const prefixBytes = info.nonceBytes - COUNTER_BYTES;
    const headerBytes = 17 + prefixBytes + COUNTER_BYTES;
    const out = Buffer.alloc(headerBytes + count * (TAG_BYTES + blockSize));
    writeHeader(BLOCKS_MAGIC, info, this.#version, out);
    out.writeUInt32BE(blockSize, 9);
    out.writeUInt32BE(count, 13);
    this.#blockPrefix.copy(out, 17);
    // The counter restarts with each version and a version seals at most
    // 2^32 times, so it stays far inside 64 bits (and inside a double).
    const first = this.#blockCounter;
    this.#blockCounter += BigInt(count);
    out.writeBigUInt64BE(first, 17 + prefixBytes);
    const key = this.#key(this.#version);
    const header = out.subarray(0, headerBytes);
    if (this.#onGpu(count, AUTO_GPU_MIN_BLOCKS)) {
      // One launch: a thread per block (cuda/aes_gcm_kernels.cu).
      const addon = cudaAddon();
      onDevice(() => addon.sealBlocks(key, header, this.#blockPrefix, Number(first), aad ?? EMPTY, plain, blockSize, out.subarray(headerBytes)));
      return out;
    }
    sealBlocksOnCpu({ info, key, header, prefix: this.#blockPrefix, first, blockSize, count, aad, backend: this.#backend }, plain, out.subarray(headerBytes));
    return out;
  }

  /** Opens a block envelope; ERR_AUTH_FAILED names the first block that fails. */
  decryptBlocks(envelope: Input, aad?: Uint8Array): Buffer {
    const bytes = asBuffer(this.#hostBytes(envelope, 'envelope'));
    this.#checkAad(aad);
    const { algorithm, keyVersion } = readHeader(bytes, BLOCKS_MAGIC, 17);
    this.#sameAlgorithm(algorithm);
    const prefixBytes = algorithm.nonceBytes - COUNTER_BYTES;
    const headerBytes = 17 + prefixBytes + COUNTER_BYTES;
    if (bytes.length < headerBytes) throw new GuardError(ErrorCodes.ENVELOPE_INVALID, 'Block envelope is truncated');
    const blockSize = bytes.readUInt32BE(9);
    const count = bytes.readUInt32BE(13);
    if (blockSize < 1 || blockSize > MAX_BLOCK_SIZE || bytes.length !== headerBytes + count * (TAG_BYTES + blockSize)) {
      throw new GuardError(ErrorCodes.ENVELOPE_INVALID, `Block envelope of ${bytes.length} bytes does not hold ${count} blocks of ${blockSize}`);
    }
    const first = bytes.readBigUInt64BE(17 + prefixBytes);
    const key = this.#key(keyVersion);
    const header = bytes.subarray(0, headerBytes);
    if (this.#onGpu(count, AUTO_GPU_MIN_BLOCKS) && first <= BigInt(Number.MAX_SAFE_INTEGER)) {
      const out = Buffer.alloc(count * blockSize);
      const addon = cudaAddon();
      const bad = onDevice(() => addon.openBlocks(key, header, bytes.subarray(17, 17 + prefixBytes), Number(first), aad ?? EMPTY, bytes.subarray(headerBytes), blockSize, out));
      if (bad >= 0) throw new GuardError(ErrorCodes.AUTH_FAILED, `Block ${bad} failed authentication`);
      return out;
    }
    return openBlocksOnCpu(
      { info: algorithm, key, header, prefix: bytes.subarray(17, 17 + prefixBytes), first, blockSize, count, aad, backend: this.#backend },
      bytes.subarray(headerBytes),
    );
  }

  /** Zeroes the master and every derived key; the object is unusable after. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#master.fill(0);
    for (const k of this.#keys.values()) k.fill(0);
    this.#keys.clear();
  }

  /** Whether this operation of `size` (bytes or blocks) runs on the GPU. */
  #onGpu(size: number, autoMinimum: number): boolean {
    return this.#device === 'cuda' && (this.#deviceForced || size >= autoMinimum);
  }

  #live(): void {
    if (this.#closed) throw new GuardError(ErrorCodes.CLOSED, 'MemoryEncryption has been closed');
  }

  /** Rotates first if the current version is too old or cannot take `count` more seals. */
  #reserve(count: number): void {
    this.#live();
    if (this.#clock() - this.#versionSince >= this.#rotateEveryMs || this.#invocations + count > this.#maxInvocations) this.rotateKey();
    this.#invocations += count;
  }

  #key(version: number): Buffer {
    this.#live();
    let key = this.#keys.get(version);
    if (key === undefined) {
      key = secretCopy(hkdf('sha256', this.#master, KEY_SALT, `${this.#info.name}:${version}`, this.#info.keyBytes));
      if (this.#keys.size >= KEY_CACHE) {
        // Drop the oldest cached version that is not the current one.
        for (const [v, k] of this.#keys) {
          if (v !== this.#version) {
            k.fill(0);
            this.#keys.delete(v);
            break;
          }
        }
      }
      this.#keys.set(version, key);
    }
    return key;
  }

  /** Host bytes of the input: a view for host memory, a copy for device memory. */
  #hostBytes(data: Input, name: string): Uint8Array {
    if (data instanceof DeviceBuffer) return data.backend === 'cuda' ? data.toHost() : DeviceBuffer.hostView(data);
    if (!(data instanceof Uint8Array)) throw new TypeError(`Expected a Uint8Array or DeviceBuffer for ${name} but received ${describe(data)}`);
    return data;
  }

  #checkAad(aad: unknown): void {
    if (aad !== undefined && !(aad instanceof Uint8Array)) throw new TypeError(`Expected a Uint8Array for aad but received ${describe(aad)}`);
  }

  #sameAlgorithm(algorithm: AlgorithmInfo): void {
    if (algorithm.id !== this.#info.id) {
      throw new GuardError(ErrorCodes.ENVELOPE_INVALID, `Envelope sealed with ${algorithm.name}; this MemoryEncryption uses ${this.#info.name}`);
    }
  }
}
