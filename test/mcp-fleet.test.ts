// The MCP guard proxy in fleet mode: `guardkernel mcp --socket` in front of
// server-everything, against one of two `guardkernel serve --redis` processes
// on a real redis-server. A call waiting for approval on server A is approved
// by an operator through server B; a quarantine made through B denies the
// proxy's next call through A; the decisions land in A's audit log with the
// MCP fields.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { GuardClient } from '../lib/index';
import { startChild } from './child';
import { skipWithout } from './prerequisites';
import { REDIS_BINARY, redisAvailable, startRedis, type RedisProcess } from './redis-server';
import { cli, startServe } from './serve-process';

const missing = skipWithout('redis-server', !redisAvailable ? `${REDIS_BINARY} not found` : null, 'GUARDKERNEL_REQUIRE_REDIS');
const everything = path.join(__dirname, '..', 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');

const POLICY = `version: 1
mode: enforce
default: deny
mcp:
  tools:
    echo: file_read
actions:
  file_read:
    allow_identities: ["agent-*"]
  mcp.tool.get-sum:
    require_approval: true
`;

let redis: RedisProcess;
const running: Array<ReturnType<typeof startServe>> = [];
const secret = randomBytes(32).toString('base64');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-mcp-fleet-'));
const [opToken, agentToken] = ['operator-token-0123456789', 'agent-token-0123456789abc'];
fs.writeFileSync(path.join(dir, 'op.token'), opToken, { mode: 0o600 });
fs.writeFileSync(path.join(dir, 'agent.token'), agentToken, { mode: 0o600 });

async function server(prefix: string): Promise<{ socket: string; state: string }> {
  const state = fs.mkdtempSync(path.join(dir, 'serve-'));
  const policy = path.join(state, 'policy.yaml');
  fs.writeFileSync(policy, POLICY);
  const s = startServe(['--state-dir', state, '--policy', policy, '--redis', redis.url, '--redis-prefix', prefix, '--operator-token-file', path.join(dir, 'op.token'), '--agent-token-file', path.join(dir, 'agent.token')], { GUARD_HMAC_SECRET: secret });
  running.push(s);
  await s.ready;
  return { socket: path.join(state, 'core.sock'), state };
}

function text(r: unknown): string {
  return ((r as { content: Array<{ text: string }> }).content ?? []).map((c) => c.text).join('');
}

describe.skipIf(missing)('guardkernel mcp in fleet mode (two serve processes, one real redis-server)', () => {
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    for (const s of running) s.child.kill('SIGTERM');
    await Promise.all(running.map((s) => s.exited));
    await redis?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('pending through A, approved through B, forwarded once; a quarantine made through B denies the next call through A; audited with the MCP fields', async () => {
    const prefix = `mcp-${randomBytes(4).toString('hex')}:`;
    const [a, b] = await Promise.all([server(prefix), server(prefix)]);
    const proxy = startChild(process.execPath, [cli, 'mcp', '--socket', a.socket, '--auth-token-file', path.join(dir, 'agent.token'), '--agent-id', 'agent-fleet', '--server-id', 'everything', '--approval-timeout', '20000', '--', process.execPath, everything, 'stdio'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const inner = new StdioServerTransport(proxy.stdout!, proxy.stdin!);
    const transport: Transport = { start: () => inner.start(), send: (m) => inner.send(m), close: async () => { await inner.close(); proxy.stdin!.end(); } };
    inner.onmessage = (m) => transport.onmessage?.(m);
    const client = new Client({ name: 'fleet-test', version: '1.0.0' });
    const operatorB = await GuardClient.connect(b.socket, { timeoutMs: 5000 });
    try {
      await client.connect(transport);
      await operatorB.auth(opToken);
      // the policy's mapping, read from A with the agent token
      expect(text(await client.callTool({ name: 'echo', arguments: { message: 'fleet' } }))).toBe('Echo: fleet');
      const call = client.callTool({ name: 'get-sum', arguments: { a: 40, b: 2 } }, undefined, { timeout: 30_000 });
      let id: string | undefined;
      for (let i = 0; i < 500 && id === undefined; i++) {
        const open = (await operatorB.approvalList('pending')).approvals;
        id = open[0]?.id;
        if (id === undefined) await new Promise((r) => setTimeout(r, 20));
      }
      expect(id).toBeDefined();
      await operatorB.approvalApprove(id!, 'approved on B');
      const r = await call;
      expect(r.isError).toBeFalsy();
      expect(text(r)).toContain('42');
      // used: the same call needs a new approval
      expect((await operatorB.approvalGet(id!)).status).toBe('used');

      await operatorB.call('quarantine', { agent_id: 'agent-fleet', isolation: 'full', reason: 'fleet test' });
      let denied: unknown;
      for (let i = 0; i < 100; i++) {
        denied = await client.callTool({ name: 'echo', arguments: { message: 'after quarantine' } });
        if ((denied as { isError?: boolean }).isError) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect((denied as { isError?: boolean }).isError).toBe(true);
      expect(text(denied)).toMatch(/quarantine/);
    } finally {
      operatorB.close();
      await client.close().catch(() => {});
      proxy.kill('SIGKILL');
    }
    const records = fs.readFileSync(path.join(a.state, 'audit.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const decisions = records.filter((x) => x.type === 'gate_decision' && x.agent_id === 'agent-fleet');
    expect(decisions.map((x) => `${x.action_type} ${x.decision}/${x.source}`)).toEqual(expect.arrayContaining(['file_read allow/policy', 'mcp.tool.get-sum pending/policy', 'mcp.tool.get-sum allow/approval', 'file_read deny/quarantine']));
  });
});
