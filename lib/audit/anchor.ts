/**
 * Audit anchors: the head checkpoint's seq and MAC, kept in a second place.
 *
 * Why: whoever can write the log's directory can put back an older copy of
 * both the log and its head checkpoint; that copy verifies on its own. An
 * anchor kept somewhere that attacker cannot write (another host, another
 * user's file, Redis: lib/fleet/audit-anchor.ts) remembers how far the log
 * had got, and `AuditLog.verify(file, key, { anchor })` fails when the log
 * is behind it or holds another record at the anchored seq.
 *
 * An anchor only moves forward: a write whose seq is not above the stored
 * one is ignored, so a writer that restarts on a rolled-back log cannot
 * lower it. The AuditLog also stops updating an anchor that its log does
 * not reach (see `AuditLog.anchorConflict`), so the evidence stays.
 */
import fs from 'node:fs';
import { describe } from '../errors';

/** What an anchor holds: the log's head at some moment. */
export interface AuditAnchorState {
  seq: number;
  /** MAC of the record at `seq` (the genesis value at seq 0). */
  mac: string;
  /** Key id of the log (`AuditLog.keyId(key)`). */
  key_id?: string;
}

/** A second place for the head: written by AuditLog after each checkpoint, read by whoever verifies. */
export interface AuditAnchor {
  /** Stores `state` if its seq is above the stored one. May be asynchronous; a rejection is reported through `AuditLog.anchorError`. */
  write(state: AuditAnchorState): void | Promise<void>;
  /** The stored state, or null when nothing was stored yet. */
  read(): AuditAnchorState | null | Promise<AuditAnchorState | null>;
}

const HEX_MAC = /^[0-9a-f]{64}$/;

/** A state read from storage, checked: null when it is not one. */
export function parseAnchorState(value: unknown): AuditAnchorState | null {
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Record<string, unknown>;
  if (!Number.isSafeInteger(v.seq) || (v.seq as number) < 0 || typeof v.mac !== 'string' || !HEX_MAC.test(v.mac)) return null;
  if (v.key_id !== undefined && typeof v.key_id !== 'string') return null;
  const state: AuditAnchorState = { seq: v.seq as number, mac: v.mac };
  if (v.key_id !== undefined) state.key_id = v.key_id as string;
  return state;
}

export function checkAnchorState(state: unknown, what: string): AuditAnchorState {
  const s = parseAnchorState(state);
  if (s === null) throw new TypeError(`Expected { seq, mac } (an anchor state) for ${what} but received ${describe(state)}`);
  return s;
}

/**
 * An anchor in a file (JSON, replaced atomically). Put it where the writer of
 * the log may write but an attacker of the log's directory may not, e.g. a
 * directory owned by another user that the service can write through a
 * group, or a mounted append-only store.
 */
export class FileAuditAnchor implements AuditAnchor {
  readonly file: string;

  constructor(file: string) {
    if (typeof file !== 'string' || file.length === 0) throw new TypeError(`Expected a file path for the anchor but received ${describe(file)}`);
    this.file = file;
  }

  read(): AuditAnchorState | null {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = null;
    }
    const state = parseAnchorState(parsed);
    // A damaged anchor is not "no anchor": that would switch the check off.
    if (state === null) throw new Error(`Audit anchor ${this.file} is not a valid anchor`);
    return state;
  }

  write(state: AuditAnchorState): void {
    const s = checkAnchorState(state, 'the anchor state');
    const stored = this.read();
    if (stored !== null && stored.seq >= s.seq) return; // only forward
    const tmp = `${this.file}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(s) + '\n', { mode: 0o600 });
    fs.renameSync(tmp, this.file);
  }
}
