/**
 * ApprovalJournal: the durable record of approval requests for
 * `guardkernel serve`, so open requests and their decisions survive a restart.
 *
 * JSONL, one full snapshot of a request per line; the latest line for an id
 * wins. `write` appends and fsyncs before it returns, so whatever a caller
 * acknowledged survives a SIGKILL or power loss. The one exception is a write
 * with `{ sync: false }` (the gate opening a new request, on its hot path): it
 * is appended at once (it survives a SIGKILL) and fsynced at the next turn of
 * the event loop, together with every other such line (one fsync instead of
 * one per request: on a disk an fsync takes ~0.1 ms, and a burst of pending
 * decisions held the server's event loop that long each). A power loss before
 * that fsync can lose only such a line: an open request nobody could have
 * approved yet, so the caller's approval is not found and the call stays
 * refused (fail closed). Any synced write or `close()` fsyncs it too. Reading is strict and fails
 * closed: a bad line in the middle is an error naming it (a gate that started
 * without its decisions could allow what an operator denied). Only a last
 * line without its newline is forgiven: that write never returned, so nothing
 * acted on it. The file is compacted (latest snapshots only, requests expired
 * for a day dropped) by writing `<file>.tmp`, fsyncing it, renaming it over
 * the file and fsyncing the directory: a crash leaves the old or the new file.
 * The state directory may be shared, so no symlink is followed and a file
 * someone else owns or can write is refused.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCodes, GuardError, describe } from '../../errors';
import type { ApprovalRequest } from './types';

/** Requests whose expiry is further back than this are dropped at compaction. */
const KEEP_AFTER_EXPIRY_MS = 24 * 60 * 60 * 1000;
/** Compaction on write: past this many lines per live request, and this size. */
const COMPACT_FACTOR = 4;
const COMPACT_MIN_BYTES = 1 << 20;

const ID = /^apr_[A-Za-z0-9_-]{22}$/;
const CAR_HASH = /^sha256:[0-9a-f]{64}$/;
const STATUSES = new Set(['pending', 'granted', 'denied', 'expired', 'used']);
const FIELDS = new Set([
  'id', 'status', 'car_hash', 'car', 'agent_id', 'action_type', 'session_id', 'rule', 'policy_version', 'requested_at', 'expires_at',
  'requester', 'approvers', 'min_approvals', 'approvals', 'decided_by', 'decided_at', 'reason', 'used_at',
]);
const VOTE_FIELDS = new Set(['approver', 'at', 'reason']);
/** Strict UTF-8: a line with invalid bytes is refused, never repaired. */
const UTF8 = new TextDecoder('utf-8', { fatal: true });

export interface ApprovalJournalOptions {
  /** Most requests kept (open and ended); a new one beyond it is refused. Default 100000. */
  maxRecords?: number;
  /** ms since the epoch, for dropping long-expired requests. Default `Date.now`. */
  clock?: () => number;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isTime = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;
const isStringOrNull = (v: unknown): boolean => v === null || typeof v === 'string';

/** What is wrong with `v` as an ApprovalRequest, or null when nothing is. */
function defect(v: unknown): string | null {
  if (!isObject(v)) return 'not an object';
  for (const k of Object.keys(v)) if (!FIELDS.has(k)) return `unknown field ${JSON.stringify(k.slice(0, 64))}`;
  for (const k of FIELDS) if (!Object.hasOwn(v, k)) return `missing field "${k}"`;
  if (typeof v.id !== 'string' || !ID.test(v.id)) return 'bad id';
  if (typeof v.status !== 'string' || !STATUSES.has(v.status)) return 'bad status';
  if (typeof v.car_hash !== 'string' || !CAR_HASH.test(v.car_hash)) return 'bad car_hash';
  if (!isObject(v.car)) return 'bad car';
  for (const k of ['agent_id', 'action_type', 'rule'] as const) if (typeof v[k] !== 'string') return `bad ${k}`;
  for (const k of ['session_id', 'requester', 'decided_by', 'reason'] as const) if (!isStringOrNull(v[k])) return `bad ${k}`;
  for (const k of ['policy_version', 'requested_at', 'expires_at'] as const) if (!isTime(v[k])) return `bad ${k}`;
  for (const k of ['decided_at', 'used_at'] as const) if (v[k] !== null && !isTime(v[k])) return `bad ${k}`;
  if (!Number.isSafeInteger(v.min_approvals) || (v.min_approvals as number) < 1) return 'bad min_approvals';
  if (v.approvers !== null && !(Array.isArray(v.approvers) && v.approvers.every((a) => typeof a === 'string'))) return 'bad approvers';
  if (!Array.isArray(v.approvals)) return 'bad approvals';
  for (const a of v.approvals) {
    if (!isObject(a) || Object.keys(a).length !== VOTE_FIELDS.size || !Object.keys(a).every((k) => VOTE_FIELDS.has(k))) return 'bad approvals';
    if (typeof a.approver !== 'string' || !isTime(a.at) || !isStringOrNull(a.reason)) return 'bad approvals';
  }
  return null;
}

/** Opens `file` without following a symlink at it (O_NOFOLLOW; an lstat check where the platform lacks it). */
function openNoFollow(file: string, flags: number): number {
  const noFollow = fs.constants.O_NOFOLLOW;
  if (noFollow === undefined && fs.lstatSync(file, { throwIfNoEntry: false })?.isSymbolicLink()) throw symlinkError(file);
  try {
    return fs.openSync(file, flags | (noFollow ?? 0), 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw symlinkError(file);
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`The approval journal's directory ${path.dirname(file)} does not exist`, { cause: err });
    throw err;
  }
}

const symlinkError = (file: string) => new Error(`Refusing the approval journal ${file}: it is a symbolic link`);

function fsyncDir(dir: string): void {
  if (process.platform === 'win32') return; // directories cannot be opened there; rename is durable enough
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function writeAll(fd: number, bytes: Buffer): void {
  for (let off = 0; off < bytes.length; ) off += fs.writeSync(fd, bytes, off, bytes.length - off);
}

export class ApprovalJournal {
  readonly file: string;
  readonly #maxRecords: number;
  readonly #clock: () => number;
  #fd: number | null;
  /** The latest line per id, in the order ids first appeared, and when each request expires. */
  readonly #live = new Map<string, { line: string; expiresAt: number }>();
  #lines = 0;
  #size = 0;
  /** The size from which a write compacts (raised after a compaction failed). */
  #compactAt = COMPACT_MIN_BYTES;
  /** A write whose outcome on disk is unknown: nothing later is acknowledged. */
  #failed: Error | null = null;
  /** Lines appended with `sync: false` and not yet fsynced (one fsync for all, at the next turn). */
  #unsynced = false;
  #syncScheduled = false;

  private constructor(file: string, fd: number, maxRecords: number, clock: () => number) {
    this.file = file;
    this.#fd = fd;
    this.#maxRecords = maxRecords;
    this.#clock = clock;
  }

  /**
   * Opens (or creates, mode 0600) the journal at `file` and returns the
   * requests it holds, compacted, oldest first. Throws for a file it cannot
   * trust: a symlink, not a regular file, another owner's or group/world
   * writable, or any bad line but a torn last one.
   */
  static open(file: string, options: ApprovalJournalOptions = {}): { journal: ApprovalJournal; requests: ApprovalRequest[] } {
    if (typeof file !== 'string' || file.length === 0) throw new TypeError(`Expected a file path for file but received ${describe(file)}`);
    if (typeof options !== 'object' || options === null) throw new TypeError(`Expected options for ApprovalJournal.open but received ${describe(options)}`);
    const { maxRecords = 100_000, clock = Date.now } = options;
    if (!Number.isSafeInteger(maxRecords) || maxRecords < 1) throw new RangeError(`Expected a positive integer for maxRecords but received ${describe(maxRecords)}`);
    if (typeof clock !== 'function') throw new TypeError(`Expected a function for clock but received ${describe(clock)}`);
    const fd = openNoFollow(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_APPEND);
    const journal = new ApprovalJournal(file, fd, maxRecords, clock);
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw new Error(`Refusing the approval journal ${file}: not a regular file`);
      if (typeof process.getuid === 'function' && st.uid !== process.getuid()) throw new Error(`Refusing the approval journal ${file}: owned by uid ${st.uid}, not this process's`);
      if ((st.mode & 0o022) !== 0) throw new Error(`Refusing the approval journal ${file}: writable by others (mode ${(st.mode & 0o777).toString(8)})`);
      const requests = journal.#load(fs.readFileSync(fd));
      journal.#compact();
      if (journal.#live.size > maxRecords) throw new Error(`The approval journal ${file} holds ${journal.#live.size} requests, more than maxRecords (${maxRecords})`);
      const kept = requests.filter((r) => journal.#live.has(r.id)).sort((a, b) => a.requested_at - b.requested_at);
      return { journal, requests: kept };
    } catch (err) {
      journal.close();
      throw err;
    }
  }

  /** Parses the file's bytes strictly; returns the latest snapshot per id. */
  #load(data: Buffer): ApprovalRequest[] {
    const latest = new Map<string, ApprovalRequest>();
    let start = 0;
    for (let n = 1; ; n++) {
      const nl = data.indexOf(0x0a, start);
      if (nl < 0) break; // what follows the last newline (if anything) is a torn write: dropped
      let value: unknown;
      let why: string | null;
      try {
        value = JSON.parse(UTF8.decode(data.subarray(start, nl)));
        why = defect(value);
      } catch (err) {
        why = err instanceof SyntaxError ? 'not JSON' : 'not UTF-8';
      }
      if (why !== null) throw new Error(`The approval journal ${this.file} is damaged at line ${n}: ${why}. Refusing to start rather than lose approval decisions.`);
      const r = value as ApprovalRequest;
      latest.set(r.id, r);
      this.#live.set(r.id, { line: data.toString('utf8', start, nl), expiresAt: r.expires_at });
      this.#lines++;
      start = nl + 1;
    }
    return [...latest.values()];
  }

  /**
   * Appends one snapshot of `request` and fsyncs it before returning: only
   * then may the caller act on it. Throws when the journal is closed, the
   * request is malformed, the journal is full, or the write fails (then the
   * caller fails closed). With `sync: false` the fsync comes at the next turn
   * of the event loop (see the top of this file): only for a line whose loss
   * fails closed.
   */
  write(request: ApprovalRequest, options?: { sync?: boolean }): void {
    if (this.#fd === null) throw new GuardError(ErrorCodes.CLOSED, 'The approval journal is closed');
    if (this.#failed !== null) throw new Error(`The approval journal ${this.file} failed earlier and takes no more writes: ${this.#failed.message}`, { cause: this.#failed });
    const line = JSON.stringify(request) as string | undefined; // may throw (a BigInt): the caller's error
    const copy: unknown = line === undefined ? undefined : JSON.parse(line);
    const why = defect(copy); // checked as it will be read back
    if (why !== null) throw new TypeError(`Expected an ApprovalRequest for request but received one with ${why}`);
    const r = copy as ApprovalRequest;
    if (!this.#live.has(r.id) && this.#live.size >= this.#maxRecords) {
      this.#tryCompact(); // long-expired requests make room
      if (this.#live.size >= this.#maxRecords) throw new RangeError(`The approval journal is full (maxRecords ${this.#maxRecords})`);
    }
    const bytes = Buffer.from(`${line}\n`, 'utf8');
    const sync = options?.sync !== false;
    try {
      writeAll(this.#fd, bytes);
      if (sync) {
        fs.fsyncSync(this.#fd);
        this.#unsynced = false; // the fsync covered the deferred lines too
      }
    } catch (err) {
      this.#undoAppend(err as Error);
      throw new Error(`The approval journal ${this.file} could not be written: ${(err as Error).message}`, { cause: err });
    }
    if (!sync) this.#deferSync();
    this.#live.set(r.id, { line: line!, expiresAt: r.expires_at });
    this.#lines++;
    this.#size += bytes.length;
    if (this.#lines > COMPACT_FACTOR * this.#live.size && this.#size >= this.#compactAt) this.#tryCompact();
  }

  /** Has the deferred lines fsynced at the next turn of the event loop. */
  #deferSync(): void {
    this.#unsynced = true;
    if (this.#syncScheduled) return;
    this.#syncScheduled = true;
    setImmediate(() => {
      this.#syncScheduled = false;
      this.#syncDeferred();
    });
  }

  /** fsyncs the deferred lines; a failure stops the journal (no later write is acknowledged). */
  #syncDeferred(): void {
    if (!this.#unsynced || this.#fd === null) return;
    try {
      fs.fsyncSync(this.#fd);
      this.#unsynced = false;
    } catch (err) {
      this.#failed ??= err as Error;
    }
  }

  /** Cuts a partial line back off, so a restart does not find it as a bad middle line. */
  #undoAppend(err: Error): void {
    try {
      fs.ftruncateSync(this.#fd!, this.#size);
      fs.fsyncSync(this.#fd!);
    } catch {
      this.#failed = err;
    }
    // After a failed fsync the kernel may have dropped pages while reporting later fsyncs clean.
    if ((err as NodeJS.ErrnoException).syscall === 'fsync') this.#failed = err;
  }

  /** Compaction on write: the record is durable already, so a failure only postpones it (until another MiB is written). */
  #tryCompact(): void {
    try {
      this.#compact();
      this.#compactAt = COMPACT_MIN_BYTES;
    } catch {
      this.#compactAt = this.#size + COMPACT_MIN_BYTES;
    }
  }

  /** Rewrites the file with the latest snapshot per id, long-expired requests dropped: tmp, fsync, rename, fsync dir. */
  #compact(): void {
    const now = this.#clock();
    for (const [id, e] of this.#live) if (now - e.expiresAt > KEEP_AFTER_EXPIRY_MS) this.#live.delete(id);
    let text = '';
    for (const e of this.#live.values()) text += `${e.line}\n`;
    const bytes = Buffer.from(text, 'utf8');
    const tmp = `${this.file}.tmp`;
    fs.rmSync(tmp, { force: true }); // a leftover (or a planted symlink: removed, never followed)
    const fd = openNoFollow(tmp, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_APPEND);
    let renamed = false;
    try {
      writeAll(fd, bytes);
      fs.fsyncSync(fd);
      fs.renameSync(tmp, this.file);
      renamed = true;
      fsyncDir(path.dirname(this.file));
    } catch (err) {
      if (!renamed) {
        fs.closeSync(fd);
        fs.rmSync(tmp, { force: true });
        throw err;
      }
      this.#failed = err as Error; // the new file is in place, but its name may not survive a crash
    }
    // fd (opened on tmp) is now the file: keep appending to it.
    fs.closeSync(this.#fd!);
    this.#fd = fd;
    this.#lines = this.#live.size;
    this.#size = bytes.length;
    if (this.#failed !== null) throw this.#failed;
  }

  /** Closes the file; later writes throw. Idempotent. */
  close(): void {
    if (this.#fd === null) return;
    this.#syncDeferred();
    const fd = this.#fd;
    this.#fd = null;
    fs.closeSync(fd);
  }
}
