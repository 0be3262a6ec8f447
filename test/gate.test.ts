// Gate: the pipeline's order and its attack tests.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { AuditLog, DecisionCache, Gate, Keyring, PolicyEngine, Quarantine, ReplayDetector, VelocityGuard, carHash } from '../lib/index';
import { fakeClock, repoRoot, sameApprovals } from './helpers';

const policy = (version: number, readDecision: 'allow' | 'deny' = 'allow') => ({
  version,
  mode: 'enforce',
  default: 'deny',
  actions: {
    file_read: readDecision === 'allow' ? { constraints: { resource: { glob: '/srv/**' } } } : { allow_identities: ['nobody'] },
    file_write: { constraints: { resource: { prefix: '/srv/out/' } }, on_violation: 'quarantine' },
    shell_exec: { require_approval: true },
    trusted_op: { min_trust: 0.4 },
  },
});
const read = (agent = 'agent-1', resource = '/srv/a.txt') => ({ action_type: 'file_read', agent_id: agent, resource });

describe('Gate pipeline', () => {
  test('new Gate({ policy }) works with defaults; policy decisions are cached', () => {
    const gate = new Gate({ policy: policy(1) });
    const first = gate.check({ car: read() });
    expect(first).toMatchObject({ decision: 'allow', source: 'policy', policy_version: 1, confidence: 1, car_hash: carHash(read()) });
    expect(gate.check({ car: read() })).toMatchObject({ decision: 'allow', source: 'cache' });
    expect(gate.check({ car: { action_type: 'shell_exec', agent_id: 'a' } }).decision).toBe('pending');
    expect(gate.check({ car: { action_type: 'unknown', agent_id: 'a' } })).toMatchObject({ decision: 'deny', source: 'policy', confidence: 0.5 });
  });

  test('a decision has the same confidence every time: defaults and audit-mode overrides (0.5) are not cached', () => {
    const enforce = new Gate({ policy: policy(1) });
    const unknown = { action_type: 'unknown', agent_id: 'a' };
    for (let i = 0; i < 3; i++) expect(enforce.check({ car: unknown })).toMatchObject({ decision: 'deny', source: 'policy', confidence: 0.5 });
    const audit = new Gate({ policy: { ...policy(1, 'deny'), mode: 'audit' } });
    for (let i = 0; i < 3; i++) {
      expect(audit.check({ car: read() })).toMatchObject({ decision: 'allow', source: 'policy', confidence: 0.5, reason: expect.stringMatching(/^audit mode; /) });
    }
    // Audit mode answers allow with confidence 0.5 (a rule would have said
    // otherwise); only confidence-1 decisions are cached, so each ask is the
    // policy's again, never the cache's.
    for (let i = 0; i < 2; i++) {
      expect(audit.check({ car: { action_type: 'shell_exec', agent_id: 'a' } })).toMatchObject({ source: 'policy', confidence: 0.5 }); // would be pending
    }
    expect(audit.cache!.stats().entries).toBe(0);
    const satisfied = new Gate({ policy: { ...policy(1), mode: 'audit' } });
    expect(satisfied.check({ car: read() })).toMatchObject({ decision: 'allow', source: 'policy', confidence: 1 });
    expect(satisfied.check({ car: read() })).toMatchObject({ decision: 'allow', source: 'cache', confidence: 1 });
  });

  test('nonceTtlMs is readable (default 300000) and validated', () => {
    expect(new Gate({ policy: policy(1) }).nonceTtlMs).toBe(300_000);
    expect(new Gate({ policy: policy(1), nonceTtlMs: 90_000 }).nonceTtlMs).toBe(90_000);
    for (const bad of [999, 1.5, -1, '5000']) expect(() => new Gate({ policy: policy(1), nonceTtlMs: bad as number })).toThrow(RangeError);
  });

  test('the example policy loads through the gate', () => {
    const gate = new Gate({ policy: fs.readFileSync(path.join(repoRoot, 'examples', 'policy.yaml'), 'utf8') });
    expect(gate.check({ car: { action_type: 'file_read', agent_id: 'agent-prod-1', resource: '/srv/data/q3.csv', args: { mode: 'r' } } }).decision).toBe('allow');
    expect(gate.check({ car: { action_type: 'file_read', agent_id: 'agent-prod-1', resource: '/etc/passwd', args: { mode: 'r' } } }).decision).toBe('deny');
  });

  test('invalid CARs are denied by validation, never thrown', () => {
    const gate = new Gate({ policy: policy(1) });
    for (const bad of [{}, { action_type: 'x' }, { action_type: 'x', agent_id: 'a', n: NaN }, null, 'x']) {
      expect(gate.check({ car: bad as never })).toMatchObject({ decision: 'deny', source: 'validation', car_hash: null });
    }
    expect(gate.check(null as never)).toMatchObject({ decision: 'deny' });
  });

  test("an invalid CAR's deny reason is carHash's error message, and the stack-trace limit the gate lowers for it is restored", () => {
    const gate = new Gate({ policy: policy(1) });
    const before = Error.stackTraceLimit;
    for (const bad of [{ action_type: 'x' }, { action_type: 'x', agent_id: 'a', args: { n: NaN } }, { action_type: ['x'], agent_id: 'a' }, { action_type: 'x', agent_id: 'a', deep: { a: { b: [1, { c: Infinity }] } } }]) {
      let message = '';
      try {
        carHash(bad as never);
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).not.toBe('');
      expect(gate.check({ car: bad as never })).toMatchObject({ decision: 'deny', source: 'validation', reason: message });
      expect(Error.stackTraceLimit).toBe(before);
    }
    // A getter that throws: an internal-error deny, the limit restored all the same.
    const hostile = { action_type: 'x', agent_id: 'a', get resource(): string { throw new Error('boom'); } };
    expect(gate.check({ car: hostile as never })).toMatchObject({ decision: 'deny' });
    expect(Error.stackTraceLimit).toBe(before);
  });

  test('checkBatch gives the same answers as sequential check', () => {
    const reqs = [read(), read(), { action_type: 'shell_exec', agent_id: 'a' }, read('agent-2', '/etc/x'), { action_type: 'nope', agent_id: 'b' }, read()].map((car, i) => ({ car, nonce: i === 5 ? 'n0' : `n${i}` }));
    const a = new Gate({ policy: policy(1) });
    const b = new Gate({ policy: policy(1) });
    expect(sameApprovals(a.checkBatch(reqs))).toEqual(sameApprovals(reqs.map((r) => b.check(r))));
    expect(a.checkBatch(reqs).every((d) => d.decision === 'deny')).toBe(true); // every nonce now replayed
  });
});

describe('Gate attack tests', () => {
  test('a cached allow is not served after a policy reload that denies', () => {
    const engine = new PolicyEngine(policy(1));
    const gate = new Gate({ policy: engine });
    gate.check({ car: read() });
    expect(gate.check({ car: read() }).source).toBe('cache');
    engine.load(policy(2, 'deny'));
    expect(gate.check({ car: read() })).toMatchObject({ decision: 'deny', source: 'policy', policy_version: 2 });
  });

  test('a quarantined agent is denied even with a cached allow', () => {
    const gate = new Gate({ policy: policy(1) });
    gate.check({ car: read() });
    gate.quarantine.quarantine('agent-1', 'suspicious');
    expect(gate.check({ car: read() })).toMatchObject({ decision: 'deny', source: 'quarantine' });
    expect(gate.check({ car: read('agent-2') }).decision).toBe('allow');
  });

  test('on_violation: quarantine isolates the agent', () => {
    const gate = new Gate({ policy: policy(1) });
    expect(gate.check({ car: { action_type: 'file_write', agent_id: 'w', resource: '/etc/x' } })).toMatchObject({ decision: 'deny', source: 'policy' });
    expect(gate.quarantine.get('w')?.status).toBe('active');
    expect(gate.check({ car: read('w') })).toMatchObject({ decision: 'deny', source: 'quarantine' });
  });

  test('a rate-limited agent is denied even with a cached allow', () => {
    const c = fakeClock(0);
    const gate = new Gate({ policy: policy(1), velocity: new VelocityGuard({ maxPerAgent: 2, windowMs: 60_000, clock: c.fn }) });
    expect(gate.check({ car: read() }).source).toBe('policy');
    expect(gate.check({ car: read() }).source).toBe('cache');
    expect(gate.check({ car: read() })).toMatchObject({ decision: 'deny', source: 'velocity', retry_after_ms: 30_000 });
  });

  test('a replayed request nonce is denied', () => {
    const gate = new Gate({ policy: policy(1) });
    expect(gate.check({ car: read(), nonce: 'req-1' }).decision).toBe('allow');
    expect(gate.check({ car: read(), nonce: 'req-1' })).toMatchObject({ decision: 'deny', source: 'replay' });
    expect(gate.check({ car: read('agent-9'), nonce: 'req-1' }).source).toBe('replay'); // nonces are global
  });

  test('an invalid permit is a deny; a valid one allows once and is never cached', () => {
    const keyring = new Keyring({ keys: { k: crypto.randomBytes(32) }, active: 'k' });
    const gate = new Gate({ policy: policy(1), keyring });
    const shell = { action_type: 'shell_exec', agent_id: 'a' };
    expect(gate.check({ car: shell }).decision).toBe('pending');
    const { permit } = keyring.issue({ car: shell, agentId: 'a', ttlMs: 60_000 });
    expect(gate.check({ car: shell, permit })).toMatchObject({ decision: 'allow', source: 'permit' });
    expect(gate.check({ car: shell, permit })).toMatchObject({ decision: 'deny', source: 'permit', reason: 'permit rejected: replayed' });
    expect(gate.check({ car: shell })).toMatchObject({ decision: 'pending' }); // the permit's allow was not cached
    const forged = permit.slice(0, -4) + 'AAAA';
    expect(gate.check({ car: shell, permit: forged })).toMatchObject({ decision: 'deny', source: 'permit' });
    // Bound to its CAR: a fresh, unused permit for `shell` does not pass with another CAR...
    const fresh = keyring.issue({ car: shell, agentId: 'a', ttlMs: 60_000 }).permit;
    expect(gate.check({ car: read(), permit: fresh })).toMatchObject({ decision: 'deny', source: 'permit', reason: 'permit rejected: car_mismatch' });
    // ...and was not consumed by that attempt: it still allows its own CAR once.
    expect(gate.check({ car: shell, permit: fresh })).toMatchObject({ decision: 'allow', source: 'permit' });
    expect(new Gate({ policy: policy(1) }).check({ car: shell, permit })).toMatchObject({ decision: 'deny', source: 'permit' });
  });

  test('an exception inside any stage is a deny with source error', () => {
    const boom = () => {
      throw new Error('boom');
    };
    const stages: Array<[string, () => Gate]> = [
      ['quarantine', () => { const q = new Quarantine(); q.denies = boom; return new Gate({ policy: policy(1), quarantine: q }); }],
      ['velocity', () => { const v = new VelocityGuard({ maxPerAgent: 5, windowMs: 1000 }); v.check = boom; return new Gate({ policy: policy(1), velocity: v }); }],
      ['replay', () => { const r = new ReplayDetector(); r.check = boom; return new Gate({ policy: policy(1), replay: r }); }],
      ['cache', () => { const c = new DecisionCache(); c.get = boom; return new Gate({ policy: policy(1), cache: c }); }],
      ['policy', () => { const e = new PolicyEngine(policy(1)); e.evaluate = boom; return new Gate({ policy: e }); }],
      ['trust', () => { const e = new PolicyEngine(policy(1)); e.trustScore = boom; return new Gate({ policy: e }); }],
    ];
    for (const [stage, make] of stages) {
      expect({ stage, d: make().check({ car: read(), nonce: `n-${stage}` }) }).toMatchObject({ stage, d: { decision: 'deny', source: 'error', reason: 'internal error: boom' } });
    }
  });

  test('a non-enumerable field (invisible to the hash) cannot steer a decision that is cached for the plain request', () => {
    // resource is constrained: a request without it must be denied. A hidden
    // resource must neither allow it nor leave an allow in the cache for it.
    const gate = new Gate({ policy: policy(1) });
    const sneaky = { action_type: 'file_read', agent_id: 'agent-1' };
    Object.defineProperty(sneaky, 'resource', { value: '/srv/a.txt', enumerable: false });
    expect(carHash(sneaky)).toBe(carHash({ action_type: 'file_read', agent_id: 'agent-1' }));
    expect(gate.check({ car: sneaky })).toMatchObject({ decision: 'deny', reason: 'rule file_read: resource is missing' });
    expect(gate.check({ car: { action_type: 'file_read', agent_id: 'agent-1' } })).toMatchObject({ decision: 'deny' });
    // The same one level down (a constrained args field), through checkBatch.
    const engine = new PolicyEngine({ version: 1, mode: 'enforce', default: 'deny', actions: { op: { constraints: { 'args.mode': { one_of: ['r'] } } } } });
    const g2 = new Gate({ policy: engine });
    const args = {};
    Object.defineProperty(args, 'mode', { value: 'r', enumerable: false });
    const out = g2.checkBatch([{ car: { action_type: 'op', agent_id: 'a', args } }, { car: { action_type: 'op', agent_id: 'a', args: {} } }]);
    expect(out.map((d) => d.decision)).toEqual(['deny', 'deny']);
    expect(g2.check({ car: { action_type: 'op', agent_id: 'a', args: { mode: 'r' } } })).toMatchObject({ decision: 'allow', source: 'policy' });
  });

  test('a hidden or inherited agent_id is a validation deny: identities never share a hash', () => {
    const gate = new Gate({ policy: { version: 1, mode: 'enforce', default: 'deny', actions: { op: { allow_identities: ['agent-ok'] } } } });
    const hidden = (agent: string) => {
      const car = { action_type: 'op' };
      Object.defineProperty(car, 'agent_id', { value: agent, enumerable: false });
      return car;
    };
    const inherited = (agent: string) => Object.assign(Object.create(Object.assign(Object.create(Object.prototype), { agent_id: agent })), { action_type: 'op' });
    for (let i = 0; i < 12; i++) {
      for (const make of [hidden, inherited]) {
        const [a, b] = gate.checkBatch([{ car: make('agent-ok') }, { car: make('agent-evil') }]);
        expect(a).toMatchObject({ decision: 'deny', source: 'validation', car_hash: null });
        expect(b).toMatchObject({ decision: 'deny', source: 'validation', car_hash: null });
        expect(gate.check({ car: make('agent-evil') })).toMatchObject({ decision: 'deny', source: 'validation' });
      }
    }
  });

  test('a min_trust decision is cached only while trust suffices: trust that drops is seen at once', () => {
    const engine = new PolicyEngine({ ...policy(1), trust: { base: 0.5, violation_penalty: 0.2 } });
    const gate = new Gate({ policy: engine });
    const op = { action_type: 'trusted_op', agent_id: 'a' };
    expect(gate.check({ car: op })).toMatchObject({ decision: 'allow', source: 'policy' });
    expect(gate.check({ car: op })).toMatchObject({ decision: 'allow', source: 'cache', trust_score: 0.5 });
    gate.check({ car: { action_type: 'file_read', agent_id: 'a', resource: '/etc/x' } }); // a violation: trust 0.3
    // The cached allow is not served: the policy decides, with the trust it sees now.
    expect(gate.check({ car: op })).toMatchObject({ decision: 'deny', source: 'policy', trust_score: 0.3 });
    expect(gate.check({ car: op })).toMatchObject({ decision: 'deny', source: 'policy' }); // nor is that deny cached
  });

  test('a min_trust allow cached for a trusted agent does not vouch for an untrusted one', () => {
    const engine = new PolicyEngine({ ...policy(1), trust: { base: 0.3, identities: [{ match: 'good-*', adjust: 0.3 }] } });
    const gate = new Gate({ policy: engine });
    expect(gate.check({ car: { action_type: 'trusted_op', agent_id: 'good-1' } })).toMatchObject({ decision: 'allow', source: 'policy' });
    expect(gate.check({ car: { action_type: 'trusted_op', agent_id: 'good-1' } }).source).toBe('cache');
    expect(gate.check({ car: { action_type: 'trusted_op', agent_id: 'bad-1' } })).toMatchObject({ decision: 'deny', source: 'policy', trust_score: 0.3 });
  });

  test('a min_trust allow cached before trust fell recovers the cache once trust returns', () => {
    const clock = fakeClock(1_000_000);
    const engine = new PolicyEngine({ ...policy(1), trust: { base: 0.5, violation_penalty: 0.2, recovery_per_hour: 0.2 } }, { clock: clock.fn });
    const gate = new Gate({ policy: engine, clock: clock.fn, cache: new DecisionCache({ clock: clock.fn, ttlMs: 24 * 3600_000 }) });
    const op = { action_type: 'trusted_op', agent_id: 'a' };
    gate.check({ car: op });
    gate.check({ car: { action_type: 'file_read', agent_id: 'a', resource: '/etc/x' } }); // trust 0.3
    expect(gate.check({ car: op })).toMatchObject({ decision: 'deny', source: 'policy' });
    // Two violations (the read, then falling short of min_trust) decay at 0.2 an hour: trust 0.5 again.
    clock.now += 2 * 3600_000;
    expect(gate.check({ car: op })).toMatchObject({ decision: 'allow', source: 'cache', trust_score: 0.5 });
  });
});

describe('Gate audit', () => {
  test('every decision is audited and the log verifies', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gk-gate-')), 'audit.log');
    const key = crypto.randomBytes(32);
    const audit = new AuditLog({ file, key });
    const gate = new Gate({ policy: policy(1), audit });
    const outcomes = [gate.check({ car: read(), nonce: 'x' }), gate.check({ car: read(), nonce: 'x' }), gate.check({ car: {} as never }), gate.check({ car: read() })];
    audit.close();
    const records = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(records.map((r) => [r.type, r.decision, r.source])).toEqual([
      ['gate_decision', 'allow', 'policy'],
      ['replay_detected', 'deny', 'replay'],
      ['input_validation_failure', 'deny', 'validation'],
      ['gate_decision', 'allow', 'cache'],
    ]);
    expect(records[0]).toMatchObject({ car_hash: outcomes[0].car_hash, agent_id: 'agent-1', action_type: 'file_read' });
    expect(AuditLog.verify(file, key)).toMatchObject({ ok: true, records: 4 });
  });

  test.runIf(fs.existsSync('/dev/full'))('a required audit log that cannot be written turns decisions into denies', () => {
    const audit = new AuditLog({ file: '/dev/full', key: crypto.randomBytes(32), required: true });
    const gate = new Gate({ policy: policy(1), audit });
    expect(gate.check({ car: read() }).decision).toBe('allow'); // buffered; not yet known to fail
    try {
      audit.flush();
    } catch {
      // expected: ENOSPC
    }
    expect(gate.check({ car: read() })).toMatchObject({ decision: 'deny', source: 'error', reason: expect.stringMatching(/audit log unavailable/) });
    audit.close();
  });
});

describe('Gate rejects bad options', () => {
  test('constructor', () => {
    expect(() => new Gate(undefined as never)).toThrow(TypeError);
    expect(() => new Gate({} as never)).toThrow(TypeError);
    expect(() => new Gate({ policy: { version: 0, mode: 'x' } })).toThrow(/ERR_POLICY_INVALID|version/);
    expect(() => new Gate({ policy: policy(1), nonceTtlMs: 5 })).toThrow(RangeError);
    expect(() => new Gate({ policy: policy(1) }).checkBatch('x' as never)).toThrow(TypeError);
  });
});
