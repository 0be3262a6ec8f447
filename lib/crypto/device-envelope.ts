/**
 * Envelope v1 (./envelope.ts) sealed and opened where the data lives: for a
 * DeviceBuffer in device memory the plaintext and ciphertext never leave the
 * GPU; only the header, nonce and tag cross to the host.
 */
import { ErrorCodes, GuardError } from '../errors';
import { cudaAddon, onDevice } from './aead';
import type { AlgorithmInfo } from './algorithms';
import { DeviceBuffer } from './device-buffer';
import { ENVELOPE_MAGIC, HEADER_BYTES, TAG_BYTES, envelopeAad, readHeader, writeHeader } from './envelope';
import { randomInto } from './random-pool';

/** Seals a CUDA DeviceBuffer (AES-GCM) into a new CUDA DeviceBuffer envelope. */
export function sealOnDevice(info: AlgorithmInfo, version: number, key: Uint8Array, data: DeviceBuffer, aad: Uint8Array | undefined): DeviceBuffer {
  const n = info.nonceBytes;
  const length = data.byteLength;
  const head = Buffer.alloc(HEADER_BYTES + n + TAG_BYTES);
  writeHeader(ENVELOPE_MAGIC, info, version, head);
  randomInto(head, HEADER_BYTES, n);
  const out = DeviceBuffer.alloc(HEADER_BYTES + n + TAG_BYTES + length, { device: 'cuda' });
  try {
    const addon = cudaAddon();
    const tag = Buffer.alloc(TAG_BYTES);
    const nonce = head.subarray(HEADER_BYTES, HEADER_BYTES + n);
    onDevice(() =>
      addon.gcmSealDevice(key, nonce, envelopeAad(head.subarray(0, HEADER_BYTES), aad), DeviceBuffer.deviceHandle(data), 0, length, DeviceBuffer.deviceHandle(out), HEADER_BYTES + n + TAG_BYTES, tag),
    );
    tag.copy(head, HEADER_BYTES + n);
    out.copyFrom(head, 0);
    return out;
  } catch (err) {
    out.free();
    throw err;
  }
}

/**
 * Opens a CUDA DeviceBuffer envelope into a new CUDA DeviceBuffer. `keyFor`
 * checks the algorithm and returns the key of the envelope's version.
 */
export function openOnDevice(envelope: DeviceBuffer, keyFor: (algorithm: AlgorithmInfo, version: number) => Uint8Array, aad: Uint8Array | undefined): DeviceBuffer {
  const size = envelope.byteLength;
  // One read covers the longest header (24-byte nonce); readHeader checks
  // magic, algorithm, version and (the read being capped by size) the length.
  const probe = Buffer.alloc(Math.min(size, HEADER_BYTES + 24 + TAG_BYTES));
  if (probe.length > 0) onDevice(() => cudaAddon().deviceRead(DeviceBuffer.deviceHandle(envelope), probe, 0));
  const { algorithm, keyVersion } = readHeader(probe, ENVELOPE_MAGIC, HEADER_BYTES + TAG_BYTES);
  const n = algorithm.nonceBytes;
  const key = keyFor(algorithm, keyVersion);
  const head = probe.subarray(0, HEADER_BYTES + n + TAG_BYTES);
  const length = size - head.length;
  const out = DeviceBuffer.alloc(length, { device: 'cuda' });
  let authentic = false;
  try {
    authentic = onDevice(() =>
      cudaAddon().gcmOpenDevice(
        key,
        head.subarray(HEADER_BYTES, HEADER_BYTES + n),
        envelopeAad(head.subarray(0, HEADER_BYTES), aad),
        DeviceBuffer.deviceHandle(envelope),
        head.length,
        length,
        head.subarray(HEADER_BYTES + n),
        DeviceBuffer.deviceHandle(out),
        0,
      ),
    );
  } finally {
    if (!authentic) out.free();
  }
  if (!authentic) throw new GuardError(ErrorCodes.AUTH_FAILED, `${algorithm.name}: authentication failed`);
  return out;
}
