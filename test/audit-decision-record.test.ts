// The gate's decision records are written by a fixed-shape writer
// (lib/audit/record.ts) instead of the generic canonical walk. It must produce
// the very bytes `append` produces for the same fields, or leave the record to
// the generic path (which then names what JSON cannot carry).
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { AuditLog, GuardError, canonicalizeJson } from '../lib/index';
import type { DecisionRecordFields } from '../lib/audit/record';
import { randomInt, rng } from './helpers';

const KEY = crypto.randomBytes(32);
const tmpDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'gk-audit-decision-'));
const PIECES = ['a', 'Z', '-', '/', 'é', '€', '😀', '\u0000', '\u001f', '"', '\\', '\n', '\u2028', '中', '\u007f', ' '];
const TYPES = ['gate_decision', 'rate_limited', 'replay_detected', 'permit_rejected'] as const;
const SEVERITIES = ['info', 'warning'] as const;
const hex64 = (next: () => number) => Array.from({ length: 64 }, () => '0123456789abcdef'[randomInt(next, 0, 15)]).join('');

function text(next: () => number, max = 8): string {
  let s = '';
  for (let i = randomInt(next, 0, max); i > 0; i--) s += PIECES[randomInt(next, 0, PIECES.length - 1)];
  return s;
}

// Numbers the writer formats itself (safe non-negative integers, across the
// 10^8 split) and ones it hands to the generic conversion.
const NUMBERS = [0, -0, 1, 9, 10, 99_999_999, 100_000_000, 100_000_001, 1_764_540_000_000, 2 ** 31, 2 ** 53 - 1, 2 ** 53, 2 ** 60, 1e21, 0.5, 1764540000000.25, -3, 5e-324];
const someNumber = (next: () => number) => (next() < 0.5 ? NUMBERS[randomInt(next, 0, NUMBERS.length - 1)] : randomInt(next, 0, 2 ** 40));

function randomFields(next: () => number): DecisionRecordFields {
  const f: DecisionRecordFields = {
    decision: ['allow', 'deny', 'pending'][randomInt(next, 0, 2)],
    source: ['policy', 'cache', 'velocity', 'replay'][randomInt(next, 0, 3)],
    reason: text(next, 20),
    // Mostly our hashes; sometimes any text (the addon writes it escaped, the TS writer leaves it to the generic path).
    car_hash: next() < 0.9 ? 'sha256:' + hex64(next) : text(next, 12),
    policy_version: someNumber(next),
    agent_id: 'agent-' + text(next),
    action_type: text(next) || 'x',
  };
  if (next() < 0.5) f.session_id = text(next);
  return f;
}

/** Two logs on one clock sequence: `append` with the equivalent fields object, and `appendDecision`. */
function twoLogs(clockValues: number[]) {
  const dir = tmpDir();
  const clockFor = () => {
    let i = 0;
    return () => clockValues[i++];
  };
  const generic = new AuditLog({ file: path.join(dir, 'generic.log'), key: KEY, clock: clockFor() });
  const fast = new AuditLog({ file: path.join(dir, 'fast.log'), key: KEY, clock: clockFor() });
  return { dir, generic, fast };
}

function asFields(f: DecisionRecordFields): Record<string, unknown> {
  const o: Record<string, unknown> = { decision: f.decision, source: f.source, reason: f.reason, car_hash: f.car_hash, policy_version: f.policy_version, agent_id: f.agent_id, action_type: f.action_type };
  if (f.session_id !== undefined) o.session_id = f.session_id;
  return o;
}

describe('decision records from the fixed-shape writer', () => {
  test('3,000 random decisions: byte for byte what append writes, and the log verifies', () => {
    const next = rng(0xdec15);
    const clockValues = Array.from({ length: 3000 }, () => someNumber(next));
    const { dir, generic, fast } = twoLogs(clockValues);
    for (let i = 0; i < 3000; i++) {
      const f = randomFields(next);
      const type = TYPES[randomInt(next, 0, TYPES.length - 1)];
      const severity = SEVERITIES[randomInt(next, 0, 1)];
      expect(fast.appendDecision(type, severity, f)).toBe(generic.append(type, severity, asFields(f)));
    }
    generic.close();
    fast.close();
    const a = fs.readFileSync(path.join(dir, 'generic.log'));
    const b = fs.readFileSync(path.join(dir, 'fast.log'));
    expect(b.equals(a)).toBe(true);
    expect(AuditLog.verify(path.join(dir, 'fast.log'), KEY)).toMatchObject({ ok: true, records: 3000 });
    // Each line is the canonical record plus its mac: nothing reordered or re-escaped.
    for (const line of b.toString('utf8').split('\n').filter(Boolean).slice(0, 200)) {
      const { mac, ...rest } = JSON.parse(line);
      expect(line).toBe(canonicalizeJson(rest).slice(0, -1) + `,"mac":"${mac}"}`);
    }
  });

  test('what the writer cannot carry goes to the generic path, which names it', () => {
    const dir = tmpDir();
    const log = new AuditLog({ file: path.join(dir, 'a.log'), key: KEY });
    const ok: DecisionRecordFields = { decision: 'allow', source: 'policy', reason: 'r', car_hash: 'sha256:' + 'a'.repeat(64), policy_version: 1, agent_id: 'a', action_type: 'x' };
    expect(() => log.appendDecision('gate_decision', 'info', { ...ok, reason: 'lone \ud800' })).toThrow(GuardError);
    expect(() => log.appendDecision('gate_decision', 'info', { ...ok, policy_version: NaN })).toThrow(/not representable/);
    // Too large is cut with a digest, not refused (the generic path does it).
    log.appendDecision('gate_decision', 'info', { ...ok, agent_id: 'x'.repeat(70_000) });
    // Not in CAR-hash form, or not a string: written generically, and still sealed.
    log.appendDecision('gate_decision', 'info', { ...ok, car_hash: 'SHA256:' + 'A'.repeat(64) });
    log.appendDecision('gate_decision', 'info', { ...ok, agent_id: 42 as unknown as string });
    log.appendDecision('gate_decision', 'info', ok);
    log.close();
    const records = fs.readFileSync(path.join(dir, 'a.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(records[0].agent_id).toMatchObject({ truncated: true, length: 70_000, sha256: crypto.createHash('sha256').update('x'.repeat(70_000)).digest('hex') });
    expect(records.slice(1).map((r) => [r.seq, r.car_hash.slice(0, 7), r.agent_id])).toEqual([[2, 'SHA256:', 'a'], [3, 'sha256:', 42], [4, 'sha256:', 'a']]);
    expect(AuditLog.verify(path.join(dir, 'a.log'), KEY)).toMatchObject({ ok: true, records: 4 });
  });

  test('a log reopened on a damaged last MAC continues through the generic path, and the chain says so', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'a.log');
    const first = new AuditLog({ file, key: KEY });
    first.append('gate_decision', 'info', { i: 1 });
    first.close();
    // Damage the stored MAC with characters the fast writer would copy blindly.
    const line = fs.readFileSync(file, 'utf8').replace(/"mac":"[0-9a-f]{64}"/, `"mac":"${'é'.repeat(64)}"`);
    fs.writeFileSync(file, line);
    const reopened = new AuditLog({ file, key: KEY });
    const f: DecisionRecordFields = { decision: 'deny', source: 'policy', reason: 'r', car_hash: 'sha256:' + 'b'.repeat(64), policy_version: 2, agent_id: 'a', action_type: 'x' };
    reopened.appendDecision('gate_decision', 'warning', f);
    reopened.close();
    const records = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(records[1]).toMatchObject({ seq: 2, prev: 'é'.repeat(64), decision: 'deny' });
    // The damaged record is the first bad one; the new record was sealed over what the file said.
    expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: false, firstBad: { line: 1 } });
  });

  test('each decision record reads the clock once, whichever path writes it', () => {
    const dir = tmpDir();
    const ticks = [100, 200, 300, 400];
    let i = 0;
    const log = new AuditLog({ file: path.join(dir, 'a.log'), key: KEY, clock: () => ticks[i++] });
    const ok: DecisionRecordFields = { decision: 'allow', source: 'policy', reason: 'r', car_hash: 'sha256:' + 'a'.repeat(64), policy_version: 1, agent_id: 'a', action_type: 'x' };
    log.appendDecision('gate_decision', 'info', ok);
    log.appendDecision('gate_decision', 'info', { ...ok, agent_id: 42 as unknown as string }); // generic path
    log.appendDecision('gate_decision', 'info', { ...ok, policy_version: 1.5 }); // not the addon's
    log.appendDecision('gate_decision', 'info', ok);
    log.close();
    const records = fs.readFileSync(path.join(dir, 'a.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(records.map((r) => r.ts)).toEqual(ticks);
    expect(AuditLog.verify(path.join(dir, 'a.log'), KEY)).toMatchObject({ ok: true, records: 4 });
  });

  test('a closed log refuses decisions like any record', () => {
    const log = new AuditLog({ file: path.join(tmpDir(), 'a.log'), key: KEY });
    log.close();
    const f: DecisionRecordFields = { decision: 'allow', source: 'policy', reason: 'r', car_hash: 'sha256:' + 'c'.repeat(64), policy_version: 1, agent_id: 'a', action_type: 'x' };
    expect(() => log.appendDecision('gate_decision', 'info', f)).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }));
  });
});
