// FleetApprovalStore on a real redis-server: the record round trip, the
// compare-and-set of create (the CAR pointer) and replace (the record's
// stored bytes) across two FleetStores on one prefix (two processes' worth
// of connections), 'change' events reaching this process and the other one,
// records tampered in Redis read as missing, list order, filter, bounds and
// paging, index trimming, bad input, and an outage failing closed.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GuardError } from '../lib/errors';
import { FleetStore } from '../lib/fleet/store';
import { APPROVAL_RETENTION_MS, FleetApprovalStore, MAX_APPROVAL_RECORD_BYTES } from '../lib/fleet/approvals';
import type { ApprovalRequest } from '../lib/gate/approvals/types';
import { until } from './helpers';
import { skipWithout } from './prerequisites';
import { REDIS_BINARY, redisAvailable, startRedis, type RedisProcess } from './redis-server';

const SIGNING_KEY = randomBytes(32);

let redis: RedisProcess;
let admin: Redis;
const opened: Array<{ close(): unknown }> = [];
const books: FleetApprovalStore[] = [];

function prefix(): string {
  return `apr-${randomBytes(5).toString('hex')}:`;
}

async function fleet(p: string, signed = true): Promise<FleetStore> {
  const s = FleetStore.redis({ redis: redis.url, prefix: p, commandTimeoutMs: 300, ...(signed ? { signingKey: SIGNING_KEY } : {}) });
  opened.push(s);
  await s.ready();
  return s;
}

function approvals(s: FleetStore, options?: ConstructorParameters<typeof FleetApprovalStore>[1]): FleetApprovalStore<ApprovalRequest> {
  const a = new FleetApprovalStore<ApprovalRequest>(s, options);
  books.push(a);
  return a;
}

function newId(): string {
  return 'apr_' + randomBytes(16).toString('base64url');
}

function request(over: Partial<ApprovalRequest> = {}): ApprovalRequest {
  const now = Date.now();
  return {
    id: newId(),
    status: 'pending',
    car_hash: 'sha256:' + randomBytes(32).toString('hex'),
    car: { action_type: 'shell_exec', agent_id: 'agent-1', command: 'rm -rf /tmp/x', env: { TOKEN: 'sha256:' + 'ab'.repeat(32) } },
    agent_id: 'agent-1',
    action_type: 'shell_exec',
    session_id: null,
    rule: 'shell_exec',
    policy_version: 1,
    requested_at: now,
    expires_at: now + 60_000,
    requester: 'uid:1000',
    approvers: null,
    min_approvals: 1,
    approvals: [],
    decided_by: null,
    decided_at: null,
    reason: null,
    used_at: null,
    ...over,
  };
}

function granted(r: ApprovalRequest): ApprovalRequest {
  const at = r.requested_at + 1;
  return { ...r, status: 'granted', approvals: [{ approver: 'token:operator', at, reason: 'ok' }], decided_by: 'token:operator', decided_at: at, reason: 'ok' };
}

/** A copy with its keys in reverse order, as a client that rebuilt the object might send it. */
function reordered<T extends object>(v: T): T {
  return Object.fromEntries(Object.entries(v).reverse()) as T;
}

async function storeError(p: Promise<unknown>): Promise<GuardError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GuardError);
  return err as GuardError;
}

const missing = redisAvailable ? null : `"${REDIS_BINARY} --version" failed`;
if (!skipWithout('redis-server', missing, 'GUARDKERNEL_REQUIRE_REDIS')) {
  describe('FleetApprovalStore on a real redis-server', () => {
    beforeAll(async () => {
      redis = await startRedis();
      admin = new Redis(redis.url);
      admin.on('error', () => {}); // the outage test kills the server
    });
    afterAll(async () => {
      for (const b of books) b.detach();
      for (const o of opened) await o.close();
      admin?.disconnect();
      await redis?.stop();
    });

    it('create then get: the same record back, sealed in Redis, the CAR pointing at it, keys expiring 24 h after the request', async () => {
      const p = prefix();
      const s = await fleet(p);
      const a = approvals(s);
      const r = request();
      expect(await a.currentFor(r.car_hash)).toBeNull();
      expect(await a.get(r.id)).toBeNull();
      expect(await a.create(r, null)).toBe(true);
      expect(await a.get(r.id)).toEqual(r);
      expect(await a.currentFor(r.car_hash)).toBe(r.id);
      // Another store on the prefix (another process) reads the same.
      const other = approvals(await fleet(p));
      expect(await other.get(r.id)).toEqual(r);
      expect(await other.currentFor(r.car_hash)).toBe(r.id);

      const raw = (await admin.get(`${p}approval:${r.id}`))!;
      const sealed = JSON.parse(raw) as { r: string; m: string };
      expect(JSON.parse(sealed.r)).toEqual(r);
      expect(sealed.m).toMatch(/^[0-9a-f]{64}$/);
      expect(await admin.get(`${p}approval:car:${r.car_hash}`)).toBe(r.id);
      for (const key of [`${p}approval:${r.id}`, `${p}approval:car:${r.car_hash}`]) {
        const ttl = await admin.pttl(key);
        // expires_at is 60 s after now: the key lives about 24 h + 60 s (generous bounds, not timing).
        expect(ttl).toBeGreaterThan(APPROVAL_RETENTION_MS);
        expect(ttl).toBeLessThanOrEqual(APPROVAL_RETENTION_MS + 60_000);
      }
      expect(await admin.zscore(`${p}approval:index`, r.id)).toBe(String(r.requested_at));

      // Ids not of our form are unknown (no lookup); a CAR hash not of the form is a programming error.
      expect(await a.get('apr_short')).toBeNull();
      expect(await a.get('index')).toBeNull();
      await expect(a.currentFor('not-a-hash')).rejects.toThrow(TypeError);
    });

    it('without a signing key the record is its canonical JSON and reads back', async () => {
      const p = prefix();
      const a = approvals(await fleet(p, false));
      const r = request();
      expect(await a.create(r, null)).toBe(true);
      const raw = (await admin.get(`${p}approval:${r.id}`))!;
      expect(JSON.parse(raw)).toEqual(r);
      expect(raw).not.toContain('"m"');
      expect(await a.get(r.id)).toEqual(r);
    });

    it('create with a stale expectedCurrent is refused and writes nothing', async () => {
      const p = prefix();
      const a = approvals(await fleet(p));
      const b = approvals(await fleet(p));
      const first = request();
      const second = request({ car_hash: first.car_hash });
      expect(await a.create(first, null)).toBe(true);
      // B read "no request" before A created one: its create must not overwrite A's.
      expect(await b.create(second, null)).toBe(false);
      expect(await b.create(second, newId())).toBe(false);
      expect(await a.get(second.id)).toBeNull();
      expect(await admin.exists(`${p}approval:${second.id}`)).toBe(0);
      expect(await admin.zscore(`${p}approval:index`, second.id)).toBeNull();
      expect(await a.currentFor(first.car_hash)).toBe(first.id);
      // With the pointer it read, it replaces the pointer (the old record stays).
      expect(await b.create(second, first.id)).toBe(true);
      expect(await a.currentFor(first.car_hash)).toBe(second.id);
      expect(await a.get(first.id)).toEqual(first);
      expect(await a.get(second.id)).toEqual(second);
      // A record id already taken is never overwritten by create, whatever the pointer.
      const clash = request({ id: first.id });
      expect(await a.create(clash, null)).toBe(false);
      expect(await a.get(first.id)).toEqual(first);
      // Racing creates for one fresh CAR: exactly one wins.
      const car = 'sha256:' + randomBytes(32).toString('hex');
      const racers = Array.from({ length: 12 }, (_, i) => ({ by: i % 2 === 0 ? a : b, r: request({ car_hash: car }) }));
      const won = await Promise.all(racers.map(({ by, r }) => by.create(r, null)));
      expect(won.filter(Boolean)).toHaveLength(1);
      expect(await a.currentFor(car)).toBe(racers[won.indexOf(true)].r.id);
    });

    it('N racing replace(granted → used) from two FleetStores: exactly one succeeds, every round', async () => {
      const p = prefix();
      const a = approvals(await fleet(p));
      const b = approvals(await fleet(p));
      for (let round = 0; round < 8; round++) {
        const r = granted(request());
        expect(await a.create(r, null)).toBe(true);
        // Every racer has read the grant before any spends it.
        const seen = await Promise.all(Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? a : b).get(r.id)));
        for (const s of seen) expect(s?.status).toBe('granted');
        const results = await Promise.all(seen.map((s, i) => (i % 2 === 0 ? a : b).replace(s!, { ...s!, status: 'used', used_at: r.requested_at + 100 + i })));
        expect(results.filter(Boolean), `round ${round}`).toHaveLength(1);
        const after = await b.get(r.id);
        expect(after?.status).toBe('used');
        expect(after?.used_at).toBe(r.requested_at + 100 + results.indexOf(true));
        // A late retry holding the granted record it read earlier is refused too.
        expect(await a.replace(seen[0]!, { ...seen[0]!, status: 'used', used_at: 1 })).toBe(false);
      }
    });

    it('replace compares the canonical encoding: a rebuilt copy of what is stored works, anything else is refused', async () => {
      const a = approvals(await fleet(prefix()));
      const r = request();
      expect(await a.create(r, null)).toBe(true);
      const g = granted(r);
      expect(await a.replace(reordered(JSON.parse(JSON.stringify(r)) as ApprovalRequest), g)).toBe(true);
      expect(await a.get(r.id)).toEqual(g);
      // `r` is no longer what is stored; nor is a record that differs in one field.
      expect(await a.replace(r, { ...r, status: 'denied' })).toBe(false);
      expect(await a.replace({ ...g, reason: 'other' }, { ...g, status: 'used' })).toBe(false);
      expect(await a.get(r.id)).toEqual(g);
      // A record that is not there cannot be replaced.
      const ghost = request();
      expect(await a.replace(ghost, granted(ghost))).toBe(false);
      expect(await a.get(ghost.id)).toBeNull();
      // The id and CAR hash stay.
      await expect(a.replace(g, { ...g, id: newId() })).rejects.toThrow(TypeError);
      await expect(a.replace(g, { ...g, car_hash: 'sha256:' + '0'.repeat(64) })).rejects.toThrow(TypeError);
    });

    it('a change made through store A wakes change listeners on store B (another connection) and on A itself', async () => {
      const p = prefix();
      const sa = await fleet(p);
      const sb = await fleet(p);
      const a = approvals(sa);
      const a2 = approvals(sa); // a second listener on the same FleetStore (same process)
      const b = approvals(sb);
      const heard = { a: [] as string[], a2: [] as string[], b: [] as string[] };
      a.on('change', (id: string, status: string) => heard.a.push(`${id} ${status}`));
      a2.on('change', (id: string, status: string) => heard.a2.push(`${id} ${status}`));
      b.on('change', (id: string, status: string) => heard.b.push(`${id} ${status}`));
      // A throwing listener does not keep the others asleep.
      b.prependListener('change', () => {
        throw new Error('listener bug');
      });
      const r = request();
      expect(await a.create(r, null)).toBe(true);
      await until(() => heard.b.includes(`${r.id} pending`), 5000);
      expect(heard.a).toContain(`${r.id} pending`);
      expect(heard.a2).toContain(`${r.id} pending`);
      const g = granted(r);
      expect(await b.replace(r, g)).toBe(true);
      await until(() => heard.a.includes(`${r.id} granted`) && heard.a2.includes(`${r.id} granted`), 5000);
      expect(heard.b).toContain(`${r.id} granted`);
      // Once per change in each listener: no echo of our own event from Redis.
      await a.create(request(), null); // a later event, to know earlier ones have all arrived
      await until(() => heard.b.length === 3, 5000);
      expect(heard.a.filter((h) => h === `${r.id} pending`)).toHaveLength(1);
      expect(heard.a.filter((h) => h === `${r.id} granted`)).toHaveLength(1);
      // A failed compare-and-set announces nothing.
      expect(await a.replace(r, { ...r, status: 'denied' })).toBe(false);
      // Detached: no more events.
      b.detach();
      const before = heard.b.length;
      expect(await a.replace(g, { ...g, status: 'used', used_at: g.requested_at + 5 })).toBe(true);
      await until(() => heard.a.includes(`${r.id} used`), 5000);
      await a.create(request(), null);
      await until(() => heard.a.length === 5, 5000);
      expect(heard.b.length).toBe(before);
      expect(heard.a.filter((h) => h.endsWith(' denied'))).toHaveLength(0);
    });

    it('resync of the subscriber is passed on as resync', async () => {
      const s = await fleet(prefix());
      const a = approvals(s);
      let resyncs = 0;
      a.on('resync', () => resyncs++);
      s.emit('resync');
      expect(resyncs).toBe(1);
    });

    it('records tampered in Redis read as missing with a signing key, and are reported', async () => {
      const p = prefix();
      const s = await fleet(p);
      const a = approvals(s);
      const refused: string[] = [];
      s.on('refused', (what: string) => refused.push(what));
      const r = request();
      const other = granted(request());
      expect(await a.create(r, null)).toBe(true);
      expect(await a.create(other, null)).toBe(true);
      const key = (id: string) => `${p}approval:${id}`;

      // 1. Status flipped to granted inside the sealed record, MAC kept.
      const sealed = JSON.parse((await admin.get(key(r.id)))!) as { r: string; m: string };
      const forged = { ...(JSON.parse(sealed.r) as ApprovalRequest), status: 'granted', decided_by: 'mallory' };
      await admin.set(key(r.id), JSON.stringify({ r: JSON.stringify(forged), m: sealed.m }));
      expect(await a.get(r.id)).toBeNull();
      expect(refused).toEqual(['approval']);
      // 2. The plain JSON of a granted record, unsealed.
      await admin.set(key(r.id), JSON.stringify(forged));
      expect(await a.get(r.id)).toBeNull();
      // 3. A validly sealed granted record copied under this id's key.
      await admin.set(key(r.id), (await admin.get(key(other.id)))!);
      expect(await a.get(r.id)).toBeNull();
      // 4. A validly sealed record over the size bound (written by someone with the key, or an older version).
      const huge = { ...(JSON.parse(sealed.r) as ApprovalRequest), reason: 'x'.repeat(MAX_APPROVAL_RECORD_BYTES) };
      await admin.set(key(r.id), s.seal('approval', JSON.stringify(huge)));
      expect(await a.get(r.id)).toBeNull();
      // 5. Not JSON at all.
      await admin.set(key(r.id), '\x00\xff garbage');
      expect(await a.get(r.id)).toBeNull();
      expect(refused).toHaveLength(5);
      // A forged record cannot be replaced either (what it would be replaced from reads as missing).
      expect(await a.replace(forged as ApprovalRequest, { ...(forged as ApprovalRequest), status: 'used' })).toBe(false);
      // The untouched record still reads; the tampered one is left out of list (reported once).
      expect(await a.get(other.id)).toEqual(other);
      expect((await a.list()).map((x) => x.id)).toEqual([other.id]);
      expect(refused).toHaveLength(6);
      // A pointer that is not an id comes back as is (so create can move it), reported.
      await admin.set(`${p}approval:car:${r.car_hash}`, 'junk');
      expect(await a.currentFor(r.car_hash)).toBe('junk');
      expect(refused).toHaveLength(7);
      const fresh = request({ car_hash: r.car_hash });
      expect(await a.create(fresh, 'junk')).toBe(true);
      expect(await a.currentFor(r.car_hash)).toBe(fresh.id);
      // A store with another signing key verifies nothing of these.
      const stranger = approvals(FleetStore.redis({ redis: redis.url, prefix: p, signingKey: randomBytes(32) }));
      opened.push(stranger.store);
      await stranger.store.ready();
      expect(await stranger.get(other.id)).toBeNull();
    });

    it('list: oldest first, filtered by status, bounded by limit, paged across a run of equal requested_at longer than two pages', async () => {
      const p = prefix();
      const s = await fleet(p);
      const a = approvals(s);
      const t0 = Date.now();
      const made: ApprovalRequest[] = [];
      // 330 records (several pages of 100), the first 230 sharing one requested_at, then runs of 7.
      for (let i = 0; i < 330; i++) {
        const at = i < 230 ? t0 : t0 + 1 + Math.floor((i - 230) / 7);
        const r = request({ requested_at: at, expires_at: at + 60_000 });
        made.push(i % 3 === 0 ? granted(r) : r);
      }
      // Created in shuffled order: the index, not the order of creation, decides.
      const order = made.map((_, i) => i).sort((x, y) => ((x * 7919) % 331) - ((y * 7919) % 331));
      for (const i of order) expect(await a.create(made[i], null)).toBe(true);
      const byIndex = [...made].sort((x, y) => x.requested_at - y.requested_at || (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));

      const all = await a.list();
      expect(all.map((r) => r.id)).toEqual(byIndex.map((r) => r.id));
      const grants = await a.list({ status: 'granted' });
      expect(grants.map((r) => r.id)).toEqual(byIndex.filter((r) => r.status === 'granted').map((r) => r.id));
      expect(await a.list({ status: 'used' })).toEqual([]);
      const commands = s.status().commands;
      expect((await a.list({ limit: 5 })).map((r) => r.id)).toEqual(byIndex.slice(0, 5).map((r) => r.id));
      expect(s.status().commands - commands).toBe(2); // one page of ids, one MGET: it stops at the limit
      expect((await a.list({ status: 'pending', limit: 150 })).map((r) => r.id)).toEqual(byIndex.filter((r) => r.status === 'pending').slice(0, 150).map((r) => r.id));
      for (const limit of [0, -1, 1.5, 10_001, Number.NaN]) await expect(a.list({ limit })).rejects.toThrow(RangeError);
      await expect(a.list({ status: 3 as unknown as string })).rejects.toThrow(TypeError);
      // An id whose record is gone (expired before it was trimmed) is skipped silently.
      await admin.del(`${p}approval:${byIndex[0].id}`);
      expect((await a.list({ limit: 1 }))[0].id).toBe(byIndex[1].id);
    });

    it('list and its default limit stay bounded: 1000 by default', async () => {
      const p = prefix();
      const a = approvals(await fleet(p, false));
      const t0 = Date.now();
      // Written straight into Redis (1,005 creates through the script would only be slower).
      const pipe = admin.pipeline();
      for (let i = 0; i < 1005; i++) {
        const r = request({ requested_at: t0 + i, expires_at: t0 + i + 60_000 });
        pipe.set(`${p}approval:${r.id}`, JSON.stringify(r), 'PX', 600_000);
        pipe.zadd(`${p}approval:index`, r.requested_at, r.id);
      }
      await pipe.exec();
      expect(await a.list()).toHaveLength(1000);
      expect(await a.list({ limit: 10_000 })).toHaveLength(1005);
    });

    it('each create trims ids whose keys have expired from both indexes (injected clock)', async () => {
      const p = prefix();
      let now = Date.now();
      const a = approvals(await fleet(p), { clock: () => now });
      const old = request({ requested_at: now, expires_at: now + 1000 });
      expect(await a.create(old, null)).toBe(true);
      expect(await admin.zscore(`${p}approval:expiry`, old.id)).toBe(String(now + 1000 + APPROVAL_RETENTION_MS));
      now += 1000 + APPROVAL_RETENTION_MS - 1; // not yet
      expect(await a.create(request({ requested_at: now, expires_at: now + 1000 }), null)).toBe(true);
      expect(await admin.zscore(`${p}approval:index`, old.id)).not.toBeNull();
      now += 1;
      expect(await a.create(request({ requested_at: now, expires_at: now + 1000 }), null)).toBe(true);
      expect(await admin.zscore(`${p}approval:index`, old.id)).toBeNull();
      expect(await admin.zscore(`${p}approval:expiry`, old.id)).toBeNull();
      expect(await admin.zcard(`${p}approval:index`)).toBe(2);
      // A replace moves the expiry with the record (and the CAR pointer's TTL with it).
      const live = (await a.list())[0];
      const longer = { ...live, expires_at: live.expires_at + 3_600_000 };
      expect(await a.replace(live, longer)).toBe(true);
      expect(await admin.zscore(`${p}approval:expiry`, live.id)).toBe(String(now + (longer.expires_at + APPROVAL_RETENTION_MS - now)));
      expect(await admin.pttl(`${p}approval:car:${live.car_hash}`)).toBeGreaterThan(APPROVAL_RETENTION_MS + 3_000_000);
    });

    it('bad records are refused before Redis: shape, non-JSON values, over 256 KiB', async () => {
      const a = approvals(await fleet(prefix()));
      await expect(a.create({ ...request(), id: 'apr_x' }, null)).rejects.toThrow(TypeError);
      await expect(a.create({ ...request(), status: 'approved' as never }, null)).rejects.toThrow(TypeError);
      await expect(a.create({ ...request(), car_hash: 'abc' }, null)).rejects.toThrow(TypeError);
      await expect(a.create({ ...request(), expires_at: 1.5 }, null)).rejects.toThrow(TypeError);
      await expect(a.create({ ...request(), reason: undefined as never }, null)).rejects.toThrow(TypeError);
      await expect(a.create({ ...request(), reason: 'x\ud800' }, null)).rejects.toThrow(TypeError);
      await expect(a.create(request(), '' as never)).rejects.toThrow(TypeError);
      const big = request({ car: { action_type: 'shell_exec', agent_id: 'agent-1', blob: 'x'.repeat(MAX_APPROVAL_RECORD_BYTES) } });
      await expect(a.create(big, null)).rejects.toThrow(RangeError);
      expect(await a.get(big.id)).toBeNull();
    });

    // Last: it kills the server (no persistence, so nothing survives it).
    it('Redis stopped: every operation fails with ERR_STORE_UNAVAILABLE; it works again after the restart', async () => {
      const p = prefix();
      const s = await fleet(p);
      const a = approvals(s);
      const r = request();
      expect(await a.create(r, null)).toBe(true);
      await redis.kill();
      try {
        const errors = [
          await storeError(a.get(r.id)),
          await storeError(a.currentFor(r.car_hash)),
          await storeError(a.create(request(), null)),
          await storeError(a.replace(r, granted(r))),
          await storeError(a.list()),
        ];
        for (const err of errors) expect(err.code).toBe('ERR_STORE_UNAVAILABLE');
      } finally {
        await redis.restart();
      }
      await s.ready(10_000);
      expect(await a.get(r.id)).toBeNull(); // the server kept nothing
      const again = request();
      expect(await a.create(again, null)).toBe(true);
      expect(await a.get(again.id)).toEqual(again);
    });
  });
}
