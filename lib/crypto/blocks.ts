/**
 * Block envelopes on the CPU: seal and open every block of a block envelope
 * body (layout in ./envelope.ts). The 'native' backend does the whole body in
 * one call into the core addon (OpenSSL's EVP AEADs with one context, for the
 * 12-byte-nonce algorithms); otherwise, and for XChaCha20, one AEAD call per
 * block. The CUDA path does the same with a thread per block
 * (cuda/aes_gcm_kernels.cu); a CPU test holds that per-block function to
 * this one byte for byte.
 */
import { ErrorCodes, GuardError } from '../errors';
import { coreAddon } from '../native/loader';
import { open as aeadOpen, seal as aeadSeal } from './aead';
import type { AlgorithmInfo } from './algorithms';
import { COUNTER_BYTES, TAG_BYTES } from './envelope';

export interface BlockJob {
  info: AlgorithmInfo;
  key: Uint8Array;
  /** The envelope header: the start of every block's associated data. */
  header: Uint8Array;
  /** Nonce bytes before the counter. */
  prefix: Uint8Array;
  first: bigint;
  blockSize: number;
  count: number;
  aad: Uint8Array | undefined;
  backend: 'native' | 'js';
}

/** header || BE32(index) || aad. */
export function blockAad(header: Uint8Array, index: number, aad: Uint8Array | undefined): Buffer {
  const i = Buffer.alloc(4);
  i.writeUInt32BE(index, 0);
  return Buffer.concat(aad === undefined ? [header, i] : [header, i, aad]);
}

function nonceFor(job: BlockJob): { nonce: Buffer; set(index: number): void } {
  const nonce = Buffer.alloc(job.info.nonceBytes);
  nonce.set(job.prefix, 0);
  const at = job.info.nonceBytes - COUNTER_BYTES;
  return { nonce, set: (i) => nonce.writeBigUInt64BE(BigInt.asUintN(64, job.first + BigInt(i)), at) };
}

const EMPTY = new Uint8Array(0);

/** The core addon when it can take this job in one call (see the file comment). */
function nativeLoop(job: BlockJob) {
  if (job.backend !== 'native' || job.info.nonceBytes !== 12) return null;
  // The counter crosses as a double: exact below 2^53 (a version seals at most 2^32 blocks).
  if (job.first + BigInt(job.count) > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  return coreAddon();
}

/** Writes tag + ciphertext per block into `out`. */
export function sealBlocksOnCpu(job: BlockJob, plain: Uint8Array, out: Buffer): void {
  const addon = nativeLoop(job);
  if (addon !== null) {
    addon.aeadSealBlocks(job.info.name, job.key, job.header, job.prefix, Number(job.first), job.aad ?? EMPTY, plain, job.blockSize, out);
    return;
  }
  const { nonce, set } = nonceFor(job);
  const size = job.blockSize;
  for (let i = 0; i < job.count; i++) {
    set(i);
    const sealed = aeadSeal(job.info.name, job.key, nonce, plain.subarray(i * size, (i + 1) * size), blockAad(job.header, i, job.aad), { backend: job.backend });
    const at = i * (TAG_BYTES + size);
    sealed.tag.copy(out, at);
    sealed.ciphertext.copy(out, at + TAG_BYTES);
  }
}

/** Opens every block of `body`; ERR_AUTH_FAILED names the first that fails (and nothing is returned). */
export function openBlocksOnCpu(job: BlockJob, body: Uint8Array): Buffer {
  const addon = nativeLoop(job);
  if (addon !== null) {
    const plain = Buffer.alloc(job.count * job.blockSize);
    const bad = addon.aeadOpenBlocks(job.info.name, job.key, job.header, job.prefix, Number(job.first), job.aad ?? EMPTY, body, job.blockSize, plain);
    if (bad >= 0) throw new GuardError(ErrorCodes.AUTH_FAILED, `Block ${bad} failed authentication`);
    return plain;
  }
  const { nonce, set } = nonceFor(job);
  const size = job.blockSize;
  const out = Buffer.alloc(job.count * size);
  for (let i = 0; i < job.count; i++) {
    set(i);
    const at = i * (TAG_BYTES + size);
    try {
      const plain = aeadOpen(job.info.name, job.key, nonce, body.subarray(at + TAG_BYTES, at + TAG_BYTES + size), body.subarray(at, at + TAG_BYTES), blockAad(job.header, i, job.aad), { backend: job.backend });
      plain.copy(out, i * size);
    } catch (err) {
      out.fill(0);
      throw new GuardError(ErrorCodes.AUTH_FAILED, `Block ${i} failed authentication`, { cause: err });
    }
  }
  return out;
}
