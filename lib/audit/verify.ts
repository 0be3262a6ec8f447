/**
 * The audit log's record format and its verification: how a record's MAC and
 * the head checkpoint's signature are computed, and the walk that checks a
 * file against them. Shared by the writer (lib/audit/log.ts) and the verifier.
 */
import fs from 'node:fs';
import { canonicalizeJson } from '../canonical/car';
import { describe } from '../errors';
import { HmacKey } from '../crypto/hash';

/** `prev` of the first record of a new chain. */
export const GENESIS_MAC = '0'.repeat(64);

export interface AuditVerification {
  ok: boolean;
  /** Records that verified, in order, before the first problem. */
  records: number;
  /** seq of the last record that verified (0 if none). */
  lastGoodSeq: number;
  /** Where the first problem is: the 1-based line and the seq that line claims, or the missing seq. */
  firstBad?: { line: number; seq?: number; reason: string };
}

export interface Head {
  file: string;
  seq: number;
  mac: string;
}

export function keyBytes(key: unknown): Uint8Array {
  const bytes = typeof key === 'string' ? Buffer.from(key, 'utf8') : key instanceof Uint8Array ? key : null;
  if (bytes === null) throw new TypeError(`Expected a string or Uint8Array for key but received ${describe(key)}`);
  if (bytes.byteLength < 32) throw new RangeError(`Expected at least 32 bytes for key but received ${bytes.byteLength}`);
  return bytes;
}

export function headMac(hmac: HmacKey, head: Head): string {
  return hmac.sign('guardkernel-audit-head\n' + canonicalizeJson(head));
}

export function recordMac(hmac: HmacKey, record: Record<string, unknown>): string {
  return hmac.sign((record.prev as string) + canonicalizeJson(record));
}

export function verifyWith(
  hmac: HmacKey,
  file: string,
  options: { previousMac?: string; previousSeq?: number; skipHead?: boolean },
): AuditVerification & { lastMac?: string } {
  const text = fs.readFileSync(file, 'utf8');
  const lines = text.split('\n');
  const torn = lines[lines.length - 1] !== ''; // no newline after the last record
  if (!torn) lines.pop();
  let prev = options.previousMac;
  let expectSeq = options.previousSeq === undefined ? undefined : options.previousSeq + 1;
  let records = 0;
  let lastGoodSeq = options.previousSeq ?? 0;
  let lastMac = prev;
  const bad = (line: number, reason: string, seq?: number): AuditVerification & { lastMac?: string } => ({
    ok: false,
    records,
    lastGoodSeq,
    lastMac,
    firstBad: seq === undefined ? { line, reason } : { line, seq, reason },
  });
  let head: (Head & { sig?: string }) | null = null;
  if (!options.skipHead) {
    try {
      head = JSON.parse(fs.readFileSync(`${file}.head`, 'utf8')) as Head & { sig?: string };
    } catch {
      head = null; // no checkpoint yet: nothing more to compare
    }
    if (head !== null) {
      const { sig, ...signed } = head;
      if (typeof head.seq !== 'number' || sig !== headMac(hmac, signed as Head)) return bad(1, 'head checkpoint signature invalid');
    }
  }
  for (let i = 0; i < lines.length; i++) {
    const line = i + 1;
    let record: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(lines[i]);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      record = parsed as Record<string, unknown>;
    } catch {
      return bad(line, i === lines.length - 1 && torn ? 'incomplete final line (torn write)' : 'not a JSON record');
    }
    const seq = record.seq;
    if (typeof seq !== 'number' || !Number.isSafeInteger(seq)) return bad(line, 'missing seq');
    if (expectSeq !== undefined && seq !== expectSeq) {
      return bad(line, seq > expectSeq ? `seq ${expectSeq} is missing` : `seq ${seq} is out of order`, seq);
    }
    if (typeof record.prev !== 'string' || (prev !== undefined && record.prev !== prev)) return bad(line, 'chain broken: prev does not match the previous record', seq);
    const { mac, ...rest } = record;
    let expected: string;
    try {
      expected = recordMac(hmac, rest);
    } catch {
      return bad(line, 'record cannot be canonicalized', seq);
    }
    if (typeof mac !== 'string' || mac !== expected) return bad(line, 'MAC mismatch: record altered or forged', seq);
    // The checkpoint must name this very record: another file with the same
    // key (a swapped log) has other MACs at the same seq.
    if (head !== null && seq === head.seq && head.mac !== mac) return bad(line, 'head checkpoint does not match this record', seq);
    prev = mac;
    lastMac = mac;
    expectSeq = seq + 1;
    lastGoodSeq = seq;
    records++;
  }
  if (torn) return bad(lines.length, 'incomplete final line (torn write)');
  if (head !== null && head.seq > lastGoodSeq) {
    return bad(lines.length + 1, `truncated: the head checkpoint is at seq ${head.seq}`, lastGoodSeq + 1);
  }
  return { ok: true, records, lastGoodSeq, lastMac };
}

/** Verifies one log file under `key` (AuditLog.verify). */
export function verifyFile(file: string, key: string | Uint8Array, options: { previousMac?: string; previousSeq?: number }): AuditVerification {
  const hmac = new HmacKey(keyBytes(key));
  try {
    return verifyWith(hmac, file, options);
  } finally {
    hmac.destroy();
  }
}

/** Verifies rotated files and the live one as one chain, oldest first (AuditLog.verifyChain). */
export function verifyFiles(files: string[], key: string | Uint8Array): AuditVerification & { file?: string } {
  const hmac = new HmacKey(keyBytes(key));
  try {
    let previousMac: string | undefined;
    let previousSeq: number | undefined;
    let records = 0;
    let lastGoodSeq = 0;
    for (const file of files) {
      const r = verifyWith(hmac, file, { previousMac, previousSeq, skipHead: file !== files[files.length - 1] });
      records += r.records;
      if (!r.ok) return { ...r, records, file };
      lastGoodSeq = r.lastGoodSeq;
      previousSeq = r.lastGoodSeq;
      previousMac = r.lastMac;
    }
    return { ok: true, records, lastGoodSeq };
  } finally {
    hmac.destroy();
  }
}
