/**
 * AuditLog: append-only JSONL, hash-chained and HMAC-sealed.
 *
 * Each line is one record: `seq`, `ts`, `type`, `severity`, the event's
 * fields, `prev` (the previous record's MAC) and
 * `mac = HMAC-SHA256(key, prev || JCS(record without mac))`. Changing,
 * deleting, inserting or reordering a record breaks the chain at that record.
 * A signed head checkpoint (`<file>.head`: last seq and MAC, itself MACed) is
 * rewritten after every flush, so cutting records off the tail is detected too.
 *
 * `append` is synchronous and cheap (the MAC is computed at once, the line is
 * buffered); the buffer is written at the next turn of the event loop, at
 * `flush()`, at `close()` and at process exit. The buffer is bounded: when
 * full, `append` writes synchronously instead of dropping. A write failure
 * keeps the records buffered and marks the log unhealthy; with
 * `required: true`, `append` then throws, and the gate turns that into a deny.
 * Rotation by size renames the file to `<file>.<n>` and continues the chain
 * (seq and prev) in a new file.
 *
 * A new chain starts at a genesis bound to the key (lib/audit/verify.ts), so a
 * log that lost its first records does not verify. A record too large for
 * the canonical form (64 KiB) is cut, never dropped: its largest values are
 * replaced by `{ truncated, length, sha256, head }` (lib/audit/truncate.ts).
 * With an `anchor`, each head checkpoint is also written to a second place,
 * against a rollback of log and head together (lib/audit/anchor.ts).
 */
import fs from 'node:fs';
import { expiredRotations, nextRotation } from './retention';
import { EVENT_TYPE, SEVERITIES, type Severity } from './events';
import { type AuditVerification, type AuditVerifyOptions, type Head, genesisPrev, headText, keyBytes, keyIdOf, verifyFile, verifyFiles } from './verify';
import { type AuditAnchor, type AuditAnchorState, parseAnchorState } from './anchor';
import { fitFields } from './truncate';
import { type DecisionRecordFields, decisionRecordScratch, writeDecisionRecord } from './record';
import { canonicalScratch, writePrefixedCanonicalJson } from '../canonical/bytes';
import { DEFAULT_MAX_BYTES, DEFAULT_MAX_DEPTH, canonicalizeJson } from '../canonical/car';
import { ErrorCodes, GuardError, describe } from '../errors';
import { HmacKey } from '../crypto/hash';

export { GENESIS_MAC, type AuditVerification, type AuditVerifyOptions, type AuditFailure } from './verify';
export { FileAuditAnchor, type AuditAnchor, type AuditAnchorState } from './anchor';
export { TRUNCATED_HEAD_CHARS, type TruncatedValue } from './truncate';
export { SECURITY_EVENT_TYPES, type SecurityEventType, type Severity } from './events';

const MAC_FIELD = Buffer.from(',"mac":"', 'latin1');
const HEX_MAC = /^[0-9a-f]{64}$/;
const RESERVED = new Set(['seq', 'ts', 'type', 'severity', 'prev', 'mac']);
const UNLIMITED = { maxBytes: Number.MAX_SAFE_INTEGER };

export interface AuditLogOptions {
  /** The log file; created if missing, appended to (continuing its chain) if present. */
  file: string;
  /** HMAC key: at least 32 bytes (a string is used as its UTF-8 bytes). */
  key: string | Uint8Array;
  /** When true, a log that cannot be written makes `append` throw (the gate denies). Default false. */
  required?: boolean;
  /** Most records buffered before `append` writes synchronously. Default 10000. */
  maxBuffered?: number;
  /** Rotate when the file reaches this many bytes. Default: never. */
  rotateBytes?: number;
  /**
   * Background writes refresh the signed head checkpoint at most this often
   * (ms); `flush()`, `close()`, rotation and process exit always refresh it.
   * Default 100; 0 refreshes it on every write. Records newer than the
   * checkpoint are chained but a cut of them is not detectable until the
   * next refresh.
   */
  checkpointEveryMs?: number;
  /**
   * Rotated files (`<file>.<n>`) last modified more than this many days ago
   * are deleted when the log opens and after each rotation, and each
   * deletion is recorded (`log_pruned`). Default: none is ever deleted. The
   * live file is never deleted.
   */
  retentionDays?: number;
  /** Milliseconds since the epoch for `ts`; default `Date.now`. */
  clock?: () => number;
  /**
   * A second place for the head checkpoint (`FileAuditAnchor`, or
   * `RedisAuditAnchor` from the fleet layer): written after each checkpoint,
   * only ever forward. Pass the same anchor's state to `AuditLog.verify` to
   * catch a rollback of log and head together, which nothing inside the
   * log's directory can reveal. At open the log compares itself with the
   * anchor; a log behind its anchor (or with another record at the
   * anchored seq) stops updating it and records `log_anchor_conflict`.
   */
  anchor?: AuditAnchor;
}

export interface AuditRecord {
  seq: number;
  ts: number;
  type: string;
  severity: Severity;
  prev: string;
  mac: string;
  [field: string]: unknown;
}


/** Reads the last complete record of a file: where a reopened log continues its chain. */
function lastRecord(file: string): { seq: number; mac: string } | null {
  let text: string;
  try {
    if (!fs.statSync(file).isFile()) return null; // a device or pipe has no past records
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  const lines = text.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    if (lines[i] === '') continue;
    try {
      const r = JSON.parse(lines[i]) as AuditRecord;
      if (Number.isSafeInteger(r.seq) && typeof r.mac === 'string') return { seq: r.seq, mac: r.mac };
    } catch {
      // a torn last line: look further back
    }
  }
  return null;
}

/** The MAC of the record at `seq` in `file`, or null when the file does not hold it. */
function macAt(file: string, seq: number): string | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  for (const line of text.split('\n')) {
    if (!line.includes(`"seq":${seq},`)) continue; // cheap pre-filter: canonical lines write seq so
    try {
      const r = JSON.parse(line) as AuditRecord;
      if (r.seq === seq && typeof r.mac === 'string') return r.mac;
    } catch {
      // a torn line
    }
  }
  return null;
}

// One exit hook for every open log: buffered records reach the file even when
// the process ends before the next turn of the event loop.
const openLogs = new Set<AuditLog>();
function flushOpenLogs(): void {
  for (const log of openLogs) log.flushAtExit();
}

export class AuditLog {
  readonly file: string;
  readonly required: boolean;
  readonly #hmac: HmacKey;
  readonly #maxBuffered: number;
  readonly #rotateBytes: number;
  readonly #clock: () => number;
  #fd: number;
  #size: number;
  #seq: number;
  /** The previous record's MAC as text; null when only `#prevBytes` holds it (made when asked for). */
  #prevText: string | null;
  /** The previous MAC's bytes when it is hex (always, but for a damaged file's last MAC): what decision records copy. */
  readonly #prevBytes = Buffer.alloc(64);
  #prevIsHex = true;
  /** Sealed records not yet written, as the bytes of their lines. */
  #pending = Buffer.allocUnsafe(64 * 1024);
  #pendingBytes = 0;
  #pendingRecords = 0;
  readonly #checkpointEveryMs: number;
  readonly #retentionDays: number | undefined;
  #headWrittenAt = -Infinity;
  #headTimer: NodeJS.Timeout | null = null;
  #headDirty = false;
  #scheduled = false;
  #error: Error | null = null;
  #closed = false;
  readonly #keyId: string;
  readonly #genesis: string;
  readonly #anchor: AuditAnchor | null;
  /** unchecked: the anchor was not read yet (or could not be); ok: written after each checkpoint; conflict: left as evidence. */
  #anchorState: 'unchecked' | 'checking' | 'ok' | 'conflict' = 'unchecked';
  #anchorWant: AuditAnchorState | null = null;
  #anchorBusy: Promise<void> | null = null;
  #anchorError: Error | null = null;
  readonly #openSeq: number;

  constructor(options: AuditLogOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError(`Expected options for AuditLog but received ${describe(options)}`);
    const { file, key, required = false, maxBuffered = 10_000, rotateBytes = 0, checkpointEveryMs = 100, retentionDays, clock = Date.now, anchor } = options;
    if (anchor !== undefined && (typeof anchor !== 'object' || anchor === null || typeof anchor.write !== 'function' || typeof anchor.read !== 'function')) {
      throw new TypeError(`Expected an AuditAnchor ({ read, write }) for anchor but received ${describe(anchor)}`);
    }
    if (retentionDays !== undefined && (!Number.isSafeInteger(retentionDays) || retentionDays < 1)) {
      throw new RangeError(`Expected a positive integer of days for retentionDays but received ${describe(retentionDays)}`);
    }
    if (typeof file !== 'string' || file.length === 0) throw new TypeError(`Expected a file path for file but received ${describe(file)}`);
    if (!Number.isSafeInteger(maxBuffered) || maxBuffered < 1) throw new RangeError(`Expected a positive integer for maxBuffered but received ${describe(maxBuffered)}`);
    if (!Number.isSafeInteger(rotateBytes) || rotateBytes < 0) throw new RangeError(`Expected a non-negative integer for rotateBytes but received ${describe(rotateBytes)}`);
    if (!Number.isSafeInteger(checkpointEveryMs) || checkpointEveryMs < 0) throw new RangeError(`Expected a non-negative integer for checkpointEveryMs but received ${describe(checkpointEveryMs)}`);
    if (typeof clock !== 'function') throw new TypeError(`Expected a function for clock but received ${describe(clock)}`);
    this.file = file;
    this.required = Boolean(required);
    this.#hmac = new HmacKey(keyBytes(key));
    this.#maxBuffered = maxBuffered;
    this.#rotateBytes = rotateBytes;
    this.#checkpointEveryMs = checkpointEveryMs;
    this.#retentionDays = retentionDays;
    this.#clock = clock;
    this.#keyId = keyIdOf(this.#hmac);
    this.#genesis = genesisPrev(this.#hmac, this.#keyId);
    this.#anchor = anchor ?? null;
    const last = lastRecord(file);
    this.#seq = last?.seq ?? 0;
    this.#openSeq = this.#seq;
    this.#prevText = last?.mac ?? this.#genesis;
    this.#prevIsHex = HEX_MAC.test(this.#prevText); // a damaged file's last MAC takes the generic path
    if (this.#prevIsHex) this.#prevBytes.write(this.#prevText, 'latin1');
    this.#fd = fs.openSync(file, 'a', 0o600);
    const st = fs.fstatSync(this.#fd);
    this.#size = st.size;
    openLogs.add(this);
    if (openLogs.size === 1) process.on('exit', flushOpenLogs);
    this.#checkAnchor();
    // A new, empty log gets its head at once: "no head" then always means
    // deleted (verify fails), never "nothing written yet".
    // (Only for a regular file: a device such as /dev/full keeps no head.)
    if (st.isFile() && this.#size === 0 && this.#seq === 0 && !fs.existsSync(`${file}.head`)) {
      try {
        this.#writeHead({ file, seq: 0, mac: this.#genesis, key_id: this.#keyId });
      } catch {
        // written by the first flush instead
      }
    }
    this.#prune();
  }

  /** A short public id of `key` (16 hex digits), as logs, heads and anchors carry it. */
  static keyId(key: string | Uint8Array): string {
    const hmac = new HmacKey(keyBytes(key));
    try {
      return keyIdOf(hmac);
    } finally {
      hmac.destroy();
    }
  }

  /** The id of this log's key (`AuditLog.keyId(key)`). */
  get keyId(): string {
    return this.#keyId;
  }

  /** Days rotated files are kept (enforced), or Infinity when none is ever deleted. */
  get retentionDays(): number {
    return this.#retentionDays ?? Infinity;
  }

  /** Deletes rotated files older than the retention period, recording each deletion in the chain. */
  #prune(): void {
    if (this.#retentionDays === undefined) return;
    for (const rotated of expiredRotations(this.file, this.#retentionDays, Date.now())) {
      // What the deleted file ended with: a verifier accepts a chain that starts right after it.
      const end = lastRecord(rotated);
      try {
        fs.unlinkSync(rotated);
      } catch {
        continue; // gone already, or not ours to delete: tried again at the next rotation
      }
      const fields: Record<string, unknown> = { file: rotated, retention_days: this.#retentionDays };
      if (end !== null && HEX_MAC.test(end.mac)) Object.assign(fields, { last_seq: end.seq, last_mac: end.mac });
      this.append('log_pruned', 'info', fields);
    }
  }

  /** @internal Best-effort flush at process exit. */
  flushAtExit(): void {
    this.#flushSafely();
  }

  /** False after a write failed (records stay buffered and are retried). */
  get healthy(): boolean {
    return this.#error === null;
  }

  /** The last write error, if any. */
  get lastError(): Error | null {
    return this.#error;
  }

  /** seq of the last record appended (buffered or written). */
  get seq(): number {
    return this.#seq;
  }

  /**
   * Seals and buffers one record; returns its seq.
   *
   * The contract callers build on: when `append` returns, the record is in
   * the chain (sealed and buffered; written at the next turn of the event
   * loop, and retried after a write failure, never dropped), so a state
   * change may be applied then. When it throws, there is no record and the
   * change must not be applied:
   * - `GuardError` `ERR_CLOSED`: the log was closed;
   * - `GuardError` `ERR_AUDIT_UNAVAILABLE`: a `required` log whose last write
   *   failed, or a full buffer that cannot be flushed (any log);
   * - `TypeError` / `GuardError` `ERR_CAR_INVALID`: the record itself is
   *   invalid (a bad type or severity, a reserved field, a value JSON cannot
   *   carry, nesting deeper than 32).
   * A record larger than the canonical size limit is not refused: its
   * largest values are cut to markers with their SHA-256 (lib/audit/truncate.ts).
   */
  append(type: string, severity: Severity, fields: Record<string, unknown> = {}): number {
    this.#checkOpen();
    this.#checkRecord(type, severity, fields);
    this.#admit();
    return this.#appendAt(type, severity, fields, this.#clock());
  }

  #checkRecord(type: string, severity: Severity, fields: Record<string, unknown>): void {
    if (typeof type !== 'string' || !EVENT_TYPE.test(type)) throw new TypeError(`Expected an event type like "gate_decision" but received ${describe(type)}`);
    if (!SEVERITIES.has(severity)) throw new TypeError(`Expected one of debug, info, warning, error, critical for severity but received ${describe(severity)}`);
    if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) throw new TypeError(`Expected an object for fields but received ${describe(fields)}`);
    for (const k of Object.keys(fields)) if (RESERVED.has(k)) throw new TypeError(`Field "${k}" is reserved in audit records`);
  }

  /** The generic path: any fields, walked and written as JCS. */
  #appendAt(type: string, severity: Severity, fields: Record<string, unknown>, ts: number): number {
    const record: Record<string, unknown> = Object.assign({}, fields);
    record.seq = this.#seq + 1;
    record.ts = ts;
    record.type = type;
    record.severity = severity;
    const prev = this.#prev();
    record.prev = prev;
    // mac = HMAC(prev || canonical record): both written into one scratch
    // buffer and MACed in place. Anything unusual takes the string path,
    // which also names fields JSON cannot carry (ERR_CAR_INVALID).
    const end = writePrefixedCanonicalJson(prev, record, DEFAULT_MAX_DEPTH, DEFAULT_MAX_BYTES);
    if (end >= 0) return this.#seal(canonicalScratch(), end);
    let text: string;
    try {
      text = canonicalizeJson(record);
    } catch (err) {
      text = this.#cut(record, fields, err);
    }
    return this.#sealText(text);
  }

  /**
   * The canonical text of `record` with its largest fields cut to fit the
   * size limit; rethrows `err` when size is not (only) what is wrong.
   */
  #cut(record: Record<string, unknown>, fields: Record<string, unknown>, err: unknown): string {
    let whole: string;
    try {
      whole = canonicalizeJson(record, UNLIMITED);
    } catch {
      throw err; // a value JSON cannot carry, or too deep: the caller's to fix
    }
    if (Buffer.byteLength(whole, 'utf8') <= DEFAULT_MAX_BYTES) throw err;
    const header = { seq: record.seq, ts: record.ts, type: record.type, severity: record.severity, prev: record.prev };
    const overhead = Buffer.byteLength(canonicalizeJson(header), 'utf8') - 1; // merged: one brace pair less, one comma more
    return canonicalizeJson(Object.assign(fitFields(fields, overhead, DEFAULT_MAX_BYTES), header));
  }

  /**
   * @internal The gate's record of a decision: exactly the record
   * `append(type, severity, fields)` writes, built without the generic walk:
   * by the addon in one call (native/audit/audit_line.cc), else by
   * lib/audit/record.ts. `type` and `severity` come from the gate's own
   * tables; only the generic path checks them again. The clock is read once,
   * whichever path writes the record. Returns and throws as `append` does
   * (an oversized record is cut by the generic path, not refused).
   */
  appendDecision(type: string, severity: Severity, fields: DecisionRecordFields): number {
    this.#checkOpen();
    this.#admit();
    const ts = this.#clock();
    if (this.#prevIsHex) {
      const sealed = this.#sealNative(type, severity, fields, ts);
      if (sealed >= 0) return sealed;
      const end = writeDecisionRecord({ seq: this.#seq + 1, ts, type, severity, prev: this.#prevBytes }, fields);
      if (end >= 0) return this.#seal(decisionRecordScratch(), end);
    }
    // The generic path decides (and names whatever the fast ones could not write).
    const copy: Record<string, unknown> = { decision: fields.decision, source: fields.source, reason: fields.reason, car_hash: fields.car_hash, policy_version: fields.policy_version, agent_id: fields.agent_id, action_type: fields.action_type };
    if (fields.session_id !== undefined) copy.session_id = fields.session_id;
    this.#checkRecord(type, severity, copy);
    return this.#appendAt(type, severity, copy, ts);
  }

  #checkOpen(): void {
    if (this.#closed) throw new GuardError(ErrorCodes.CLOSED, 'AuditLog has been closed');
  }

  /** Refuses a record the log cannot take: a required log that cannot write, or a full buffer that cannot be flushed. */
  #admit(): void {
    if (this.required && this.#error !== null) {
      throw new GuardError(ErrorCodes.AUDIT_UNAVAILABLE, `Audit log ${this.file} cannot be written: ${this.#error.message}`, { cause: this.#error });
    }
    if (this.#pendingRecords >= this.#maxBuffered) {
      this.#flushSafely();
      if (this.#pendingRecords >= this.#maxBuffered) {
        throw new GuardError(ErrorCodes.AUDIT_UNAVAILABLE, `Audit log ${this.file} is full and cannot be written`, { cause: this.#error ?? undefined });
      }
    }
  }

  /** The previous record's MAC, as text. */
  #prev(): string {
    return (this.#prevText ??= this.#prevBytes.toString('latin1'));
  }

  /**
   * A decision record written, sealed and framed by the addon in one call
   * (native/audit/audit_line.cc): its seq, or -1 when the TypeScript paths must
   * write it (no addon, or a value they must judge).
   */
  #sealNative(type: string, severity: Severity, f: DecisionRecordFields, ts: number): number {
    const key = this.#hmac.nativeKey;
    if (key === null) return -1;
    const seq = this.#seq + 1;
    for (let attempt = 0; attempt < 2; attempt++) {
      const n = key.sealDecisionLine(this.#prevBytes, this.#pending, this.#pendingBytes, seq, ts, type, severity, f.decision, f.source, f.reason, f.car_hash, f.policy_version, f.agent_id, f.action_type, f.session_id);
      if (n === -2) {
        // Room for the largest record the addon writes (64 KiB plus framing).
        this.#reserve(this.#pendingBytes + DEFAULT_MAX_BYTES + 1024);
        continue;
      }
      if (n < 0) return -1;
      this.#seq = seq;
      this.#prevText = null; // the addon wrote the new MAC into #prevBytes
      this.#pendingBytes += n;
      this.#pendingRecords++;
      this.#buffered();
      return seq;
    }
    return -1;
  }

  /** Seals the record in `bytes[prev.length, end)` (preceded there by `prev`): MAC, chain, buffer. */
  #seal(bytes: Uint8Array, end: number): number {
    const mac = this.#hmac.sign(bytes.subarray(0, end));
    return this.#chain(bytes.subarray(this.#prev().length, end), mac);
  }

  /** The string path's record (canonical text of the record without mac). */
  #sealText(text: string): number {
    const mac = this.#hmac.sign(this.#prev() + text);
    return this.#chain(Buffer.from(text, 'utf8'), mac);
  }

  #chain(canonical: Uint8Array, mac: string): number {
    this.#seq++;
    this.#prevText = mac;
    this.#prevIsHex = true; // our own MACs are always hex
    this.#prevBytes.write(mac, 0, 64, 'latin1');
    this.#pushLine(canonical, this.#prevBytes);
    this.#buffered();
    return this.#seq;
  }

  /** A record was added to the buffer: have it written at the next turn. */
  #buffered(): void {
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        this.#flushSafely(true);
      });
    }
  }

  /** Grows the buffer of unwritten lines to hold at least `need` bytes. */
  #reserve(need: number): void {
    if (need <= this.#pending.length) return;
    const grown = Buffer.allocUnsafe(Math.max(need, this.#pending.length * 2));
    this.#pending.copy(grown, 0, 0, this.#pendingBytes);
    this.#pending = grown;
  }

  /** Appends `canonical` minus its closing brace, then `,"mac":"<mac>"}` and a newline. */
  #pushLine(canonical: Uint8Array, mac: Uint8Array): void {
    this.#reserve(this.#pendingBytes + canonical.length + mac.length + 10);
    const p = this.#pending;
    p.set(canonical, this.#pendingBytes);
    // Overwrite the closing brace with `,"mac":"<hex>"}` and a newline (all ASCII).
    let at = this.#pendingBytes + canonical.length - 1;
    for (let i = 0; i < MAC_FIELD.length; i++) p[at++] = MAC_FIELD[i];
    p.set(mac, at); // hex
    at += mac.length;
    p[at++] = 0x22; // "
    p[at++] = 0x7d; // }
    p[at++] = 0x0a; // \n
    this.#pendingBytes = at;
    this.#pendingRecords++;
  }


  /**
   * Writes everything buffered now and refreshes the signed head checkpoint.
   * Throws if the write fails (records stay buffered).
   */
  flush(): void {
    this.#write(false);
  }

  #write(background: boolean): void {
    if (this.#pendingBytes !== 0) {
      try {
        let off = 0;
        while (off < this.#pendingBytes) off += fs.writeSync(this.#fd, this.#pending, off, this.#pendingBytes - off);
        this.#size += this.#pendingBytes;
        this.#error = null;
      } catch (err) {
        this.#error = err instanceof Error ? err : new Error(String(err));
        throw this.#error;
      }
      this.#pendingBytes = 0;
      this.#pendingRecords = 0;
      this.#headDirty = true;
      // Give back a burst's memory, but only from a background write (the
      // event loop turned): a flush forced by a full buffer means the burst
      // goes on, and shrinking then made every burst regrow the buffer from
      // 64 KiB (a copy per doubling and fresh pages to fault in: a fifth of
      // an audited decision in a synchronous loop).
      if (background && this.#pending.length > 1 << 20) this.#pending = Buffer.allocUnsafe(64 * 1024);
    }
    if (this.#headDirty) this.#checkpoint(background);
    if (this.#rotateBytes > 0 && this.#size >= this.#rotateBytes) this.#rotate();
  }

  /**
   * Refreshes `<file>.head`. Background writes do it at most every
   * checkpointEveryMs (renaming a file per event-loop turn cost a sixth of
   * the server's time under load); a timer catches up on the last one.
   */
  #checkpoint(background: boolean): void {
    const now = Date.now();
    if (background && now - this.#headWrittenAt < this.#checkpointEveryMs) {
      if (this.#headTimer === null) {
        this.#headTimer = setTimeout(() => {
          this.#headTimer = null;
          this.#flushSafely();
        }, this.#checkpointEveryMs - (now - this.#headWrittenAt));
        this.#headTimer.unref();
      }
      return;
    }
    if (this.#headTimer !== null) {
      clearTimeout(this.#headTimer);
      this.#headTimer = null;
    }
    // Every appended record is buffered, so the chain's last seq and MAC are the last buffered.
    this.#writeHead({ file: this.file, seq: this.#seq, mac: this.#prev(), key_id: this.#keyId });
    this.#headWrittenAt = now;
    this.#headDirty = false;
  }

  #flushSafely(background = false): void {
    try {
      this.#write(background);
    } catch {
      // kept buffered; `healthy` and `lastError` report it, and the next write retries
    }
  }

  #writeHead(head: Head): void {
    const tmp = `${this.file}.head.tmp`;
    fs.writeFileSync(tmp, headText(this.#hmac, head), { mode: 0o600 });
    fs.renameSync(tmp, `${this.file}.head`);
    if (this.#anchor !== null) this.#anchorUpdate({ seq: head.seq, mac: head.mac, key_id: this.#keyId });
  }

  /** The last error of the anchor (a read or write that failed, or a conflict); null when it is up to date. */
  get anchorError(): Error | null {
    return this.#anchorError;
  }

  /** True when the log was behind its anchor (or differed from it) at open: the anchor is then left untouched, as evidence. */
  get anchorConflict(): boolean {
    return this.#anchorState === 'conflict';
  }

  /** Resolves once the anchor has the last checkpoint (asynchronous anchors); rejects with the anchor's error. */
  async syncAnchor(): Promise<void> {
    while (this.#anchorBusy !== null) await this.#anchorBusy;
    // An anchor that could not be read (store down) is read again now, not
    // only at the next checkpoint: an idle log would report the old error forever.
    if (this.#anchorState === 'unchecked' && this.#anchorError !== null) {
      this.#checkAnchor();
      while (this.#anchorBusy !== null) await this.#anchorBusy;
    }
    if (this.#anchorState === 'ok' && this.#anchorWant !== null) {
      this.#anchorFlush();
      while (this.#anchorBusy !== null) await this.#anchorBusy;
    }
    if (this.#anchorError !== null) throw this.#anchorError;
  }

  /** Reads the anchor and compares it with the log as opened; until that is done the anchor is not written. */
  #checkAnchor(): void {
    const anchor = this.#anchor;
    if (anchor === null || this.#anchorState === 'checking') return;
    this.#anchorState = 'checking';
    let stored: ReturnType<AuditAnchor['read']>;
    try {
      stored = anchor.read();
    } catch (err) {
      this.#anchorUnread(err);
      return;
    }
    if (stored !== null && typeof (stored as Promise<unknown>).then === 'function') {
      const busy = (stored as Promise<AuditAnchorState | null>).then(
        (s) => this.#anchorRead(s),
        (err: unknown) => this.#anchorUnread(err),
      );
      this.#anchorBusy = busy.finally(() => {
        this.#anchorBusy = null;
        if (this.#anchorState === 'ok') this.#anchorFlush();
      });
      return;
    }
    this.#anchorRead(stored as AuditAnchorState | null);
  }

  #anchorUnread(err: unknown): void {
    this.#anchorError = err instanceof Error ? err : new Error(String(err));
    this.#anchorState = 'unchecked'; // read again at the next checkpoint
  }

  #anchorRead(value: unknown): void {
    const stored = value === null ? null : parseAnchorState(value);
    if (value !== null && stored === null) return this.#anchorUnread(new Error('the audit anchor holds no valid state'));
    let conflict: string | null = null;
    if (stored !== null) {
      if (stored.key_id !== undefined && stored.key_id !== this.#keyId) conflict = `the anchor belongs to key ${stored.key_id}, not ${this.#keyId}`;
      else if (stored.seq > this.#openSeq) conflict = `the log ends at seq ${this.#openSeq}, behind its anchor at seq ${stored.seq} (rolled back?)`;
      else {
        const mac = stored.seq === 0 ? this.#genesis : macAt(this.file, stored.seq);
        if (mac !== null && mac !== stored.mac) conflict = `the log has another record at the anchored seq ${stored.seq} (replaced?)`;
      }
    }
    if (conflict === null) {
      this.#anchorState = 'ok';
      this.#anchorError = null;
      return;
    }
    this.#anchorState = 'conflict';
    this.#anchorWant = null;
    this.#anchorError = new GuardError(ErrorCodes.AUDIT_UNAVAILABLE, `Audit log ${this.file} conflicts with its anchor: ${conflict}; the anchor is left as it is`);
    try {
      this.append('log_anchor_conflict', 'critical', { anchor_seq: stored!.seq, log_seq: this.#openSeq, detail: conflict });
    } catch {
      // closed meanwhile, or refused: the error above reports it
    }
  }

  #anchorUpdate(state: AuditAnchorState): void {
    if (this.#anchorState === 'conflict') return;
    this.#anchorWant = state;
    if (this.#anchorState === 'unchecked') this.#checkAnchor();
    if (this.#anchorState === 'ok' && this.#anchorBusy === null) this.#anchorFlush();
  }

  /** Writes the newest wanted state; an asynchronous write is awaited before the next one (only the newest is kept). */
  #anchorFlush(): void {
    const state = this.#anchorWant;
    if (state === null || this.#anchor === null) return;
    this.#anchorWant = null;
    let done: void | Promise<void>;
    try {
      done = this.#anchor.write(state);
    } catch (err) {
      this.#anchorError = err instanceof Error ? err : new Error(String(err));
      this.#anchorWant ??= state; // retried at the next checkpoint
      return;
    }
    if (done === undefined || typeof (done as Promise<void>).then !== 'function') {
      this.#anchorError = null;
      return;
    }
    const busy = (done as Promise<void>).then(
      () => {
        this.#anchorError = null;
        return true;
      },
      (err: unknown) => {
        this.#anchorError = err instanceof Error ? err : new Error(String(err));
        this.#anchorWant ??= state;
        return false;
      },
    );
    this.#anchorBusy = busy.then((ok) => {
      this.#anchorBusy = null;
      if (ok && this.#anchorWant !== null) this.#anchorFlush();
    });
  }

  #rotate(): void {
    fs.closeSync(this.#fd);
    let n = nextRotation(this.file);
    while (fs.existsSync(`${this.file}.${n}`)) n++; // another name in the way
    fs.renameSync(this.file, `${this.file}.${n}`);
    this.#fd = fs.openSync(this.file, 'a', 0o600);
    this.#size = 0;
    // The new file's first record names its predecessor; seq and prev continue.
    // Written at once so the head checkpoint moves into the new file.
    this.append('log_rotated', 'info', { previous_file: `${this.file}.${n}`, key_id: this.#keyId });
    this.#prune();
    this.flush();
  }

  /** Flushes and closes the file. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#flushSafely();
    if (this.#headTimer !== null) clearTimeout(this.#headTimer);
    this.#headTimer = null;
    this.#closed = true;
    openLogs.delete(this);
    if (openLogs.size === 0) process.removeListener('exit', flushOpenLogs);
    fs.closeSync(this.#fd);
    this.#hmac.destroy();
  }

  /**
   * Verifies a log file: the chain from its genesis, every MAC, every line's
   * bytes against the canonical form of its record, and the signed head
   * checkpoint beside it (a missing head fails unless `allowMissingHead`).
   * A file that continues a rotated chain (its first record `log_rotated`)
   * is verified with its predecessors, found beside it by the names the
   * chain records; `previousMac`/`previousSeq` instead link it explicitly.
   * With `anchor` (an `AuditAnchor`'s `read()`), a log behind the anchor, or
   * with another record at the anchored seq, fails (a rollback of log and
   * head together). Without an anchor such a rollback is NOT detectable.
   * A key that is not the log's gives `reason: 'wrong_key'` and the log's
   * `keyId`. Never throws for a bad log; throws for a bad key argument or an
   * unreadable file.
   */
  static verify(file: string, key: string | Uint8Array, options: AuditVerifyOptions = {}): AuditVerification {
    return verifyFile(file, key, options);
  }

  /** Verifies rotated files and the live one as one chain, oldest first (options as for `verify`). */
  static verifyChain(files: string[], key: string | Uint8Array, options: AuditVerifyOptions = {}): AuditVerification {
    return verifyFiles(files, key, options);
  }
}
