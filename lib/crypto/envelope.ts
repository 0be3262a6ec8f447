/**
 * Envelope format v1 (one sealed message), big-endian integers:
 *
 *   offset  size  field
 *   0       4     magic "GKE1" (47 4b 45 31)
 *   4       1     algorithm id (1 aes-256-gcm, 2 aes-128-gcm, 3 chacha20-poly1305, 4 xchacha20-poly1305)
 *   5       4     key version (1 .. 2^32-1)
 *   9       N     nonce (N = 12, or 24 for xchacha20-poly1305)
 *   9+N     16    tag
 *   25+N    rest  ciphertext (as long as the plaintext)
 *
 * The AEAD's associated data is the 9-byte header (magic, algorithm id, key
 * version) followed by the caller's AAD, so changing any header byte fails
 * authentication like changing the ciphertext does.
 *
 * Block envelope v1 (encryptBlocks: many fixed-size blocks, one nonce each):
 *
 *   0       4     magic "GKB1" (47 4b 42 31)
 *   4       1     algorithm id
 *   5       4     key version
 *   9       4     block size B (1 .. 2^24)
 *   13      4     block count n
 *   17      P     nonce prefix (P = nonce length - 8: 4, or 16 for xchacha)
 *   17+P    8     first counter c
 *   25+P    n × (16 + B)   per block: tag, then ciphertext
 *
 * Block i's nonce is prefix || (c + i) as 8 bytes; its associated data is the
 * whole header, the 4-byte index i, then the caller's AAD, so blocks cannot
 * be reordered, dropped from the count, or moved between envelopes.
 */
import { ErrorCodes, GuardError } from '../errors';
import { type AlgorithmInfo, algorithmById } from './algorithms';

export const ENVELOPE_MAGIC = Buffer.from('GKE1', 'latin1');
export const BLOCKS_MAGIC = Buffer.from('GKB1', 'latin1');
export const HEADER_BYTES = 9;
export const TAG_BYTES = 16;
export const COUNTER_BYTES = 8;
export const MAX_BLOCK_SIZE = 1 << 24;

export interface EnvelopeHeader {
  algorithm: AlgorithmInfo;
  keyVersion: number;
}

function invalid(message: string): GuardError {
  return new GuardError(ErrorCodes.ENVELOPE_INVALID, message);
}

/** The AEAD's associated data for an envelope: its header, then the caller's AAD. */
export function envelopeAad(header: Uint8Array, aad: Uint8Array | undefined): Buffer {
  return aad === undefined || aad.length === 0 ? Buffer.from(header) : Buffer.concat([header, aad]);
}

export function writeHeader(magic: Buffer, info: AlgorithmInfo, version: number, into: Buffer): void {
  magic.copy(into, 0);
  into[4] = info.id;
  into.writeUInt32BE(version, 5);
}

export function readHeader(bytes: Uint8Array, magic: Buffer, minBytes: number): EnvelopeHeader {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < HEADER_BYTES || !b.subarray(0, 4).equals(magic)) throw invalid(`Not a guardkernel ${magic.toString('latin1')} envelope`);
  const algorithm = algorithmById(b[4]);
  if (algorithm === undefined) throw invalid(`Unknown algorithm id ${b[4]} in envelope`);
  const keyVersion = b.readUInt32BE(5);
  if (keyVersion === 0) throw invalid('Key version 0 in envelope');
  if (b.length < minBytes + algorithm.nonceBytes) throw invalid(`Envelope of ${b.length} bytes is truncated`);
  return { algorithm, keyVersion };
}
