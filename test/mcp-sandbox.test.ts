// The MCP guard proxy with its upstream server in the process sandbox
// (issue 29 item 5): `guardkernel mcp --sandbox ...` and guardMcp's
// `{ command, sandbox }` upstream. The server is a real SDK Server on stdio
// with tools that try to read a secret, reach a listener on 127.0.0.1 and
// burn CPU; each attempt fails inside the sandbox while the proxy keeps
// relaying. The agent's quarantine narrows the confinement further
// (network: no network; full: refused). Without the addon the proxy refuses
// to start the server rather than run it unconfined.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { Gate } from '../lib/index';
import { guardMcp } from '../lib/mcp/index';
import { runSync, startChild } from './child';
import { repoRoot } from './helpers';
import { canSandbox, tempTree } from './process-sandbox-helpers';

const cli = path.join(repoRoot, 'dist', 'cli', 'main.js');
const POLICY = `version: 1
mode: enforce
default: deny
actions:
  mcp.tool.read: {}
  mcp.tool.connect: {}
  mcp.tool.spin: {}
`;

// The upstream: tools that try what a confined server must not do.
const SERVER = `
const fs = require('fs');
const net = require('net');
const { Server } = require(${JSON.stringify(path.join(repoRoot, 'node_modules/@modelcontextprotocol/sdk/dist/cjs/server/index.js'))});
const { StdioServerTransport } = require(${JSON.stringify(path.join(repoRoot, 'node_modules/@modelcontextprotocol/sdk/dist/cjs/server/stdio.js'))});
const t = require(${JSON.stringify(path.join(repoRoot, 'node_modules/@modelcontextprotocol/sdk/dist/cjs/types.js'))});
const server = new Server({ name: 'escape', version: '1.0.0' }, { capabilities: { tools: {} } });
const text = (s) => ({ content: [{ type: 'text', text: s }] });
server.setRequestHandler(t.ListToolsRequestSchema, async () => ({ tools: ['read', 'connect', 'spin'].map((name) => ({ name, inputSchema: { type: 'object' } })) }));
server.setRequestHandler(t.CallToolRequestSchema, async (r) => {
  const a = r.params.arguments || {};
  if (r.params.name === 'read') { try { return text('read: ' + fs.readFileSync(a.path, 'utf8')); } catch (e) { return text('error: ' + e.code); } }
  if (r.params.name === 'connect') return await new Promise((resolve) => { const c = net.connect(a.port, '127.0.0.1', () => { c.destroy(); resolve(text('connected')); }); c.on('error', (e) => resolve(text('error: ' + e.code))); });
  if (r.params.name === 'spin') { for (;;) {} }
  return text('unknown');
});
server.connect(new StdioServerTransport());
`;

let dir: string;
let serverFile: string;
let secret: string;
let listener: net.Server;
let port: number;

beforeAll(async () => {
  dir = tempTree('gk-mcp-sbx-');
  serverFile = path.join(dir, 'server', 'escape-server.js');
  fs.mkdirSync(path.dirname(serverFile));
  fs.writeFileSync(serverFile, SERVER);
  secret = path.join(dir, 'home', 'secret.txt');
  fs.mkdirSync(path.dirname(secret));
  fs.writeFileSync(secret, 'the secret');
  listener = net.createServer((s) => s.destroy()).listen(0, '127.0.0.1');
  await new Promise((r) => listener.once('listening', r));
  port = (listener.address() as net.AddressInfo).port;
});
afterAll(() => {
  listener.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const text = (r: unknown) => ((r as { content: Array<{ text: string }> }).content ?? []).map((c) => c.text).join('');
/** What the server may read: node, the SDK, its own file (system library trees stay readable). */
const readable = () => [process.execPath, path.join(repoRoot, 'node_modules'), path.dirname(serverFile)];

/** An MCP transport over a child's stdio (the SDK's framing). */
function childTransport(child: ReturnType<typeof startChild>): Transport {
  const inner = new StdioServerTransport(child.stdout!, child.stdin!);
  child.stdin!.on('error', () => {});
  const t: Transport = { start: () => inner.start(), send: (m) => inner.send(m), close: async () => { await inner.close(); child.stdin!.end(); } };
  inner.onmessage = (m) => t.onmessage?.(m);
  child.once('exit', () => t.onclose?.());
  return t;
}

describe.skipIf(!canSandbox)('the MCP proxy with a sandboxed upstream', () => {
  test('guardkernel mcp --sandbox: reading outside --sandbox-read and connecting with --sandbox-network none fail inside the server; a CPU spin past --sandbox-cpu-ms ends it with the sandbox reason', async () => {
    const policy = path.join(dir, 'policy.yaml');
    fs.writeFileSync(policy, POLICY);
    const flags = readable().flatMap((p) => ['--sandbox-read', p]);
    const child = startChild(process.execPath, [cli, 'mcp', '--policy', policy, '--agent-id', 'agent-1', ...flags, '--sandbox-network', 'none', '--sandbox-cpu-ms', '1000', '--', process.execPath, serverFile], { stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const client = new Client({ name: 'test', version: '1.0.0' });
    await client.connect(childTransport(child));
    // the same file is readable by this test, so only the sandbox refuses it
    expect(fs.readFileSync(secret, 'utf8')).toBe('the secret');
    expect(text(await client.callTool({ name: 'read', arguments: { path: secret } }))).toMatch(/^error: (EACCES|EPERM)$/);
    expect(text(await client.callTool({ name: 'read', arguments: { path: `/proc/self/root${secret}` } }))).toMatch(/^error: (EACCES|EPERM)$/);
    expect(text(await client.callTool({ name: 'read', arguments: { path: serverFile } }))).toContain('escape');
    expect(text(await client.callTool({ name: 'connect', arguments: { port } }))).toMatch(/^error: /);
    await expect(client.callTool({ name: 'spin', arguments: {} }, undefined, { timeout: 30_000 })).rejects.toThrow(/Connection closed/);
    expect(await exited).toBe(1);
    expect(err).toContain('the sandbox stopped the upstream MCP server (cpu');
  });

  test('guardMcp: the agent\'s quarantine narrows the upstream\'s sandbox (network isolation: no network), and full isolation refuses to start it', async () => {
    const gate = new Gate({ policy: POLICY });
    const start = async (agentId: string) => {
      const [clientSide, proxySide] = InMemoryTransport.createLinkedPair();
      const proxy = await guardMcp({ gate, agentId, serverId: 'escape', transport: proxySide, upstream: { command: process.execPath, args: [serverFile], stderr: 'ignore', sandbox: { network: 'host' } } });
      const client = new Client({ name: 'test', version: '1.0.0' });
      await client.connect(clientSide);
      return { proxy, client };
    };
    const free = await start('agent-free');
    expect(text(await free.client.callTool({ name: 'connect', arguments: { port } }))).toBe('connected');
    await free.client.close();
    await free.proxy.closed;

    gate.quarantine.quarantine('agent-net', 'test', { isolation: 'network' });
    const confined = await start('agent-net');
    expect(text(await confined.client.callTool({ name: 'connect', arguments: { port } }))).toMatch(/^error: /);
    await confined.client.close();
    await confined.proxy.closed;

    gate.quarantine.quarantine('agent-full', 'test', { isolation: 'full' });
    await expect(start('agent-full')).rejects.toThrow(/refused|ERR_FORBIDDEN|quarantine/i);
  });

  test('rejects bad input: --sandbox with --upstream-url, an unknown --sandbox- flag, a bad value', () => {
    const run = (args: string[]) => {
      const r = runSync(process.execPath, [cli, 'mcp', '--policy', 'p.yaml', ...args], { encoding: 'utf8', timeout: 20_000 });
      return { status: r.status as number, stderr: r.stderr };
    };
    expect(run(['--sandbox', '--upstream-url', 'http://127.0.0.1:1/mcp'])).toMatchObject({ status: 2, stderr: expect.stringContaining('cannot confine an --upstream-url') });
    expect(run(['--sandbox-nope', 'x', '--', 'true'])).toMatchObject({ status: 2, stderr: expect.stringContaining('unknown option --sandbox-nope') });
    expect(run(['--sandbox-network', 'moon', '--', 'true'])).toMatchObject({ status: 2, stderr: expect.stringContaining('moon') });
    expect(run(['--sandbox-memory', '-5', '--', 'true'])).toMatchObject({ status: 2 });
  });
});

describe.skipIf(canSandbox)('the MCP proxy with a sandboxed upstream, where no sandbox can run (e.g. GUARDKERNEL_NATIVE=0)', () => {
  test('guardMcp refuses to start the server rather than run it unconfined', async () => {
    const [, proxySide] = InMemoryTransport.createLinkedPair();
    const gate = new Gate({ policy: POLICY });
    await expect(guardMcp({ gate, agentId: 'a', transport: proxySide, upstream: { command: process.execPath, args: [serverFile], sandbox: {} } })).rejects.toThrow(/ERR_SANDBOX_UNSUPPORTED|sandbox/i);
  });
});
