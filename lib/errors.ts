/**
 * Stable error codes. Native code reports these strings; TypeScript builds the
 * error. Callers branch on `.code`, never on message text.
 */
export const ErrorCodes = {
  CAR_INVALID: 'ERR_CAR_INVALID',
  PERMIT_INVALID: 'ERR_PERMIT_INVALID',
  POLICY_INVALID: 'ERR_POLICY_INVALID',
  GPU_UNAVAILABLE: 'ERR_GPU_UNAVAILABLE',
  NATIVE_UNAVAILABLE: 'ERR_NATIVE_UNAVAILABLE',
  CLOSED: 'ERR_CLOSED',
  INVALID_ARGUMENT: 'ERR_INVALID_ARGUMENT',
  AUDIT_UNAVAILABLE: 'ERR_AUDIT_UNAVAILABLE',
  AUTH_FAILED: 'ERR_AUTH_FAILED',
  ENVELOPE_INVALID: 'ERR_ENVELOPE_INVALID',
  /** A fleet store (Redis) could not answer: the caller fails closed or falls back. */
  STORE_UNAVAILABLE: 'ERR_STORE_UNAVAILABLE',
  /** A synchronous call on an object whose state lives in a fleet store: use the async form. */
  STORE_ASYNC: 'ERR_STORE_ASYNC',
  /** The caller's credential may not do this (wrong role, self-approval, not an approver). */
  FORBIDDEN: 'ERR_FORBIDDEN',
  /** No approval request has this id (or it was forgotten after it ended). */
  APPROVAL_NOT_FOUND: 'ERR_APPROVAL_NOT_FOUND',
  /** The approval request is no longer pending: it cannot be decided again. */
  APPROVAL_CLOSED: 'ERR_APPROVAL_CLOSED',
  /** The process sandbox cannot enforce a confinement the caller asked for (or cannot run at all here). */
  SANDBOX_UNSUPPORTED: 'ERR_SANDBOX_UNSUPPORTED',
  /** Over the socket: a method that needs a session was called before `auth` succeeded. */
  UNAUTHORIZED: 'ERR_UNAUTHORIZED',
  /** Over the socket: too many failed `auth` attempts from this client; `retry_after_ms` says when to try again. */
  AUTH_BLOCKED: 'ERR_AUTH_BLOCKED',
  /** Over the socket: `auth` on a server that has no tokens configured. */
  AUTH_DISABLED: 'ERR_AUTH_DISABLED',
  /** Over the socket: a request past a server bound (a batch, a line's decisions, approval waits at once). */
  LIMIT: 'ERR_LIMIT',
  /** Over the socket: a line or the authentication did not arrive in time; the connection is closed. */
  DEADLINE: 'ERR_DEADLINE',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** The one error class guardkernel throws for domain failures. */
export class GuardError extends Error {
  readonly code: ErrorCode;
  /** Dotted path of the offending input, where there is one (e.g. `car.args.path`). */
  readonly path?: string;

  constructor(code: ErrorCode, message: string, options?: { path?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GuardError';
    this.code = code;
    if (options?.path !== undefined) this.path = options.path;
  }
}

/** Describes a received value for "Expected X for Y but received Z" messages. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  const t = typeof value;
  if (t === 'string') return `a string of length ${(value as string).length}`;
  if (t === 'number' || t === 'bigint' || t === 'boolean') return `${t} ${String(value)}`;
  if (t === 'object') {
    const name = (value as object).constructor?.name;
    return name ? `an instance of ${name}` : 'an object';
  }
  return t;
}
