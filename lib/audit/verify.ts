/**
 * The audit log's record format and its verification: how a record's MAC,
 * the chain's genesis and the head checkpoint's signature are computed, and
 * the walk that checks files against them. Shared by the writer
 * (lib/audit/log.ts) and the verifier.
 *
 * What a log must be to verify:
 * - its first record is seq 1 with `prev` = the genesis of the key (a value
 *   bound to the key id, `genesisPrev`), so a log that lost its first
 *   records fails; a rotated continuation starts where its predecessor
 *   ended, so only the first file of a chain starts at genesis (or where a
 *   chained `log_pruned` record says retention deleted the files before);
 * - every record's `prev` is the previous record's MAC, seq counts up by one,
 *   and `mac` = HMAC(key, prev || JCS(record without mac));
 * - every line is, byte for byte, the JCS form of its record with `mac`
 *   appended last (which rejects duplicate keys that JSON.parse would
 *   collapse, escaped keys, extra whitespace, reordered keys, invalid UTF-8);
 * - the signed head checkpoint (`<file>.head`) is present (unless the caller
 *   accepts its absence) and names the last record;
 * - with an anchor, the log reaches the anchored seq and has the anchored MAC
 *   there (the only check against a rollback of log and head together).
 * A key that is not the log's is reported as such (`reason: 'wrong_key'`,
 * with the log's key id), not as tampering.
 */
import fs from 'node:fs';
import path from 'node:path';
import { canonicalizeJson } from '../canonical/car';
import { describe } from '../errors';
import { HmacKey } from '../crypto/hash';
import type { AuditAnchorState } from './anchor';

/** The all-zero `prev` of logs written before genesis was bound to the key; such logs no longer verify. */
export const GENESIS_MAC = '0'.repeat(64);

const KEY_ID_LABEL = 'guardkernel-audit-key-id';
const GENESIS_LABEL = 'guardkernel-audit-genesis\n';
const HEAD_LABEL = 'guardkernel-audit-head\n';
const HEX_MAC = /^[0-9a-f]{64}$/;
const NEWLINE = 0x0a;

/** Why a verification failed, as a stable code (the human text is `firstBad.reason`). */
export type AuditFailure =
  | 'wrong_key'
  | 'missing_log'
  | 'missing_head'
  | 'head_invalid'
  | 'not_genesis'
  | 'malformed'
  | 'torn'
  | 'seq_gap'
  | 'seq_order'
  | 'chain_broken'
  | 'mac_mismatch'
  | 'not_canonical'
  | 'head_mismatch'
  | 'truncated'
  | 'anchor_mismatch'
  | 'behind_anchor';

export interface AuditVerification {
  ok: boolean;
  /** Records that verified, in order, before the first problem. */
  records: number;
  /** seq of the last record that verified (0 if none). */
  lastGoodSeq: number;
  /** Where the first problem is: the 1-based line and the seq that line claims, or the missing seq. */
  firstBad?: { line: number; seq?: number; reason: string };
  /** The first problem as a code (absent when ok). */
  reason?: AuditFailure;
  /** The file the first problem is in (chains only). */
  file?: string;
  /** With `reason: 'wrong_key'`: the key id the log was written with. Otherwise the key id verified against. */
  keyId?: string;
  /** seq of the head checkpoint, when one was read. */
  headSeq?: number;
}

export interface AuditVerifyOptions {
  /** MAC of the record before this file's first one: the file continues a chain (explicit linking of a rotated file). */
  previousMac?: string;
  /** seq of that record. */
  previousSeq?: number;
  /** Accept a log without its `.head` checkpoint. Default false: a deleted head hides a cut tail. */
  allowMissingHead?: boolean;
  /** The head as a second place remembers it (`AuditAnchor.read()`): the log must reach it. */
  anchor?: AuditAnchorState | null;
}

export interface Head {
  file: string;
  seq: number;
  mac: string;
  key_id?: string;
}

export function keyBytes(key: unknown): Uint8Array {
  const bytes = typeof key === 'string' ? Buffer.from(key, 'utf8') : key instanceof Uint8Array ? key : null;
  if (bytes === null) throw new TypeError(`Expected a string or Uint8Array for key but received ${describe(key)}`);
  if (bytes.byteLength < 32) throw new RangeError(`Expected at least 32 bytes for key but received ${bytes.byteLength}`);
  return bytes;
}

/** A short public name of the key (16 hex digits): tells "another key" from "tampered". */
export function keyIdOf(hmac: HmacKey): string {
  return hmac.sign(KEY_ID_LABEL).slice(0, 16);
}

/**
 * `prev` of the first record of a new chain: the key id followed by a MAC
 * over the genesis label and the key id (64 hex digits, like any MAC), so a
 * verifier can read which key wrote the log and only the key's holder can
 * make the value.
 */
export function genesisPrev(hmac: HmacKey, keyId: string): string {
  return keyId + hmac.sign(GENESIS_LABEL + keyId).slice(0, 48);
}

export function headMac(hmac: HmacKey, head: Head): string {
  return hmac.sign(HEAD_LABEL + canonicalizeJson(head));
}

/** The head file's bytes: its canonical JSON with the signature, and a newline. */
export function headText(hmac: HmacKey, head: Head): string {
  return canonicalizeJson({ ...head, sig: headMac(hmac, head) }) + '\n';
}

export function recordMac(hmac: HmacKey, record: Record<string, unknown>): string {
  return hmac.sign((record.prev as string) + canonicalizeJson(record));
}

/** The one byte form a record's line may have: JCS of the record without mac, then `"mac"` last. */
function canonicalLine(rest: Record<string, unknown>, mac: string): string {
  const text = canonicalizeJson(rest);
  return text.slice(0, -1) + ',"mac":"' + mac + '"}';
}

function splitLines(bytes: Buffer): { lines: Buffer[]; torn: boolean } {
  const lines: Buffer[] = [];
  let start = 0;
  for (let i = bytes.indexOf(NEWLINE); i !== -1; i = bytes.indexOf(NEWLINE, start)) {
    lines.push(bytes.subarray(start, i));
    start = i + 1;
  }
  const torn = start < bytes.length;
  if (torn) lines.push(bytes.subarray(start));
  return { lines, torn };
}

type ReadHead = { head: Head | null; problem?: { reason: AuditFailure; text: string; keyId?: string } };

/** Reads and checks `<file>.head`: signature, canonical bytes, key id. */
function readHead(hmac: HmacKey, keyId: string, file: string): ReadHead {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(`${file}.head`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { head: null };
    throw err;
  }
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
  } catch {
    return { head: null, problem: { reason: 'head_invalid', text: 'head checkpoint is not a JSON object' } };
  }
  const { sig, ...signed } = parsed;
  const head = signed as unknown as Head;
  const shaped = Number.isSafeInteger(head.seq) && head.seq >= 0 && typeof head.mac === 'string' && typeof sig === 'string';
  let expected: string | null = null;
  try {
    if (shaped) expected = headMac(hmac, head);
  } catch {
    expected = null;
  }
  if (expected === null || sig !== expected) {
    if (typeof head.key_id === 'string' && head.key_id !== keyId) {
      return { head: null, problem: { reason: 'wrong_key', text: `wrong key: the log was written with key ${head.key_id}, not ${keyId}`, keyId: head.key_id } };
    }
    return { head: null, problem: { reason: 'head_invalid', text: 'head checkpoint signature invalid' } };
  }
  if (!bytes.equals(Buffer.from(headText(hmac, head), 'utf8'))) {
    return { head: null, problem: { reason: 'head_invalid', text: 'head checkpoint is not in canonical form' } };
  }
  return { head };
}

/**
 * The files of the chain that ends in `file`, oldest first: a rotated file's
 * first record (`log_rotated`) names its predecessor, looked for beside
 * `file`. Stops at a file that is missing or already seen.
 */
export function discoverChain(file: string): string[] {
  const files = [file];
  const seen = new Set([path.resolve(file)]);
  for (let at = file; ; ) {
    const first = firstRecord(at);
    if (first === null || first.type !== 'log_rotated' || typeof first.previous_file !== 'string') break;
    const previous = path.join(path.dirname(file), path.basename(first.previous_file));
    if (seen.has(path.resolve(previous)) || !fs.existsSync(previous)) break;
    seen.add(path.resolve(previous));
    files.unshift(previous);
    at = previous;
  }
  return files;
}

function firstRecord(file: string): Record<string, unknown> | null {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return null;
  }
  try {
    const buf = Buffer.alloc(64 * 1024 + 256);
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    const end = buf.subarray(0, n).indexOf(NEWLINE);
    const parsed: unknown = JSON.parse(buf.subarray(0, end === -1 ? n : end).toString('utf8'));
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : null;
  } catch {
    return null;
  } finally {
    fs.closeSync(fd);
  }
}

type Result = AuditVerification & { lastMac?: string };

/**
 * Verifies `files` as one chain, oldest first; the head checkpoint of the
 * last one is checked. `options.previousMac`/`previousSeq` say where the
 * first file continues from; without them it must start at genesis (or
 * where retention pruned, as recorded in the chain).
 */
export function verifyWith(hmac: HmacKey, files: readonly string[], options: AuditVerifyOptions): Result {
  const keyId = keyIdOf(hmac);
  const genesis = genesisPrev(hmac, keyId);
  const single = files.length === 1;
  let prev = options.previousMac;
  let expectSeq = options.previousSeq === undefined ? undefined : options.previousSeq + 1;
  let records = 0;
  let lastGoodSeq = options.previousSeq ?? 0;
  let lastMac = prev;
  let headSeq: number | undefined;
  let file = files[0];
  // A first record not at genesis: accepted only if a later record says
  // retention deleted what came before it (log_pruned with that seq and MAC).
  let unanchored: { seq: number; prev: string; line: number; continues?: string } | null = null;
  const pruned = new Map<string, number>();
  const anchor = options.anchor ?? null;
  const result = (r: Result): Result => {
    if (headSeq !== undefined) r.headSeq = headSeq;
    if (!single && !r.ok) r.file = file;
    if (r.keyId === undefined) r.keyId = keyId;
    return r;
  };
  const fail = (reason: AuditFailure, line: number, text: string, seq?: number, logKeyId?: string): Result => {
    if (unanchored !== null && reason !== 'wrong_key') {
      // Nothing after an unexplained start is trusted: report the start.
      file = files[0];
      return result({ ok: false, records: 0, lastGoodSeq: 0, reason: 'not_genesis', firstBad: { line: unanchored.line, seq: unanchored.seq, reason: notGenesisText(unanchored) }, lastMac: undefined });
    }
    return result({ ok: false, records, lastGoodSeq, lastMac, reason, keyId: logKeyId, firstBad: seq === undefined ? { line, reason: text } : { line, seq, reason: text } });
  };
  const notGenesisText = (u: { seq: number; prev: string; continues?: string }) =>
    u.prev === GENESIS_MAC
      ? 'the log starts at the legacy all-zero genesis (written before genesis was bound to the key)'
      : `the log does not start at its genesis: it starts at seq ${u.seq} and nothing records why the records before it are gone` +
        (u.continues === undefined ? '' : ` (it continues ${u.continues}: give the rotated files oldest first, --chain / verifyChain)`);

  const last = files[files.length - 1];
  const { head, problem } = readHead(hmac, keyId, last);
  if (problem !== undefined) {
    file = last;
    return fail(problem.reason, 0, problem.text, undefined, problem.keyId);
  }
  if (head !== null) headSeq = head.seq;

  for (let f = 0; f < files.length; f++) {
    file = files[f];
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      return fail('missing_log', 0, `log file ${file} does not exist`);
    }
    const { lines, torn } = splitLines(bytes);
    for (let i = 0; i < lines.length; i++) {
      const line = i + 1;
      const tornLine = torn && i === lines.length - 1;
      let record: Record<string, unknown>;
      try {
        const parsed: unknown = JSON.parse(lines[i].toString('utf8'));
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
        record = parsed as Record<string, unknown>;
      } catch {
        return tornLine ? fail('torn', line, 'incomplete final line (torn write)') : fail('malformed', line, 'not a JSON record');
      }
      const seq = record.seq;
      if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) return fail('malformed', line, 'missing seq');
      const { mac, ...rest } = record;
      const first = f === 0 && i === 0;
      if (expectSeq !== undefined && seq !== expectSeq) {
        return seq > expectSeq ? fail('seq_gap', line, `seq ${expectSeq} is missing`, seq) : fail('seq_order', line, `seq ${seq} is out of order`, seq);
      }
      if (typeof record.prev !== 'string') return fail('malformed', line, 'missing prev', seq);
      if (prev !== undefined && record.prev !== prev) return fail('chain_broken', line, 'chain broken: prev does not match the previous record', seq);
      let expected: string;
      try {
        expected = recordMac(hmac, rest);
      } catch {
        return fail('malformed', line, 'record cannot be canonicalized', seq);
      }
      if (typeof mac !== 'string' || mac !== expected) {
        if (first && head === null) {
          // (A head that verified proves the key right.) The first record names its key: at genesis in prev, after a rotation in key_id.
          const logKeyId = seq === 1 && HEX_MAC.test(record.prev) ? record.prev.slice(0, 16) : typeof record.key_id === 'string' ? record.key_id : undefined;
          if (logKeyId !== undefined && logKeyId !== keyId && record.prev !== GENESIS_MAC) {
            return fail('wrong_key', line, `wrong key: the log was written with key ${logKeyId}, not ${keyId}`, seq, logKeyId);
          }
        }
        return fail('mac_mismatch', line, 'MAC mismatch: record altered or forged', seq);
      }
      let canonical: string;
      try {
        canonical = canonicalLine(rest, mac);
      } catch {
        return fail('malformed', line, 'record cannot be canonicalized', seq);
      }
      if (!lines[i].equals(Buffer.from(canonical, 'utf8'))) {
        return fail('not_canonical', line, 'line is not the canonical form of its record (duplicate, escaped or reordered keys, whitespace or another encoding)', seq);
      }
      if (first && options.previousMac === undefined && !(seq === 1 && record.prev === genesis)) {
        unanchored = { seq, prev: record.prev, line };
        if (record.type === 'log_rotated' && typeof record.previous_file === 'string') unanchored.continues = record.previous_file;
      }
      if (record.type === 'log_pruned' && typeof record.last_mac === 'string' && Number.isSafeInteger(record.last_seq)) {
        pruned.set(record.last_mac, record.last_seq as number);
      }
      if (unanchored !== null && pruned.get(unanchored.prev) === unanchored.seq - 1) unanchored = null;
      if (anchor !== null && seq === anchor.seq && mac !== anchor.mac) {
        return fail('anchor_mismatch', line, `the anchor names another record at seq ${seq}: the log was replaced`, seq);
      }
      // The checkpoint must name this very record: another file with the same
      // key (a swapped log) has other MACs at the same seq.
      if (head !== null && f === files.length - 1 && seq === head.seq && head.mac !== mac) {
        return fail('head_mismatch', line, 'head checkpoint does not match this record', seq);
      }
      prev = mac;
      lastMac = mac;
      expectSeq = seq + 1;
      lastGoodSeq = seq;
      records++;
    }
    if (torn) return fail('torn', lines.length, 'incomplete final line (torn write)');
    if (expectSeq === undefined && f < files.length - 1) return fail('missing_log', 1, `rotated file ${file} is empty`);
  }
  if (head === null) {
    if (!options.allowMissingHead) return fail('missing_head', 0, `no head checkpoint (${last}.head): a cut tail could not be detected`);
  } else {
    if (head.seq > lastGoodSeq) return fail('truncated', records + 1, `truncated: the head checkpoint is at seq ${head.seq}`, lastGoodSeq + 1);
    if (head.seq === 0 && head.mac !== genesis) return fail('head_mismatch', 0, 'head checkpoint does not match this log');
  }
  if (unanchored !== null) return fail('not_genesis', unanchored.line, notGenesisText(unanchored), unanchored.seq);
  if (anchor !== null) {
    if (anchor.key_id !== undefined && anchor.key_id !== keyId) return fail('anchor_mismatch', 0, `the anchor belongs to key ${anchor.key_id}, not ${keyId}`);
    if (anchor.seq > lastGoodSeq) {
      return fail('behind_anchor', records + 1, `rolled back: the anchor is at seq ${anchor.seq}, the log ends at seq ${lastGoodSeq}`, lastGoodSeq + 1);
    }
    if (anchor.seq === 0 && anchor.mac !== genesis) return fail('anchor_mismatch', 0, 'the anchor names another genesis');
  }
  return result({ ok: true, records, lastGoodSeq, lastMac });
}

/** Verifies one log file under `key` (AuditLog.verify): with its rotated predecessors when it continues a chain. */
export function verifyFile(file: string, key: string | Uint8Array, options: AuditVerifyOptions = {}): AuditVerification {
  const hmac = new HmacKey(keyBytes(key));
  try {
    const files = options.previousMac === undefined ? discoverChain(file) : [file];
    const { lastMac: _lastMac, ...result } = verifyWith(hmac, files, options);
    return result;
  } finally {
    hmac.destroy();
  }
}

/** Verifies rotated files and the live one as one chain, oldest first (AuditLog.verifyChain). */
export function verifyFiles(files: string[], key: string | Uint8Array, options: AuditVerifyOptions = {}): AuditVerification {
  if (!Array.isArray(files) || files.length === 0) throw new TypeError(`Expected a non-empty array of files but received ${describe(files)}`);
  const hmac = new HmacKey(keyBytes(key));
  try {
    const { lastMac: _lastMac, ...result } = verifyWith(hmac, files, options);
    return result;
  } finally {
    hmac.destroy();
  }
}
