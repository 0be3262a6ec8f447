// Approvals in process: a `pending` decision opens a request a person decides;
// a grant allows exactly that CAR once, by that agent, under that policy version.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { ApprovalBook, AuditLog, Gate, GuardError, Keyring, carHash, verifyWebhookSignature, type ApprovalEvent } from '../lib/index';
import { fakeClock } from './helpers';

const policy = (version = 1, extra: Record<string, unknown> = {}) => ({
  version,
  mode: 'enforce',
  default: 'deny',
  ...extra,
  actions: {
    shell_exec: { require_approval: true, deny_identities: ['agent-evil*'] },
    file_read: { allow_identities: ['agent-*'], deny_identities: ['agent-untrusted-*'], constraints: { resource: { glob: '/srv/**' } } },
    wire: { require_approval: true, approvers: ['alice', 'bob', 'carol'], min_approvals: 2, approval_ttl: '2m' },
    ...(extra.actions as object | undefined),
  },
});
/** An in-process gate's book answers at once (a fleet gate's with promises). */
const book = (g: Gate): ApprovalBook => g.approvals as ApprovalBook;
const shell = (cmd = 'ls', agent = 'agent-1') => ({ action_type: 'shell_exec', agent_id: agent, args: { cmd } });

function auditRecords(file: string): Array<Record<string, unknown>> {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('approval lifecycle (in process)', () => {
  test('pending opens one request; approve allows exactly that CAR once; the next check is pending again', () => {
    const gate = new Gate({ policy: policy() });
    const first = gate.check({ car: shell(), sessionId: 's1' });
    expect(first).toMatchObject({ decision: 'pending', source: 'policy', car_hash: carHash(shell()) });
    expect(first.approval_id).toMatch(/^apr_[A-Za-z0-9_-]{22}$/);
    expect(first.approval_expires_at).toBeGreaterThan(Date.now());
    // No duplicates: the same CAR while open answers the same id.
    expect(gate.check({ car: shell() }).approval_id).toBe(first.approval_id);
    const listed = book(gate).list({ status: 'pending' });
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ id: first.approval_id, agent_id: 'agent-1', action_type: 'shell_exec', session_id: 's1', rule: 'shell_exec', policy_version: 1, car: shell(), min_approvals: 1 });
    const approved = book(gate).approve(first.approval_id!, { approver: 'alice', reason: 'looks fine' }) as { status: string };
    expect(approved).toMatchObject({ status: 'granted', decided_by: 'alice', reason: 'looks fine' });
    expect(gate.check({ car: shell() })).toMatchObject({ decision: 'allow', source: 'approval', approval_id: first.approval_id });
    expect(book(gate).get(first.approval_id!)).toMatchObject({ status: 'used' });
    const again = gate.check({ car: shell() });
    expect(again.decision).toBe('pending');
    expect(again.approval_id).not.toBe(first.approval_id);
    // Never cached as final.
    expect(gate.cache!.stats().entries).toBe(0);
  });

  test('a grant fits only its CAR: args changed by one byte, another agent, or a policy reload do not use it', () => {
    const gate = new Gate({ policy: policy(1) });
    const id = gate.check({ car: shell('ls') }).approval_id!;
    book(gate).approve(id, { approver: 'alice' });
    const other = gate.check({ car: shell('lt') });
    expect(other.decision).toBe('pending');
    expect(other.approval_id).not.toBe(id);
    const otherAgent = gate.check({ car: shell('ls', 'agent-2') });
    expect(otherAgent.decision).toBe('pending');
    expect(otherAgent.approval_id).not.toBe(id);
    gate.policy.load(policy(2));
    const afterReload = gate.check({ car: shell('ls') });
    expect(afterReload).toMatchObject({ decision: 'pending', policy_version: 2 });
    expect(afterReload.approval_id).not.toBe(id);
    expect(book(gate).get(id)).toMatchObject({ status: 'expired' });
  });

  test('deny: that CAR is denied (source approval) until the request expires; expiry opens a new request', () => {
    const clock = fakeClock();
    const gate = new Gate({ policy: policy(1, { approval_ttl: 60_000 }), clock: clock.fn });
    const id = gate.check({ car: shell() }).approval_id!;
    expect(book(gate).deny(id, { approver: 'bob', reason: 'no' })).toMatchObject({ status: 'denied', decided_by: 'bob' });
    expect(gate.check({ car: shell() })).toMatchObject({ decision: 'deny', source: 'approval', approval_id: id });
    clock.now += 59_999;
    expect(gate.check({ car: shell() })).toMatchObject({ decision: 'deny', source: 'approval' });
    clock.now += 1;
    const fresh = gate.check({ car: shell() });
    expect(fresh.decision).toBe('pending');
    expect(fresh.approval_id).not.toBe(id);
  });

  test('expiry with an injected clock: approval_expired, waiters wake, the next check opens a new request', async () => {
    const clock = fakeClock();
    const events: ApprovalEvent[] = [];
    const gate = new Gate({ policy: policy(), clock: clock.fn });
    gate.on('approval', (e: ApprovalEvent) => events.push(e));
    const id = gate.check({ car: shell() }).approval_id!;
    const waiting = book(gate).wait(id, { timeoutMs: 60_000 });
    clock.now += 15 * 60_000; // the default ttl
    book(gate).sweep();
    await expect(waiting).resolves.toMatchObject({ id, status: 'expired' });
    expect(events.map((e) => e.type)).toEqual(['requested', 'expired']);
    expect(() => book(gate).approve(id, { approver: 'alice' })).toThrow(expect.objectContaining({ code: 'ERR_APPROVAL_CLOSED' }));
    const next = gate.check({ car: shell() });
    expect(next.decision).toBe('pending');
    expect(next.approval_id).not.toBe(id);
  });

  test('a grant expires too: approved but not used in time is not an allow', () => {
    const clock = fakeClock();
    const gate = new Gate({ policy: policy(1, { approval_ttl: '1m' }), clock: clock.fn });
    const id = gate.check({ car: shell() }).approval_id!;
    book(gate).approve(id, { approver: 'alice' });
    clock.now += 60_000;
    const d = gate.check({ car: shell() });
    expect(d.decision).toBe('pending');
    expect(book(gate).get(id)).toMatchObject({ status: 'expired' });
  });

  test('approvers and min_approvals: distinct listed approvers, self-approval refused', () => {
    const gate = new Gate({ policy: policy() });
    const car = { action_type: 'wire', agent_id: 'agent-1', amount: 5 };
    const d = gate.check({ car, requester: 'token:agent' });
    const id = d.approval_id!;
    expect(book(gate).get(id)).toMatchObject({ approvers: ['alice', 'bob', 'carol'], min_approvals: 2, requester: 'token:agent' });
    expect(d.approval_expires_at! - book(gate).get(id).requested_at).toBe(120_000);
    expect(() => book(gate).approve(id, { approver: 'mallory' })).toThrow(expect.objectContaining({ code: 'ERR_FORBIDDEN' }));
    expect(() => book(gate).approve(id, { approver: 'agent-1' })).toThrow(expect.objectContaining({ code: 'ERR_FORBIDDEN' }));
    expect(() => book(gate).approve(id, { approver: 'token:agent' })).toThrow(expect.objectContaining({ code: 'ERR_FORBIDDEN' }));
    expect(book(gate).approve(id, { approver: 'alice' })).toMatchObject({ status: 'pending', approvals: [expect.objectContaining({ approver: 'alice' })] });
    expect(gate.check({ car }).decision).toBe('pending'); // one of two is not a grant
    expect(() => book(gate).approve(id, { approver: 'alice' })).toThrow(expect.objectContaining({ code: 'ERR_FORBIDDEN' }));
    expect(book(gate).approve(id, { approver: 'bob' })).toMatchObject({ status: 'granted', decided_by: 'bob' });
    expect(gate.check({ car })).toMatchObject({ decision: 'allow', source: 'approval' });
  });

  test('redact: the approver reads digests of the named fields, never their values; the hash still binds the real CAR', () => {
    const gate = new Gate({ policy: policy(1, { redact: ['args.token'], actions: { deploy: { require_approval: true, redact: ['env'] } } }) });
    const car = { action_type: 'deploy', agent_id: 'agent-1', args: { token: 's3cret', target: 'prod' }, env: { KEY: 'v' } };
    const d = gate.check({ car });
    const r = book(gate).get(d.approval_id!);
    expect(r.car_hash).toBe(carHash(car));
    expect((r.car as { args: Record<string, unknown> }).args.target).toBe('prod');
    expect((r.car as { args: Record<string, unknown> }).args.token).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(r.car.env).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(JSON.stringify(r)).not.toContain('s3cret');
  });

  test('permits are approvals, not exemptions', () => {
    const keyring = new Keyring({ keys: { k1: Buffer.alloc(32, 7) }, active: 'k1' });
    const gate = new Gate({ policy: policy(), keyring });
    const permitFor = (car: Record<string, unknown>) => keyring.issue({ carHash: carHash(car), agentId: car.agent_id as string, ttlMs: 60_000, use: 'multi' }).permit;
    // A permit turns a pending into an allow, without an approval request.
    expect(gate.check({ car: shell(), permit: permitFor(shell()) })).toMatchObject({ decision: 'allow', source: 'permit' });
    expect(book(gate).list()).toHaveLength(0);
    // It never overrides a policy deny: deny_identities, allow lists, constraints.
    const shadow = { action_type: 'file_read', agent_id: 'agent-untrusted-1', resource: '/etc/shadow' };
    expect(gate.check({ car: shadow, permit: permitFor(shadow) })).toMatchObject({ decision: 'deny', source: 'policy' });
    const evil = shell('ls', 'agent-evil-2');
    expect(gate.check({ car: evil, permit: permitFor(evil) })).toMatchObject({ decision: 'deny', source: 'policy' });
    // Nor quarantine.
    gate.quarantine.quarantine('agent-1', 'test');
    expect(gate.check({ car: shell(), permit: permitFor(shell()) })).toMatchObject({ decision: 'deny', source: 'quarantine' });
  });

  test('a cached pending (cache_put by an operator) still goes to a person', () => {
    const gate = new Gate({ policy: policy(1, { actions: { note: {} } }) });
    const car = { action_type: 'note', agent_id: 'agent-1' };
    gate.cache!.put(carHash(car), { decision: 'pending', policyVersion: 1 });
    const d = gate.check({ car });
    expect(d.decision).toBe('pending');
    // the rule itself does not require approval: the pending stands bare, never an allow
    expect(gate.check({ car }).decision).toBe('pending');
  });

  test('waiting wakes on the decision and times out cleanly', async () => {
    const gate = new Gate({ policy: policy() });
    const id = gate.check({ car: shell() }).approval_id!;
    const timedOut = await book(gate).wait(id, { timeoutMs: 0 });
    expect(timedOut).toMatchObject({ status: 'pending', timed_out: true });
    const waiting = book(gate).wait(id, { timeoutMs: 60_000 });
    let woke = false;
    void waiting.then(() => (woke = true));
    await new Promise((r) => setImmediate(r));
    expect(woke).toBe(false);
    book(gate).approve(id, { approver: 'alice' });
    await expect(waiting).resolves.toMatchObject({ status: 'granted' });
    const ac = new AbortController();
    const id2 = gate.check({ car: shell('pwd') }).approval_id!;
    const aborted = book(gate).wait(id2, { signal: ac.signal });
    ac.abort(new Error('gave up'));
    await expect(aborted).rejects.toThrow('gave up');
  });

  test('rejects bad input', async () => {
    const gate = new Gate({ policy: policy() });
    const id = gate.check({ car: shell() }).approval_id!;
    for (const bad of ['', 'apr_short', 'x'.repeat(26), 42, null]) {
      expect(() => book(gate).get(bad as string)).toThrow(GuardError);
      await expect(book(gate).wait(bad as string)).rejects.toThrow(GuardError);
    }
    expect(() => book(gate).get('apr_' + 'A'.repeat(22))).toThrow(expect.objectContaining({ code: 'ERR_APPROVAL_NOT_FOUND' }));
    expect(() => book(gate).list({ status: 'bogus' as 'pending' })).toThrow(GuardError);
    expect(() => book(gate).approve(id, { approver: '' })).toThrow(GuardError);
    expect(() => book(gate).approve(id, { approver: 'a', reason: 'x'.repeat(2000) })).toThrow(GuardError);
    expect(() => book(gate).approve(id, null as never)).toThrow(GuardError);
    await expect(book(gate).wait(id, { timeoutMs: -1 })).rejects.toThrow(GuardError);
    for (const ttl of [999, '0m', '1w', 'soon', 8 * 86_400_000]) expect(() => new Gate({ policy: policy(1, { approval_ttl: ttl }) })).toThrow(expect.objectContaining({ code: 'ERR_POLICY_INVALID' }));
    expect(() => new Gate({ policy: policy(1, { actions: { x: { require_approval: true, min_approvals: 0 } } }) })).toThrow(expect.objectContaining({ code: 'ERR_POLICY_INVALID' }));
    expect(() => new Gate({ policy: policy(1, { redact: ['a..b'] }) })).toThrow(expect.objectContaining({ code: 'ERR_POLICY_INVALID' }));
  });

  test('bounded: one agent cannot open unbounded requests (denied past its share, others unaffected)', () => {
    const gate = new Gate({ policy: policy(), approvals: { maxOpenPerAgent: 3 } });
    for (let i = 0; i < 3; i++) expect(gate.check({ car: shell(`c${i}`) }).decision).toBe('pending');
    expect(gate.check({ car: shell('c3') })).toMatchObject({ decision: 'deny', source: 'approval' });
    expect(gate.check({ car: shell('c0', 'agent-2') }).decision).toBe('pending');
  });

  test('bounded per requesting credential, whatever agent ids its CARs name, and in CAR bytes', () => {
    const gate = new Gate({ policy: policy(), approvals: { maxOpenPerRequester: 5, maxBytes: 64 * 1024 } });
    for (let i = 0; i < 5; i++) expect(gate.check({ car: shell('x', `agent-${i}`), requester: 'uid:1234' }).decision).toBe('pending');
    expect(gate.check({ car: shell('x', 'agent-new'), requester: 'uid:1234' })).toMatchObject({ decision: 'deny', source: 'approval' });
    expect(gate.check({ car: shell('x', 'agent-new'), requester: 'uid:99' }).decision).toBe('pending');
    // Bytes: big CARs fill the budget; past it new requests are refused, not kept.
    const big = (i: number) => ({ action_type: 'shell_exec', agent_id: `agent-big-${i}`, args: { blob: 'x'.repeat(20_000) } });
    const answers = Array.from({ length: 4 }, (_, i) => gate.check({ car: big(i) }).decision);
    expect(answers.slice(0, 2)).toEqual(['pending', 'pending']);
    expect(answers.slice(2)).toContain('deny');
    expect(book(gate).list().length).toBeLessThanOrEqual(9);
  });

  test('audited: requested, granted, used, denied, expired (with approver and reason), before the change', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-approvals-'));
    const file = path.join(dir, 'audit.log');
    const audit = new AuditLog({ file, key: Buffer.alloc(32, 1) });
    const clock = fakeClock();
    const gate = new Gate({ policy: policy(), audit, clock: clock.fn });
    const a = gate.check({ car: shell('a') }).approval_id!;
    book(gate).approve(a, { approver: 'alice', reason: 'ok' });
    gate.check({ car: shell('a') });
    const b = gate.check({ car: shell('b') }).approval_id!;
    book(gate).deny(b, { approver: 'bob', reason: 'nope' });
    gate.check({ car: shell('c') });
    clock.now += 16 * 60_000;
    book(gate).sweep();
    audit.close();
    const recs = auditRecords(file).filter((r) => String(r.type).startsWith('approval_'));
    expect(recs.map((r) => r.type)).toEqual(['approval_requested', 'approval_granted', 'approval_used', 'approval_requested', 'approval_denied', 'approval_requested', 'approval_expired']);
    expect(recs[1]).toMatchObject({ approval_id: a, approver: 'alice', reason: 'ok' });
    expect(recs[4]).toMatchObject({ approval_id: b, approver: 'bob', reason: 'nope' });
    expect(AuditLog.verify(file, Buffer.alloc(32, 1)).ok).toBe(true);
  });

  test('fail closed: an audit log that refuses the request record means no request and a deny', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-approvals-'));
    const audit = new AuditLog({ file: path.join(dir, 'audit.log'), key: Buffer.alloc(32, 1) });
    const gate = new Gate({ policy: policy(), audit });
    audit.close();
    expect(gate.check({ car: shell() })).toMatchObject({ decision: 'deny', source: 'error' });
    expect(book(gate).list()).toHaveLength(0);
  });

  test('a throwing approval listener does not turn the check into an error', () => {
    const gate = new Gate({ policy: policy() });
    gate.on('approval', () => {
      throw new Error('listener bug');
    });
    expect(gate.check({ car: shell() }).decision).toBe('pending');
    expect(gate.approvalListenerErrors).toBe(1);
  });

  test('the webhook option: each new request and resolution is POSTed, signed; a receiver that is down never fails the check', async () => {
    const secret = Buffer.alloc(32, 9);
    const got: Array<{ type: string; request: { id: string } }> = [];
    const receiver = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        if (verifyWebhookSignature(secret, req.headers['guardkernel-signature'] as string, body).ok) got.push(JSON.parse(body));
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
    try {
      const url = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hook`;
      const gate = new Gate({ policy: policy(), webhook: { url, secret } });
      const id = gate.check({ car: shell() }).approval_id!;
      book(gate).deny(id, { approver: 'alice' });
      while (got.length < 2) await new Promise((r) => setTimeout(r, 10));
      expect(got.map((e) => e.type).sort()).toEqual(['approval.denied', 'approval.requested']);
      expect(got.every((e) => e.request.id === id)).toBe(true);
      await gate.close();
      const down = new Gate({ policy: policy(), webhook: { url: 'http://127.0.0.1:1/hook', secret, attempts: 1 } });
      expect(down.check({ car: shell() }).decision).toBe('pending');
      await down.close();
    } finally {
      await new Promise<void>((r) => receiver.close(() => r()));
    }
  });

  test('approvals: false keeps the bare pending', () => {
    const gate = new Gate({ policy: policy(), approvals: false });
    const d = gate.check({ car: shell() });
    expect(d.decision).toBe('pending');
    expect(d.approval_id).toBeUndefined();
    expect(gate.approvals).toBeNull();
  });
});

describe('approval ids', () => {
  test('fresh, well formed and never repeated, across many draws of the random pool', async () => {
    const { newApprovalId, APPROVAL_ID } = await import('../lib/gate/approvals/transitions');
    const seen = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      const id = newApprovalId();
      expect(id).toMatch(APPROVAL_ID);
      seen.add(id);
    }
    expect(seen.size).toBe(3000);
    // 128 random bits in each: every base64url character appears, at every position.
    const atPosition = Array.from({ length: 22 }, () => new Set<string>());
    for (const id of seen) for (let k = 0; k < 21; k++) atPosition[k].add(id[4 + k]);
    for (let k = 0; k < 21; k++) expect(atPosition[k].size).toBe(64);
  });
});
