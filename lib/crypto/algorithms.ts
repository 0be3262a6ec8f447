/**
 * The AEAD algorithms guardkernel speaks, with their sizes and the one-byte
 * ids the envelope format uses (never renumber: envelopes on disk carry them).
 */
export type AeadAlgorithm = 'aes-256-gcm' | 'aes-128-gcm' | 'chacha20-poly1305' | 'xchacha20-poly1305';

export interface AlgorithmInfo {
  readonly name: AeadAlgorithm;
  readonly id: number;
  readonly keyBytes: number;
  readonly nonceBytes: number;
  readonly tagBytes: number;
}

const TABLE: readonly AlgorithmInfo[] = [
  { name: 'aes-256-gcm', id: 1, keyBytes: 32, nonceBytes: 12, tagBytes: 16 },
  { name: 'aes-128-gcm', id: 2, keyBytes: 16, nonceBytes: 12, tagBytes: 16 },
  { name: 'chacha20-poly1305', id: 3, keyBytes: 32, nonceBytes: 12, tagBytes: 16 },
  { name: 'xchacha20-poly1305', id: 4, keyBytes: 32, nonceBytes: 24, tagBytes: 16 },
];

export const AEAD_ALGORITHMS: readonly AeadAlgorithm[] = TABLE.map((a) => a.name);

const BY_NAME = new Map(TABLE.map((a) => [a.name as string, a]));
const BY_ID = new Map(TABLE.map((a) => [a.id, a]));

export function algorithmInfo(name: unknown): AlgorithmInfo | undefined {
  return typeof name === 'string' ? BY_NAME.get(name) : undefined;
}

export function algorithmById(id: number): AlgorithmInfo | undefined {
  return BY_ID.get(id);
}
