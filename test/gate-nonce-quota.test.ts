// Each agent's and each client's share of the nonce store (issue 25 item 7):
// one agent sending fresh nonces as fast as it can once filled the 65,536-slot
// store and every other agent's nonce requests were denied. Now it is denied
// at its share, alone, and the store keeps room for the rest.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { Gate, GuardClient, GuardServer, ReplayDetector } from '../lib/index';
import { NonceQuota } from '../lib/gate/nonce-quota';
import { fakeClock } from './helpers';

const POLICY = { version: 1, mode: 'enforce', actions: { file_read: { constraints: { resource: { glob: '/srv/**' } } } } };
const read = (agent: string) => ({ action_type: 'file_read', agent_id: agent, resource: '/srv/a' });

describe('nonce quota', () => {
  test('one agent flooding fresh nonces is denied at its share; the store keeps room for every other agent', () => {
    const clock = fakeClock();
    const gate = new Gate({ policy: POLICY, clock: clock.fn }); // default store: 65,536 slots; share: 4,096
    let allowed = 0;
    let quotaDenied = 0;
    for (let i = 0; i < 72_000; i++) {
      const d = gate.check({ car: read('agent-flood'), nonce: `flood-${i}` });
      if (d.decision === 'allow') allowed++;
      else if (d.source === 'replay' && /share of the nonce store/.test(d.reason)) quotaDenied++;
    }
    expect(allowed).toBe(4096);
    expect(quotaDenied).toBe(72_000 - 4096);
    expect(gate.replay.stats()).toMatchObject({ size: 4096, saturated: 0 });
    // Everyone else still gets their nonces in.
    for (let a = 0; a < 100; a++) expect(gate.check({ car: read(`agent-${a}`), nonce: `other-${a}` }).decision).toBe('allow');
    // A replayed nonce is still a replay, not a quota matter.
    expect(gate.check({ car: read('agent-1'), nonce: 'other-1' })).toMatchObject({ decision: 'deny', source: 'replay', reason: 'request nonce was already used' });
  });

  test('the share frees as its nonces expire', () => {
    const clock = fakeClock();
    const gate = new Gate({ policy: POLICY, clock: clock.fn, nonceTtlMs: 1000, nonceQuota: { perAgent: 3 } });
    for (let i = 0; i < 3; i++) expect(gate.check({ car: read('a'), nonce: `n${i}` }).decision).toBe('allow');
    expect(gate.check({ car: read('a'), nonce: 'n3' })).toMatchObject({ decision: 'deny', source: 'replay' });
    clock.now += 999;
    expect(gate.check({ car: read('a'), nonce: 'n4' }).decision).toBe('deny');
    clock.now += 1; // the first three expire
    expect(gate.check({ car: read('a'), nonce: 'n5' }).decision).toBe('allow');
  });

  test('a client (the socket peer) has a share across all the agent ids it uses', () => {
    const clock = fakeClock();
    const gate = new Gate({ policy: POLICY, clock: clock.fn, nonceQuota: { perAgent: 100, perClient: 50 } });
    for (let i = 0; i < 50; i++) expect(gate.check({ car: read(`agent-${i}`), nonce: `c${i}`, client: 'uid:1000' }).decision).toBe('allow');
    expect(gate.check({ car: read('agent-fresh'), nonce: 'c50', client: 'uid:1000' })).toMatchObject({ decision: 'deny', source: 'replay', reason: expect.stringMatching(/client holds its share/) });
    expect(gate.check({ car: read('agent-fresh'), nonce: 'c51', client: 'uid:1001' }).decision).toBe('allow');
    expect(gate.check({ car: read('agent-fresh'), nonce: 'c52' }).decision).toBe('allow'); // in process, no client
  });

  test('over the socket, the client is the connection\'s peer', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-quota-'));
    const gate = new Gate({ policy: POLICY, nonceQuota: { perAgent: 100, perClient: 10 } });
    const server = new GuardServer({ socketPath: path.join(dir, 'core.sock'), context: { gate, metrics: {} } });
    await server.listen();
    try {
      const c = await GuardClient.connect(server.socketPath, { timeoutMs: 5000 });
      const decisions = [];
      for (let i = 0; i < 12; i++) decisions.push(await c.gateCheck({ car: read(`agent-${i}`), nonce: `s${i}` }));
      expect(decisions.map((d) => d.decision)).toEqual([...Array(10).fill('allow'), 'deny', 'deny']);
      const batch = await c.gateCheckBatch([{ car: read('agent-x'), nonce: 'b1' }]);
      expect(batch.decisions[0]).toMatchObject({ decision: 'deny', source: 'replay' });
      c.close();
    } finally {
      await server.close();
    }
  });

  test('nonceQuota: false turns it off; bad values are refused', () => {
    const gate = new Gate({ policy: POLICY, replay: new ReplayDetector({ capacity: 64 }), nonceQuota: false });
    let allowed = 0;
    for (let i = 0; i < 64; i++) if (gate.check({ car: read('a'), nonce: `n${i}` }).decision === 'allow') allowed++;
    expect(allowed).toBe(64);
    for (const bad of [{ perAgent: 0 }, { perAgent: -1 }, { perClient: 1.5 }, { perAgent: Number.NaN }, 'x', null]) {
      expect(() => new Gate({ policy: POLICY, nonceQuota: bad as never })).toThrow();
    }
  });

  test('memory: keys go away when their nonces expire', () => {
    const q = new NonceQuota(8);
    for (let k = 0; k < 1000; k++) q.record(`agent-${k}`, 100, 0);
    expect(q.keys).toBeLessThanOrEqual(1000);
    q.record('late', 10_000, 200); // a sweep runs at most every `limit` records
    for (let i = 0; i < 8; i++) q.record('late', 10_000, 200);
    expect(q.keys).toBe(1);
    expect(q.held('late', 200)).toBe(9);
    expect(q.admits('late', 200)).toBe(false);
    expect(q.admits('late', 10_000)).toBe(true);
  });
});
