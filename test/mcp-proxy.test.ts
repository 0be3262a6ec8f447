// The MCP guard proxy (guardMcp, `guardkernel mcp`) with a real MCP server
// from npm (@modelcontextprotocol/server-everything over stdio) and the SDK's
// own Client. Every process goes through test/child.ts; the SDK's stdio
// transport class is used over the children's pipes (it only frames lines).
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { CreateMessageRequestSchema, ElicitRequestSchema, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { startChild } from './child';

type ChildProcess = ReturnType<typeof startChild>;
import { AuditLog, Gate, GuardClient, carHash } from '../lib/index';
import { startServe } from './serve-process';
import { carFor, guardMcp, neverAllowed } from '../lib/mcp/index';

const root = path.join(__dirname, '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');
const everything = path.join(root, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-mcp-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const POLICY = `
version: 1
mode: enforce
default: deny
actions:
  mcp.tool.echo:
    allow_identities: ["agent-*"]
    constraints:
      args.message: { prefix: "safe" }
  mcp.tool.get-sum:
    require_approval: true
  mcp.tool.trigger-long-running-operation: {}
  mcp.tool.trigger-sampling-request: {}
  mcp.tool.trigger-elicitation-request: {}
  mcp.tool.get-env:
    deny_identities: ["agent-*"]
  mcp.tool.big: {}
  mcp.resource.read:
    constraints:
      resource: { prefix: "demo://r/" }
`;
const policyFile = path.join(dir, 'policy.yaml');
fs.writeFileSync(policyFile, POLICY);

/** An MCP transport over a child's stdio (the SDK's line framing); closes when the child exits. */
function childTransport(child: ChildProcess): Transport {
  const inner = new StdioServerTransport(child.stdout!, child.stdin!);
  child.stdin!.on('error', () => {});
  const t: Transport = {
    start: () => inner.start(),
    send: (m) => inner.send(m),
    async close() {
      await inner.close();
      child.stdin!.end();
    },
  };
  inner.onmessage = (m) => t.onmessage?.(m);
  inner.onerror = (e) => t.onerror?.(e);
  child.once('exit', () => t.onclose?.());
  return t;
}

/** Records what a transport is asked to send. */
function tap(inner: Transport, sent: JSONRPCMessage[]): Transport {
  const t: Transport = {
    start: () => inner.start(),
    send: (m, o) => {
      sent.push(m);
      return inner.send(m, o);
    },
    close: () => inner.close(),
  };
  inner.onmessage = (m) => t.onmessage?.(m);
  inner.onerror = (e) => t.onerror?.(e);
  inner.onclose = () => t.onclose?.();
  return t;
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(f: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000 && !f(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!f()) throw new Error(`timed out waiting for ${what}`);
}

/** The upstream command: server-everything on stdio, writing its pid to `pidFile` first. */
function upstreamArgs(pidFile: string): string[] {
  return ['-e', `require('fs').writeFileSync(${JSON.stringify(pidFile)}, String(process.pid)); import(${JSON.stringify('file://' + everything)})`];
}

let nextName = 0;
function startProxy(extra: string[] = [], decider: string[] = ['--policy', policyFile]): { child: ChildProcess; pidFile: string; stderr: () => string } {
  const pidFile = path.join(dir, `upstream-${nextName++}.pid`);
  const child = startChild(process.execPath, [cli, 'mcp', ...decider, '--agent-id', 'agent-1', '--server-id', 'everything', ...extra, '--', process.execPath, ...upstreamArgs(pidFile)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  return { child, pidFile, stderr: () => err };
}

async function connectedClient(child: ChildProcess, capabilities: Record<string, unknown> = {}): Promise<Client> {
  const client = new Client({ name: 'test', version: '1.0.0' }, { capabilities });
  await client.connect(childTransport(child));
  return client;
}

function text(result: unknown): string {
  const content = (result as { content?: Array<{ type: string; text?: string }> }).content ?? [];
  return content.map((c) => c.text ?? '').join('');
}

describe('guardkernel mcp (CLI) over server-everything', () => {
  test('allowed: the call reaches the server and its result comes back unchanged', async () => {
    const { child } = startProxy();
    const client = await connectedClient(child);
    const r = await client.callTool({ name: 'echo', arguments: { message: 'safe hello' } });
    expect(r.isError).toBeFalsy();
    expect(text(r)).toBe('Echo: safe hello');
    await client.close();
    expect(await exited(child)).toBe(0);
  });

  test('denied: a tool result with isError and the policy reason; resources/read and prompts/get: a JSON-RPC error', async () => {
    const { child } = startProxy();
    const client = await connectedClient(child);
    const r = await client.callTool({ name: 'get-env', arguments: {} });
    expect(r.isError).toBe(true);
    expect(text(r)).toContain('identity "agent-1" is denied');
    expect((r._meta as { guardkernel: { decision: string } }).guardkernel.decision).toBe('deny');
    const constrained = await client.callTool({ name: 'echo', arguments: { message: 'rm -rf /' } });
    expect(constrained.isError).toBe(true);
    expect(text(constrained)).toContain('args.message');
    await expect(client.readResource({ uri: 'demo://resource/static/document/architecture.md' })).rejects.toMatchObject({ code: -32003 });
    await expect(client.getPrompt({ name: 'simple-prompt' })).rejects.toMatchObject({ code: -32003 });
    // Everything else passes: listing and pagination-capable methods are not gated.
    expect((await client.listResources()).resources.length).toBeGreaterThan(0);
    await client.close();
    await exited(child);
  });

  test('tools hidden: --hide-denied leaves out what the policy never allows this agent, keeps constrained and approval rules', async () => {
    const plain = startProxy();
    const c1 = await connectedClient(plain.child);
    const all = (await c1.listTools()).tools.map((t) => t.name);
    expect(all).toEqual(expect.arrayContaining(['echo', 'get-env', 'get-sum', 'get-tiny-image']));
    await c1.close();
    const hiding = startProxy(['--hide-denied']);
    const c2 = await connectedClient(hiding.child);
    const shown = (await c2.listTools()).tools.map((t) => t.name);
    expect(shown).toEqual(expect.arrayContaining(['echo', 'get-sum', 'trigger-long-running-operation']));
    expect(shown).not.toContain('get-env'); // deny_identities
    expect(shown).not.toContain('get-tiny-image'); // no rule, default deny
    // A hidden tool called anyway is still denied by the gate.
    expect((await c2.callTool({ name: 'get-tiny-image', arguments: {} })).isError).toBe(true);
    await c2.close();
    await Promise.all([exited(plain.child), exited(hiding.child)]);
  });

  test('pending then timeout: progress notifications while waiting, then a denial naming the approval', async () => {
    const { child } = startProxy(['--approval-timeout', '300']);
    const client = await connectedClient(child);
    const progress: Array<{ progress: number; message?: string }> = [];
    const r = await client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } }, undefined, { onprogress: (p) => progress.push(p) });
    expect(r.isError).toBe(true);
    expect(text(r)).toMatch(/approval apr_[A-Za-z0-9_-]{22} was not decided within 300 ms/);
    expect(progress.length).toBeGreaterThanOrEqual(1);
    expect(progress[0].message).toMatch(/waiting for approval apr_/);
    await client.close();
    await exited(child);
  });

  test('server-to-client requests: sampling/createMessage and elicitation/create from the server reach the client and its answers go back', async () => {
    const { child } = startProxy();
    const client = await connectedClient(child, { sampling: {}, elicitation: {} });
    let elicited = '';
    client.setRequestHandler(ElicitRequestSchema, async (req) => {
      elicited = String(req.params.message);
      return { action: 'decline' };
    });
    let asked = '';
    client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
      asked = JSON.stringify(req.params.messages);
      return { model: 'test-model', role: 'assistant', content: { type: 'text', text: 'sampled by the client' } };
    });
    // The server registers its sampling tool when the client's initialized notification (relayed first) arrives.
    const r = await client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'hello from the test' } });
    expect(r.isError).toBeFalsy();
    expect(asked).toContain('hello from the test');
    expect(text(r)).toContain('sampled by the client');
    const e = await client.callTool({ name: 'trigger-elicitation-request', arguments: {} });
    expect(elicited.length).toBeGreaterThan(0);
    expect(text(e)).toContain('User declined');
    await client.close();
    await exited(child);
  });

  test('pagination, a 4 MB result and a slow start pass through unchanged (an SDK Server on stdio that waits 1.5 s before it reads)', async () => {
    // The upstream: the SDK's low-level Server over stdio, with paginated
    // tools/list and resources/list and a tool whose result is 4 MB.
    const upstream = `
      const { Server } = require('@modelcontextprotocol/sdk/server/index.js');
      const { StdioServerTransport } = require('@modelcontextprotocol/sdk/server/stdio.js');
      const t = require('@modelcontextprotocol/sdk/types.js');
      const server = new Server({ name: 'paged', version: '1.0.0' }, { capabilities: { tools: {}, resources: {} } });
      const tools = Array.from({ length: 25 }, (_, i) => ({ name: i === 0 ? 'big' : 'tool-' + i, inputSchema: { type: 'object' } }));
      const page = (items, cursor) => { const at = cursor === undefined ? 0 : Number(cursor); const next = at + 10; return { items: items.slice(at, next), nextCursor: next < items.length ? String(next) : undefined }; };
      server.setRequestHandler(t.ListToolsRequestSchema, async (r) => { const p = page(tools, r.params?.cursor); return { tools: p.items, nextCursor: p.nextCursor }; });
      const resources = Array.from({ length: 15 }, (_, i) => ({ uri: 'demo://r/' + i, name: 'r' + i }));
      server.setRequestHandler(t.ListResourcesRequestSchema, async (r) => { const p = page(resources, r.params?.cursor); return { resources: p.items, nextCursor: p.nextCursor }; });
      server.setRequestHandler(t.ReadResourceRequestSchema, async (r) => ({ contents: [{ uri: r.params.uri, text: 'content of ' + r.params.uri }] }));
      server.setRequestHandler(t.CallToolRequestSchema, async (r) => ({ content: [{ type: 'text', text: 'x'.repeat(4 * 1024 * 1024) + '\u00e9\u{1F600}' }] }));
      setTimeout(() => server.connect(new StdioServerTransport()), 1500);
    `;
    const child = startChild(process.execPath, [cli, 'mcp', '--policy', policyFile, '--agent-id', 'agent-1', '--server-id', 'paged', '--', process.execPath, '-e', upstream], { stdio: ['pipe', 'pipe', 'pipe'], cwd: root });
    const started = Date.now();
    const client = await connectedClient(child);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400); // initialize waited for the slow upstream
    const names: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const r = await client.listTools(cursor === undefined ? {} : { cursor });
      names.push(...r.tools.map((x) => x.name));
      cursor = r.nextCursor;
      pages++;
    } while (cursor !== undefined);
    expect(pages).toBe(3);
    expect(names).toHaveLength(25);
    const r1 = await client.listResources();
    expect(r1.resources).toHaveLength(10);
    const r2 = await client.listResources({ cursor: r1.nextCursor });
    expect(r2.resources.map((x) => x.uri)).toEqual(['demo://r/10', 'demo://r/11', 'demo://r/12', 'demo://r/13', 'demo://r/14']);
    expect(await client.readResource({ uri: 'demo://r/3' })).toMatchObject({ contents: [{ text: 'content of demo://r/3' }] });
    const big = await client.callTool({ name: 'big', arguments: {} });
    expect(text(big)).toBe('x'.repeat(4 * 1024 * 1024) + '\u00e9\u{1F600}');
    await client.close();
    expect(await exited(child)).toBe(0);
  });

  test('an upstream that cannot start: the proxy says so and exits 1; the client sees the connection close', async () => {
    const child = startChild(process.execPath, [cli, 'mcp', '--policy', policyFile, '--agent-id', 'agent-1', '--', path.join(dir, 'no-such-server')], { stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    const client = new Client({ name: 'test', version: '1.0.0' });
    const connecting = client.connect(childTransport(child));
    expect(await exited(child)).toBe(1);
    await expect(connecting).rejects.toThrow();
    expect(err).toMatch(/no-such-server|ENOENT|cannot start/);
  });

  test('upstream crash: the call in flight gets an error, the proxy exits non-zero', async () => {
    const { child, pidFile, stderr } = startProxy();
    const client = await connectedClient(child);
    let firstProgress!: () => void;
    const started = new Promise<void>((r) => (firstProgress = r));
    const call = client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 30, steps: 30 } }, undefined, { onprogress: () => firstProgress(), timeout: 60_000 });
    await started;
    process.kill(Number(fs.readFileSync(pidFile, 'utf8')), 'SIGKILL');
    await expect(call).rejects.toThrow(/Connection closed/);
    expect(await exited(child)).toBe(1);
    expect(stderr()).toContain('the upstream MCP server exited');
  });

  test('client disconnect: the proxy kills the upstream and exits 0', async () => {
    const { child, pidFile } = startProxy();
    const client = await connectedClient(child);
    await client.listTools();
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    expect(alive(pid)).toBe(true);
    child.stdin!.end(); // the client goes away without a word
    expect(await exited(child)).toBe(0);
    await until(() => !alive(pid), 'the upstream to be gone');
    await client.close();
  });

  test('attack: a call is judged on the arguments the upstream receives (name inside arguments, duplicate keys, _meta)', async () => {
    const { child } = startProxy();
    const replies = new Map<number, Record<string, any>>(); // eslint-disable-line @typescript-eslint/no-explicit-any
    let buf = '';
    child.stdout!.on('data', (b: Buffer) => {
      buf += b.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const m = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        if (typeof m.id === 'number') replies.set(m.id, m);
      }
    });
    const send = (line: string) => child.stdin!.write(line + '\n');
    const reply = async (id: number) => {
      await until(() => replies.has(id), `reply ${id}`);
      return replies.get(id)!;
    };
    send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }));
    await reply(1);
    send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
    // `name` inside the arguments does not make get-env an echo.
    send(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'get-env', arguments: { name: 'echo', message: 'safe' } } }));
    expect((await reply(2)).result.isError).toBe(true);
    expect((await reply(2)).result.content[0].text).toContain('mcp.tool.get-env');
    // Duplicate keys: JSON keeps the last; the gate judges and the server receives that one.
    send('{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"message":"safe first","message":"evil second"}}}');
    expect((await reply(3)).result.isError).toBe(true);
    expect((await reply(3)).result.content[0].text).toContain('args.message');
    send('{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"echo","arguments":{"message":"evil first","message":"safe second"}}}');
    expect((await reply(4)).result.content[0].text).toBe('Echo: safe second');
    send('{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","name":"get-env","arguments":{"message":"safe"}}}');
    expect((await reply(5)).result.content[0].text).toContain('mcp.tool.get-env');
    // _meta in params or in the arguments is no second set of arguments.
    send(JSON.stringify({ jsonrpc: '2.0', id: 6, method: 'tools/call', params: { name: 'echo', arguments: { message: 'evil' }, _meta: { arguments: { message: 'safe' } } } }));
    expect((await reply(6)).result.isError).toBe(true);
    send(JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: { message: 'evil', _meta: { message: 'safe' } } } }));
    expect((await reply(7)).result.isError).toBe(true);
    // Malformed gated requests are refused, never forwarded.
    send(JSON.stringify({ jsonrpc: '2.0', id: 8, method: 'tools/call', params: { name: 'echo', arguments: ['safe'] } }));
    expect((await reply(8)).error.code).toBe(-32602);
    // A JSON-RPC batch (which MCP no longer has) is no way around the gate: the SDK's transport drops the line.
    send(JSON.stringify([{ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'get-env', arguments: {} } }]));
    send(JSON.stringify({ jsonrpc: '2.0', id: 10, method: 'tools/call', params: { name: 'echo', arguments: { message: 'safe after batch' } } }));
    expect((await reply(10)).result.content[0].text).toBe('Echo: safe after batch');
    expect(replies.has(9)).toBe(false);
    child.stdin!.end();
    expect(await exited(child)).toBe(0);
  });

  test('against a running serve (--socket, the agent token): pending, approved by an operator over the socket, then forwarded', async () => {
    const sdir = fs.mkdtempSync(path.join(dir, 'serve-'));
    fs.writeFileSync(path.join(sdir, 'operator.token'), 'operator-token-0123456789', { mode: 0o600 });
    fs.writeFileSync(path.join(sdir, 'agent.token'), 'agent-token-0123456789abc', { mode: 0o600 });
    const socket = path.join(sdir, 'core.sock');
    const s = startServe(['--state-dir', path.join(sdir, 'state'), '--socket', socket, '--policy', policyFile, '--operator-token-file', path.join(sdir, 'operator.token'), '--agent-token-file', path.join(sdir, 'agent.token')]);
    try {
      await s.ready;
      const { child } = startProxy([], ['--socket', socket, '--auth-token-file', path.join(sdir, 'agent.token')]);
      const client = await connectedClient(child);
      expect(text(await client.callTool({ name: 'echo', arguments: { message: 'safe via serve' } }))).toBe('Echo: safe via serve');
      expect((await client.callTool({ name: 'get-env', arguments: {} })).isError).toBe(true);
      const operator = await GuardClient.connect(socket, { timeoutMs: 5000 });
      await operator.auth('operator-token-0123456789');
      const call = client.callTool({ name: 'get-sum', arguments: { a: 20, b: 22 } });
      async function poll(): Promise<string> {
        for (;;) {
          const open = (await operator.approvalList('pending')).approvals;
          if (open.length > 0) return open[0].id;
          await new Promise((r) => setTimeout(r, 20));
        }
      }
      const id = await poll();
      await operator.approvalApprove(id, 'looked fine');
      const r = await call;
      expect(r.isError).toBeFalsy();
      expect(text(r)).toContain('42');
      operator.close();
      await client.close();
      expect(await exited(child)).toBe(0);
    } finally {
      s.child.kill('SIGKILL');
      await s.exited;
    }
  });

  test('--upstream-url: a Streamable HTTP upstream (server-everything streamableHttp), allowed and denied; a server-to-client request over its SSE stream', async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (probe.address() as net.AddressInfo).port;
        probe.close(() => resolve(p));
      });
    });
    const server = startChild(process.execPath, [everything, 'streamableHttp'], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, PORT: String(port) } });
    try {
      let err = '';
      server.stderr!.on('data', (b: Buffer) => (err += b.toString()));
      await until(() => err.includes('listening on port'), 'the HTTP server');
      const child = startChild(process.execPath, [cli, 'mcp', '--policy', policyFile, '--agent-id', 'agent-1', '--upstream-url', `http://127.0.0.1:${port}/mcp`], { stdio: ['pipe', 'pipe', 'pipe'] });
      const client = await connectedClient(child, { sampling: {} });
      client.setRequestHandler(CreateMessageRequestSchema, async () => ({ model: 'm', role: 'assistant', content: { type: 'text', text: 'sampled over http' } }));
      expect(text(await client.callTool({ name: 'echo', arguments: { message: 'safe over http' } }))).toBe('Echo: safe over http');
      expect((await client.callTool({ name: 'get-env', arguments: {} })).isError).toBe(true);
      expect(text(await client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'p' } }))).toContain('sampled over http');
      await client.close();
      expect(await exited(child)).toBe(0);
    } finally {
      server.kill('SIGKILL');
      await exited(server);
    }
  });

  test('bad usage: exit 2 with the usage text', async () => {
    const child = startChild(process.execPath, [cli, 'mcp', '--policy', policyFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    expect(await exited(child)).toBe(2);
    expect(err).toContain('-- COMMAND [ARGS...] or --upstream-url URL');
  });
});

describe('guardMcp in process', () => {
  /** The upstream server as a child of this test, wrapped as a transport (the proxy's upstream may be any transport). */
  function upstreamChild(pidFile: string): { child: ChildProcess; transport: Transport } {
    const child = startChild(process.execPath, upstreamArgs(pidFile), { stdio: ['pipe', 'pipe', 'ignore'] });
    const inner = childTransport(child);
    const close = inner.close.bind(inner);
    inner.close = async () => {
      await close();
      child.kill('SIGKILL');
    };
    return { child, transport: inner };
  }

  async function start(gate: Gate, sent: JSONRPCMessage[] = [], extra: Partial<Parameters<typeof guardMcp>[0]> = {}) {
    const up = upstreamChild(path.join(dir, `inproc-${nextName++}.pid`));
    const [clientSide, proxySide] = InMemoryTransport.createLinkedPair();
    const proxy = await guardMcp({ gate, agentId: 'agent-1', serverId: 'everything', upstream: { transport: tap(up.transport, sent) }, transport: proxySide, ...extra });
    const client = new Client({ name: 'test', version: '1.0.0' });
    await client.connect(clientSide);
    return { proxy, client, up };
  }

  test('pending then approved through gate.approvals: the call is forwarded once; decisions are audited with the MCP fields', async () => {
    const auditFile = path.join(dir, 'audit.log');
    const audit = new AuditLog({ file: auditFile, key: Buffer.alloc(32, 7) });
    const gate = new Gate({ policy: POLICY, audit });
    gate.on('approval', (e: { type: string; request: { id: string } }) => {
      if (e.type === 'requested') void gate.approvals!.approve(e.request.id, { approver: 'alice', reason: 'fine' });
    });
    const { proxy, client, up } = await start(gate);
    const r = await client.callTool({ name: 'get-sum', arguments: { a: 2, b: 3 } });
    expect(r.isError).toBeFalsy();
    expect(text(r)).toContain('5');
    const echo = await client.callTool({ name: 'echo', arguments: { message: 'safe audited' } });
    expect(text(echo)).toBe('Echo: safe audited');
    await client.close();
    expect((await proxy.closed).code).toBe(0);
    await exited(up.child);
    audit.close();
    const records = fs.readFileSync(auditFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const expected = carHash({ action_type: 'mcp.tool.echo', agent_id: 'agent-1', server_id: 'everything', tool: 'echo', args: { message: 'safe audited' } });
    expect(records.find((x) => x.type === 'gate_decision' && x.car_hash === expected)).toMatchObject({ decision: 'allow', action_type: 'mcp.tool.echo', agent_id: 'agent-1' });
    const sum = records.filter((x) => x.type === 'gate_decision' && x.action_type === 'mcp.tool.get-sum').map((x) => `${x.decision}/${x.source}`);
    expect(sum).toEqual(['pending/policy', 'allow/approval']);
  });

  test('pending then denied by an approver: a tool error naming the decision; nothing reaches the server', async () => {
    const gate = new Gate({ policy: POLICY });
    gate.on('approval', (e: { type: string; request: { id: string } }) => {
      if (e.type === 'requested') void gate.approvals!.deny(e.request.id, { approver: 'alice', reason: 'not today' });
    });
    const sent: JSONRPCMessage[] = [];
    const { proxy, client } = await start(gate, sent);
    const r = await client.callTool({ name: 'get-sum', arguments: { a: 2, b: 3 } });
    expect(r.isError).toBe(true);
    expect(text(r)).toMatch(/was denied: not today/);
    expect(sent.some((m) => 'method' in m && m.method === 'tools/call')).toBe(false);
    await client.close();
    await proxy.closed;
  });

  test('cancellation mid-call: the cancel reaches the server; while pending, the wait ends and nothing is forwarded', async () => {
    const gate = new Gate({ policy: POLICY });
    const sent: JSONRPCMessage[] = [];
    const { proxy, client } = await start(gate, sent);
    // Forwarded call, cancelled after its first progress.
    const ac = new AbortController();
    const call = client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 30, steps: 30 } }, undefined, { signal: ac.signal, onprogress: () => ac.abort('enough') });
    await expect(call).rejects.toThrow();
    const forwarded = sent.find((m) => 'method' in m && m.method === 'tools/call') as { id: number } | undefined;
    expect(forwarded).toBeDefined();
    await until(() => sent.some((m) => 'method' in m && m.method === 'notifications/cancelled' && (m.params as { requestId: unknown }).requestId === forwarded!.id), 'the cancel to be forwarded');
    // Held call (pending approval), cancelled while waiting.
    const requested = new Promise<string>((resolve) => gate.on('approval', (e: { type: string; request: { id: string } }) => e.type === 'requested' && resolve(e.request.id)));
    const ac2 = new AbortController();
    const held = client.callTool({ name: 'get-sum', arguments: { a: 1, b: 1 } }, undefined, { signal: ac2.signal });
    await requested;
    ac2.abort('changed my mind');
    await expect(held).rejects.toThrow();
    // The proxy still works, and the held call never reached the server.
    expect(text(await client.callTool({ name: 'echo', arguments: { message: 'safe after' } }))).toBe('Echo: safe after');
    expect(sent.filter((m) => 'method' in m && m.method === 'tools/call').map((m) => (m as unknown as { params: { name: string } }).params.name)).toEqual(['trigger-long-running-operation', 'echo']);
    expect(sent.some((m) => 'method' in m && m.method === 'notifications/cancelled' && (m.params as { requestId: unknown }).requestId !== forwarded!.id)).toBe(false);
    await client.close();
    await proxy.closed;
  });

  test('upstream crash in process: closed resolves with code 1', async () => {
    const gate = new Gate({ policy: POLICY });
    const { proxy, client, up } = await start(gate);
    await client.listTools();
    up.child.kill('SIGKILL');
    expect((await proxy.closed).code).toBe(1);
    await client.close();
  });

  test('bad options are refused before anything starts', async () => {
    const gate = new Gate({ policy: POLICY });
    await expect(guardMcp({ gate, agentId: '', upstream: { command: 'true' } })).rejects.toThrow(/agentId/);
    await expect(guardMcp({ agentId: 'a', upstream: { command: 'true' } } as never)).rejects.toThrow(/exactly one of gate, client, socket/);
  });
});

describe("the policy's mcp section names tool calls", () => {
  const MAPPED = (version: number, echoAs: string) => `
version: ${version}
mode: enforce
default: deny
mcp:
  tools:
    echo: ${echoAs}
    get-sum: mcp.tool.never
  servers:
    everything:
      tools:
        get-sum: math_add
actions:
  file_read:
    allow_identities: ["agent-*"]
  math_add: {}
`;

  test('in process: the mapping applies (server-specific first), follows a reload, and unmapped tools keep mcp.tool.<name>', async () => {
    const gate = new Gate({ policy: MAPPED(1, 'file_read') });
    const cars: Array<Record<string, unknown>> = [];
    const check = gate.checkAsync.bind(gate);
    gate.checkAsync = (req) => {
      cars.push(req.car as Record<string, unknown>);
      return check(req);
    };
    const up = startChild(process.execPath, upstreamArgs(path.join(dir, `mapped-${nextName++}.pid`)), { stdio: ['pipe', 'pipe', 'ignore'] });
    const [clientSide, proxySide] = InMemoryTransport.createLinkedPair();
    const proxy = await guardMcp({ gate, agentId: 'agent-1', serverId: 'everything', upstream: { transport: childTransport(up) }, transport: proxySide, toolActions: { echo: 'mcp.tool.echo' } });
    const client = new Client({ name: 'test', version: '1.0.0' });
    await client.connect(clientSide);
    try {
      // echo is judged as file_read (allowed), though no rule names mcp.tool.echo; the policy wins over toolActions.
      expect(text(await client.callTool({ name: 'echo', arguments: { message: 'm' } }))).toBe('Echo: m');
      expect(cars.at(-1)).toMatchObject({ action_type: 'file_read', tool: 'echo', server_id: 'everything' });
      // the server's own entry wins over the global one
      expect(text(await client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } }))).toContain('3');
      expect(cars.at(-1)).toMatchObject({ action_type: 'math_add' });
      // unmapped: the default name, denied by default
      expect((await client.callTool({ name: 'get-env', arguments: {} })).isError).toBe(true);
      expect(cars.at(-1)).toMatchObject({ action_type: 'mcp.tool.get-env' });
      // a reload that maps echo elsewhere: the next call is judged under it
      gate.policy.load(MAPPED(2, 'file_write'));
      const denied = await client.callTool({ name: 'echo', arguments: { message: 'm' } });
      expect(denied.isError).toBe(true);
      expect(cars.at(-1)).toMatchObject({ action_type: 'file_write' });
    } finally {
      await client.close();
      await proxy.closed;
      up.kill('SIGKILL');
    }
  });

  test('over the socket with the agent token: the mapping comes from mcp_tool_actions and is re-read when a decision names a newer policy', async () => {
    const sdir = fs.mkdtempSync(path.join(dir, 'serve-map-'));
    const mapped = path.join(sdir, 'policy.yaml');
    fs.writeFileSync(mapped, MAPPED(1, 'file_read'));
    fs.writeFileSync(path.join(sdir, 'operator.token'), 'operator-token-0123456789', { mode: 0o600 });
    fs.writeFileSync(path.join(sdir, 'agent.token'), 'agent-token-0123456789abc', { mode: 0o600 });
    const socket = path.join(sdir, 'core.sock');
    const s = startServe(['--state-dir', path.join(sdir, 'state'), '--socket', socket, '--policy', mapped, '--operator-token-file', path.join(sdir, 'operator.token'), '--agent-token-file', path.join(sdir, 'agent.token')]);
    try {
      await s.ready;
      const agent = await GuardClient.connect(socket, { timeoutMs: 5000 });
      await agent.auth('agent-token-0123456789abc');
      expect(await agent.mcpToolActions('everything')).toEqual({ version: 1, tools: { echo: 'file_read', 'get-sum': 'math_add' } });
      expect(await agent.mcpToolActions('other')).toEqual({ version: 1, tools: { echo: 'file_read', 'get-sum': 'mcp.tool.never' } });
      await expect(agent.policyGet()).rejects.toThrow(); // the rest of the policy stays the operator's
      agent.close();
      const { child } = startProxy([], ['--socket', socket, '--auth-token-file', path.join(sdir, 'agent.token')]);
      const client = await connectedClient(child);
      expect(text(await client.callTool({ name: 'echo', arguments: { message: 'mapped' } }))).toBe('Echo: mapped');
      const operator = await GuardClient.connect(socket, { timeoutMs: 5000 });
      await operator.auth('operator-token-0123456789');
      await operator.policyReload(MAPPED(2, 'file_write'));
      operator.close();
      // The first decision names version 2: the proxy re-reads the mapping and judges echo as file_write.
      const r = await client.callTool({ name: 'echo', arguments: { message: 'mapped' } });
      expect(r.isError).toBe(true);
      expect(text(r)).toMatch(/file_write|no rule|default/);
      await client.close();
      expect(await exited(child)).toBe(0);
    } finally {
      s.child.kill('SIGKILL');
      await s.exited;
    }
  });

  test('rejects bad input: the mcp section is checked by the policy schema', () => {
    const bad = [
      { mcp: { tools: { echo: 5 } } },
      { mcp: { tools: { echo: '' } } },
      { mcp: { tool: {} } },
      { mcp: { servers: { s: { tools: { a: 'b' }, extra: 1 } } } },
      { mcp: { tools: { ['x'.repeat(257)]: 'a' } } },
      { mcp: [] },
    ];
    for (const extra of bad) {
      let err: unknown;
      try {
        new Gate({ policy: { version: 1, mode: 'enforce', ...extra } as never });
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ code: 'ERR_POLICY_INVALID' });
      expect((err as { path: string }).path).toMatch(/^mcp/);
    }
  });

  test('attack: tool names that are Object.prototype members map to nothing', () => {
    const gate = new Gate({ policy: MAPPED(1, 'file_read') });
    for (const name of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      expect(gate.policy.mcpToolAction('everything', name)).toBeUndefined();
      expect(carFor('tools/call', { name }, { agentId: 'a', serverId: 'everything', policyToolAction: (n) => gate.policy.mcpToolAction('everything', n) })).toMatchObject({ car: { action_type: `mcp.tool.${name}` } });
    }
    expect(Object.getPrototypeOf(gate.policy.mcpToolActions('everything'))).toBeNull();
  });
});

describe('CAR mapping and hideDenied rules', () => {
  const ctx = { agentId: 'agent-1', serverId: 's', toolActions: { rm: 'shell_exec' } };
  test('each gated method becomes its CAR; the tool name comes from params.name only', () => {
    expect(carFor('tools/call', { name: 'echo', arguments: { name: 'other', x: 1 }, _meta: { progressToken: 1 } }, ctx)).toEqual({ car: { action_type: 'mcp.tool.echo', agent_id: 'agent-1', server_id: 's', tool: 'echo', args: { name: 'other', x: 1 } } });
    expect(carFor('tools/call', { name: 'rm', arguments: {} }, ctx)).toMatchObject({ car: { action_type: 'shell_exec', tool: 'rm' } });
    expect(carFor('tools/call', { name: 'toString' }, ctx)).toEqual({ car: { action_type: 'mcp.tool.toString', agent_id: 'agent-1', server_id: 's', tool: 'toString' } });
    expect(carFor('resources/read', { uri: 'file:///a' }, ctx)).toEqual({ car: { action_type: 'mcp.resource.read', agent_id: 'agent-1', server_id: 's', resource: 'file:///a' } });
    expect(carFor('prompts/get', { name: 'p', arguments: { a: 'b' } }, ctx)).toEqual({ car: { action_type: 'mcp.prompt.get', agent_id: 'agent-1', server_id: 's', prompt: 'p', args: { a: 'b' } } });
    for (const bad of [undefined, null, [], { name: 1 }, { name: '' }, { name: 'x', arguments: 'y' }, { name: 'x', arguments: null }]) expect(carFor('tools/call', bad, ctx)).toHaveProperty('invalid');
    expect(carFor('resources/read', { uri: 5 }, ctx)).toHaveProperty('invalid');
  });

  test('neverAllowed: only what no call could change', () => {
    const doc = (extra: Record<string, unknown>) => ({ version: 1, mode: 'enforce', default: 'deny', actions: { a: extra } });
    expect(neverAllowed(doc({}), 'agent-1', 'missing')).toBe(true);
    expect(neverAllowed({ ...doc({}), default: 'allow' }, 'agent-1', 'missing')).toBe(false);
    expect(neverAllowed({ ...doc({}), mode: 'audit' }, 'agent-1', 'missing')).toBe(false);
    expect(neverAllowed(doc({ deny_identities: ['agent-*'] }), 'agent-1', 'a')).toBe(true);
    expect(neverAllowed(doc({ deny_identities: ['agent-*'], on_violation: 'warn' }), 'agent-1', 'a')).toBe(false);
    expect(neverAllowed(doc({ allow_identities: ['ops-*'] }), 'agent-1', 'a')).toBe(true);
    expect(neverAllowed(doc({ allow_identities: ['agent-*'] }), 'agent-1', 'a')).toBe(false);
    expect(neverAllowed(doc({ constraints: { 'args.x': { equals: 1 } } }), 'agent-1', 'a')).toBe(false);
    expect(neverAllowed(doc({ min_trust: 0.99 }), 'agent-1', 'a')).toBe(false);
    expect(neverAllowed(doc({ require_approval: true }), 'agent-1', 'a')).toBe(false);
    expect(neverAllowed(null, 'agent-1', 'a')).toBe(true);
    expect(neverAllowed(doc({}), 'agent-1', 'toString')).toBe(true); // no prototype lookups
  });
});
