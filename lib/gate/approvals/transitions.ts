/**
 * What happens to an approval request, as pure functions of its record and
 * the moment: the in-process book (./book.ts) applies them at once, the fleet
 * book (./fleet-book.ts) through Redis compare-and-set. Keeping the rules in
 * one place is what makes the two books decide alike.
 */
import { randomBytes } from 'node:crypto';
import { canonicalizeJson } from '../../canonical/car';
import { sha256Hex } from '../../crypto/hash';
import { ErrorCodes, GuardError } from '../../errors';
import { IdentityMatcher, type RuleApproval } from '../../policy/compile';
import type { ApprovalRequest } from './types';

export const APPROVAL_ID = /^apr_[A-Za-z0-9_-]{22}$/;

/** Random bytes for ids, drawn from the CSPRNG 256 ids at a time (one randomBytes call per id cost as much as the rest of opening a request). */
const ID_BYTES = 16;
const IDS_PER_DRAW = 256;
let idPool = Buffer.alloc(0);
let idAt = 0;

/** A fresh request id: 128 random bits, each byte used once. */
export function newApprovalId(): string {
  if (idAt + ID_BYTES > idPool.length) {
    idPool = randomBytes(ID_BYTES * IDS_PER_DRAW);
    idAt = 0;
  }
  const id = 'apr_' + idPool.toString('base64url', idAt, idAt + ID_BYTES);
  idPool.fill(0, idAt, idAt + ID_BYTES); // a used id's bytes are not kept
  idAt += ID_BYTES;
  return id;
}

/** What the gate knows when a check comes out `pending`. */
export interface PendingCheck {
  carHash: string;
  /** The whole CAR (validated: it hashed). */
  car: Record<string, unknown>;
  sessionId: string | null;
  requester: string | null;
  rule: string;
  policyVersion: number;
  settings: RuleApproval;
  now: number;
}

/**
 * The check's outcome against the request that stands for its CAR:
 * - `pending`: that request is open; the answer repeats its id;
 * - `use`: it was granted: `next` (status used) must be stored, then allow;
 * - `denied`: it was denied and has not expired;
 * - `open`: a new request `next` must be stored (and `close`, the old one
 *   ended by time or by a policy change, first).
 */
export type Resolution =
  | { kind: 'pending'; request: ApprovalRequest }
  | { kind: 'use'; request: ApprovalRequest; next: ApprovalRequest }
  | { kind: 'denied'; request: ApprovalRequest }
  | { kind: 'open'; next: ApprovalRequest; close: ApprovalRequest | null };

/** The request a pending check meets, decided. `existing`: the one that stands for this CAR hash, if any. */
export function resolvePending(existing: ApprovalRequest | null, c: PendingCheck): Resolution {
  let close: ApprovalRequest | null = null;
  if (existing !== null && existing.car_hash === c.carHash) {
    const live = existing.status === 'pending' || existing.status === 'granted' || existing.status === 'denied';
    if (live && existing.policy_version === c.policyVersion && c.now < existing.expires_at) {
      if (existing.status === 'pending') return { kind: 'pending', request: existing };
      if (existing.status === 'granted') return { kind: 'use', request: existing, next: { ...existing, status: 'used', used_at: c.now } };
      return { kind: 'denied', request: existing };
    }
    // Ended by time, or made under another policy version: it no longer fits.
    if (existing.status === 'pending' || existing.status === 'granted') {
      close = expire(existing, c.now, existing.policy_version === c.policyVersion ? null : `policy version ${c.policyVersion} replaced ${existing.policy_version}`);
    }
  }
  return { kind: 'open', next: openRequest(c), close };
}

/** The request a pending check opens. */
export function openRequest(c: PendingCheck): ApprovalRequest {
  return {
    id: newApprovalId(),
    status: 'pending',
    car_hash: c.carHash,
    car: redactedCar(c.car, c.settings.redact),
    agent_id: c.car.agent_id as string,
    action_type: c.car.action_type as string,
    session_id: c.sessionId,
    rule: c.rule,
    policy_version: c.policyVersion,
    requested_at: c.now,
    expires_at: c.now + c.settings.ttlMs,
    requester: c.requester,
    approvers: c.settings.approvers === null ? null : [...c.settings.approvers],
    min_approvals: c.settings.minApprovals,
    approvals: [],
    decided_by: null,
    decided_at: null,
    reason: null,
    used_at: null,
  };
}

/** `r` ended by time (or, with `why`, by a policy change). */
export function expire(r: ApprovalRequest, now: number, why: string | null = null): ApprovalRequest {
  return { ...r, status: 'expired', decided_at: now, reason: why ?? r.reason };
}

/** True when `r` is still pending or granted but its time is up: it must be expired. */
export function isDue(r: ApprovalRequest, now: number): boolean {
  return (r.status === 'pending' || r.status === 'granted') && now >= r.expires_at;
}

/**
 * The CAR as the approver reads it: canonical (a copy parsed from its RFC
 * 8785 text), each redacted field replaced by `sha256:` + the hex digest of
 * its canonical JSON. A digest still lets someone who guesses a short value
 * confirm the guess; redact keeps secrets out of sight, not out of reach.
 */
export function redactedCar(car: Record<string, unknown>, redact: readonly string[][]): Record<string, unknown> {
  const copy = JSON.parse(canonicalizeJson(car)) as Record<string, unknown>;
  for (const segments of redact) {
    let o: unknown = copy;
    for (let i = 0; i < segments.length - 1 && typeof o === 'object' && o !== null && !Array.isArray(o); i++) {
      o = Object.hasOwn(o, segments[i]) ? (o as Record<string, unknown>)[segments[i]] : undefined;
    }
    const last = segments[segments.length - 1];
    if (typeof o === 'object' && o !== null && !Array.isArray(o) && Object.hasOwn(o, last)) {
      const rec = o as Record<string, unknown>;
      rec[last] = 'sha256:' + sha256Hex(canonicalizeJson(rec[last]));
    }
  }
  return copy;
}

export interface Vote {
  approver: string;
  reason?: string;
}

function closed(r: ApprovalRequest): GuardError {
  return new GuardError(ErrorCodes.APPROVAL_CLOSED, `approval ${r.id} is ${r.status}, no longer pending`);
}

/**
 * Who may decide `r`: never the credential that asked, nor the agent itself;
 * where the rule names approvers, only a credential matching one.
 */
function checkApprover(r: ApprovalRequest, approver: string): void {
  if (typeof approver !== 'string' || approver.length === 0 || approver.length > 256) {
    throw new GuardError(ErrorCodes.INVALID_ARGUMENT, 'approver must be a non-empty string of at most 256 characters');
  }
  if (approver === r.agent_id || (r.requester !== null && approver === r.requester)) {
    throw new GuardError(ErrorCodes.FORBIDDEN, `${approver} made this request and cannot decide it (self-approval)`);
  }
  if (r.approvers !== null && !new IdentityMatcher(r.approvers).matches(approver)) {
    throw new GuardError(ErrorCodes.FORBIDDEN, `${approver} is not among the approvers of rule ${r.rule}`);
  }
}

function checkReason(reason: unknown): string | null {
  if (reason === undefined || reason === null) return null;
  if (typeof reason !== 'string' || reason.length > 1024) throw new GuardError(ErrorCodes.INVALID_ARGUMENT, 'reason must be a string of at most 1024 characters');
  return reason;
}

/** `r` with `vote` counted: granted once min_approvals distinct approvers agree. Throws when the vote is refused. */
export function approve(r: ApprovalRequest, vote: Vote, now: number): ApprovalRequest {
  checkApprover(r, vote.approver);
  const reason = checkReason(vote.reason);
  if (r.status !== 'pending') throw closed(r);
  if (r.approvals.some((v) => v.approver === vote.approver)) {
    throw new GuardError(ErrorCodes.FORBIDDEN, `${vote.approver} has already approved ${r.id}; it needs ${r.min_approvals} distinct approvers`);
  }
  const approvals = [...r.approvals, { approver: vote.approver, at: now, reason }];
  if (approvals.length < r.min_approvals) return { ...r, approvals };
  return { ...r, approvals, status: 'granted', decided_by: vote.approver, decided_at: now, reason };
}

/** `r` denied by `vote`. Throws when the vote is refused. */
export function deny(r: ApprovalRequest, vote: Vote, now: number): ApprovalRequest {
  checkApprover(r, vote.approver);
  const reason = checkReason(vote.reason);
  if (r.status !== 'pending') throw closed(r);
  return { ...r, status: 'denied', decided_by: vote.approver, decided_at: now, reason };
}

/** The audit record type and fields of a change to `r`. */
export function auditOf(r: ApprovalRequest, extra?: Record<string, unknown>): { type: string; fields: Record<string, unknown> } {
  const type = r.status === 'pending' ? (r.approvals.length > 0 ? 'approval_voted' : 'approval_requested') : `approval_${r.status}`;
  const fields: Record<string, unknown> = {
    approval_id: r.id,
    car_hash: r.car_hash,
    agent_id: r.agent_id,
    action_type: r.action_type,
    rule: r.rule,
    policy_version: r.policy_version,
    expires_at: r.expires_at,
  };
  if (r.session_id !== null) fields.session_id = r.session_id;
  if (r.requester !== null) fields.requester = r.requester;
  if (r.status === 'pending' && r.approvals.length > 0) {
    const v = r.approvals[r.approvals.length - 1];
    fields.approver = v.approver;
    fields.approvals = r.approvals.length;
    fields.min_approvals = r.min_approvals;
    if (v.reason !== null) fields.reason = v.reason;
  } else if (r.decided_by !== null && (r.status === 'granted' || r.status === 'denied')) {
    fields.approver = r.decided_by;
    if (r.status === 'granted') fields.approvers = r.approvals.map((v) => v.approver);
    if (r.reason !== null) fields.reason = r.reason;
  } else if (r.status === 'expired' && r.reason !== null) fields.reason = r.reason;
  return { type, fields: extra === undefined ? fields : Object.assign(fields, extra) };
}
