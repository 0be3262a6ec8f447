/** GPU memory encryption and the AEAD and KDF primitives under it. */
import * as aead from './aead';
import * as kdf from './kdf';

export { aead, kdf };
export { AEAD_ALGORITHMS, type AeadAlgorithm } from './algorithms';
export type { AeadBackend, AeadOptions, Sealed } from './aead';
export type { Argon2idOptions, HkdfHash } from './kdf';
