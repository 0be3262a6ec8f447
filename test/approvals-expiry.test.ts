// Approval expiry without a scan: the ExpiryQueue (a min-heap by expiry,
// ties in push order) against a sorted reference, and the book expiring
// exactly the due open requests, earliest first, with the entries of
// requests that ended early (granted and used, denied) skipped.
import { describe, expect, test } from 'vitest';
import { ExpiryQueue } from '../lib/gate/approvals/expiry-queue';
import { Gate, type ApprovalBook, type ApprovalEvent } from '../lib/index';
import { fakeClock, rng, randomInt } from './helpers';

describe('ExpiryQueue', () => {
  test('pops in (expiry, push order) on random pushes and pops, as a sorted list would', () => {
    const next = rng(7);
    const q = new ExpiryQueue();
    let reference: Array<{ at: number; seq: number; id: string }> = [];
    let seq = 0;
    for (let step = 0; step < 20_000; step++) {
      if (next() < 0.6 || reference.length === 0) {
        const at = randomInt(next, 0, 50); // many equal expiries
        const id = `r${seq}`;
        q.push(at, id);
        reference.push({ at, seq: seq++, id });
        reference.sort((a, b) => a.at - b.at || a.seq - b.seq);
      } else {
        expect([q.firstAt, q.firstId]).toEqual([reference[0].at, reference[0].id]);
        q.pop();
        reference = reference.slice(1);
      }
      expect(q.size).toBe(reference.length);
    }
    while (reference.length > 0) {
      expect(q.firstId).toBe(reference.shift()!.id);
      q.pop();
    }
    expect([q.size, q.firstAt, q.firstId]).toEqual([0, Infinity, undefined]);
    q.pop(); // empty: nothing happens
    expect(q.size).toBe(0);
  });

  test('rebuild keeps exactly the entries given, ties in the order given', () => {
    const q = new ExpiryQueue();
    for (let i = 0; i < 100; i++) q.push(i, `old${i}`);
    q.rebuild([[5, 'a'], [1, 'b'], [5, 'c'], [1, 'd']]);
    const out: string[] = [];
    while (q.size > 0) {
      out.push(q.firstId!);
      q.pop();
    }
    expect(out).toEqual(['b', 'd', 'a', 'c']);
  });
});

describe('the book expires by the queue', () => {
  const policy = { version: 1, mode: 'enforce', default: 'deny', actions: { shell_exec: { require_approval: true, approval_ttl: '1m' } } };
  const car = (i: number) => ({ action_type: 'shell_exec', agent_id: `agent-${i % 50}`, args: { cmd: `job ${i}` } });

  test('only due open requests expire, earliest first; granted-and-used and denied ones never do', () => {
    const clock = fakeClock();
    const gate = new Gate({ policy, clock: clock.fn, approvals: { maxOpen: 100_000, maxOpenPerAgent: 100_000 } });
    const book = gate.approvals as ApprovalBook;
    const expired: string[] = [];
    gate.on('approval', (e: ApprovalEvent) => {
      if (e.type === 'expired') expired.push(e.request.id);
    });
    // 3,000 requests opened 10 ms apart; every third granted and used, every third denied.
    const ids: string[] = [];
    for (let i = 0; i < 3000; i++) {
      ids.push(gate.check({ car: car(i) }).approval_id!);
      clock.now += 10;
    }
    for (let i = 0; i < 3000; i += 3) {
      book.approve(ids[i], { approver: 'alice' });
      expect(gate.check({ car: car(i) })).toMatchObject({ decision: 'allow', source: 'approval' });
      book.deny(ids[i + 1], { approver: 'alice' });
    }
    const stillOpen = ids.filter((_, i) => i % 3 === 2);
    // Opened at start + 10 i, they expire at start + 10 i + 60,000: half of the run's span from the end.
    clock.now = 1_000_000 + 60_000 + 10 * 1500 - 1;
    book.sweep();
    const dueFirst = stillOpen.filter((id) => ids.indexOf(id) < 1500);
    expect(expired).toEqual(dueFirst);
    clock.now += 10 * 1500;
    book.sweep();
    expect(expired).toEqual(stillOpen);
    expect(book.openCount).toBe(0);
    for (const [i, id] of ids.entries()) expect(book.get(id).status).toBe(i % 3 === 0 ? 'used' : i % 3 === 1 ? 'denied' : 'expired');
    gate.close();
  });

  test('a request whose expiry changes (a grant extends nothing; a re-open after expiry) is expired once, at its time', () => {
    const clock = fakeClock();
    const gate = new Gate({ policy, clock: clock.fn });
    const book = gate.approvals as ApprovalBook;
    const first = gate.check({ car: car(1) }).approval_id!;
    clock.now += 61_000;
    book.sweep();
    expect(book.get(first).status).toBe('expired');
    const second = gate.check({ car: car(1) }).approval_id!; // the same CAR opens a new request
    expect(second).not.toBe(first);
    clock.now += 59_000;
    book.sweep();
    expect(book.get(second).status).toBe('pending');
    clock.now += 1_000;
    book.sweep();
    expect(book.get(second).status).toBe('expired');
    gate.close();
  });
});
