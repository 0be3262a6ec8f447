// Fleet stores against a real redis-server: the Redis velocity script vs the
// in-process guard on random traces, the two-tier replay detector, key TTLs,
// bad options, and what an outage does in 'deny' and 'local' mode.
import { runSync } from './child';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog, FleetStore, GuardError, Quarantine, ReplayDetector, VelocityGuard } from '../lib/index';
import { until } from './helpers';
import { redisAvailable, startRedis, type RedisProcess } from './redis-server';

let redis: RedisProcess;
let admin: Redis;
const opened: Array<{ close(): unknown }> = [];

function store(prefix: string, extra: Partial<{ commandTimeoutMs: number }> = {}): FleetStore {
  const s = FleetStore.redis({ redis: redis.url, prefix, ...extra });
  opened.push(s);
  return s;
}

/** Small deterministic PRNG so a failing trace can be replayed from its seed. */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

describe.skipIf(!redisAvailable)('fleet stores on a real redis-server', () => {
  beforeAll(async () => {
    redis = await startRedis();
    admin = new Redis(redis.url);
    // The outage tests kill the server: without a listener ioredis prints each
    // connection error as "Unhandled error event".
    admin.on('error', () => {});
  });
  afterAll(async () => {
    for (const o of opened) await o.close();
    admin?.disconnect();
    await redis?.stop();
  });

  it('the Redis velocity script gives the in-process guard\'s answers on 300 random traces (injected clock)', async () => {
    const shared = store('diff:');
    await shared.ready();
    let compared = 0;
    let denies = 0;
    for (let trace = 0; trace < 300; trace++) {
      const r = rng(trace + 1);
      const windowMs = [1, 7, 1000, 60_000, 3_600_000][Math.floor(r() * 5)];
      const burst = [1, 1, 2, 3.5][Math.floor(r() * 4)];
      const maxPerAgent = r() < 0.8 ? 1 + Math.floor(r() * 12) : undefined;
      const maxPerSession = r() < 0.6 || maxPerAgent === undefined ? 1 + Math.floor(r() * 6) : undefined;
      let now = 1_763_000_000_000 + Math.floor(r() * 1e6);
      const clock = () => now;
      const limits = { windowMs, burst, maxPerAgent, maxPerSession, clock };
      const local = new VelocityGuard(limits);
      const fleet = new VelocityGuard({ ...limits, store: shared });
      for (let step = 0; step < 40; step++) {
        const roll = r();
        if (roll < 0.35) now += 0;
        else if (roll < 0.8) now += Math.floor(r() * windowMs * 0.5);
        else if (roll < 0.95) now += Math.floor(r() * windowMs * 3);
        else now -= Math.floor(r() * 50); // a clock step back adds nothing on either side
        // Names per trace: each trace starts with no buckets on either side.
        const agent = `agent-${trace}-${Math.floor(r() * 3)}`;
        const session = r() < 0.5 ? `s-${Math.floor(r() * 3)}` : undefined;
        const want = local.check(agent, session);
        const got = await fleet.checkAsync(agent, session);
        expect(got, `trace ${trace} step ${step}`).toEqual(want);
        compared++;
        if (!want.allowed) denies++;
      }
    }
    expect(compared).toBe(12_000);
    expect(denies).toBeGreaterThan(500); // the traces do exercise the deny and retry_after paths
  });

  it('a fleet VelocityGuard refuses the sync check and its buckets expire (bounded memory)', async () => {
    const s = store(`ttl-${randomBytes(4).toString('hex')}:`);
    await s.ready();
    const g = new VelocityGuard({ windowMs: 1000, maxPerAgent: 2, store: s });
    expect(() => g.check('a')).toThrow(expect.objectContaining({ code: 'ERR_STORE_ASYNC' }));
    expect((await g.checkAsync('a')).allowed).toBe(true);
    const keys = await admin.keys(`${s.prefix}vel:*`);
    expect(keys).toHaveLength(1);
    const ttl = await admin.pttl(keys[0]);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(1000 + 60_000);
  });

  it('two detectors on one prefix: a nonce is fresh exactly once; the local tier answers repeats without a round trip', async () => {
    const prefix = `replay-${randomBytes(4).toString('hex')}:`;
    const sa = store(prefix);
    const sb = store(prefix);
    await Promise.all([sa.ready(), sb.ready()]);
    const a = new ReplayDetector({ store: sa });
    const b = new ReplayDetector({ store: sb });
    const exp = Date.now() + 60_000;
    expect(await a.checkAsync('n-1', exp)).toBe('fresh');
    expect(await b.checkAsync('n-1', exp)).toBe('replay');
    const before = sa.status().commands;
    expect(await a.checkAsync('n-1', exp)).toBe('replay');
    expect(sa.status().commands).toBe(before); // answered by the local tier
    expect(a.seen('n-1')).toBe(true);
    expect(() => a.check('n-2', exp)).toThrow(expect.objectContaining({ code: 'ERR_STORE_ASYNC' }));
    // Concurrent checks of one nonce from both: exactly one fresh.
    const nonces = Array.from({ length: 200 }, (_, i) => `c-${i}`);
    const answers = await Promise.all(nonces.flatMap((n) => [a.checkAsync(n, exp), b.checkAsync(n, exp)]));
    for (let i = 0; i < nonces.length; i++) {
      expect([answers[2 * i], answers[2 * i + 1]].sort()).toEqual(['fresh', 'replay']);
    }
    // Keys carry the nonce's expiry (PXAT), so Redis memory stays bounded.
    const keys = await admin.keys(`${prefix}replay:n:*`);
    expect(keys.length).toBe(201);
    const pttl = await admin.pttl(keys[0]);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(60_000);
  });

  it('an ioredis client is duplicated (its own connection stays open and untouched), and closed stores fail closed', async () => {
    const client = new Redis(redis.url);
    client.on('error', () => {});
    opened.push({ close: async () => client.disconnect() });
    const s = FleetStore.redis({ redis: client, prefix: `client-${randomBytes(4).toString('hex')}:` });
    await s.ready();
    const r = new ReplayDetector({ store: s });
    expect(await r.checkAsync('x', Date.now() + 10_000)).toBe('fresh');
    await s.close();
    await s.close(); // idempotent
    expect(s.closed).toBe(true);
    expect(await client.ping()).toBe('PONG'); // the caller's client is still theirs
    expect(s.status().connection).toBe('closed');
    const err = await r.checkAsync('y', Date.now() + 10_000).catch((e) => e);
    expect(err).toMatchObject({ code: 'ERR_CLOSED' });
    await expect(s.ready(100)).rejects.toMatchObject({ code: 'ERR_CLOSED' });
    // A detector that opened its own connection closes it.
    const own = new ReplayDetector({ store: { redis: redis.url, prefix: 'own:' } });
    await own.fleet!.store.ready();
    own.close();
    await until(() => own.fleet!.store.status().connection === 'closed');
    client.disconnect();
  });

  it('rejects bad store options', () => {
    expect(() => new ReplayDetector({ store: 'redis' as never })).toThrow(TypeError);
    expect(() => new ReplayDetector({ store: { redis: 'http://localhost' } })).toThrow(/redis:\/\//);
    expect(() => new ReplayDetector({ store: { redis: 42 as never } })).toThrow(TypeError);
    expect(() => new VelocityGuard({ windowMs: 1000, maxPerAgent: 1, onStoreError: 'open' as never })).toThrow(/onStoreError/);
    expect(() => FleetStore.redis({ redis: redis.url, prefix: '' })).toThrow(/prefix/);
    expect(() => FleetStore.redis({ redis: redis.url, commandTimeoutMs: 0 })).toThrow(/commandTimeoutMs/);
    expect(() => ReplayDetector.shared('x', { store: { redis: redis.url } })).toThrow(/shared/);
  });

  it('Redis killed: deny mode fails closed, local mode answers from the process and logs it; both recover', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-fleet-'));
    const audit = new AuditLog({ file: path.join(dir, 'audit.jsonl'), key: randomBytes(32) });
    const prefix = `outage-${randomBytes(4).toString('hex')}:`;
    const sDeny = store(prefix, { commandTimeoutMs: 300 });
    const sLocal = store(prefix, { commandTimeoutMs: 300 });
    sLocal.attachAudit(audit);
    await Promise.all([sDeny.ready(), sLocal.ready()]);
    const deny = new ReplayDetector({ store: sDeny });
    const local = new ReplayDetector({ store: sLocal, onStoreError: 'local' });
    const exp = () => Date.now() + 60_000;
    expect(await deny.checkAsync('before', exp())).toBe('fresh');

    await redis.kill();
    try {
      const err = await deny.checkAsync('during-1', exp()).catch((e) => e);
      expect(err).toBeInstanceOf(GuardError);
      expect(err.code).toBe('ERR_STORE_UNAVAILABLE');
      expect(await local.checkAsync('during-2', exp())).toBe('fresh');
      expect(await local.checkAsync('during-2', exp())).toBe('replay');
      expect(sLocal.status()).toMatchObject({ degraded: true });
      expect(sLocal.status().fallbacks).toBeGreaterThanOrEqual(1);
    } finally {
      await redis.restart();
    }
    await Promise.all([sDeny.ready(10_000), sLocal.ready(10_000)]);
    expect(await deny.checkAsync('after', exp())).toBe('fresh');
    expect(await local.checkAsync('after-2', exp())).toBe('fresh');
    expect(sLocal.status().degraded).toBe(false);
    audit.close();
    const types = fs.readFileSync(path.join(dir, 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).type);
    expect(types).toContain('store_unavailable');
    expect(types).toContain('store_recovered');
    expect(types.indexOf('store_unavailable')).toBeLessThan(types.lastIndexOf('store_recovered'));
  });

  it('an audit log closed before its store: an outage is counted, never thrown (from a connection event it would end the process)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-fleet-'));
    const audit = new AuditLog({ file: path.join(dir, 'audit.jsonl'), key: randomBytes(32) });
    const s = store(`closed-audit-${randomBytes(4).toString('hex')}:`, { commandTimeoutMs: 300 });
    s.attachAudit(audit);
    await s.ready();
    audit.close();
    const replay = new ReplayDetector({ store: s });
    await redis.kill();
    try {
      const err = await replay.checkAsync('n-1', Date.now() + 60_000).catch((e) => e);
      expect(err.code).toBe('ERR_STORE_UNAVAILABLE'); // not the closed log's ERR_CLOSED
      await until(() => s.status().errors >= 2, 5000); // connection error events too
      expect(s.status().auditFailures).toBeGreaterThanOrEqual(1);
    } finally {
      await redis.restart();
    }
    await s.ready(10_000);
    expect(await replay.checkAsync('n-2', Date.now() + 60_000)).toBe('fresh');
    expect(s.status().auditFailures).toBeGreaterThanOrEqual(2); // store_recovered could not be logged either
  });

  it('a quarantine heard from the fleet is applied even where the audit log was closed; the lost record is counted', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-fleet-'));
    const audit = new AuditLog({ file: path.join(dir, 'audit.jsonl'), key: randomBytes(32) });
    const prefix = `q-closed-${randomBytes(4).toString('hex')}:`;
    const sA = store(prefix);
    const sB = store(prefix);
    await Promise.all([sA.ready(), sB.ready()]);
    const a = new Quarantine({ store: sA });
    const b = new Quarantine({ store: sB, audit });
    audit.close();
    a.quarantine('agent-z', 'seen elsewhere');
    await a.sync();
    await until(() => b.denies('agent-z', 'file_read'), 5000);
    expect(sB.status().auditFailures).toBe(1);
    a.close();
    b.close();
  });
});

describe('fleet mode costs nothing when unused', () => {
  it('loading the package does not load ioredis (it is required on the first Redis store)', () => {
    const dist = JSON.stringify(path.join(__dirname, '..', 'dist', 'index.js'));
    const r = runSync(process.execPath, ['-e', `const g = require(${dist}); new g.Gate({ policy: { version: 1, mode: 'enforce', default: 'deny', actions: {} } }); console.log(Object.keys(require.cache).filter((k) => k.includes('ioredis')).length)`], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('0');
  });
});
