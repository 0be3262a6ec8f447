/**
 * Built-in checks on memory encryption: on and sound, an approved algorithm,
 * key rotation by age, and the strength of the password KDF.
 */
import { DEFAULT_ARGON2, DEFAULT_PBKDF2_ITERATIONS } from '../crypto/password';
import { compliant, duration, nonCompliant, notApplicable } from './check-helpers';
import type { CheckDefinition } from './types';

export const DEFAULT_MAX_KEY_AGE_MS = 90 * 86_400_000;
/** Argon2id floor: RFC 9106's second recommendation's memory (64 MiB) and its memory x passes (64 MiB x 3). */
export const MIN_ARGON2_MEMORY_KIB = DEFAULT_ARGON2.memoryCost;
export const MIN_ARGON2_MEMORY_PASSES = DEFAULT_ARGON2.memoryCost * DEFAULT_ARGON2.timeCost;
export const MIN_PBKDF2_ITERATIONS = DEFAULT_PBKDF2_ITERATIONS;

const PROBE = Buffer.from('guardkernel compliance probe');
const PROBE_AAD = Buffer.from('guardkernel/compliance');

const KEY_BITS: Record<string, number> = { 'aes-256-gcm': 256, 'aes-128-gcm': 128, 'chacha20-poly1305': 256, 'xchacha20-poly1305': 256 };

const memoryEncryption: CheckDefinition = {
  id: 'memory-encryption',
  name: 'Memory encryption is on',
  description: 'A live MemoryEncryption seals data handed to device memory with an AEAD; a probe is sealed, opened, and refused once tampered with.',
  check(ctx) {
    const enc = ctx.memoryEncryption;
    if (enc === undefined) {
      if (ctx.deviceMemory === false) return notApplicable('This setup holds no data in device memory (deviceMemory: false), so there is nothing to encrypt there.');
      return nonCompliant('No MemoryEncryption is configured: data in device memory is kept in the clear.', 'Create a MemoryEncryption (aes-256-gcm) and seal device buffers with it; pass it to the reporter as memoryEncryption.');
    }
    const s = enc.settings();
    if (s.closed) return nonCompliant('The MemoryEncryption has been closed: it can no longer seal anything.', 'Keep a live MemoryEncryption for as long as the service handles data.');
    const envelope = enc.encrypt(PROBE, PROBE_AAD) as Buffer;
    const opened = enc.decrypt(envelope, PROBE_AAD) as Buffer;
    if (!opened.equals(PROBE)) return nonCompliant('A sealed probe did not open to the same bytes.', 'Check the MemoryEncryption backend (guardkernel doctor) and report a bug.');
    envelope[envelope.length - 1] ^= 1;
    let refused = false;
    try {
      enc.decrypt(envelope, PROBE_AAD);
    } catch {
      refused = true;
    }
    if (!refused) return nonCompliant('A tampered envelope was accepted: encryption is not authenticated.', 'Use one of the AEAD algorithms and report a bug.');
    const st = enc.stats();
    return compliant(
      `${s.algorithm} (AEAD, ${KEY_BITS[s.algorithm] ?? '?'}-bit key) on the ${s.device} (${s.backend} backend); key version ${st.keyVersion}; ` +
        'a probe sealed and opened now, and a tampered copy was refused.',
    );
  },
};

const approvedAlgorithm: CheckDefinition = {
  id: 'approved-algorithm',
  name: 'Encryption uses a FIPS-approved algorithm',
  description: 'The memory-encryption algorithm is AES-GCM (FIPS 197, NIST SP 800-38D). This checks the algorithm only, not the validation of the module.',
  check(ctx) {
    const enc = ctx.memoryEncryption;
    if (enc === undefined) return notApplicable('No MemoryEncryption is configured (the memory-encryption check reports that).');
    const alg = enc.settings().algorithm;
    if (alg === 'aes-256-gcm' || alg === 'aes-128-gcm') return compliant(`${alg}: AES (FIPS 197) in GCM (NIST SP 800-38D).`);
    return nonCompliant(`${alg} is not a FIPS-approved algorithm.`, "Use algorithm 'aes-256-gcm' for systems that need FIPS-approved cryptography.");
  },
};

const keyRotation: CheckDefinition = {
  id: 'key-rotation',
  name: 'Encryption keys rotate on schedule',
  description: 'MemoryEncryption rotates its key version by age (rotateEveryMs) at most every requirements.maxKeyAgeMs (default 90 days), besides rotation by invocation count.',
  check(ctx) {
    const enc = ctx.memoryEncryption;
    if (enc === undefined) return notApplicable('No MemoryEncryption is configured (the memory-encryption check reports that).');
    const s = enc.settings();
    const max = ctx.requirements?.maxKeyAgeMs ?? DEFAULT_MAX_KEY_AGE_MS;
    const st = enc.stats();
    if (s.rotateEveryMs === Infinity) {
      return nonCompliant(
        `Keys rotate only after ${s.maxInvocationsPerKey} seals, never by age: a quiet key can stay in use indefinitely.`,
        `Set rotateEveryMs to at most ${max} (${duration(max)}) when creating the MemoryEncryption.`,
      );
    }
    if (s.rotateEveryMs > max) {
      return nonCompliant(`Keys rotate every ${duration(s.rotateEveryMs)}, longer than the ${duration(max)} allowed.`, `Set rotateEveryMs to at most ${max} (${duration(max)}).`);
    }
    return compliant(`Key version rotates every ${duration(s.rotateEveryMs)} (limit ${duration(max)}) or after ${s.maxInvocationsPerKey} seals; now at version ${st.keyVersion} after ${st.rotations} rotation(s) in this process.`);
  },
};

const kdfStrength: CheckDefinition = {
  id: 'kdf-strength',
  name: 'Password KDF is strong',
  description: `A password-derived master key uses Argon2id with at least ${MIN_ARGON2_MEMORY_KIB / 1024} MiB and ${MIN_ARGON2_MEMORY_PASSES / 1024} MiB x passes (RFC 9106), or PBKDF2-SHA256 with at least ${MIN_PBKDF2_ITERATIONS} iterations (OWASP 2023), and a salt of 16 bytes or more.`,
  check(ctx) {
    const enc = ctx.memoryEncryption;
    if (enc === undefined) return notApplicable('No MemoryEncryption is configured (the memory-encryption check reports that).');
    const kdf = enc.settings().kdf;
    if (kdf === null) return notApplicable('The master key was supplied directly (no password, so no password KDF).');
    if (kdf.saltBytes < 16) return nonCompliant(`The KDF salt is ${kdf.saltBytes} bytes.`, 'Use a random salt of at least 16 bytes.');
    if (kdf.name === 'argon2id') {
      const params = `Argon2id m=${kdf.memoryCost} KiB, t=${kdf.timeCost}, p=${kdf.parallelism}`;
      if (kdf.memoryCost < MIN_ARGON2_MEMORY_KIB || kdf.memoryCost * kdf.timeCost < MIN_ARGON2_MEMORY_PASSES) {
        return nonCompliant(
          `${params} is below RFC 9106's recommended settings (at least ${MIN_ARGON2_MEMORY_KIB} KiB, and memory x passes of ${MIN_ARGON2_MEMORY_PASSES} KiB).`,
          `Use the defaults (memoryCost ${DEFAULT_ARGON2.memoryCost}, timeCost ${DEFAULT_ARGON2.timeCost}, parallelism ${DEFAULT_ARGON2.parallelism}) or stronger.`,
        );
      }
      return compliant(`${params}, ${kdf.saltBytes}-byte salt.`);
    }
    const params = `PBKDF2-SHA256 with ${kdf.iterations} iterations`;
    if (kdf.iterations < MIN_PBKDF2_ITERATIONS) {
      return nonCompliant(`${params}, fewer than ${MIN_PBKDF2_ITERATIONS}.`, `Use Argon2id (the default) or at least ${MIN_PBKDF2_ITERATIONS} PBKDF2 iterations.`);
    }
    return compliant(`${params}, ${kdf.saltBytes}-byte salt.`);
  },
};

export const CRYPTO_CHECKS: readonly CheckDefinition[] = [memoryEncryption, approvedAlgorithm, keyRotation, kdfStrength];
