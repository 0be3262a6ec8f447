// Approvals on a real `guardkernel serve` process: open requests and their
// decisions survive a restart and a SIGKILL (each journal line is written
// before the reply; a decision is fsync'd before it, an opened request within
// the turn), and the webhook announces them, signed.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { GuardClient, verifyWebhookSignature } from '../lib/index';
import { startServe } from './serve-process';

const POLICY = 'version: 1\nmode: enforce\ndefault: deny\nactions:\n  shell_exec:\n    require_approval: true\n';
const OPERATOR_TOKEN = 'operator-token-0123456789';
const AGENT_TOKEN = 'agent-token-0123456789abc';
const car = (cmd = 'ls') => ({ action_type: 'shell_exec', agent_id: 'agent-1', args: { cmd } });
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function setup() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-approvals-serve-'));
  fs.writeFileSync(path.join(dir, 'policy.yaml'), POLICY);
  fs.writeFileSync(path.join(dir, 'operator.token'), OPERATOR_TOKEN, { mode: 0o600 });
  fs.writeFileSync(path.join(dir, 'agent.token'), AGENT_TOKEN, { mode: 0o600 });
  const args = ['--state-dir', path.join(dir, 'state'), '--socket', path.join(dir, 'core.sock'), '--policy', path.join(dir, 'policy.yaml'), '--operator-token-file', path.join(dir, 'operator.token'), '--agent-token-file', path.join(dir, 'agent.token')];
  return { dir, args, socket: path.join(dir, 'core.sock') };
}

async function serve(args: string[]) {
  const s = startServe(args);
  cleanups.push(async () => {
    if (s.child.exitCode === null && s.child.signalCode === null) {
      s.child.kill('SIGKILL');
      await s.exited;
    }
  });
  await s.ready;
  return s;
}

async function client(socket: string, token: string) {
  const c = await GuardClient.connect(socket, { timeoutMs: 5000 });
  cleanups.push(() => c.close());
  await c.auth(token);
  return c;
}

describe('approvals on a serve process', () => {
  test('a restart keeps open requests; SIGKILL right after an acknowledged approval loses nothing', async () => {
    const { args, socket } = setup();
    let s = await serve(args);
    let agent = await client(socket, AGENT_TOKEN);
    let operator = await client(socket, OPERATOR_TOKEN);
    const a = ((await agent.call('gate_check', { car: car('a') })) as { approval_id: string }).approval_id;
    const b = ((await agent.call('gate_check', { car: car('b') })) as { approval_id: string }).approval_id;
    // A clean restart (SIGTERM).
    s.child.kill('SIGTERM');
    expect(await s.exited).toBe(0);
    s = await serve(args);
    agent = await client(socket, AGENT_TOKEN);
    operator = await client(socket, OPERATOR_TOKEN);
    const { approvals } = (await operator.call('approval_list', { status: 'pending' })) as { approvals: Array<{ id: string }> };
    expect(approvals.map((r) => r.id).sort()).toEqual([a, b].sort());
    expect(await agent.call('gate_check', { car: car('a') })).toMatchObject({ decision: 'pending', approval_id: a }); // no duplicate after the restart
    // Acknowledged, then killed without a chance to flush anything.
    expect(await operator.call('approval_approve', { id: a })).toMatchObject({ status: 'granted' });
    expect(await operator.call('approval_deny', { id: b })).toMatchObject({ status: 'denied' });
    s.child.kill('SIGKILL');
    await s.exited;
    s = await serve(args);
    agent = await client(socket, AGENT_TOKEN);
    expect(await agent.call('gate_check', { car: car('a') })).toMatchObject({ decision: 'allow', source: 'approval', approval_id: a });
    expect(await agent.call('gate_check', { car: car('b') })).toMatchObject({ decision: 'deny', source: 'approval', approval_id: b });
    // The grant was used before this kill: a restart must not hand it out again.
    s.child.kill('SIGKILL');
    await s.exited;
    s = await serve(args);
    agent = await client(socket, AGENT_TOKEN);
    const again = (await agent.call('gate_check', { car: car('a') })) as { decision: string; approval_id: string };
    expect(again.decision).toBe('pending');
    expect(again.approval_id).not.toBe(a);
  });

  test('--approval-webhook: each new request and each resolution is POSTed, signed with the state dir\'s webhook key', async () => {
    const { args, socket, dir } = setup();
    const received: Array<{ type: string; request: { id: string } }> = [];
    let failures = 0;
    const receiver = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        const secret = fs.readFileSync(path.join(dir, 'state', 'webhook.key'));
        const v = verifyWebhookSignature(secret, req.headers['guardkernel-signature'] as string | undefined, body);
        if (!v.ok) failures++;
        else received.push(JSON.parse(body));
        res.writeHead(v.ok ? 204 : 401).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => receiver.close(() => r())));
    const url = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hooks/approvals`;
    await serve([...args, '--approval-webhook', url]);
    const agent = await client(socket, AGENT_TOKEN);
    const operator = await client(socket, OPERATOR_TOKEN);
    const id = ((await agent.call('gate_check', { car: car() })) as { approval_id: string }).approval_id;
    await operator.call('approval_approve', { id, reason: 'fine' });
    await agent.call('gate_check', { car: car() });
    while (received.length < 3) await new Promise((r) => setTimeout(r, 20));
    expect(received.map((e) => e.type).sort()).toEqual(['approval.granted', 'approval.requested', 'approval.used']);
    expect(received.every((e) => e.request.id === id)).toBe(true);
    expect(failures).toBe(0);
  });

  test('rejects bad webhook flags', async () => {
    const { args } = setup();
    for (const bad of [['--approval-webhook', 'ftp://x'], ['--approval-webhook', 'not a url'], ['--approval-webhook-secret-file', '/tmp/x']]) {
      const s = startServe([...args, ...bad]);
      s.ready.catch(() => {}); // it never gets ready: the exit is what is checked
      expect(await s.exited).toBe(2);
      expect(s.errors()).toMatch(/approval-webhook/);
    }
  });
});
