/**
 * GuardClient: talks to `guardkernel serve` over its Unix socket. Requests
 * are pipelined on one connection (matched by id), each with a timeout; a
 * dropped connection fails what was pending and the next call reconnects.
 */
import net from 'node:net';
import { GuardError, describe } from '../errors';
import type { GateDecision } from '../gate/gate';
import { LineReader } from './line-reader';
import type { RpcError } from './jsonrpc';

export interface GuardClientOptions {
  /** Per-request timeout, ms. Default 5000. */
  timeoutMs?: number;
  /** Largest reply line accepted, bytes. Default 16 MiB. */
  maxLineBytes?: number;
}

/** A JSON-RPC error reply, as an exception. */
export class RpcCallError extends Error {
  constructor(
    readonly rpcCode: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
    this.name = 'RpcCallError';
  }
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
  async call<T = unknown>(method: string, params?: Record<string, unknown>): Promise<T> {
    if (this.#closed) throw new GuardError('ERR_CLOSED', 'GuardClient has been closed');
    const socket = await this.#ensure();
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${method}: no reply within ${this.#timeoutMs} ms`));
      }, this.#timeoutMs);
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
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

  close(): void {
    this.#closed = true;
    this.#socket?.end();
    this.#failAll(new Error('client closed'));
  }
}
