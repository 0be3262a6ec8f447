/**
 * GuardClient: talks to `guardkernel serve` over its Unix socket. Requests
 * are pipelined on one connection (matched by id), each with a timeout; a
 * dropped connection fails what was pending and the next call reconnects.
 */
import net from 'node:net';
import { GuardError, describe } from '../errors';
import type { ApprovalRequest, ApprovalStatus, ApprovalWaitResult } from '../gate/approvals/types';
import type { GateDecision } from '../gate/gate';
import { LineReader } from './line-reader';
import type { RpcError } from './jsonrpc';

export interface GuardClientOptions {
  /** Per-request timeout, ms. Default 5000. */
  timeoutMs?: number;
  /** Largest reply line accepted, bytes. Default 16 MiB. */
  maxLineBytes?: number;
}

/**
 * Stable codes for the JSON-RPC protocol errors, where the reply names no
 * guardkernel code of its own (`error.data.code`).
 */
export const RPC_ERROR_CODES: Readonly<Record<number, string>> = Object.freeze({
  [-32700]: 'ERR_PARSE',
  [-32600]: 'ERR_INVALID_REQUEST',
  [-32601]: 'ERR_METHOD_NOT_FOUND',
  [-32602]: 'ERR_INVALID_PARAMS',
  [-32603]: 'ERR_INTERNAL',
  [-32000]: 'ERR_APPLICATION',
  [-32001]: 'ERR_UNAUTHORIZED',
  [-32002]: 'ERR_AUTH_BLOCKED',
});

/**
 * A JSON-RPC error reply, shaped like GuardError: `.code` is the stable
 * `ERR_*` string (the server's `error.data.code`, else the protocol error's
 * name from RPC_ERROR_CODES), `.path` the offending input's dotted path
 * where the server named one (policy errors). `.rpcCode` is the JSON-RPC
 * number, `.data` the reply's data as sent.
 */
export class RpcCallError extends Error {
  readonly code: string;
  readonly path?: string;

  constructor(
    readonly rpcCode: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
    this.name = 'RpcCallError';
    const d = typeof data === 'object' && data !== null ? (data as { code?: unknown; path?: unknown }) : {};
    this.code = typeof d.code === 'string' ? d.code : (Object.hasOwn(RPC_ERROR_CODES, rpcCode) ? RPC_ERROR_CODES[rpcCode] : 'ERR_RPC');
    if (typeof d.path === 'string') this.path = d.path;
  }
}

export type { ApprovalRequest, ApprovalStatus, ApprovalVote, ApprovalWaitResult } from '../gate/approvals/types';

/** The longest wait one approval_wait call may ask for (the server's cap), ms. */
export const APPROVAL_WAIT_MAX_MS = 3_600_000;
/** What approval_wait waits when no timeout is given (the server's default), ms. */
export const APPROVAL_WAIT_DEFAULT_MS = 30_000;
/**
 * waitForApproval asks for at most this much per approval_wait call, so a
 * long wait is many short calls: each one keeps the connection from looking
 * idle to the server, and a dropped connection costs at most one call.
 */
const APPROVAL_WAIT_SLICE_MS = 30_000;

export interface WaitForApprovalOptions {
  /** How long to wait in all, ms (a positive integer). */
  timeoutMs: number;
  /** Stops the wait: the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /**
   * Where the server requires tokens: the token to authenticate again with
   * after a reconnect (a new connection has no session). Without it, a wait
   * that has to reconnect to such a server fails with its -32001 reply.
   */
  authToken?: string;
}

/** A gate decision as it travels over the socket: the Gate's own shape. */
export type GateDecisionWire = GateDecision;

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

export class GuardClient {
  readonly socketPath: string;
  readonly #timeoutMs: number;
  readonly #maxLineBytes: number;
  #socket: net.Socket | null = null;
  #connecting: Promise<net.Socket> | null = null;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed = false;
  #role: 'agent' | 'operator' | null = null;

  private constructor(socketPath: string, options: GuardClientOptions) {
    this.socketPath = socketPath;
    this.#timeoutMs = options.timeoutMs ?? 5000;
    this.#maxLineBytes = options.maxLineBytes ?? 16 << 20;
  }

  static async connect(socketPath: string, options: GuardClientOptions = {}): Promise<GuardClient> {
    if (typeof socketPath !== 'string' || socketPath.length === 0) throw new TypeError(`Expected a socket path but received ${describe(socketPath)}`);
    const c = new GuardClient(socketPath, options);
    await c.#ensure();
    return c;
  }

  #ensure(): Promise<net.Socket> {
    if (this.#socket !== null && !this.#socket.destroyed) return Promise.resolve(this.#socket);
    if (this.#connecting) return this.#connecting;
    this.#connecting = new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(this.socketPath);
      const reader = new LineReader(this.#maxLineBytes, {
        line: (text) => this.#onReply(text),
        overflow: () => s.destroy(new Error('reply line too long')),
        invalid: () => s.destroy(new Error('reply line is not valid UTF-8')),
      });
      s.on('data', (chunk: Buffer) => reader.push(chunk));
      s.once('connect', () => {
        this.#socket = s;
        this.#connecting = null;
        resolve(s);
      });
      s.on('error', (err) => {
        if (this.#connecting) {
          this.#connecting = null;
          reject(err);
        }
      });
      s.on('close', () => {
        if (this.#socket === s) this.#socket = null;
        this.#failAll(new Error('connection closed'));
      });
    });
    return this.#connecting;
  }

  #onReply(text: string): void {
    let msg: { id?: unknown; result?: unknown; error?: RpcError };
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    const replies = Array.isArray(msg) ? msg : [msg];
    for (const r of replies) {
      const p = typeof r.id === 'number' ? this.#pending.get(r.id) : undefined;
      if (p === undefined) continue;
      this.#pending.delete(r.id as number);
      clearTimeout(p.timer);
      if (r.error) p.reject(new RpcCallError(r.error.code, r.error.message, r.error.data));
      else p.resolve(r.result);
    }
  }

  #failAll(err: Error): void {
    for (const [id, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(err);
      this.#pending.delete(id);
    }
  }

  /** Calls `method` with params by name; resolves with its result or rejects with RpcCallError. */
  call<T = unknown>(method: string, params?: Record<string, unknown>): Promise<T> {
    return this.#request<T>(method, params, this.#timeoutMs);
  }

  /** call() with its own time limit (ms) and, optionally, a signal that stops waiting for the reply. */
  async #request<T>(method: string, params: Record<string, unknown> | undefined, timeoutMs: number, signal?: AbortSignal): Promise<T> {
    if (this.#closed) throw new GuardError('ERR_CLOSED', 'GuardClient has been closed');
    signal?.throwIfAborted();
    const socket = await this.#ensure();
    signal?.throwIfAborted();
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        const p = this.#pending.get(id);
        if (p === undefined) return;
        this.#pending.delete(id);
        clearTimeout(p.timer);
        reject(signal!.reason);
      };
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        signal?.removeEventListener('abort', onAbort);
        reject(new Error(`${method}: no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      const settle = <V>(fn: (v: V) => void) => (v: V) => {
        signal?.removeEventListener('abort', onAbort);
        fn(v);
      };
      this.#pending.set(id, { resolve: settle(resolve as (v: unknown) => void), reject: settle(reject), timer });
      signal?.addEventListener('abort', onAbort, { once: true });
      socket.write(JSON.stringify(params === undefined ? { jsonrpc: '2.0', id, method } : { jsonrpc: '2.0', id, method, params }) + '\n');
    });
  }

  /** Sends a notification (no reply). */
  async notify(method: string, params?: Record<string, unknown>): Promise<void> {
    const socket = await this.#ensure();
    socket.write(JSON.stringify(params === undefined ? { jsonrpc: '2.0', method } : { jsonrpc: '2.0', method, params }) + '\n');
  }

  // One typed method per RPC (params by name, as on the wire).
  ping(): Promise<'pong'> {
    return this.call('ping');
  }
  version(): Promise<{ version: string; protocol: '2.0'; backends: Record<string, unknown>; role: 'agent' | 'operator' }> {
    return this.call<{ version: string; protocol: '2.0'; backends: Record<string, unknown>; role: 'agent' | 'operator' }>('version').then((v) => {
      this.#role = v.role;
      return v;
    });
  }
  /** Authenticates this connection; the result (and `role`) says which role the token gave. */
  auth(token: string): Promise<{ session_id: string; expires_at: number; role: 'agent' | 'operator' }> {
    return this.call<{ session_id: string; expires_at: number; role: 'agent' | 'operator' }>('auth', { token }).then((r) => {
      this.#role = r.role;
      return r;
    });
  }
  /** The role the server gave this connection, as last reported by `auth` or `version`; null before either. */
  get role(): 'agent' | 'operator' | null {
    return this.#role;
  }
  hashCar(car: Record<string, unknown>): Promise<{ car_hash: string }> {
    return this.call('hash_car', { car });
  }
  gateCheck(params: { car: Record<string, unknown>; permit?: string; nonce?: string; session_id?: string }): Promise<GateDecisionWire> {
    return this.call('gate_check', params);
  }
  gateCheckBatch(requests: Array<{ car: Record<string, unknown>; permit?: string; nonce?: string; session_id?: string }>): Promise<{ decisions: GateDecisionWire[] }> {
    return this.call('gate_check_batch', { requests });
  }
  cacheGet(carHash: string): Promise<{ hit: boolean; decision?: string; reason?: string; policy_version?: number; expires_at?: number }> {
    return this.call('cache_get', { car_hash: carHash });
  }
  cachePut(params: { car_hash: string; decision: 'allow' | 'deny' | 'pending'; ttl_ms?: number; reason?: string }): Promise<{ ok: true }> {
    return this.call('cache_put', params);
  }
  cacheInvalidate(carHash?: string): Promise<{ removed: number }> {
    return this.call('cache_invalidate', carHash === undefined ? {} : { car_hash: carHash });
  }
  cacheStats(): Promise<{ entries: number; capacity: number; hits: number; misses: number; evictions: number; expirations: number }> {
    return this.call('cache_stats');
  }
  createPermit(params: { car?: Record<string, unknown>; car_hash?: string; agent_id: string; ttl_ms: number; use?: 'once' | 'multi' }): Promise<{ permit: string; jti: string; expires_at: number }> {
    return this.call('create_permit', params);
  }
  verifyPermit(params: { permit: string; car?: Record<string, unknown>; car_hash?: string }): Promise<{ valid: boolean; reason?: string; claims?: Record<string, unknown> }> {
    return this.call('verify_permit', params);
  }
  checkReplay(nonce: string, ttlMs: number): Promise<{ status: 'fresh' | 'replay' | 'saturated' }> {
    return this.call('check_replay', { nonce, ttl_ms: ttlMs });
  }
  replayStats(): Promise<{ size: number; capacity: number; replays: number; saturated: number }> {
    return this.call('replay_stats');
  }
  /** The policy's MCP tool → action type mapping for one server (agent role). */
  mcpToolActions(serverId: string): Promise<{ version: number; tools: Record<string, string> }> {
    return this.call('mcp_tool_actions', { server_id: serverId });
  }
  policyGet(): Promise<{ version: number; mode: string; document: Record<string, unknown> | null }> {
    return this.call('policy_get');
  }
  policyReload(policy?: Record<string, unknown> | string): Promise<{ version: number }> {
    return this.call('policy_reload', policy === undefined ? {} : { policy });
  }
  quarantine(params: { agent_id: string; reason: string; isolation?: string | string[]; forensic?: 'none' | 'metadata' | 'full' }): Promise<Record<string, unknown>> {
    return this.call('quarantine', params);
  }
  quarantineList(): Promise<{ agents: Array<Record<string, unknown>> }> {
    return this.call('quarantine_list');
  }
  /** The process sandbox profile the agent's quarantine requires (`gate.sandboxFor`). */
  sandboxProfile(agentId: string): Promise<{ allowed: boolean; reason?: string; network?: 'none' | 'loopback' | 'host'; readOnly?: boolean }> {
    return this.call('sandbox_profile', { agent_id: agentId });
  }
  quarantineRecover(agentId: string, reason?: string): Promise<Record<string, unknown>> {
    return this.call('quarantine_recover', reason === undefined ? { agent_id: agentId } : { agent_id: agentId, reason });
  }
  quarantineTerminate(agentId: string, reason?: string): Promise<Record<string, unknown>> {
    return this.call('quarantine_terminate', reason === undefined ? { agent_id: agentId } : { agent_id: agentId, reason });
  }
  auditVerify(): Promise<{ ok: boolean; records: number; lastGoodSeq: number; firstBad?: Record<string, unknown> }> {
    return this.call('audit_verify');
  }
  metrics(): Promise<Record<string, unknown>> {
    return this.call('metrics');
  }

  // Approvals (operator; approval_get and approval_wait also for the agent credential that made the request).
  /** The approval requests the server keeps, or those in one status. */
  async approvalList(status?: ApprovalStatus): Promise<{ approvals: ApprovalRequest[] }> {
    return this.call('approval_list', status === undefined ? {} : { status });
  }
  async approvalGet(id: string): Promise<ApprovalRequest> {
    return this.call('approval_get', { id: approvalId(id) });
  }
  /** Votes to grant a request; the server records this connection's credential as the approver. Resolves with the request after the vote. */
  async approvalApprove(id: string, reason?: string): Promise<ApprovalRequest> {
    return this.call('approval_approve', reason === undefined ? { id: approvalId(id) } : { id: approvalId(id), reason: approvalReason(reason) });
  }
  async approvalDeny(id: string, reason?: string): Promise<ApprovalRequest> {
    return this.call('approval_deny', reason === undefined ? { id: approvalId(id) } : { id: approvalId(id), reason: approvalReason(reason) });
  }
  /**
   * One approval_wait call: resolves with the request once it is no longer
   * pending, or, when `timeoutMs` (default 30 s, at most one hour) runs out
   * first, with the still-pending request and `timed_out: true`. This call's
   * own reply limit is `timeoutMs` plus the client's timeout (not the
   * client's timeout alone).
   */
  async approvalWait(id: string, timeoutMs?: number): Promise<ApprovalWaitResult> {
    return this.#approvalWait(id, timeoutMs);
  }

  async #approvalWait(id: string, timeoutMs: number | undefined, signal?: AbortSignal): Promise<ApprovalWaitResult> {
    if (timeoutMs !== undefined && (!Number.isInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > APPROVAL_WAIT_MAX_MS)) {
      throw new RangeError(`Expected an integer from 0 to ${APPROVAL_WAIT_MAX_MS} for timeoutMs but received ${describe(timeoutMs)}`);
    }
    const params = timeoutMs === undefined ? { id: approvalId(id) } : { id: approvalId(id), timeout_ms: timeoutMs };
    return this.#request('approval_wait', params, (timeoutMs ?? APPROVAL_WAIT_DEFAULT_MS) + this.#timeoutMs, signal);
  }

  /**
   * Waits until request `id` is no longer pending (granted, denied, expired
   * or used) or `timeoutMs` has passed, as a series of approval_wait calls.
   * A dropped connection, or a server that is restarting, is retried (the
   * next call reconnects; with `authToken`, it authenticates again) until the
   * time is up. Resolves with the request: final, or still pending with
   * `timed_out: true`. Rejects with the server's RpcCallError (not found,
   * forbidden), with the signal's reason when aborted, and with an Error
   * when no answer came at all before the time was up.
   */
  async waitForApproval(id: string, options: WaitForApprovalOptions): Promise<ApprovalWaitResult> {
    approvalId(id);
    const { timeoutMs, signal, authToken } = options ?? ({} as WaitForApprovalOptions);
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new RangeError(`Expected a positive integer for options.timeoutMs but received ${describe(timeoutMs)}`);
    if (authToken !== undefined && typeof authToken !== 'string') throw new TypeError(`Expected a string for options.authToken but received ${describe(authToken)}`);
    signal?.throwIfAborted();
    const deadline = Date.now() + timeoutMs;
    let last: ApprovalWaitResult | null = null;
    let lastError: unknown = null;
    let backoffMs = 50;
    let justAuthenticated = false;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      try {
        const r = await this.#approvalWait(id, Math.min(left, APPROVAL_WAIT_SLICE_MS), signal);
        justAuthenticated = false;
        backoffMs = 50;
        if (r.status !== 'pending') return r;
        last = r;
        continue;
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        if (this.#closed) throw err;
        const unauthenticated = err instanceof RpcCallError && err.rpcCode === -32001 && (err.data as { code?: unknown } | undefined)?.code === 'ERR_UNAUTHORIZED';
        if (unauthenticated && authToken !== undefined && !justAuthenticated) {
          // A reconnected connection has no session yet.
          await this.auth(authToken);
          justAuthenticated = true;
          continue;
        }
        // The server's answer (not found, forbidden, bad params) and our own argument errors are final;
        // a refused or dropped connection, or a call with no reply, is tried again.
        if (err instanceof RpcCallError || err instanceof GuardError || err instanceof TypeError || err instanceof RangeError) throw err;
        lastError = err;
      }
      await sleepUnlessAborted(Math.min(backoffMs, Math.max(0, deadline - Date.now())), signal);
      backoffMs = Math.min(backoffMs * 2, 1000);
    }
    if (last !== null) return { ...last, timed_out: true };
    const why = lastError instanceof Error ? `: ${lastError.message}` : '';
    throw new Error(`waitForApproval ${id}: no answer from ${this.socketPath} within ${timeoutMs} ms${why}`);
  }

  close(): void {
    this.#closed = true;
    this.#socket?.end();
    this.#failAll(new Error('client closed'));
  }
}

/** An approval request id: `apr_` and 22 base64url characters. */
export const APPROVAL_ID_PATTERN = /^apr_[A-Za-z0-9_-]{22}$/;

function approvalId(id: unknown): string {
  if (typeof id !== 'string' || !APPROVAL_ID_PATTERN.test(id)) throw new TypeError(`Expected an approval id (apr_ and 22 base64url characters) but received ${typeof id === 'string' ? JSON.stringify(id.slice(0, 64)) : describe(id)}`);
  return id;
}

function approvalReason(reason: unknown): string {
  if (typeof reason !== 'string') throw new TypeError(`Expected a string for reason but received ${describe(reason)}`);
  return reason;
}

function sleepUnlessAborted(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
