/** The audit log's vocabulary: security event types and severities. */

export const SECURITY_EVENT_TYPES = [
  'auth_success',
  'auth_failure',
  'access_denied',
  'rate_limited',
  'session_created',
  'session_expired',
  'invalid_session',
  'path_traversal_attempt',
  'input_validation_failure',
  'output_filtered',
  'resource_limit_exceeded',
  'model_hash_mismatch',
  'sandbox_violation',
  'policy_reloaded',
  'replay_detected',
  'permit_rejected',
  'permit_accepted',
  'permit_issued',
  'cache_changed',
  'quarantine_changed',
  'gate_decision',
  'log_rotated',
  'log_pruned',
  'log_anchor_conflict',
  'compliance_status_changed',
  'approval_requested',
  'approval_voted',
  'approval_granted',
  'approval_denied',
  'approval_expired',
  'approval_used',
  'approval_refused',
  'approval_change_lost',
  'approval_listener_failed',
  'webhook_failed',
  'webhook_dropped',
  'store_unavailable',
  'store_recovered',
] as const;

export type SecurityEventType = (typeof SECURITY_EVENT_TYPES)[number];
export type Severity = 'debug' | 'info' | 'warning' | 'error' | 'critical';

export const SEVERITIES: ReadonlySet<string> = new Set(['debug', 'info', 'warning', 'error', 'critical']);
/** What `append` accepts as a type: the listed ones and application-defined ones of the same form. */
export const EVENT_TYPE = /^[a-z][a-z0-9_.]{0,63}$/;
