// Fleet gates (several Gate objects on one real redis-server, each with its
// own connections, as separate processes would have): same answers as an
// in-process gate, single-use nonces and permits across gates, quarantine and
// policy reload reaching the other gate, one pipeline per batch, forged
// permits never reaching Redis, and both outage modes.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog, FleetStore, Gate, Keyring, carHash, type GateRequest } from '../lib/index';
import { randomInt, rng, sameApprovals, until } from './helpers';
import { redisAvailable, startRedis, type RedisProcess } from './redis-server';

const policy = {
  version: 1,
  mode: 'enforce',
  default: 'deny',
  actions: {
    file_read: { constraints: { resource: { glob: '/srv/**' } } },
    shell_exec: { require_approval: true },
    net_fetch: { on_violation: 'quarantine', constraints: { resource: { prefix: 'https://ok.example/' } } },
  },
};
const SECRET = 'k'.repeat(40);
const SIGNING_KEY = randomBytes(32);

let redis: RedisProcess;
let admin: Redis;
const gates: Gate[] = [];

function prefix(): string {
  return `t-${randomBytes(5).toString('hex')}:`;
}

async function fleetGate(p: string, extra: Record<string, unknown> = {}): Promise<Gate> {
  const { signingKey = SIGNING_KEY, ...rest } = extra as { signingKey?: Uint8Array | null };
  const g = new Gate({ policy, store: { redis: redis.url, prefix: p, commandTimeoutMs: 300, ...(signingKey === null ? {} : { signingKey }) }, ...rest });
  gates.push(g);
  await g.ready();
  return g;
}

describe.skipIf(!redisAvailable)('fleet Gate on a real redis-server', () => {
  beforeAll(async () => {
    redis = await startRedis();
    admin = new Redis(redis.url);
    admin.on('error', () => {}); // the outage test kills the server: keep ioredis from printing "Unhandled error event"
  });
  afterAll(async () => {
    for (const g of gates) await g.close();
    admin?.disconnect();
    await redis?.stop();
  });

  it('checkBatchAsync and checkAsync give the in-process gate\'s decisions on 2,000 random requests', async () => {
    const t0 = Date.now();
    const clock = () => t0; // fixed, near the wall clock (nonce expiries are absolute in Redis)
    const velocity = { windowMs: 60_000, maxPerAgent: 40, maxPerSession: 9 };
    const memKeys = new Keyring({ keys: { k1: SECRET }, active: 'k1', clock });
    const fleetKeys = new Keyring({ keys: { k1: SECRET }, active: 'k1', clock });
    const memory = new Gate({ policy, clock, velocity, keyring: memKeys });
    const p = prefix();
    const batched = await fleetGate(p, { clock, velocity, keyring: fleetKeys });
    const next = rng(0xf1ee7);
    const permits: string[] = [];
    const reqs: GateRequest[] = [];
    for (let i = 0; i < 2000; i++) {
      const car = { action_type: next() < 0.8 ? 'file_read' : 'shell_exec', agent_id: `agent-${randomInt(next, 0, 6)}`, resource: next() < 0.85 ? `/srv/${randomInt(next, 0, 20)}` : '/etc/passwd' };
      const r: GateRequest = { car };
      if (next() < 0.5) r.sessionId = `s-${randomInt(next, 0, 3)}`;
      if (next() < 0.4) r.nonce = `n-${randomInt(next, 0, 300)}`;
      if (next() < 0.15) {
        if (permits.length > 0 && next() < 0.4) r.permit = permits[randomInt(next, 0, permits.length - 1)]; // reuse: replay or wrong CAR
        else {
          const issued = memKeys.issue({ car, agentId: car.agent_id, ttlMs: 60_000, use: next() < 0.7 ? 'once' : 'multi' }).permit;
          permits.push(issued);
          r.permit = next() < 0.1 ? issued.slice(0, -2) + 'AA' : issued; // some forged
        }
      }
      reqs.push(r);
    }
    const want = reqs.map((r) => memory.check(r));
    // Two batches: state carries over between them as between sequential checks.
    const got = [...(await batched.checkBatchAsync(reqs.slice(0, 1200))), ...(await batched.checkBatchAsync(reqs.slice(1200)))];
    expect(sameApprovals(got)).toEqual(sameApprovals(want));
    const sources = new Set(want.map((d) => d.source));
    for (const s of ['velocity', 'replay', 'permit', 'policy', 'cache']) expect(sources.has(s as never), s).toBe(true);
    // checkAsync one at a time, on a fresh prefix.
    const seq = await fleetGate(prefix(), { clock, velocity, keyring: new Keyring({ keys: { k1: SECRET }, active: 'k1', clock }) });
    const seqGot: unknown[] = [];
    for (const r of reqs) seqGot.push(await seq.checkAsync(r));
    expect(sameApprovals(seqGot)).toEqual(sameApprovals(want));
  });

  it('a checkBatchAsync of 1,000 requests is one pipeline (one store command), not 1,000', async () => {
    const g = await fleetGate(prefix(), { velocity: { windowMs: 1000, maxPerAgent: 100_000 } });
    const reqs = Array.from({ length: 1000 }, (_, i) => ({ car: { action_type: 'file_read', agent_id: `a${i % 10}`, resource: `/srv/${i}` }, nonce: `batch-${i}` }));
    const before = g.store!.status().commands;
    const out = await g.checkBatchAsync(reqs);
    expect(g.store!.status().commands - before).toBe(1);
    expect(out.every((d) => d.decision === 'allow')).toBe(true);
    expect(await admin.keys(`${g.store!.prefix}replay:n:*`)).toHaveLength(1000);
  });

  it('two gates on one prefix: a nonce and a single-use permit are accepted once across both', async () => {
    const p = prefix();
    const keyA = new Keyring({ keys: { k1: SECRET }, active: 'k1' });
    const keyB = new Keyring({ keys: { k1: SECRET }, active: 'k1' });
    const a = await fleetGate(p, { keyring: keyA });
    const b = await fleetGate(p, { keyring: keyB });
    const car = { action_type: 'shell_exec', agent_id: 'agent-1' };
    expect((await a.checkAsync({ car, nonce: 'once-only' })).source).toBe('policy');
    expect(await b.checkAsync({ car, nonce: 'once-only' })).toMatchObject({ decision: 'deny', source: 'replay' });
    const permit = keyA.issue({ car, agentId: 'agent-1', ttlMs: 60_000 }).permit;
    expect(await b.checkAsync({ car, permit })).toMatchObject({ decision: 'allow', source: 'permit' });
    expect(await a.checkAsync({ car, permit })).toMatchObject({ decision: 'deny', source: 'permit', reason: 'permit rejected: replayed' });
    // A forged permit (bad MAC) never reaches Redis: no jti key appears for it.
    const forged = keyA.issue({ car, agentId: 'agent-1', ttlMs: 60_000 });
    const before = (await admin.keys(`${p}replay:p:*`)).length;
    expect(await a.checkAsync({ car, permit: forged.permit.slice(0, -3) + 'AAA' })).toMatchObject({ decision: 'deny', source: 'permit' });
    expect((await admin.keys(`${p}replay:p:*`)).length).toBe(before);
    expect(() => a.check({ car })).toThrow(expect.objectContaining({ code: 'ERR_STORE_ASYNC' }));
  });

  it('a quarantine made through one gate denies in the other; terminate is final fleet-wide', async () => {
    const p = prefix();
    const a = await fleetGate(p);
    const b = await fleetGate(p);
    const car = { action_type: 'file_read', agent_id: 'agent-q', resource: '/srv/x' };
    expect((await b.checkAsync({ car })).decision).toBe('allow');
    a.quarantine.quarantine('agent-q', 'suspicious', { isolation: 'filesystem' });
    await a.quarantine.sync();
    await until(async () => (await b.checkAsync({ car })).source === 'quarantine');
    // on_violation: quarantine in one gate isolates the agent in the other.
    const bad = { action_type: 'net_fetch', agent_id: 'agent-v', resource: 'https://evil.example/' };
    expect((await a.checkAsync({ car: bad })).decision).toBe('deny');
    await a.quarantine.sync();
    await until(() => b.quarantine.get('agent-v')?.status === 'active');
    b.quarantine.terminate('agent-v', 'confirmed');
    await b.quarantine.sync();
    await until(() => a.quarantine.get('agent-v')?.status === 'terminated');
    // A late recover elsewhere cannot undo a terminate.
    const sealed = JSON.parse((await admin.hget(`${p}quarantine:agents`, 'agent-v'))!);
    expect(JSON.parse(sealed.r).status).toBe('terminated');
    expect(sealed.m).toMatch(/^[0-9a-f]{64}$/); // signed with the fleet key
    // A late recover (a process that has not heard of the terminate) is refused by the script.
    const s = a.store!;
    const late = s.seal('quarantine', JSON.stringify({ agentId: 'agent-v', status: 'recovered', reason: 'late', isolation: 'full', forensic: 'none', since: 1, updatedAt: Date.now() }));
    const refused = await s.run((r) => r.gkQuarantineSet(`${p}quarantine:agents`, 'agent-v', late, s.channel, s.message({ t: 'quarantine', a: 'agent-v', r: late })));
    expect(refused).toBe(await admin.hget(`${p}quarantine:agents`, 'agent-v'));
    expect(JSON.parse(JSON.parse(refused!).r).status).toBe('terminated');
  });

  it('a policy reload in one gate stops the other from serving its cached allow', async () => {
    const p = prefix();
    const a = await fleetGate(p);
    const b = await fleetGate(p);
    const car = { action_type: 'file_read', agent_id: 'agent-c', resource: '/srv/data' };
    expect((await b.checkAsync({ car })).source).toBe('policy');
    expect(await b.checkAsync({ car })).toMatchObject({ decision: 'allow', source: 'cache', policy_version: 1 });
    a.policy.load({ ...policy, version: 2, actions: { ...policy.actions, file_read: { deny_identities: ['agent-c'] } } });
    await until(async () => (await admin.hget(`${p}policy:current`, 'version')) === '2');
    await until(async () => (await b.checkAsync({ car })).policy_version === 2, 2000);
    expect(await b.checkAsync({ car })).toMatchObject({ decision: 'deny', policy_version: 2 });
    expect(b.policy.version).toBe(2);
    // cache invalidation travels too.
    const car2 = { action_type: 'file_read', agent_id: 'agent-d', resource: '/srv/data' };
    await a.checkAsync({ car: car2 });
    expect(a.cache!.get(carHash(car2), 2)).toBeDefined();
    await b.invalidateCache();
    await until(() => a.cache!.get(carHash(car2), 2) === undefined);
  });

  it('a policy heard from the fleet is not loaded where the audit log refuses its record (audit first); it stays behind, failing closed, and the lost record is counted', async () => {
    const p = prefix();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-fleet-gate-'));
    const audit = new AuditLog({ file: path.join(dir, 'audit.jsonl'), key: randomBytes(32) });
    const a = await fleetGate(p);
    const b = await fleetGate(p, { audit });
    audit.close();
    a.policy.load({ ...policy, version: 2 });
    await until(() => b.store!.status().auditFailures >= 1, 5000);
    expect(b.policy.version).toBe(1);
    const d = await b.checkAsync({ car: { action_type: 'file_read', agent_id: 'agent-1', resource: '/srv/x' } });
    expect(d.decision).toBe('deny');
  });

  it('write access to Redis alone cannot install a policy or release a quarantined agent', async () => {
    const p = prefix();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-fleet-forge-'));
    const audit = new AuditLog({ file: path.join(dir, 'audit.jsonl'), key: randomBytes(32) });
    const a = await fleetGate(p, { audit });
    const car = { action_type: 'shell_exec', agent_id: 'agent-f' };
    expect((await a.checkAsync({ car })).decision).toBe('pending');
    // A forged v9 that allows everything, with a made-up MAC, announced on the channel.
    const forged = JSON.stringify({ version: 9, mode: 'permissive', default: 'allow', actions: {} });
    await admin.hset(`${p}policy:current`, 'version', '9', 'doc', forged, 'mac', 'ab'.repeat(32));
    await admin.publish(`${p}events`, JSON.stringify({ o: 'attacker', t: 'policy', v: 9 }));
    await until(async () => (await a.checkAsync({ car })).source === 'policy' && a.policy.version === 1 && (await a.checkAsync({ car })).reason.includes('behind'));
    expect(await a.checkAsync({ car })).toMatchObject({ decision: 'deny', policy_version: 1 });
    expect(a.policy.version).toBe(1);
    // A forged "recovered" record for a quarantined agent is ignored.
    a.quarantine.quarantine('agent-g', 'isolated');
    await a.quarantine.sync();
    const record = JSON.stringify({ agentId: 'agent-g', status: 'recovered', reason: 'x', isolation: 'full', forensic: 'none', since: 1, updatedAt: Date.now() });
    await admin.publish(`${p}events`, JSON.stringify({ o: 'attacker', t: 'quarantine', a: 'agent-g', r: JSON.stringify({ r: record, m: 'cd'.repeat(32) }) }));
    await new Promise((r) => setTimeout(r, 100));
    expect(a.quarantine.get('agent-g')?.status).toBe('active');
    audit.flush();
    const log = fs.readFileSync(path.join(dir, 'audit.jsonl'), 'utf8');
    expect(log).toContain('a policy document that does not verify');
    expect(log).toContain('a quarantine record that does not verify');
    audit.close();
  });

  it('without a signing key a newer fleet policy is not adopted: the gate denies until it loads one itself', async () => {
    const p = prefix();
    const a = await fleetGate(p, { signingKey: null });
    const b = await fleetGate(p, { signingKey: null });
    const car = { action_type: 'file_read', agent_id: 'agent-u', resource: '/srv/u' };
    expect((await b.checkAsync({ car })).decision).toBe('allow');
    a.policy.load({ ...policy, version: 2 });
    await until(async () => (await b.checkAsync({ car })).reason.includes('behind the fleet'));
    expect(b.policy.version).toBe(1);
    b.policy.load({ ...policy, version: 2 });
    expect(await b.checkAsync({ car })).toMatchObject({ decision: 'allow', policy_version: 2 });
    expect(() => FleetStore.redis({ redis: redis.url, signingKey: 'short' })).toThrow(/at least 32 bytes/);
  });

  it('Redis killed: deny mode denies with source error, local mode serves and logs; both recover', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-fleet-gate-'));
    const audit = new AuditLog({ file: path.join(dir, 'audit.jsonl'), key: randomBytes(32) });
    const p = prefix();
    const velocity = { windowMs: 60_000, maxPerAgent: 1000 };
    const deny = await fleetGate(p, { velocity });
    const local = await fleetGate(p, { velocity, onStoreError: 'local', audit });
    const car = { action_type: 'file_read', agent_id: 'agent-o', resource: '/srv/o' };
    expect((await deny.checkAsync({ car, nonce: 'o-1' })).decision).toBe('allow');
    await redis.kill();
    try {
      expect(await deny.checkAsync({ car, nonce: 'o-2' })).toMatchObject({ decision: 'deny', source: 'error' });
      expect(await local.checkAsync({ car, nonce: 'o-3' })).toMatchObject({ decision: 'allow' });
      expect(await local.checkAsync({ car, nonce: 'o-3' })).toMatchObject({ decision: 'deny', source: 'replay' });
      expect(local.store!.status()).toMatchObject({ degraded: true });
    } finally {
      await redis.restart();
    }
    await deny.ready(10_000);
    await local.ready(10_000);
    expect(await deny.checkAsync({ car, nonce: 'o-4' })).toMatchObject({ decision: 'allow' });
    expect(await local.checkAsync({ car, nonce: 'o-5' })).toMatchObject({ decision: 'allow' });
    audit.close();
    const types = fs.readFileSync(path.join(dir, 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).type);
    expect(types).toContain('store_unavailable');
    expect(types).toContain('store_recovered');
    expect(AuditLog.verify(path.join(dir, 'audit.jsonl'), Buffer.alloc(32))).toMatchObject({ ok: false }); // wrong key: the log is sealed
  });

  it('a closed fleet gate denies (fail closed) instead of throwing; close is idempotent', async () => {
    const g = await fleetGate(prefix());
    await g.close();
    await g.close();
    expect(await g.checkAsync({ car: { action_type: 'file_read', agent_id: 'a', resource: '/srv/x' }, nonce: 'z' })).toMatchObject({ decision: 'deny', source: 'error' });
    expect(await g.checkAsync({ car: { action_type: 'file_read', agent_id: 'a', resource: '/srv/x' } })).toMatchObject({ decision: 'deny', source: 'error', reason: expect.stringContaining('closed') });
    expect(await g.checkAsync({ car: { action_type: 'file_read' } })).toMatchObject({ decision: 'deny', source: 'validation' });
  });

  it('gates sharing one FleetStore detach from it on close (no listener leak)', async () => {
    const s = FleetStore.redis({ redis: redis.url, prefix: prefix(), signingKey: SIGNING_KEY });
    await s.ready();
    const events = ['resync', 'recovered', 'event:policy', 'event:cache', 'event:quarantine'];
    const before = events.map((e) => s.listenerCount(e));
    for (let i = 0; i < 20; i++) {
      const g = new Gate({ policy, store: s });
      expect(await g.checkAsync({ car: { action_type: 'file_read', agent_id: 'a', resource: '/srv/x' } })).toMatchObject({ decision: 'allow' });
      await g.close();
    }
    expect(events.map((e) => s.listenerCount(e))).toEqual(before);
    expect(s.closed).toBe(false); // not the gates' to close
    await s.close();
  });

  it('rejects mixing stores', async () => {
    const s = FleetStore.redis({ redis: redis.url, prefix: prefix() });
    const { ReplayDetector, VelocityGuard } = await import('../lib/index');
    expect(() => new Gate({ policy, replay: new ReplayDetector({ store: s }) })).toThrow(/give the Gate that store/);
    expect(() => new Gate({ policy, store: s, velocity: new VelocityGuard({ windowMs: 1000, maxPerAgent: 1 }) })).toThrow(/Gate's FleetStore/);
    expect(() => new Gate({ policy, store: { redis: 'nope' } })).toThrow(/redis:\/\//);
    expect(() => new Gate({ policy, onStoreError: 'allow' as never })).toThrow(/onStoreError/);
    await s.close();
  });
});
