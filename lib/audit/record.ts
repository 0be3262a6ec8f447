/**
 * The audit record of a gate decision, written straight into bytes.
 *
 * Why: the gate appends one record per decision, and walking that 13-key
 * object generically (keys, symbols, layout lookup, a dispatch per value)
 * was a quarter of the server's time per request. The record's shape is
 * fixed, so its JCS form is constant byte runs, known in advance, between
 * its values. This writes exactly the bytes `canonicalizeJson` produces for
 * the same record (the tests hold the two to byte equality), or gives up
 * (-1) on anything unusual so the generic path in lib/audit/log.ts decides.
 */
import { CanonicalWriter } from '../canonical/writer';
import { DEFAULT_MAX_BYTES } from '../canonical/car';

/** The fields the gate records for a decision that has a CAR hash (lib/gate/pipeline.ts). */
export interface DecisionRecordFields {
  decision: string;
  source: string;
  reason: string;
  car_hash: string;
  policy_version: number;
  agent_id: string;
  action_type: string;
  session_id?: string;
}

/** The rest of a sealed record: the log's own fields. */
export interface RecordHeader {
  seq: number;
  ts: number;
  type: string;
  severity: string;
  /** The previous record's MAC as its 64 hex digits' bytes (the caller checks they are hex). */
  prev: Uint8Array;
}

const CAR_HASH = /^sha256:[0-9a-f]{64}$/;
const GIVE_UP = -1;

const ascii = (s: string): Buffer => Buffer.from(s, 'latin1');
// The record's keys in JCS (UTF-16) order, with the punctuation between them.
const K_ACTION_TYPE = ascii('{"action_type":');
const K_AGENT_ID = ascii(',"agent_id":');
const K_CAR_HASH = ascii(',"car_hash":');
const K_DECISION = ascii(',"decision":');
const K_POLICY_VERSION = ascii(',"policy_version":');
const K_PREV = ascii(',"prev":');
const K_REASON = ascii(',"reason":');
const K_SEQ = ascii(',"seq":');
const K_SESSION_ID = ascii(',"session_id":');
const K_SEVERITY = ascii(',"severity":');
const K_SOURCE = ascii(',"source":');
const K_TS = ascii(',"ts":');
const K_TYPE = ascii(',"type":');

const writer = new CanonicalWriter();
writer.rejectUnsafeIntegers = false; // audit records are plain JSON
writer.maxDepth = 1;

/**
 * Writes `prev` (the MAC input's prefix) and then the canonical record into
 * the writer's buffer; returns the end offset, or -1 when the generic path
 * must decide (a string JCS cannot carry, a hash not in CAR-hash form, a
 * record past the size limit).
 */
export function writeDecisionRecord(h: RecordHeader, f: DecisionRecordFields): number {
  if (typeof f.car_hash !== 'string' || !CAR_HASH.test(f.car_hash)) return GIVE_UP;
  // The writer trusts types: anything else is the generic path's to judge.
  if (typeof f.agent_id !== 'string' || typeof f.action_type !== 'string' || typeof f.reason !== 'string' || typeof f.decision !== 'string' || typeof f.source !== 'string') return GIVE_UP;
  if (typeof f.policy_version !== 'number' || typeof h.seq !== 'number' || typeof h.ts !== 'number' || typeof h.type !== 'string' || typeof h.severity !== 'string') return GIVE_UP;
  if (f.session_id !== undefined && typeof f.session_id !== 'string') return GIVE_UP;
  const w = writer;
  w.pos = 0;
  w.limit = DEFAULT_MAX_BYTES;
  w.stop = 0;
  w.block(h.prev);
  w.start = w.pos;
  w.bytes(K_ACTION_TYPE);
  w.string(f.action_type);
  w.bytes(K_AGENT_ID);
  w.string(f.agent_id);
  w.bytes(K_CAR_HASH);
  w.quotedAscii(f.car_hash);
  w.bytes(K_DECISION);
  w.string(f.decision);
  w.bytes(K_POLICY_VERSION);
  w.number(f.policy_version);
  w.bytes(K_PREV);
  w.quotedBytes(h.prev);
  w.bytes(K_REASON);
  w.string(f.reason);
  w.bytes(K_SEQ);
  w.number(h.seq);
  if (f.session_id !== undefined) {
    w.bytes(K_SESSION_ID);
    w.string(f.session_id);
  }
  w.bytes(K_SEVERITY);
  w.string(h.severity);
  w.bytes(K_SOURCE);
  w.string(f.source);
  w.bytes(K_TS);
  w.number(h.ts);
  w.bytes(K_TYPE);
  w.string(h.type);
  w.byte(0x7d);
  // The writer gives up on values JCS cannot carry; the generic path names them.
  if (w.stop !== 0 || w.pos - w.start > DEFAULT_MAX_BYTES) return GIVE_UP;
  return w.pos;
}

/** The buffer `writeDecisionRecord` wrote into (valid until its next call). */
export function decisionRecordScratch(): Buffer {
  return writer.buf;
}
