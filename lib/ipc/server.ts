/**
 * GuardServer: JSON-RPC 2.0 over a Unix socket, one JSON value per line.
 *
 * Hardening: the socket file is created with mode 0600 (configurable); a live
 * socket at the path is refused, a stale one replaced; request lines are
 * bounded (an error reply, then the connection closes, and the oversized line
 * is never buffered whole); connections are bounded; each connection handles
 * its lines in order with a bounded queue, and stops reading while the queue
 * is full or the peer is not reading replies (backpressure); idle connections
 * are closed. Methods have two roles (lib/ipc/access.ts): an agent may ask,
 * only an operator may change state; a refused call is ERR_FORBIDDEN and
 * audited. With tokens, every method but ping, version and auth needs the
 * connection to have authenticated; failures are limited per client (its
 * uid where the kernel names it, else the connection: 5 per 60 s, then 30 s
 * blocked) so one client cannot lock out the others, nor shed its own
 * history by reconnecting.
 */
import fs from 'node:fs';
import net from 'node:net';
import { ErrorCodes, describe } from '../errors';
import { AccessControl, peerOf } from './access';
import { AuditThrottle } from './audit-throttle';
import { Sessions } from './sessions';
import { displaceable, type Connection } from './connection';
import { decisionJson } from './decision-json';
import { GateLineReader, carOfLine, type GateLine } from './gate-line';
import { DEFAULT_LINE_LIMITS, JsonRpcDispatcher, RpcErrors, failureText, type MethodSpec } from './jsonrpc';
import { LineReader } from './line-reader';
import { SERVICE_METHODS, type ServiceContext } from './methods';

/**
 * Replies gathered before they are written mid-burst (about 37 gate_check
 * replies). Small enough that a pipelining client gets its first replies
 * while the rest of its burst is still being decided, so the two processes
 * overlap instead of taking turns; large enough that the write system calls
 * stay a small share. Measured against 64 KiB, 16 KiB and 4 KiB: see README.
 */
const REPLY_FLUSH_BYTES = 8192;

/** How long a connection that sent an oversized line is drained before it is closed. */
const LINGER_MS = 2000;
/** approval_wait replies one connection, and the server, may owe at once. */
const MAX_WAITS_PER_CONNECTION = 16;
const MAX_WAITS = 1024;
/** The answer to a line that is not valid UTF-8: a parse error, as for any line that is not JSON. */
const INVALID_UTF8_REPLY = JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: RpcErrors.PARSE_ERROR, message: 'Parse error: the line is not valid UTF-8' } });

export interface GuardServerOptions {
  socketPath: string;
  context: ServiceContext;
  /** File mode of the socket. Default 0o600. */
  socketMode?: number;
  /** Default 1 MiB. */
  maxLineBytes?: number;
  /** Default 64. */
  maxConnections?: number;
  /** Lines queued per connection before it stops reading. Default 32. */
  maxInFlight?: number;
  /** Default 60000. */
  idleTimeoutMs?: number;
  /**
   * The operator role's token (the name predates roles; `operatorToken` is
   * the same). When any token is set, clients must `auth` first. At least 16 bytes.
   */
  authToken?: Uint8Array;
  /** Token that authenticates the operator role. At least 16 bytes. */
  operatorToken?: Uint8Array;
  /** Token that authenticates the agent role. At least 16 bytes. */
  agentToken?: Uint8Array;
  /**
   * Peer uids that have the operator role (the kernel's SO_PEERCRED /
   * getpeereid). Without tokens the server's own uid is operator as well.
   */
  operatorUids?: readonly number[];
  /** Default 3600000. */
  sessionTtlMs?: number;
  /** Most requests in one JSON-RPC batch array; a longer batch is one error and no work. Default 1000. */
  maxBatch?: number;
  /** Most decisions one line may ask for, counting each gate_check_batch's requests. Default 10000. */
  maxLineWork?: number;
  /**
   * Refusals a client can repeat (no session, wrong role, failed or blocked
   * auth) are audited once per client and type in this many ms, then as one
   * record with `repeated: N`. Default 10000.
   */
  auditIntervalMs?: number;
  /** A request line must be complete this many ms after its first byte, or the connection is closed. Default 10000. */
  lineDeadlineMs?: number;
  /** Where tokens are required: a connection must authenticate within this many ms. Default 10000. */
  authDeadlineMs?: number;
  /**
   * New connections one client (peer uid) may open per second, with bursts
   * of twice that; past it a connection is closed at once. Default 100.
   */
  connectionsPerSecond?: number;
  /**
   * Answer plain gate_check lines through the native fast path
   * (lib/ipc/gate-line.ts) where the addon is loaded and the gate is
   * in-process. The replies are the same either way; false is for comparing
   * the two. Default true.
   */
  gateLineFastPath?: boolean;
}


export class GuardServer {
  readonly socketPath: string;
  readonly #opts: Required<Omit<GuardServerOptions, 'authToken' | 'operatorToken' | 'agentToken' | 'operatorUids' | 'context' | 'gateLineFastPath'>>;
  readonly #access: AccessControl;
  readonly #sessions: Sessions;
  /** Refusals a client can repeat at will: one record per client, type and interval (with a count). */
  readonly #refusals: AuditThrottle;
  readonly #context: ServiceContext;
  readonly #dispatcher: JsonRpcDispatcher<Connection>;
  /** null: every line goes to the dispatcher. */
  readonly #gateLines: GateLineReader | null;
  readonly #connections = new Set<Connection>();
  #server: net.Server | null = null;
  #nextId = 1;
  #closing = false;
  /** approval_wait replies outstanding, all connections. */
  #waits = 0;

  constructor(options: GuardServerOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError(`Expected options but received ${describe(options)}`);
    const { socketPath, context, socketMode = 0o600, maxLineBytes = 1 << 20, maxConnections = 64, maxInFlight = 32, idleTimeoutMs = 60_000, authToken, sessionTtlMs = 3_600_000, gateLineFastPath = true, maxBatch = DEFAULT_LINE_LIMITS.maxBatch, maxLineWork = DEFAULT_LINE_LIMITS.maxWork, operatorToken, agentToken, operatorUids, auditIntervalMs = 10_000, lineDeadlineMs = 10_000, authDeadlineMs = 10_000, connectionsPerSecond = 100 } = options;
    if (typeof socketPath !== 'string' || socketPath.length === 0) throw new TypeError(`Expected a socket path but received ${describe(socketPath)}`);
    for (const [name, v, min] of [['maxLineBytes', maxLineBytes, 64], ['maxConnections', maxConnections, 1], ['maxInFlight', maxInFlight, 1], ['idleTimeoutMs', idleTimeoutMs, 100], ['sessionTtlMs', sessionTtlMs, 1000], ['maxBatch', maxBatch, 1], ['maxLineWork', maxLineWork, 1], ['auditIntervalMs', auditIntervalMs, 1], ['lineDeadlineMs', lineDeadlineMs, 1], ['authDeadlineMs', authDeadlineMs, 1], ['connectionsPerSecond', connectionsPerSecond, 1]] as const) {
      if (!Number.isSafeInteger(v) || v < min) throw new RangeError(`Expected an integer >= ${min} for ${name} but received ${describe(v)}`);
    }
    if (typeof gateLineFastPath !== 'boolean') throw new TypeError(`Expected a boolean for gateLineFastPath but received ${describe(gateLineFastPath)}`);
    if (!Number.isInteger(socketMode) || socketMode < 0 || socketMode > 0o777) throw new RangeError(`Expected a file mode for socketMode but received ${describe(socketMode)}`);
    for (const [name, t] of [['authToken', authToken], ['operatorToken', operatorToken], ['agentToken', agentToken]] as const) {
      if (t !== undefined && (!(t instanceof Uint8Array) || t.byteLength < 16)) throw new RangeError(`Expected ${name} of at least 16 bytes`);
    }
    if (authToken !== undefined && operatorToken !== undefined) throw new TypeError('Give authToken or operatorToken (the same role), not both');
    if (operatorUids !== undefined && (!Array.isArray(operatorUids) || operatorUids.some((u) => !Number.isSafeInteger(u) || u < 0))) {
      throw new TypeError(`Expected operatorUids as an array of uids but received ${describe(operatorUids)}`);
    }
    if (agentToken !== undefined && operatorToken === undefined && authToken === undefined && !(operatorUids ?? []).length) {
      // Agents would authenticate and nobody could operate: almost surely a mistake.
      throw new TypeError('An agentToken without an operator credential (operatorToken or operatorUids) leaves the server without an operator');
    }
    this.#refusals = new AuditThrottle(() => this.#context.gate.audit, auditIntervalMs);
    this.#access = new AccessControl({ agentToken, operatorToken: operatorToken ?? authToken, operatorUids, socketMode, connectionsPerSecond });
    this.#sessions = new Sessions(this.#access, this.#refusals, () => this.#context.gate.audit, sessionTtlMs);
    this.socketPath = socketPath;
    this.#opts = { socketPath, socketMode, maxLineBytes, maxConnections, maxInFlight, idleTimeoutMs, sessionTtlMs, maxBatch, maxLineWork, auditIntervalMs, lineDeadlineMs, authDeadlineMs, connectionsPerSecond };
    this.#context = context;
    const methods: Record<string, MethodSpec<Connection>> = {};
    for (const [name, spec] of Object.entries(SERVICE_METHODS)) {
      methods[name] = {
        params: spec.params,
        cost: spec.cost,
        handler: (p, conn) => {
          // Read synchronously by the handler: nonce quota per client, requester and approver, detached waits.
          const ctx = this.#context;
          ctx.client = conn.client;
          ctx.identity = conn.identity;
          ctx.role = conn.role;
          ctx.detach = () => this.#detach(conn);
          return spec.handler(p, ctx);
        },
      };
    }
    methods.auth = { params: { token: { type: 'string', required: true } }, handler: (p, conn) => this.#sessions.auth(p.token as string, conn) };
    // version also says which role this connection has.
    const version = methods.version.handler;
    methods.version = { ...methods.version, handler: (p, conn) => ({ ...(version(p, conn) as object), role: conn.role }) };
    this.#dispatcher = new JsonRpcDispatcher(methods, { maxBatch, maxWork: maxLineWork }, (method, conn) => this.#sessions.authorize(method, conn));
    this.#gateLines = gateLineFastPath && context.gate.store === null ? GateLineReader.create() : null;
  }

  /** Starts listening. Refuses a live socket at the path; replaces a stale one. */
  async listen(): Promise<void> {
    let existing: fs.Stats | null = null;
    try {
      existing = fs.lstatSync(this.socketPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (existing !== null) {
      // Only a socket may be replaced: a regular file, directory or symlink at
      // the path is someone's data (or a trap), never deleted.
      if (!existing.isSocket()) throw new Error(`${this.socketPath} exists and is not a socket; refusing to start (remove it or choose another --socket)`);
      const live = await new Promise<boolean>((resolve) => {
        const probe = net.connect(this.socketPath);
        probe.once('connect', () => {
          probe.destroy();
          resolve(true);
        });
        probe.once('error', () => resolve(false));
      });
      if (live) throw new Error(`Another server is listening on ${this.socketPath}; refusing to start`);
      fs.unlinkSync(this.socketPath); // stale: left by a server that died
    }
    const server = net.createServer((socket) => this.#accept(socket));
    // No server.maxConnections: #accept admits, displacing a slow or unauthenticated connection when full.
    // Create the socket file with no permissions for others, then set the mode.
    const oldMask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.socketPath, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } finally {
      process.umask(oldMask);
    }
    fs.chmodSync(this.socketPath, this.#opts.socketMode);
    this.#server = server;
  }

  /** Stops accepting, finishes queued requests, closes connections, removes the socket file. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    const server = this.#server;
    const closed = server ? new Promise<void>((r) => server.close(() => r())) : Promise.resolve();
    // Let each connection finish what it has queued, then end it.
    await Promise.all([...this.#connections].map((c) => this.#drain(c)));
    for (const c of this.#connections) c.socket.end();
    await Promise.race([closed, new Promise((r) => setTimeout(r, 2000))]);
    for (const c of this.#connections) c.socket.destroy();
    try {
      // Ours only if it is still a socket (something else may have been put there since).
      if (fs.lstatSync(this.socketPath).isSocket()) fs.unlinkSync(this.socketPath);
    } catch {
      // already gone
    }
    this.#refusals.close();
    this.#context.gate.audit?.flush();
  }

  get connections(): number {
    return this.#connections.size;
  }

  #accept(socket: net.Socket): void {
    if (this.#closing) {
      socket.destroy();
      return;
    }
    if (this.#connections.size >= this.#opts.maxConnections) {
      const victim = displaceable(this.#connections, this.#access.tokensRequired, Date.now());
      if (victim === null) {
        this.#context.metrics.connections_refused = (this.#context.metrics.connections_refused ?? 0) + 1;
        socket.destroy();
        return;
      }
      this.#context.metrics.connections_displaced = (this.#context.metrics.connections_displaced ?? 0) + 1;
      this.#drop(victim);
    }
    const peer = peerOf(socket);
    if (!this.#access.admitConnection(peer, Date.now())) {
      // Reconnecting fast does not buy more guesses or slots: refused before anything is read.
      this.#context.metrics.connections_rate_limited = (this.#context.metrics.connections_rate_limited ?? 0) + 1;
      this.#refusals.note('rate_limited', 'warning', `uid:${peer!.uid}`, { what: 'connect' });
      socket.destroy();
      return;
    }
    const id = this.#nextId++;
    let reader: LineReader | null = null;
    const conn: Connection = {
      id,
      socket,
      queue: [],
      busy: false,
      session: null,
      peer,
      client: this.#access.clientKey(peer, id),
      role: this.#access.roleOfPeer(peer),
      pendingBytes: () => reader?.buffered ?? 0,
      lineTimer: null,
      identity: this.#access.identityOf(peer, id),
      waits: 0,
      detachNext: false,
    };
    this.#connections.add(conn);
    this.#context.metrics.connections_total = (this.#context.metrics.connections_total ?? 0) + 1;
    // A connection waiting on an approval is not idle.
    socket.setTimeout(this.#opts.idleTimeoutMs, () => {
      if (conn.waits === 0) socket.destroy();
    });
    // Where tokens are required, a connection has authDeadlineMs to authenticate.
    const authTimer = this.#access.tokensRequired
      ? setTimeout(() => {
          if (conn.session === null) this.#expire(conn, 'auth', `no auth within ${this.#opts.authDeadlineMs} ms`);
        }, this.#opts.authDeadlineMs)
      : null;
    authTimer?.unref();
    let linesSeen = 0;
    reader = new LineReader(this.#opts.maxLineBytes, {
      line: (text) => {
        linesSeen++;
        if (text.trim() === '') return;
        conn.queue.push(text);
        if (conn.queue.length >= this.#opts.maxInFlight) socket.pause();
      },
      // Answered in its place in the order, as a parse error (null marks it).
      invalid: () => {
        linesSeen++;
        conn.queue.push(null);
        if (conn.queue.length >= this.#opts.maxInFlight) socket.pause();
      },
      overflow: () => {
        this.#context.metrics.oversized_lines = (this.#context.metrics.oversized_lines ?? 0) + 1;
        const reply = { jsonrpc: '2.0', id: null, error: { code: RpcErrors.INVALID_REQUEST, message: `Invalid Request: line longer than ${this.#opts.maxLineBytes} bytes` } };
        // Reply and close our side. Then linger: what the client is still
        // sending is read and thrown away (the reader keeps nothing once it
        // has overflowed), so its writes do not fail with EPIPE before it has
        // read the reply; after LINGER_MS the connection is closed for good.
        socket.end(JSON.stringify(reply) + '\n');
        socket.resume();
        const linger = setTimeout(() => socket.destroy(), LINGER_MS);
        socket.once('close', () => clearTimeout(linger));
      },
    });
    // Answer once per chunk, after all its lines are queued: the replies to a
    // pipelined burst then leave in one write.
    socket.on('data', (chunk: Buffer) => {
      const before = linesSeen;
      reader!.push(chunk);
      // A request line must be whole within lineDeadlineMs of its first byte:
      // trickling a byte now and then keeps the idle timer alive, not this one.
      if (reader!.buffered === 0 || reader!.overflowed) this.#clearLineTimer(conn);
      else if (conn.lineTimer === null || linesSeen !== before) {
        this.#clearLineTimer(conn);
        conn.lineTimer = setTimeout(() => this.#expire(conn, 'line', `request line not finished within ${this.#opts.lineDeadlineMs} ms`), this.#opts.lineDeadlineMs);
        conn.lineTimer.unref();
      }
      if (conn.queue.length > 0) void this.#pump(conn);
    });
    socket.on('drain', () => {
      if (conn.queue.length < this.#opts.maxInFlight && !reader!.overflowed) socket.resume();
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.#clearLineTimer(conn);
      if (authTimer !== null) clearTimeout(authTimer);
      this.#connections.delete(conn);
      this.#access.forgetConnection(conn.client);
    });
  }

  #clearLineTimer(conn: Connection): void {
    if (conn.lineTimer !== null) {
      clearTimeout(conn.lineTimer);
      conn.lineTimer = null;
    }
  }

  /** Ends a connection that ran out of time: one error reply, audited (throttled), closed. */
  #expire(conn: Connection, what: 'line' | 'auth', message: string): void {
    if (conn.socket.destroyed) return;
    this.#context.metrics[`${what}_deadlines`] = (this.#context.metrics[`${what}_deadlines`] ?? 0) + 1;
    this.#refusals.note('deadline_exceeded', 'warning', conn.client, { connection: conn.id, what });
    conn.socket.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: RpcErrors.INVALID_REQUEST, message: `Invalid Request: ${message}`, data: { code: ErrorCodes.DEADLINE } } }) + '\n');
    const linger = setTimeout(() => conn.socket.destroy(), LINGER_MS);
    linger.unref();
    conn.socket.once('close', () => clearTimeout(linger));
  }

  /** Closes a connection whose slot a newcomer takes. */
  #drop(conn: Connection): void {
    this.#connections.delete(conn);
    this.#refusals.note('connection_displaced', 'warning', conn.client, { connection: conn.id });
    conn.socket.destroy();
  }

  async #pump(conn: Connection): Promise<void> {
    if (conn.busy) return;
    conn.busy = true;
    // Replies are gathered and written together: one write per burst of
    // requests rather than one system call per reply. Kept as parts and
    // joined once: a long `+=` chain leaves V8 a rope that the socket write
    // must flatten piece by piece (that took 39% of the server's time).
    let parts: string[] = [];
    let pending = 0;
    const flush = () => {
      if (parts.length === 0 || conn.socket.destroyed || conn.socket.writableEnded) return;
      const ok = conn.socket.write(parts.join(''));
      parts = [];
      pending = 0;
      // A peer that does not read its replies stops being read from.
      if (!ok) conn.socket.pause();
    };
    try {
      while (conn.queue.length > 0) {
        const line = conn.queue.shift()!;
        const plain = line === null || this.#gateLines === null ? null : this.#gateLines.read(line);
        conn.detachNext = false;
        let reply = line === null ? INVALID_UTF8_REPLY : plain !== null && this.#sessions.hasSession(conn) ? this.#gateCheckLine(plain, line, conn) : this.#dispatcher.handleLine(line, conn);
        if (reply instanceof Promise && conn.detachNext) {
          this.#later(conn, reply);
          reply = null;
        } else if (reply instanceof Promise) reply = await reply;
        if (reply !== null) {
          parts.push(reply, '\n');
          pending += reply.length + 1;
        }
        if (pending >= REPLY_FLUSH_BYTES) flush();
        // Read again once the queue has room and the peer is taking replies
        // (writableNeedDrain: a write was refused and 'drain' will resume us).
        if (conn.queue.length < this.#opts.maxInFlight && !conn.socket.writableNeedDrain && conn.socket.isPaused() && !this.#closing) conn.socket.resume();
      }
      flush();
    } finally {
      conn.busy = false;
    }
  }

  /** Reserves a detached reply (an approval_wait) for `conn`; false past 16 per connection or 1024 in all. */
  #detach(conn: Connection): boolean {
    if (conn.waits >= MAX_WAITS_PER_CONNECTION || this.#waits >= MAX_WAITS) return false;
    conn.detachNext = true;
    return true;
  }

  /** Writes a detached reply whenever it comes (JSON-RPC matches replies by id, not order). */
  #later(conn: Connection, reply: Promise<string | null>): void {
    conn.waits++;
    this.#waits++;
    const done = () => {
      conn.waits--;
      this.#waits--;
    };
    reply.then(
      (text) => {
        done();
        if (text !== null && !conn.socket.destroyed && !conn.socket.writableEnded) conn.socket.write(text + '\n');
      },
      () => done(),
    );
  }

  async #drain(conn: Connection): Promise<void> {
    while (conn.busy || conn.queue.length > 0) await new Promise((r) => setTimeout(r, 5));
  }

  /**
   * The reply to a plain gate_check line (GateLineReader took it): what the
   * dispatcher and the gate_check method answer for it, byte for byte.
   */
  #gateCheckLine(g: GateLine, line: string, conn: Connection): string {
    const metrics = this.#context.metrics;
    metrics.gate_checks = (metrics.gate_checks ?? 0) + 1;
    let result: string;
    try {
      // The general path's request shape (methods.ts), so the gate's stages see one shape.
      const request = { car: { action_type: g.actionType, agent_id: g.agentId }, permit: g.permit, nonce: g.nonce, sessionId: g.sessionId, client: conn.client, requester: conn.identity };
      result = decisionJson(this.#context.gate.checkParsed(g.carHash, request, () => carOfLine(line, g)));
    } catch (err) {
      return failureText(JSON.parse(g.id) as string | number, err);
    }
    return '{"jsonrpc":"2.0","id":' + g.id + ',"result":' + result + '}';
  }
}
