/**
 * Approval requests: the record a `pending` decision opens, as it is kept,
 * listed, sent over the socket and to the webhook (snake_case, the wire form).
 */

export type ApprovalStatus = 'pending' | 'granted' | 'denied' | 'expired' | 'used';

/** The statuses a request ends in (no transition leaves them). */
export const FINAL_STATUSES: ReadonlySet<ApprovalStatus> = new Set(['denied', 'expired', 'used']);

export interface ApprovalVote {
  /** Who approved: an operator's credential (`token:operator`, `uid:1000`) or the name given in process. */
  approver: string;
  at: number;
  reason: string | null;
}

export interface ApprovalRequest {
  /** `apr_` + 22 base64url characters (128 random bits). */
  id: string;
  status: ApprovalStatus;
  car_hash: string;
  /** The CAR the approver reads: canonical, with the policy's `redact` fields replaced by `sha256:` digests of their canonical JSON. */
  car: Record<string, unknown>;
  agent_id: string;
  action_type: string;
  session_id: string | null;
  /** The rule (action type) that asked for approval. */
  rule: string;
  policy_version: number;
  requested_at: number;
  /** The request (and a grant) is void from this instant on. */
  expires_at: number;
  /** The credential that made the gate check (the socket client), where known. */
  requester: string | null;
  /** The rule's `approvers` globs; null: any operator. */
  approvers: string[] | null;
  /** Distinct approvers needed for a grant (the rule's `min_approvals`, default 1). */
  min_approvals: number;
  /** Approvals given so far (distinct approvers). */
  approvals: ApprovalVote[];
  /** Who decided (the last approver of a grant, or the denier); null while pending or on expiry. */
  decided_by: string | null;
  decided_at: number | null;
  /** The decider's reason, where one was given. */
  reason: string | null;
  /** When the grant was spent by the allowed check. */
  used_at: number | null;
}

/** What `gate.on('approval', fn)` receives. */
export interface ApprovalEvent {
  type: 'requested' | 'granted' | 'denied' | 'expired' | 'used';
  request: ApprovalRequest;
}

/** An approval_wait / approvals.wait answer: the request, and whether the wait ran out first. */
export type ApprovalWaitResult = ApprovalRequest & { timed_out?: boolean };
