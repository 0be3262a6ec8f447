/**
 * The options MemoryEncryption takes and what it reports back (settings,
 * stats); the class is in memory-encryption.ts.
 */
import type { AeadAlgorithm } from './algorithms';
import type { DeviceKind } from './device-buffer';

/** A password KDF by name, with any parameters to change from the defaults (password.ts). */
export type PasswordKdf =
  | { name: 'argon2id'; memoryCost?: number; timeCost?: number; parallelism?: number }
  | { name: 'pbkdf2-sha256'; iterations?: number };

/** The KDF a master key was stretched with, every parameter filled in. */
export type ResolvedPasswordKdf =
  | { name: 'argon2id'; memoryCost: number; timeCost: number; parallelism: number; saltBytes: number }
  | { name: 'pbkdf2-sha256'; iterations: number; saltBytes: number };

export interface MemoryEncryptionOptions {
  /** Default 'aes-256-gcm'. */
  algorithm?: AeadAlgorithm;
  /** The master key: 32 bytes or more of secret. Give this or `password`. */
  key?: Uint8Array;
  /**
   * A password to stretch into the master key with `kdf`. The constructor
   * blocks while the KDF runs (about 0.1 s at the Argon2id default on a
   * server core); `await MemoryEncryption.fromPassword(...)` does not.
   */
  password?: string | Uint8Array;
  /** With a password: the KDF, by name or with parameters. Default Argon2id, 64 MiB, t=3, p=4. */
  kdf?: PasswordKdf | PasswordKdf['name'];
  /** With a password: at least 16 bytes; random when omitted (read it from `kdfSalt` and store it). */
  salt?: Uint8Array;
  /** Rotate once the current version is this old (ms). Default: never by time. */
  rotateEveryMs?: number;
  /** Rotate after this many seals under one version. Default 2^28. */
  maxInvocationsPerKey?: number;
  /**
   * Where sealing runs: 'cpu', 'cuda' (AES-GCM only; ERR_GPU_UNAVAILABLE
   * without a GPU) or 'auto' (default: CUDA for AES-GCM when a GPU is present
   * and the work is at least AUTO_GPU_MIN_BYTES / AUTO_GPU_MIN_BLOCKS, else the CPU).
   */
  device?: DeviceKind;
  /** CPU implementation: 'native' (node:crypto, default) or 'js' (@noble/ciphers). */
  backend?: 'native' | 'js';
  /** First key version (default 1); pass a persisted `keyVersion` after a restart. */
  startVersion?: number;
  /** Milliseconds; default Date.now. */
  clock?: () => number;
}

export interface MemoryEncryptionStats {
  algorithm: AeadAlgorithm;
  keyVersion: number;
  /** Seals under the current version. */
  invocations: number;
  rotations: number;
  device: 'cpu' | 'cuda';
}

/** What a MemoryEncryption was configured with (no key material). */
export interface MemoryEncryptionSettings {
  algorithm: AeadAlgorithm;
  /** Automatic rotation by age, ms; Infinity: never by time. */
  rotateEveryMs: number;
  maxInvocationsPerKey: number;
  device: 'cpu' | 'cuda';
  backend: 'native' | 'js';
  /** The password KDF, or null when the master key was given directly. */
  kdf: Readonly<ResolvedPasswordKdf> | null;
  closed: boolean;
}
