/**
 * What the gate is asked and what it answers: the request and decision
 * shapes every stage and caller shares.
 */
import type { Car } from '../canonical/car';

export type GateSource = 'validation' | 'quarantine' | 'velocity' | 'replay' | 'permit' | 'cache' | 'policy' | 'approval' | 'error';

export interface GateDecision {
  decision: 'allow' | 'deny' | 'pending';
  source: GateSource;
  reason: string;
  /** null only when the CAR itself was invalid. */
  car_hash: string | null;
  policy_version: number;
  trust_score: number;
  /** 1 for decisions from a rule or a check; 0.5 for a policy default or an audit/permissive override. */
  confidence: number;
  /** With a velocity deny: when to retry. */
  retry_after_ms?: number;
  /** A pending decision's approval request (and the decisions an approval made). */
  approval_id?: string;
  /** When that request (and a grant of it) ends. */
  approval_expires_at?: number;
}

export interface GateRequest {
  car: Car | Record<string, unknown>;
  permit?: string;
  nonce?: string;
  sessionId?: string;
  /**
   * The credential that asks (the IPC server passes the connection's token
   * role or peer uid): recorded in an approval request this check opens, and
   * never accepted as its approver.
   */
  requester?: string;
  /**
   * Who is asking, where the caller knows (the IPC server passes its client:
   * the peer uid or the connection): a request nonce then counts against
   * this client's share of the nonce store as well as the agent's.
   */
  client?: string;
}
