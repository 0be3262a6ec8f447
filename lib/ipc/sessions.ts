/**
 * Sessions and authorization on the socket: whether a connection may call a
 * method now (a session where tokens are required, then its role), and
 * `auth`. Refusals go to the audit throttle; successes are audited as they
 * happen.
 */
import crypto from 'node:crypto';
import type { AuditLog } from '../audit/log';
import { AGENT_METHODS, OPEN_METHODS, type AccessControl, type Role } from './access';
import type { AuditThrottle } from './audit-throttle';
import type { Connection } from './connection';
import { RpcErrors, RpcFault } from './jsonrpc';
import { ErrorCodes } from '../errors';

export class Sessions {
  constructor(
    private readonly access: AccessControl,
    private readonly refusals: AuditThrottle,
    private readonly audit: () => AuditLog | undefined,
    private readonly sessionTtlMs: number,
  ) {}

  /** True when methods that need a session may run on this connection now (authorize's test). */
  hasSession(conn: Connection): boolean {
    if (!this.access.tokensRequired) return true;
    const s = conn.session;
    return s !== null && s.expiresAt > Date.now();
  }

  /** Throws (an RpcFault) unless this connection may call `method` now: a session where tokens are required, and the role. */
  authorize(method: string, conn: Connection): void {
    if (!OPEN_METHODS.has(method) && !this.hasSession(conn)) {
      if (conn.session !== null) {
        conn.session = null;
        this.audit()?.append('session_expired', 'info', { connection: conn.id });
      }
      this.refusals.note('invalid_session', 'warning', conn.client, { connection: conn.id, method });
      throw new RpcFault(-32001, 'Unauthorized: call auth first', { code: ErrorCodes.UNAUTHORIZED });
    }
    if (conn.role !== 'operator' && !AGENT_METHODS.has(method)) {
      this.refusals.note('access_denied', 'warning', conn.client, { connection: conn.id, method, role: conn.role });
      throw new RpcFault(RpcErrors.APPLICATION_ERROR, `Forbidden: ${method} needs the operator role`, { code: 'ERR_FORBIDDEN' });
    }
  }

  auth(token: string, conn: Connection): { session_id: string; expires_at: number; role: Role } {
    if (!this.access.tokensRequired) throw new RpcFault(-32001, 'Authentication is not enabled on this server', { code: ErrorCodes.AUTH_DISABLED });
    const now = Date.now();
    const outcome = this.access.authenticate(token, conn.client, now);
    if (!outcome.ok) {
      if ('blockedForMs' in outcome) {
        this.refusals.note('rate_limited', 'warning', conn.client, { connection: conn.id, what: 'auth', retry_after_ms: outcome.blockedForMs });
        throw new RpcFault(-32002, 'Too many failed attempts: try again later', { code: ErrorCodes.AUTH_BLOCKED, retry_after_ms: outcome.blockedForMs });
      }
      this.refusals.note('auth_failure', 'warning', conn.client, { connection: conn.id, failures: outcome.failures });
      throw new RpcFault(-32001, 'Authentication failed', { code: 'ERR_AUTH_FAILED' });
    }
    // A token raises the role the peer gave; it never lowers it.
    if (outcome.role === 'operator') conn.role = 'operator';
    conn.identity = `token:${outcome.role}`;
    conn.session = { id: crypto.randomBytes(32).toString('hex'), expiresAt: now + this.sessionTtlMs };
    this.audit()?.append('auth_success', 'info', { connection: conn.id, client: conn.client, role: conn.role });
    this.audit()?.append('session_created', 'info', { connection: conn.id, expires_at: conn.session.expiresAt });
    return { session_id: conn.session.id, expires_at: conn.session.expiresAt, role: conn.role };
  }
}
