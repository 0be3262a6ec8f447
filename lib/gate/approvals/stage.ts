/**
 * The gate's approval stage: a `pending` policy decision checked against the
 * approval request that stands for its CAR (./book.ts, ./fleet-book.ts), and
 * the answer that request gives.
 */
import type { Car } from '../../canonical/car';
import type { RuleApproval } from '../../policy/compile';
import type { GateDecision, GateRequest } from '../decision';
import type { PendingCheck, Resolution } from './transitions';

/** What the books need to know about a pending check. */
export function pendingCheck(d: GateDecision, car: Car, hash: string, request: GateRequest | undefined, settings: RuleApproval, now: number): PendingCheck {
  return {
    carHash: hash,
    car: car as unknown as Record<string, unknown>,
    sessionId: typeof request?.sessionId === 'string' ? request.sessionId : null,
    requester: typeof request?.requester === 'string' ? request.requester : null,
    rule: car.action_type,
    policyVersion: d.policy_version,
    settings,
    now,
  };
}

/** The answer the approval stage gives: pending with the request's id, a granted request's one allow, a denied request's deny; null (the book is full) denies. */
export function approvalDecision(res: Resolution | null, c: PendingCheck, trust: number): GateDecision {
  const base = { car_hash: c.carHash, policy_version: c.policyVersion, trust_score: trust, confidence: 1 };
  if (res === null) return { decision: 'deny', source: 'approval', reason: 'too many open approval requests (for this agent or in all; fail closed)', ...base };
  if (res.kind === 'use') {
    const r = res.request;
    return { decision: 'allow', source: 'approval', reason: `approval ${r.id} granted by ${r.decided_by ?? 'an approver'} (used once)`, ...base, approval_id: r.id, approval_expires_at: r.expires_at };
  }
  if (res.kind === 'denied') {
    const r = res.request;
    return { decision: 'deny', source: 'approval', reason: `approval ${r.id} denied by ${r.decided_by ?? 'an approver'}${r.reason === null ? '' : `: ${r.reason}`}`, ...base, approval_id: r.id, approval_expires_at: r.expires_at };
  }
  const r = res.kind === 'pending' ? res.request : res.next;
  return { decision: 'pending', source: 'policy', reason: `rule ${c.rule} requires approval`, ...base, approval_id: r.id, approval_expires_at: r.expires_at };
}
