// Nothing happens unaudited (issue 25 item 3): every state change is made only
// after the audit log accepted its record, and not at all when it refuses it
// (here: the log is closed, so every append throws ERR_CLOSED). Long fields
// are cut with a digest, never a reason for a change to go unrecorded.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { AuditLog, Gate, GuardClient, GuardServer, Keyring, PolicyEngine, Quarantine, carHash } from '../lib/index';

const POLICY = { version: 1, mode: 'enforce', actions: { file_read: { constraints: { resource: { glob: '/srv/**' } } }, shell_exec: { require_approval: true } } };
const read = (agent = 'agent-1') => ({ action_type: 'file_read', agent_id: agent, resource: '/srv/a' });
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function log() {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gk-first-')), 'audit.log');
  const audit = new AuditLog({ file, key: crypto.randomBytes(32) });
  const records = () => fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  return { audit, file, records };
}

describe('quarantine changes are made only once recorded', () => {
  test('quarantine, analyze, recover and terminate change nothing when the log refuses the record', () => {
    const { audit } = log();
    const q = new Quarantine({ audit });
    const gate = new Gate({ policy: POLICY, quarantine: q });
    q.quarantine('agent-q', 'suspicious');
    q.quarantine('agent-t', 'suspicious');
    audit.close(); // from here every append throws
    expect(() => q.quarantine('agent-new', 'x')).toThrow(/closed/i);
    expect(q.get('agent-new')).toBeUndefined();
    expect(gate.check({ car: read('agent-new') }).decision).toBe('allow');

    expect(() => q.recover('agent-q', 'looks fine')).toThrow(/closed/i);
    expect(q.get('agent-q')?.status).toBe('active');
    expect(gate.check({ car: read('agent-q') })).toMatchObject({ decision: 'deny', source: 'quarantine' });

    expect(() => q.analyze('agent-q')).toThrow(/closed/i);
    expect(q.get('agent-q')?.status).toBe('active');

    expect(() => q.terminate('agent-t', 'bad')).toThrow(/closed/i);
    expect(q.get('agent-t')?.status).toBe('active');
  });

  test('a 70,000-character reason: the agent is recovered and the record is there, cut with a digest', () => {
    const { audit, records } = log();
    const q = new Quarantine({ audit });
    q.quarantine('agent-r', 'suspicious');
    const reason = 'r'.repeat(70_000);
    expect(q.recover('agent-r', reason).status).toBe('recovered');
    audit.flush();
    const rec = records().filter((r) => r.type === 'quarantine_changed').pop();
    expect(rec).toMatchObject({ agent_id: 'agent-r', to: 'recovered' });
    expect(rec.reason).toMatchObject({ truncated: true, length: 70_000, sha256: crypto.createHash('sha256').update(reason).digest('hex') });
  });
});

describe('policy reloads are made only once recorded', () => {
  test('load(policy, record): audited before the swap; a refused record keeps the old policy', () => {
    const { audit, records } = log();
    const engine = new PolicyEngine(POLICY, { audit });
    expect(engine.load({ ...POLICY, version: 2 }, { via: 'test' })).toBe(2);
    audit.flush();
    expect(records().filter((r) => r.type === 'policy_reloaded').pop()).toMatchObject({ ok: true, version: 2, previous_version: 1, via: 'test' });
    audit.close();
    expect(() => engine.load({ ...POLICY, version: 3 }, { via: 'test' })).toThrow(/closed/i);
    expect(engine.version).toBe(2);
  });

  test('a watched file whose reload the log refuses is not loaded (and the failure is counted)', async () => {
    const { audit } = log();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-first-watch-'));
    const file = path.join(dir, 'policy.json');
    fs.writeFileSync(file, JSON.stringify(POLICY));
    const engine = new PolicyEngine(POLICY, { audit });
    audit.close();
    const failed = new Promise<Error>((resolve) => engine.once('reload_failed', resolve));
    const stop = engine.watch(file, { intervalMs: 20 });
    cleanups.push(stop);
    fs.writeFileSync(file, JSON.stringify({ ...POLICY, version: 5 }));
    expect((await failed).message).toMatch(/closed/i);
    expect(engine.version).toBe(1);
    expect(engine.auditFailures).toBeGreaterThan(0);
  });
});

describe('IPC state changes are made only once recorded', () => {
  async function start() {
    const { audit, records } = log();
    const keyring = new Keyring({ keys: { k1: crypto.randomBytes(32) }, active: 'k1' });
    const gate = new Gate({ policy: POLICY, audit, keyring });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-first-ipc-'));
    const server = new GuardServer({ socketPath: path.join(dir, 'core.sock'), context: { gate, metrics: {} } });
    await server.listen();
    const c = await GuardClient.connect(server.socketPath, { timeoutMs: 5000 });
    cleanups.push(async () => {
      c.close();
      await server.close();
    });
    return { c, gate, audit, records };
  }
  const h = carHash(read());

  test('cache_put, cache_invalidate, create_permit and policy_reload are recorded before they happen', async () => {
    const { c, audit, records, gate } = await start();
    await c.call('cache_put', { car_hash: h, decision: 'deny' });
    await c.call('cache_invalidate', { car_hash: h });
    const permit = (await c.call('create_permit', { car: read(), agent_id: 'agent-1', ttl_ms: 60_000 })) as { jti: string };
    await c.call('policy_reload', { policy: { ...POLICY, version: 2 } });
    audit.flush();
    const got = records();
    expect(got.filter((r) => r.type === 'cache_changed').map((r) => [r.op, r.car_hash])).toEqual([
      ['put', h],
      ['invalidate', h],
    ]);
    expect(got.find((r) => r.type === 'permit_issued')).toMatchObject({ jti: permit.jti, agent_id: 'agent-1', car_hash: h });
    expect(got.filter((r) => r.type === 'policy_reloaded')).toEqual([expect.objectContaining({ ok: true, version: 2, via: 'ipc' })]);
    expect(gate.policy.version).toBe(2);
  });

  test('with the log refusing, none of them happens', async () => {
    const { c, audit, gate } = await start();
    gate.cache!.put(h, { decision: 'allow', policyVersion: 1 });
    audit.close();
    await expect(c.call('cache_put', { car_hash: carHash(read('agent-2')), decision: 'allow' })).rejects.toThrow();
    expect(gate.cache!.get(carHash(read('agent-2')), 1)).toBeUndefined();
    await expect(c.call('cache_invalidate', { car_hash: h })).rejects.toThrow();
    await expect(c.call('cache_invalidate', {})).rejects.toThrow();
    expect(gate.cache!.get(h, 1)).toMatchObject({ decision: 'allow' });
    await expect(c.call('create_permit', { car: read(), agent_id: 'agent-1', ttl_ms: 60_000 })).rejects.toThrow();
    await expect(c.call('policy_reload', { policy: { ...POLICY, version: 2 } })).rejects.toThrow();
    expect(gate.policy.version).toBe(1);
  });

  test('bad input to cache_put is refused before anything is recorded', async () => {
    const { c, audit, records } = await start();
    for (const bad of [{ car_hash: 'sha256:xyz', decision: 'allow' }, { car_hash: h, decision: 'maybe' }, { car_hash: h, decision: 'allow', ttl_ms: 0 }]) {
      await expect(c.call('cache_put', bad)).rejects.toThrow();
    }
    await expect(c.call('cache_invalidate', { car_hash: 'nope' })).rejects.toThrow();
    audit.flush();
    expect(records().filter((r) => r.type === 'cache_changed')).toEqual([]);
  });
});
