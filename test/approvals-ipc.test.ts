// Approvals over the socket: operators decide, agents may read and wait on
// their own requests; the approver is the connection's credential, never the
// requester's; approval_wait wakes on the decision without holding up the
// connection's other calls.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { AuditLog, Gate, GuardClient, GuardServer, RpcCallError } from '../lib/index';

const POLICY = { version: 1, mode: 'enforce', default: 'deny', actions: { shell_exec: { require_approval: true }, note: {} } };
const car = (cmd = 'ls', agent = 'agent-1') => ({ action_type: 'shell_exec', agent_id: agent, args: { cmd } });
const OPERATOR_TOKEN = 'operator-token-0123456789';
const AGENT_TOKEN = 'agent-token-0123456789abc';
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function start(opts: Partial<ConstructorParameters<typeof GuardServer>[0]> = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-approvals-ipc-'));
  const socketPath = path.join(dir, 'core.sock');
  const auditFile = path.join(dir, 'audit.log');
  const audit = new AuditLog({ file: auditFile, key: crypto.randomBytes(32) });
  const gate = new Gate({ policy: POLICY, audit });
  const server = new GuardServer({ socketPath, context: { gate, metrics: {} }, operatorToken: Buffer.from(OPERATOR_TOKEN), agentToken: Buffer.from(AGENT_TOKEN), ...opts });
  await server.listen();
  cleanups.push(async () => {
    await server.close();
    await gate.close();
    audit.close();
  });
  const records = () => {
    audit.flush();
    return fs.readFileSync(auditFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  };
  gateOf.set(socketPath, gate);
  return { socketPath, records, gate };
}
const gateOf = new Map<string, Gate>();

async function client(socketPath: string, token?: string) {
  const c = await GuardClient.connect(socketPath, { timeoutMs: 5000 });
  cleanups.push(() => c.close());
  if (token !== undefined) await c.auth(token);
  return c;
}

const codeOf = (err: unknown) => (err instanceof RpcCallError ? (err.data as { code?: string } | undefined)?.code : String(err));

describe('approvals over the socket', () => {
  test('pending -> list -> approve -> the agent is allowed once (source approval) -> pending again', async () => {
    const { socketPath } = await start();
    const agent = await client(socketPath, AGENT_TOKEN);
    const operator = await client(socketPath, OPERATOR_TOKEN);
    const first = (await agent.call('gate_check', { car: car() })) as Record<string, unknown>;
    expect(first).toMatchObject({ decision: 'pending', approval_id: expect.stringMatching(/^apr_/), approval_expires_at: expect.any(Number) });
    const id = first.approval_id as string;
    const { approvals } = (await operator.call('approval_list', { status: 'pending' })) as { approvals: Array<Record<string, unknown>> };
    expect(approvals).toHaveLength(1);
    expect(approvals[0]).toMatchObject({ id, requester: 'token:agent', agent_id: 'agent-1', car: car() });
    const approved = (await operator.call('approval_approve', { id, reason: 'ok' })) as Record<string, unknown>;
    expect(approved).toMatchObject({ status: 'granted', decided_by: 'token:operator', reason: 'ok' });
    expect(await agent.call('gate_check', { car: car() })).toMatchObject({ decision: 'allow', source: 'approval', approval_id: id });
    const again = (await agent.call('gate_check', { car: car() })) as Record<string, unknown>;
    expect(again.decision).toBe('pending');
    expect(again.approval_id).not.toBe(id);
    // deny
    const denied = (await operator.call('approval_deny', { id: again.approval_id, reason: 'no' })) as Record<string, unknown>;
    expect(denied).toMatchObject({ status: 'denied' });
    expect(await agent.call('gate_check', { car: car() })).toMatchObject({ decision: 'deny', source: 'approval' });
    await expect(operator.call('approval_approve', { id: again.approval_id })).rejects.toSatisfy((e) => codeOf(e) === 'ERR_APPROVAL_CLOSED');
  });

  test('attack: the agent approves itself: forbidden by role, and audited', async () => {
    const { socketPath, records } = await start();
    const agent = await client(socketPath, AGENT_TOKEN);
    const id = ((await agent.call('gate_check', { car: car() })) as { approval_id: string }).approval_id;
    for (const m of ['approval_approve', 'approval_deny', 'approval_list']) {
      await expect(agent.call(m, { id })).rejects.toSatisfy((e) => codeOf(e) === 'ERR_FORBIDDEN');
    }
    expect(await agent.call('gate_check', { car: car() })).toMatchObject({ decision: 'pending', approval_id: id });
    expect(records().some((r) => r.type === 'access_denied' && r.method === 'approval_approve')).toBe(true);
  });

  test('attack: the operator credential that asked cannot approve its own request (self-approval), audited', async () => {
    const { socketPath, records } = await start();
    const op1 = await client(socketPath, OPERATOR_TOKEN);
    const id = ((await op1.call('gate_check', { car: car() })) as { approval_id: string }).approval_id;
    const op2 = await client(socketPath, OPERATOR_TOKEN); // the same credential on another connection
    await expect(op2.call('approval_approve', { id })).rejects.toSatisfy((e) => codeOf(e) === 'ERR_FORBIDDEN');
    expect(records().some((r) => r.type === 'approval_refused' && r.approval_id === id && r.approver === 'token:operator')).toBe(true);
    expect(await op1.call('gate_check', { car: car() })).toMatchObject({ decision: 'pending' });
  });

  test('without tokens the peer uid is the credential: a same-uid approver is the requester', async () => {
    const { socketPath } = await start({ operatorToken: undefined, agentToken: undefined });
    const a = await client(socketPath);
    const id = ((await a.call('gate_check', { car: car() })) as { approval_id: string }).approval_id;
    const r = (await a.call('approval_get', { id })) as { requester: string };
    expect(r.requester).toMatch(/^uid:\d+$/);
    await expect(a.call('approval_approve', { id })).rejects.toSatisfy((e) => codeOf(e) === 'ERR_FORBIDDEN');
    // Another connection of the same uid is the same credential (also where the platform names no peer: an owner-only socket).
    const b = await client(socketPath);
    await expect(b.call('approval_approve', { id })).rejects.toSatisfy((e) => codeOf(e) === 'ERR_FORBIDDEN');
  });

  test('approval_get / approval_wait: the agent may read its own requests only', async () => {
    const { socketPath, gate } = await start();
    const agent = await client(socketPath, AGENT_TOKEN);
    const mine = ((await agent.call('gate_check', { car: car() })) as { approval_id: string }).approval_id;
    expect(await agent.call('approval_get', { id: mine })).toMatchObject({ id: mine, status: 'pending' });
    // A request made in process (no requester) is not the agent's.
    const theirs = gate.check({ car: car('other') }).approval_id!;
    await expect(agent.call('approval_get', { id: theirs })).rejects.toSatisfy((e) => codeOf(e) === 'ERR_FORBIDDEN');
    await expect(agent.call('approval_wait', { id: theirs, timeout_ms: 0 })).rejects.toSatisfy((e) => codeOf(e) === 'ERR_FORBIDDEN');
  });

  test('approval_wait wakes on the decision, does not hold up the connection, survives a reconnect, times out cleanly', async () => {
    const { socketPath } = await start();
    const agent = await client(socketPath, AGENT_TOKEN);
    const operator = await client(socketPath, OPERATOR_TOKEN);
    const id = ((await agent.call('gate_check', { car: car() })) as { approval_id: string }).approval_id;
    expect(await agent.call('approval_wait', { id, timeout_ms: 0 })).toMatchObject({ status: 'pending', timed_out: true });
    const waiting = agent.call('approval_wait', { id, timeout_ms: 60_000 });
    // The same connection still answers while the wait is open.
    expect(await agent.call('ping')).toBe('pong');
    expect(await agent.call('gate_check', { car: car() })).toMatchObject({ decision: 'pending', approval_id: id });
    // A client that dropped waits again by id on a new connection.
    const second = await client(socketPath, AGENT_TOKEN);
    const waiting2 = second.call('approval_wait', { id, timeout_ms: 60_000 });
    await operator.call('approval_approve', { id });
    await expect(waiting).resolves.toMatchObject({ id, status: 'granted' });
    await expect(waiting2).resolves.toMatchObject({ id, status: 'granted' });
  });

  test('an approval_wait inside a JSON-RPC batch: the batch reply comes once the wait ends, later calls are not held up', async () => {
    const { socketPath } = await start({ operatorToken: undefined, agentToken: undefined });
    const asker = await client(socketPath);
    const id = ((await asker.call('gate_check', { car: car('batch') })) as { approval_id: string }).approval_id;
    const s = net.connect(socketPath);
    cleanups.push(() => void s.destroy());
    const lines: string[] = [];
    let buf = '';
    const arrived = (n: number) =>
      new Promise<void>((resolve) => {
        const look = () => {
          if (lines.length >= n) resolve();
          else s.once('data', look);
        };
        look();
      });
    s.on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        lines.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    });
    s.write(JSON.stringify([{ jsonrpc: '2.0', id: 1, method: 'approval_wait', params: { id, timeout_ms: 60_000 } }, { jsonrpc: '2.0', id: 2, method: 'ping' }]) + '\n');
    s.write(JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'ping' }) + '\n');
    await arrived(1);
    expect(JSON.parse(lines[0])).toMatchObject({ id: 3, result: 'pong' });
    gateOf.get(socketPath)!.approvals!.deny(id, { approver: 'alice' });
    await arrived(2);
    const batch = JSON.parse(lines[1]) as Array<{ id: number; result: unknown }>;
    expect(batch.map((r) => r.id)).toEqual([1, 2]);
    expect(batch[0].result).toMatchObject({ id, status: 'denied' });
  });

  test('rejects bad input', async () => {
    const { socketPath } = await start();
    const operator = await client(socketPath, OPERATOR_TOKEN);
    await expect(operator.call('approval_get', {})).rejects.toMatchObject({ rpcCode: -32602 });
    await expect(operator.call('approval_get', { id: 5 })).rejects.toMatchObject({ rpcCode: -32602 });
    await expect(operator.call('approval_get', { id: 'nope' })).rejects.toSatisfy((e) => codeOf(e) === 'ERR_INVALID_ARGUMENT');
    await expect(operator.call('approval_get', { id: 'apr_' + 'A'.repeat(22) })).rejects.toSatisfy((e) => codeOf(e) === 'ERR_APPROVAL_NOT_FOUND');
    await expect(operator.call('approval_list', { status: 'weird' })).rejects.toSatisfy((e) => codeOf(e) === 'ERR_INVALID_ARGUMENT');
    await expect(operator.call('approval_wait', { id: 'apr_' + 'A'.repeat(22), timeout_ms: -5 })).rejects.toMatchObject({ rpcCode: -32602 });
    await expect(operator.call('approval_wait', { id: 'apr_' + 'A'.repeat(22), timeout_ms: 10 ** 9 })).rejects.toMatchObject({ rpcCode: -32602 });
    await expect(operator.call('approval_approve', { id: 'apr_' + 'A'.repeat(22), reason: 7 })).rejects.toMatchObject({ rpcCode: -32602 });
  });

  test('bounded: at most 16 open waits per connection', async () => {
    const { socketPath } = await start();
    const agent = await client(socketPath, AGENT_TOKEN);
    const id = ((await agent.call('gate_check', { car: car() })) as { approval_id: string }).approval_id;
    const waits = Array.from({ length: 16 }, () => agent.call('approval_wait', { id, timeout_ms: 60_000 }).catch(() => 'closed'));
    await expect(agent.call('approval_wait', { id, timeout_ms: 60_000 })).rejects.toSatisfy((e) => codeOf(e) === 'ERR_LIMIT');
    const operator = await client(socketPath, OPERATOR_TOKEN);
    await operator.call('approval_deny', { id });
    for (const w of await Promise.all(waits)) expect(w).toMatchObject({ status: 'denied' });
  });
});
