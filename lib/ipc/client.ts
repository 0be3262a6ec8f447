/**
 * GuardClient: talks to `guardkernel serve` over its Unix socket. Requests
 * are pipelined on one connection (matched by id), each with a timeout; a
 * dropped connection fails what was pending and the next call reconnects.
 */
import net from 'node:net';
import { GuardError, describe } from '../errors';
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

  ping(): Promise<'pong'> {
    return this.call('ping');
  }

  gateCheck(params: { car: Record<string, unknown>; permit?: string; nonce?: string; session_id?: string }): Promise<Record<string, unknown>> {
    return this.call('gate_check', params);
  }

  auth(token: string): Promise<{ session_id: string; expires_at: number }> {
    return this.call('auth', { token });
  }

  close(): void {
    this.#closed = true;
    this.#socket?.end();
    this.#failAll(new Error('client closed'));
  }
}
