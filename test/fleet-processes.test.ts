// Fleet mode across real processes: several `guardkernel serve --redis`
// children on one real redis-server, driven through their sockets. A nonce
// and a single-use permit are accepted once across all; one rate budget
// holds exactly; a quarantine and a policy reload made through one server
// reach the others; Redis killed mid-run: 'deny' denies and recovers,
// 'local' keeps serving and audits the outage; doctor reports the store.
import { runSync } from './child';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog, GuardClient } from '../lib/index';
import { until } from './helpers';
import { redisAvailable, startRedis, type RedisProcess } from './redis-server';
import { cli, startServe } from './serve-process';

const POLICY_V1 = `version: 1
mode: enforce
default: deny
actions:
  file_read:
    constraints:
      resource: { glob: "/srv/**" }
  shell_exec:
    require_approval: true
`;

let redis: RedisProcess;
const running: Array<ReturnType<typeof startServe>> = [];
const clients: GuardClient[] = [];
const secret = randomBytes(32).toString('base64');

async function server(prefix: string, extra: string[] = []): Promise<{ client: GuardClient; state: string }> {
  const state = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-fleet-proc-'));
  const policy = path.join(state, 'policy.yaml');
  fs.writeFileSync(policy, POLICY_V1);
  const s = startServe(['--state-dir', state, '--policy', policy, '--redis', redis.url, '--redis-prefix', prefix, ...extra], { GUARD_HMAC_SECRET: secret });
  running.push(s);
  await s.ready;
  expect(s.output()).toContain(`fleet store redis ${redis.url} (prefix ${prefix}`);
  const client = await GuardClient.connect(path.join(state, 'core.sock'));
  clients.push(client);
  return { client, state };
}

describe.skipIf(!redisAvailable)('fleet mode across guardkernel serve processes', () => {
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    for (const s of running) s.child.kill('SIGTERM');
    await Promise.all(running.map((s) => s.exited));
    await redis?.stop();
  });

  it('approvals: pending on one server, approved through another; racing retries on both are allowed exactly once', async () => {
    const prefix = `appr-${randomBytes(4).toString('hex')}:`;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-fleet-appr-'));
    const [opToken, agentToken] = ['operator-token-0123456789', 'agent-token-0123456789abc'];
    fs.writeFileSync(path.join(dir, 'op.token'), opToken, { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'agent.token'), agentToken, { mode: 0o600 });
    const tokens = ['--operator-token-file', path.join(dir, 'op.token'), '--agent-token-file', path.join(dir, 'agent.token')];
    const [sa, sb] = await Promise.all([server(prefix, tokens), server(prefix, tokens)]);
    const as = async (state: string, token: string) => {
      const c = await GuardClient.connect(path.join(state, 'core.sock'));
      clients.push(c);
      await c.auth(token);
      return c;
    };
    const [agentA, agentB, operatorB] = [await as(sa.state, agentToken), await as(sb.state, agentToken), await as(sb.state, opToken)];
    const car = { action_type: 'shell_exec', agent_id: 'agent-appr', args: { cmd: 'deploy' } };
    for (let round = 0; round < 3; round++) {
      const first = (await agentA.gateCheck({ car })) as unknown as { decision: string; approval_id: string };
      expect(first.decision).toBe('pending');
      expect(((await agentB.gateCheck({ car })) as unknown as { approval_id: string }).approval_id).toBe(first.approval_id);
      const waiting = agentA.call('approval_wait', { id: first.approval_id, timeout_ms: 30_000 });
      expect(await operatorB.call('approval_approve', { id: first.approval_id })).toMatchObject({ status: 'granted' });
      await expect(waiting).resolves.toMatchObject({ status: 'granted' });
      const tries = await Promise.all([agentA, agentB, agentA, agentB].map((c) => c.gateCheck({ car })));
      expect(tries.filter((d) => d.decision === 'allow' && d.source === 'approval')).toHaveLength(1);
      expect(tries.filter((d) => d.decision === 'pending')).toHaveLength(3);
      // The next round's request is the one those pending answers opened.
      const open = (await operatorB.call('approval_list', { status: 'pending' })) as { approvals: Array<{ id: string }> };
      expect(open.approvals).toHaveLength(1);
      await operatorB.call('approval_deny', { id: open.approvals[0].id });
      expect(await agentA.gateCheck({ car })).toMatchObject({ decision: 'deny', source: 'approval' });
      await expect(operatorB.call('approval_get', { id: open.approvals[0].id })).resolves.toMatchObject({ status: 'denied' });
      car.args.cmd = `deploy-${round}`;
    }
  });

  it('three servers: nonces and single-use permits once, one exact rate budget, quarantine and reload reach the others', async () => {
    const prefix = `procs-${randomBytes(4).toString('hex')}:`;
    const rate = ['--max-per-agent', '50', '--rate-window-ms', '3600000'];
    const servers = await Promise.all([server(prefix, rate), server(prefix, rate), server(prefix, rate)]);
    const [a, b, c] = servers.map((s) => s.client);

    // 1. 100 nonces, each sent to all three at once: exactly one fresh each.
    const nonces = Array.from({ length: 100 }, (_, i) => `nonce-${i}`);
    const answers = await Promise.all(nonces.flatMap((nonce) => [a, b, c].map((cl) => cl.gateCheck({ car: { action_type: 'shell_exec', agent_id: `n-${nonce}` }, nonce }))));
    for (let i = 0; i < nonces.length; i++) {
      const three = answers.slice(3 * i, 3 * i + 3);
      expect(three.filter((d) => d.source === 'replay')).toHaveLength(2);
      expect(three.filter((d) => d.decision === 'pending')).toHaveLength(1);
    }

    // 2. A single-use permit issued by one is accepted once across all.
    const car = { action_type: 'shell_exec', agent_id: 'permit-agent' };
    const { permit } = (await a.call('create_permit', { car, agent_id: 'permit-agent', ttl_ms: 60_000 })) as { permit: string };
    const uses = await Promise.all([a, b, c].map((cl) => cl.gateCheck({ car, permit })));
    expect(uses.filter((d) => d.decision === 'allow' && d.source === 'permit')).toHaveLength(1);
    expect(uses.filter((d) => d.reason === 'permit rejected: replayed')).toHaveLength(2);

    // 3. One budget: 150 checks of one agent spread over three servers, 50 allowed in all.
    const budget = await Promise.all(Array.from({ length: 150 }, (_, i) => [a, b, c][i % 3].gateCheck({ car: { action_type: 'file_read', agent_id: 'busy-agent', resource: `/srv/${i}` } })));
    expect(budget.filter((d) => d.decision === 'allow')).toHaveLength(50);
    expect(budget.filter((d) => d.source === 'velocity')).toHaveLength(100);

    // 4. A quarantine made through one server denies on the others.
    const qcar = { action_type: 'file_read', agent_id: 'q-agent', resource: '/srv/q' };
    expect((await b.gateCheck({ car: qcar })).decision).toBe('allow');
    expect(await a.call('quarantine', { agent_id: 'q-agent', reason: 'exfiltration suspected' })).toMatchObject({ status: 'active', fleet_synced: true });
    await until(async () => (await b.gateCheck({ car: qcar })).source === 'quarantine');
    await until(async () => (await c.gateCheck({ car: qcar })).source === 'quarantine');

    // 5. A reload on one server stops the others serving their cached allow.
    const rcar = { action_type: 'file_read', agent_id: 'r-agent', resource: '/srv/r' };
    await c.gateCheck({ car: rcar });
    expect(await c.gateCheck({ car: rcar })).toMatchObject({ decision: 'allow', source: 'cache', policy_version: 1 });
    const v2 = { version: 2, mode: 'enforce', default: 'deny', actions: { file_read: { deny_identities: ['r-agent'] } } };
    expect(await a.call('policy_reload', { policy: v2 })).toEqual({ version: 2 });
    await until(async () => (await c.gateCheck({ car: rcar })).policy_version === 2, 2000);
    expect(await c.gateCheck({ car: rcar })).toMatchObject({ decision: 'deny', policy_version: 2 });
    expect(((await b.call('policy_get')) as { version: number }).version).toBe(2);

    const m = (await b.call('metrics')) as { store: Record<string, unknown> };
    expect(m.store).toMatchObject({ kind: 'redis', connection: 'ready', subscribed: true, degraded: false, prefix });
  });

  it('Redis killed mid-run: a deny server fails closed and recovers, a local server keeps serving and audits the outage', async () => {
    const prefix = `outage-${randomBytes(4).toString('hex')}:`;
    const deny = await server(prefix);
    const local = await server(prefix, ['--on-store-error', 'local']);
    const car = { action_type: 'file_read', agent_id: 'o-agent', resource: '/srv/o' };
    expect((await deny.client.gateCheck({ car, nonce: 'before' })).decision).toBe('allow');
    await redis.kill();
    try {
      expect(await deny.client.gateCheck({ car, nonce: 'during-1' })).toMatchObject({ decision: 'deny', source: 'error' });
      expect(await local.client.gateCheck({ car, nonce: 'during-2' })).toMatchObject({ decision: 'allow' });
      expect(await local.client.gateCheck({ car, nonce: 'during-2' })).toMatchObject({ decision: 'deny', source: 'replay' });
      const m = (await local.client.call('metrics')) as { store: { degraded: boolean; fallbacks: number } };
      expect(m.store.degraded).toBe(true);
      expect(m.store.fallbacks).toBeGreaterThanOrEqual(1); // the repeat was the local tier's, no round trip
    } finally {
      await redis.restart();
    }
    await until(async () => (await deny.client.gateCheck({ car, nonce: `after-${Date.now()}` })).decision === 'allow', 10_000);
    // Its head is anchored in Redis too: verified once that connection is back (until then: anchor_unavailable).
    let last: unknown = null;
    await until(async () => ((last = await local.client.call('audit_verify')) as { ok: boolean }).ok, 30_000).catch((err: Error) => {
      throw new Error(`${err.message}: last audit_verify ${JSON.stringify(last)}`);
    });
    expect(await local.client.call('audit_verify')).toMatchObject({ ok: true });
    const log = fs.readFileSync(path.join(local.state, 'audit.log'), 'utf8');
    expect(log).toContain('"type":"store_unavailable"');
    expect(AuditLog.verify(path.join(local.state, 'audit.log'), fs.readFileSync(path.join(local.state, 'audit.key')))).toMatchObject({ ok: true });
  });

  it('doctor --redis reports a reachable store, and exits 1 for one that is not', async () => {
    const ok = runSync(process.execPath, [cli, 'doctor', '--redis', redis.url], { encoding: 'utf8', timeout: 20_000 });
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/fleet store: {2}redis redis:\/\/127\.0\.0\.1:\d+ \(prefix guardkernel:\)\n {2}redis 7?[\d.]+, PING round trip/);
    const bad = runSync(process.execPath, [cli, 'doctor', '--redis', 'redis://127.0.0.1:1'], { encoding: 'utf8', timeout: 20_000 });
    expect(bad.status).toBe(1);
    expect(bad.stdout).toContain('NOT REACHABLE');
    const usage = runSync(process.execPath, [cli, 'doctor', '--redis-prefix', 'x:'], { encoding: 'utf8' });
    expect(usage.status).toBe(2);
    for (const flags of [['--redis', 'http://x'], ['--on-store-error', 'local'], ['--redis', redis.url, '--on-store-error', 'open'], ['--max-per-agent', '0']]) {
      const r = runSync(process.execPath, [cli, 'serve', ...flags], { encoding: 'utf8', timeout: 10_000 });
      expect(r.status, flags.join(' ')).toBe(2);
    }
  });
});
