/**
 * guardMcp: an MCP guard proxy. It stands between an MCP client and an
 * upstream MCP server as a relay of JSON-RPC messages at the transport level
 * (the @modelcontextprotocol/sdk transports do all framing and parsing): the
 * requests `tools/call`, `resources/read` and `prompts/get` from the client
 * are judged by the gate first; everything else (initialize and capability
 * negotiation, notifications, cancellation, server-to-client requests such as
 * sampling and elicitation, pagination, tasks, progress) is relayed unchanged
 * in both directions, so the proxy never has to know a method to pass it.
 *
 * Allowed requests are forwarded as the same parsed object the CAR was built
 * from. Denied tool calls are answered with a tool result `isError: true`
 * carrying the reason; other denied requests with a JSON-RPC error. A pending
 * decision waits on its approval request (with progress notifications when
 * the client asked for progress), then the gate is asked again.
 */
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage, RequestId } from '@modelcontextprotocol/sdk/types.js';
import type { Gate } from '../gate/gate';
import type { GateDecision } from '../gate/decision';
import type { SandboxProfile } from '../sandbox';
import { GuardClient } from '../ipc/client';
import { GATED_METHODS, carFor, neverAllowed, toolActionType, type CarContext } from './car-mapping';
import { clientDecider, gateDecider, type Decider } from './decider';
import { sandboxedUpstream, type SandboxedUpstreamSpec } from './sandboxed-upstream';

export type { Transport as McpTransport };

/** An upstream MCP server: a command speaking MCP on stdio, a Streamable HTTP URL, or a transport you made. */
export type McpUpstream =
  | { command: string; args?: string[]; env?: Record<string, string>; cwd?: string; stderr?: 'inherit' | 'pipe' | 'ignore'; sandbox?: undefined }
  /** The command run in the process sandbox (lib/sandbox), narrowed further by the agent's quarantine profile. */
  | SandboxedUpstreamSpec
  | { url: string | URL; headers?: Record<string, string> }
  | { transport: Transport };

export interface GuardMcpOptions {
  /** Decide with this Gate (in process)... */
  gate?: Gate;
  /** ...or with a running `guardkernel serve`: a connected client, or its socket path. */
  client?: GuardClient;
  socket?: string;
  /** With `client`/`socket`: the token to authenticate with (the agent's). */
  authToken?: string;
  /** The CAR's `agent_id`. */
  agentId: string;
  /** The CAR's `server_id` (default: the upstream command's base name, or the URL's host). */
  serverId?: string;
  /**
   * Tool name → action type (default `mcp.tool.<name>`). The policy's `mcp`
   * section (`tools`, `servers.<server_id>.tools`) wins over this.
   */
  toolActions?: Record<string, string>;
  /** In process: who asked, recorded on approval requests (that name can never approve them). */
  requester?: string;
  upstream: McpUpstream;
  /** The client side (default: MCP over this process's stdin/stdout, or the streams given). */
  transport?: Transport;
  stdin?: Readable;
  stdout?: Writable;
  /** How long a pending call waits for its approval, ms (default 60000). */
  approvalTimeoutMs?: number;
  /** Progress notifications while waiting, every this many ms (default 5000). */
  progressIntervalMs?: number;
  /** Drop from tools/list the tools the policy can never allow this agent. */
  hideDenied?: boolean;
  /** Diagnostics (upstream transport errors); default: none. */
  onLog?: (line: string) => void;
}

export interface McpProxyExit {
  /** 0: the client went away or close() was called; 1: the upstream exited or failed. */
  code: number;
  reason: string;
}

export interface GuardMcpProxy {
  /** Resolves once both sides are closed (and the upstream process is gone). */
  readonly closed: Promise<McpProxyExit>;
  close(): Promise<McpProxyExit>;
}

/** JSON-RPC error code of a request the gate denied (not a tool call). */
export const MCP_DENIED = -32003;
/** The SDK's ErrorCode.ConnectionClosed: the upstream went away. */
const CONNECTION_CLOSED = -32000;
const INVALID_PARAMS = -32602;
const INTERNAL_ERROR = -32603;

type Msg = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const idKey = (id: RequestId): string => `${typeof id}:${String(id)}`;

function defaultServerId(upstream: McpUpstream): string {
  if ('command' in upstream) return path.basename(upstream.command);
  if ('url' in upstream) return new URL(String(upstream.url)).host;
  return 'mcp';
}

function checkPositiveInt(name: string, v: unknown, fallback: number): number {
  if (v === undefined) return fallback;
  if (!Number.isSafeInteger(v) || (v as number) < 0) throw new TypeError(`Expected ${name} as a non-negative integer (ms) but received ${String(v)}`);
  return v as number;
}

/** Starts the proxy: the upstream first, then the client side. */
export async function guardMcp(options: GuardMcpOptions): Promise<GuardMcpProxy> {
  if (typeof options !== 'object' || options === null) throw new TypeError('guardMcp needs options');
  const { agentId, upstream } = options;
  if (typeof agentId !== 'string' || agentId.length === 0) throw new TypeError('guardMcp: agentId must be a non-empty string');
  if (typeof upstream !== 'object' || upstream === null) throw new TypeError('guardMcp: upstream is required ({ command } | { url } | { transport })');
  const sources = [options.gate, options.client, options.socket].filter((x) => x !== undefined).length;
  if (sources !== 1) throw new TypeError('guardMcp: give exactly one of gate, client, socket');
  const approvalTimeoutMs = checkPositiveInt('approvalTimeoutMs', options.approvalTimeoutMs, 60_000);
  const progressIntervalMs = Math.max(1, checkPositiveInt('progressIntervalMs', options.progressIntervalMs, 5000));

  const serverId = options.serverId ?? defaultServerId(upstream);
  const onLog = options.onLog ?? (() => {});
  let decider: Decider;
  if (options.gate !== undefined) decider = gateDecider(options.gate, serverId, options.requester);
  else if (options.client !== undefined) decider = clientDecider(options.client, serverId, { authToken: options.authToken, onLog });
  else decider = clientDecider(await GuardClient.connect(options.socket as string), serverId, { authToken: options.authToken, owned: true, onLog });

  const ctx: CarContext = { agentId, serverId, toolActions: options.toolActions, policyToolAction: (name) => decider.policyToolAction(name) };
  try {
    await decider.refreshMapping();
    if (options.hideDenied === true) {
      try {
        await decider.policyDocument();
      } catch (err) {
        throw new Error(`hideDenied needs to read the policy (policy_get; an operator credential over the socket): ${(err as Error).message}`);
      }
    }
    let exitWhy: string | undefined;
    const sandboxed = 'command' in upstream && upstream.sandbox !== undefined;
    const up = makeUpstream(upstream, sandboxed ? await decider.sandboxProfile(agentId) : null, (why) => (exitWhy = why));
    const down = options.transport ?? (await stdioDown(options.stdin ?? process.stdin, options.stdout ?? process.stdout));
    const relay = new Relay(down, up, decider, ctx, { approvalTimeoutMs, progressIntervalMs, hideDenied: options.hideDenied === true, log: options.onLog ?? (() => {}), upstreamExit: () => exitWhy });
    await relay.start();
    return relay;
  } catch (err) {
    await decider.close().catch(() => {});
    throw err;
  }
}

/** A module of the optional peer dependency, loaded when a proxy starts. */
function sdk<T>(load: () => T): T {
  try {
    return load();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') throw new Error('the MCP proxy needs the package @modelcontextprotocol/sdk (npm install @modelcontextprotocol/sdk)');
    throw err;
  }
}

function makeUpstream(u: McpUpstream, profile: SandboxProfile | null, onExit: (why: string) => void): Transport {
  if ('transport' in u) return u.transport;
  if ('command' in u && u.sandbox !== undefined) {
    const { StdioServerTransport } = sdk(() => require('@modelcontextprotocol/sdk/server/stdio.js') as typeof import('@modelcontextprotocol/sdk/server/stdio.js'));
    return sandboxedUpstream(u, profile, StdioServerTransport, onExit);
  }
  if ('command' in u) {
    const { StdioClientTransport } = sdk(() => require('@modelcontextprotocol/sdk/client/stdio.js') as typeof import('@modelcontextprotocol/sdk/client/stdio.js'));
    return new StdioClientTransport({ command: u.command, args: u.args, env: u.env, cwd: u.cwd, stderr: u.stderr ?? 'inherit' });
  }
  const { StreamableHTTPClientTransport } = sdk(() => require('@modelcontextprotocol/sdk/client/streamableHttp.js') as typeof import('@modelcontextprotocol/sdk/client/streamableHttp.js'));
  return new StreamableHTTPClientTransport(new URL(String(u.url)), u.headers === undefined ? undefined : { requestInit: { headers: u.headers } });
}

/** The SDK's stdio server transport, plus what it lacks: the end of stdin closes it, and a closed stdout is no crash. */
async function stdioDown(stdin: Readable, stdout: Writable): Promise<Transport> {
  const { StdioServerTransport } = sdk(() => require('@modelcontextprotocol/sdk/server/stdio.js') as typeof import('@modelcontextprotocol/sdk/server/stdio.js'));
  const t = new StdioServerTransport(stdin, stdout);
  const ended = () => void t.close();
  stdin.once('end', ended);
  stdin.once('close', ended);
  stdout.on('error', () => void t.close());
  return t;
}

/**
 * A gated request being decided. Its AbortController is made only when a
 * wait needs a signal: one per call cost more than the gate's decision
 * (Node 20's AbortController is several microseconds and GC work).
 */
class Held {
  cancelled = false;
  #abort: AbortController | null = null;
  constructor(readonly id: RequestId) {}
  signal(): AbortSignal {
    this.#abort ??= new AbortController();
    if (this.cancelled) this.#abort.abort();
    return this.#abort.signal;
  }
  cancel(): void {
    this.cancelled = true;
    this.#abort?.abort();
  }
}

interface RelayOptions {
  approvalTimeoutMs: number;
  progressIntervalMs: number;
  hideDenied: boolean;
  log: (line: string) => void;
  /** Why the upstream ended, where its transport knows (a sandboxed server's result). */
  upstreamExit?: () => string | undefined;
}

class Relay implements GuardMcpProxy {
  readonly closed: Promise<McpProxyExit>;
  #resolveClosed!: (e: McpProxyExit) => void;
  #closing: Promise<McpProxyExit> | null = null;
  /** Client requests sent upstream and not yet answered. */
  readonly #forwarded = new Map<string, RequestId>();
  /** Gated client requests still being decided. */
  readonly #held = new Map<string, Held>();
  /** tools/list requests whose replies are filtered; initialize requests (HTTP protocol version). */
  readonly #lists = new Set<string>();
  readonly #inits = new Set<string>();

  constructor(
    private readonly down: Transport,
    private readonly up: Transport,
    private readonly decider: Decider,
    private readonly ctx: CarContext,
    private readonly opts: RelayOptions,
  ) {
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
  }

  async start(): Promise<void> {
    this.up.onmessage = (m) => this.#fromUpstream(m as Msg);
    this.up.onerror = (err) => this.opts.log(`upstream: ${err.message}`);
    this.up.onclose = () => void this.close({ code: 1, reason: this.opts.upstreamExit?.() ?? 'the upstream MCP server exited' });
    this.down.onmessage = (m) => this.#fromClient(m as Msg);
    this.down.onerror = (err) => this.opts.log(`client: ${err.message}`);
    this.down.onclose = () => void this.close({ code: 0, reason: 'the client closed the connection' });
    try {
      await this.up.start();
    } catch (err) {
      await this.decider.close().catch(() => {});
      throw new Error(`cannot start the upstream MCP server: ${(err as Error).message}`);
    }
    await this.down.start();
  }

  close(exit: McpProxyExit = { code: 0, reason: 'closed' }): Promise<McpProxyExit> {
    if (this.#closing !== null) return this.#closing;
    this.#closing = (async () => {
      const upstreamGone = exit.code !== 0;
      for (const [key, h] of this.#held) {
        h.cancel();
        this.#held.delete(key);
        this.#error(h.id, CONNECTION_CLOSED, `Connection closed: ${exit.reason}`);
      }
      if (upstreamGone) for (const id of this.#forwarded.values()) this.#error(id, CONNECTION_CLOSED, `Connection closed: ${exit.reason}`);
      this.#forwarded.clear();
      this.up.onclose = undefined;
      this.down.onclose = undefined;
      await this.up.close().catch(() => {});
      await this.down.close().catch(() => {});
      await this.decider.close().catch(() => {});
      this.#resolveClosed(exit);
      return exit;
    })();
    return this.#closing;
  }

  #toClient(m: Msg): void {
    this.down.send(m as JSONRPCMessage).catch((err: Error) => this.opts.log(`client: ${err.message}`));
  }

  #error(id: RequestId, code: number, message: string, data?: unknown): void {
    this.#toClient({ jsonrpc: '2.0', id, error: data === undefined ? { code, message } : { code, message, data } });
  }

  #toUpstream(m: Msg): void {
    const isRequest = typeof m.method === 'string' && m.id !== undefined;
    if (isRequest) this.#forwarded.set(idKey(m.id), m.id);
    this.up.send(m as JSONRPCMessage).catch((err: Error) => {
      this.opts.log(`upstream: ${err.message}`);
      if (isRequest && this.#forwarded.delete(idKey(m.id))) this.#error(m.id, CONNECTION_CLOSED, `the upstream MCP server did not take the request: ${err.message}`);
    });
  }

  #fromClient(m: Msg): void {
    if (this.#closing !== null) return;
    if (typeof m.method === 'string') {
      if (m.id !== undefined) {
        if (GATED_METHODS.has(m.method)) {
          void this.#gated(m);
          return;
        }
        if (m.method === 'tools/list' && this.opts.hideDenied) this.#lists.add(idKey(m.id));
        if (m.method === 'initialize') this.#inits.add(idKey(m.id));
      } else if (m.method === 'notifications/cancelled' && m.params?.requestId !== undefined) {
        const key = idKey(m.params.requestId);
        const held = this.#held.get(key);
        if (held !== undefined) {
          // Never reached the upstream: stop deciding, answer nothing (the client ignores it now).
          this.#held.delete(key);
          held.cancel();
          return;
        }
      }
    }
    this.#toUpstream(m);
  }

  #fromUpstream(m: Msg): void {
    if (typeof m.method !== 'string' && m.id !== undefined) {
      const key = idKey(m.id);
      this.#forwarded.delete(key);
      if (this.#inits.delete(key) && typeof m.result?.protocolVersion === 'string') this.up.setProtocolVersion?.(m.result.protocolVersion);
      if (this.#lists.delete(key) && Array.isArray(m.result?.tools)) {
        void this.#filterTools(m);
        return;
      }
    }
    this.#toClient(m);
  }

  async #filterTools(m: Msg): Promise<void> {
    let doc: Readonly<Record<string, unknown>> | null;
    try {
      doc = await this.decider.policyDocument();
    } catch (err) {
      this.#error(m.id, INTERNAL_ERROR, `guardkernel could not read the policy to filter tools/list: ${(err as Error).message}`);
      return;
    }
    const tools = (m.result.tools as Msg[]).filter((t) => typeof t?.name !== 'string' || !neverAllowed(doc, this.ctx.agentId, toolActionType(t.name, this.ctx)));
    this.#toClient({ ...m, result: { ...m.result, tools } });
  }

  async #gated(m: Msg): Promise<void> {
    const key = idKey(m.id);
    if (this.#held.has(key) || this.#forwarded.has(key)) {
      this.#error(m.id, INVALID_PARAMS, 'a request with this id is already in progress');
      return;
    }
    const first = carFor(m.method, m.params, this.ctx);
    if ('invalid' in first) {
      this.#error(m.id, INVALID_PARAMS, first.invalid);
      return;
    }
    let r = first;
    const held = new Held(m.id);
    this.#held.set(key, held);
    let d: GateDecision;
    try {
      d = await this.decider.check(r.car);
      // The mapping was read under another policy version: read it again, and
      // when it names this call differently, judge the call as it is named now.
      const mv = this.decider.mappingVersion();
      if (mv !== null && mv !== -1 && d.policy_version !== mv && m.method === 'tools/call' && !held.cancelled) {
        await this.decider.refreshMapping();
        const again = carFor(m.method, m.params, this.ctx);
        if ('car' in again && again.car.action_type !== r.car.action_type) {
          r = again;
          d = await this.decider.check(r.car);
        }
      }
      if (d.decision === 'pending' && !held.cancelled) d = await this.#awaitApproval(m, r.car, d, held.signal());
    } catch (err) {
      if (held.cancelled) return;
      d = { decision: 'deny', source: 'error', reason: `guardkernel could not decide: ${(err as Error).message}`, car_hash: null, policy_version: 0, trust_score: 0, confidence: 1 };
    }
    if (held.cancelled || this.#held.get(key) !== held) return; // cancelled or closing: answered elsewhere
    this.#held.delete(key);
    if (d.decision === 'allow') this.#toUpstream(m);
    else this.#deny(m, d);
  }

  async #awaitApproval(m: Msg, car: Record<string, unknown>, d: GateDecision, signal: AbortSignal): Promise<GateDecision> {
    const id = d.approval_id;
    if (id === undefined) return { ...d, decision: 'deny', reason: `${d.reason} (no approval request to wait on)` };
    const token = m.params?._meta?.progressToken;
    let timer: NodeJS.Timeout | undefined;
    if (token !== undefined) {
      let n = 0;
      const tick = () => {
        n += 1;
        this.#toClient({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: token, progress: n, message: `guardkernel: waiting for approval ${id}` } });
      };
      tick();
      timer = setInterval(tick, this.opts.progressIntervalMs);
    }
    let w;
    try {
      w = await this.decider.wait(id, this.opts.approvalTimeoutMs, signal);
    } finally {
      if (timer !== undefined) clearInterval(timer);
    }
    if (w.status === 'granted') {
      const again = await this.decider.check(car);
      if (again.decision === 'pending') return { ...again, decision: 'deny', reason: `approval ${id} was granted but no longer fits this call: ${again.reason}` };
      return again;
    }
    if (w.status === 'pending') return { ...d, decision: 'deny', source: 'approval', reason: `approval ${id} was not decided within ${this.opts.approvalTimeoutMs} ms` };
    const why = w.reason;
    return { ...d, decision: 'deny', source: 'approval', reason: `approval ${id} was ${w.status}${why ? `: ${why}` : ''}` };
  }

  #deny(m: Msg, d: GateDecision): void {
    const info: Record<string, unknown> = { decision: d.decision, source: d.source, reason: d.reason, car_hash: d.car_hash };
    if (d.approval_id !== undefined) info.approval_id = d.approval_id;
    if (m.method === 'tools/call') {
      const text = `guardkernel denied this call (${d.source}): ${d.reason}`;
      this.#toClient({ jsonrpc: '2.0', id: m.id, result: { content: [{ type: 'text', text }], isError: true, _meta: { guardkernel: info } } });
    } else {
      this.#error(m.id, MCP_DENIED, `guardkernel denied ${m.method} (${d.source}): ${d.reason}`, info);
    }
  }
}
