// Approvals in fleet mode: requests live in Redis, so an approval given
// through one gate releases the agent on another, of racing retries after one
// grant exactly one is allowed, and a waiter on one gate wakes when another
// decides. Several Gate objects on one real redis-server, each with its own
// connections, as separate processes would have (test/fleet-processes.test.ts
// runs real serve processes).
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetApprovalBook, Gate, GuardError } from '../lib/index';
import { skipWithout } from './prerequisites';
import { REDIS_BINARY, redisAvailable, startRedis, type RedisProcess } from './redis-server';

const policy = { version: 1, mode: 'enforce', default: 'deny', actions: { shell_exec: { require_approval: true }, deploy: { require_approval: true, min_approvals: 2 } } };
const shell = (cmd = 'ls', agent = 'agent-1') => ({ action_type: 'shell_exec', agent_id: agent, args: { cmd } });
const SIGNING_KEY = randomBytes(32);
const missing = skipWithout('redis-server', !redisAvailable ? `${REDIS_BINARY} not found` : null, 'GUARDKERNEL_REQUIRE_REDIS');

let redis: RedisProcess;
const gates: Gate[] = [];

async function fleetGate(prefix: string): Promise<Gate> {
  const g = new Gate({ policy, store: { redis: redis.url, prefix, commandTimeoutMs: 500, signingKey: SIGNING_KEY } });
  gates.push(g);
  await g.ready();
  return g;
}
const book = (g: Gate) => g.approvals as FleetApprovalBook;

describe.skipIf(missing)('approvals across a fleet (real redis-server)', () => {
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    for (const g of gates) await g.close();
    await redis?.stop();
  });

  it('pending on one gate, the same id on another; approved on B releases the agent on A once', async () => {
    const p = `ap-${randomBytes(4).toString('hex')}:`;
    const [a, b] = [await fleetGate(p), await fleetGate(p)];
    const first = await a.checkAsync({ car: shell() });
    expect(first).toMatchObject({ decision: 'pending', approval_id: expect.stringMatching(/^apr_/) });
    expect((await b.checkAsync({ car: shell() })).approval_id).toBe(first.approval_id);
    expect(await book(b).list({ status: 'pending' })).toEqual([expect.objectContaining({ id: first.approval_id })]);
    await book(b).approve(first.approval_id!, { approver: 'alice' });
    expect(await a.checkAsync({ car: shell() })).toMatchObject({ decision: 'allow', source: 'approval' });
    expect((await b.checkAsync({ car: shell() })).decision).toBe('pending');
    expect(await book(a).get(first.approval_id!)).toMatchObject({ status: 'used' });
  });

  it('attack: concurrent retries after one approval on two gates: exactly one allowed', async () => {
    for (let round = 0; round < 5; round++) {
      const p = `race-${randomBytes(4).toString('hex')}:`;
      const [a, b] = [await fleetGate(p), await fleetGate(p)];
      const id = (await a.checkAsync({ car: shell() })).approval_id!;
      await book(a).approve(id, { approver: 'alice' });
      const tries = await Promise.all([a, b, a, b, a, b].map((g) => g.checkAsync({ car: shell() })));
      expect(tries.filter((d) => d.decision === 'allow' && d.source === 'approval')).toHaveLength(1);
      expect(tries.filter((d) => d.decision === 'pending')).toHaveLength(5);
    }
  });

  it('a waiter on A wakes when B decides; deny holds across the fleet', async () => {
    const p = `wait-${randomBytes(4).toString('hex')}:`;
    const [a, b] = [await fleetGate(p), await fleetGate(p)];
    const id = (await a.checkAsync({ car: shell('rm') })).approval_id!;
    const waiting = book(a).wait(id, { timeoutMs: 30_000 });
    await book(b).deny(id, { approver: 'bob', reason: 'no' });
    await expect(waiting).resolves.toMatchObject({ id, status: 'denied', decided_by: 'bob' });
    expect(await a.checkAsync({ car: shell('rm') })).toMatchObject({ decision: 'deny', source: 'approval' });
    expect(await b.checkAsync({ car: shell('rm') })).toMatchObject({ decision: 'deny', source: 'approval' });
  });

  it('min_approvals counts distinct approvers across gates; self-approval refused; a grant fits only its CAR and agent', async () => {
    const p = `min-${randomBytes(4).toString('hex')}:`;
    const [a, b] = [await fleetGate(p), await fleetGate(p)];
    const car = { action_type: 'deploy', agent_id: 'agent-1', target: 'prod' };
    const id = (await a.checkAsync({ car, requester: 'token:agent' })).approval_id!;
    await expect(book(b).approve(id, { approver: 'token:agent' })).rejects.toMatchObject({ code: 'ERR_FORBIDDEN' });
    await expect(book(b).approve(id, { approver: 'agent-1' })).rejects.toMatchObject({ code: 'ERR_FORBIDDEN' });
    await book(a).approve(id, { approver: 'alice' });
    await expect(book(b).approve(id, { approver: 'alice' })).rejects.toMatchObject({ code: 'ERR_FORBIDDEN' });
    expect((await b.checkAsync({ car })).decision).toBe('pending');
    expect(await book(b).approve(id, { approver: 'bob' })).toMatchObject({ status: 'granted' });
    expect((await a.checkAsync({ car: { ...car, target: 'prod ' } })).decision).toBe('pending');
    expect((await a.checkAsync({ car: { ...car, agent_id: 'agent-2' } })).decision).toBe('pending');
    expect(await b.checkAsync({ car })).toMatchObject({ decision: 'allow', source: 'approval' });
  });

  it('closing the gate ends its open waits with the request as last read', async () => {
    const a = await fleetGate(`close-${randomBytes(4).toString('hex')}:`);
    const id = (await a.checkAsync({ car: shell('close') })).approval_id!;
    const waiting = book(a).wait(id, { timeoutMs: 600_000 });
    await a.close();
    await expect(waiting).resolves.toMatchObject({ id, status: 'pending' });
  });

  it('attack: a grant written into Redis without the signing key is not honoured', async () => {
    const p = `forge-${randomBytes(4).toString('hex')}:`;
    const a = await fleetGate(p);
    const id = (await a.checkAsync({ car: shell('forge') })).approval_id!;
    const raw = new Redis(redis.url);
    try {
      // The record is sealed JSON text inside JSON: its quotes are escaped.
      let forged = 0;
      for (const k of await raw.keys(`${p}*`)) {
        if ((await raw.type(k)) !== 'string') continue;
        const v = await raw.get(k);
        if (v !== null && v.includes(id) && v.includes('\\"pending\\"')) {
          await raw.set(k, v.replace('\\"pending\\"', '\\"granted\\"'));
          forged++;
        }
      }
      expect(forged).toBe(1);
    } finally {
      raw.disconnect();
    }
    const d = await a.checkAsync({ car: shell('forge') });
    expect(d.decision).toBe('pending'); // a new request: the forged one reads as missing
    expect(d.approval_id).not.toBe(id);
    await expect(book(a).get(id)).rejects.toBeInstanceOf(GuardError);
  });
});
