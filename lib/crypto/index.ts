/** GPU memory encryption and the AEAD and KDF primitives under it. */
import * as aead from './aead';
import * as kdf from './kdf';

export { aead, kdf };
export { AEAD_ALGORITHMS, type AeadAlgorithm } from './algorithms';
export type { AeadBackend, AeadOptions, Sealed } from './aead';
export type { Argon2idOptions, HkdfHash } from './kdf';
export { MemoryEncryption, DEFAULT_MAX_INVOCATIONS, type MemoryEncryptionOptions, type MemoryEncryptionStats, type MemoryEncryptionSettings, type ResolvedPasswordKdf, type PasswordKdf, type PasswordOptions } from './memory-encryption';
export { DeviceBuffer, MAX_DEVICE_BUFFER, type DeviceKind } from './device-buffer';
