// Quarantine: isolation scopes, statuses, forensics, audit records.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { AuditLog, Quarantine } from '../lib/index';
import { fakeClock } from './helpers';

describe('Quarantine', () => {
  test('full isolation denies every action until recovered', () => {
    const q = new Quarantine();
    expect(q.denies('a', 'file_read')).toBe(false);
    q.quarantine('a', 'policy violation');
    expect(q.get('a')).toMatchObject({ status: 'active', isolation: 'full', forensic: 'metadata' });
    for (const t of ['file_read', 'http_get', 'shell_exec']) expect(q.denies('a', t)).toBe(true);
    expect(q.denies('b', 'file_read')).toBe(false);
    q.recover('a', 'cleared');
    expect(q.denies('a', 'shell_exec')).toBe(false);
    expect(q.list()).toEqual([]);
  });

  test('network and filesystem scopes, and custom patterns', () => {
    const q = new Quarantine();
    q.quarantine('net', 'exfiltration', { isolation: 'network' });
    expect(q.denies('net', 'http_post')).toBe(true);
    expect(q.denies('net', 'dns_lookup')).toBe(true);
    expect(q.denies('net', 'file_read')).toBe(false);
    q.quarantine('fs', 'tampering', { isolation: 'filesystem' });
    expect(q.denies('fs', 'file_write')).toBe(true);
    expect(q.denies('fs', 'http_get')).toBe(false);
    q.quarantine('custom', 'x', { isolation: ['shell_*', 'db_drop'] });
    expect(q.denies('custom', 'shell_exec')).toBe(true);
    expect(q.denies('custom', 'db_drop')).toBe(true);
    expect(q.denies('custom', 'db_dropx')).toBe(false);
    expect(q.denies('custom', 'file_read')).toBe(false);
  });

  test('analyze keeps isolation and reports forensics; terminate is final', () => {
    const c = fakeClock(1000);
    const q = new Quarantine({ clock: c.fn, maxTraces: 2 });
    q.quarantine('a', 'burst of denials', { forensic: 'full' });
    q.observe('a', { ts: 1, action_type: 'file_read', decision: 'deny' });
    q.observe('a', { ts: 2, action_type: 'file_read', decision: 'deny' });
    q.observe('a', { ts: 3, action_type: 'http_get', decision: 'deny' });
    c.now += 500;
    const report = q.analyze('a');
    expect(report).toMatchObject({ status: 'analyzing', quarantinedForMs: 500, decisions: 3, byActionType: { file_read: 2, http_get: 1 } });
    expect(report.traces.map((t) => t.ts)).toEqual([2, 3]); // bounded: oldest dropped
    expect(q.denies('a', 'file_read')).toBe(true);
    q.terminate('a', 'confirmed malicious');
    expect(q.denies('a', 'anything')).toBe(true);
    expect(() => q.recover('a')).toThrow(/terminated/);
    expect(() => q.quarantine('a', 'again')).toThrow(/terminated/);
    expect(q.list().map((r) => r.status)).toEqual(['terminated']);
  });

  test('metadata forensics count without keeping traces; none keeps nothing', () => {
    const q = new Quarantine();
    q.quarantine('m', 'x', { forensic: 'metadata' });
    q.quarantine('n', 'x', { forensic: 'none' });
    for (const a of ['m', 'n']) q.observe(a, { ts: 1, action_type: 'file_read', decision: 'deny' });
    expect(q.get('m')).toMatchObject({ decisions: 1, traces: [] });
    expect(q.get('n')).toMatchObject({ decisions: 0, traces: [] });
  });

  test('returned records are copies', () => {
    const q = new Quarantine();
    q.quarantine('a', 'x', { isolation: ['shell_*'] });
    const r = q.get('a')!;
    r.status = 'recovered';
    (r.isolation as string[]).push('*');
    expect(q.denies('a', 'shell_exec')).toBe(true);
    expect(q.denies('a', 'file_read')).toBe(false);
  });

  test('every change is audited', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gk-q-')), 'audit.log');
    const key = crypto.randomBytes(32);
    const audit = new AuditLog({ file, key });
    const q = new Quarantine({ audit });
    q.quarantine('a', 'v1');
    q.analyze('a');
    q.recover('a');
    q.quarantine('b', 'v2');
    q.terminate('b');
    audit.close();
    const records = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(records.map((r) => [r.type, r.agent_id, r.from, r.to])).toEqual([
      ['quarantine_changed', 'a', 'none', 'active'],
      ['quarantine_changed', 'a', 'active', 'analyzing'],
      ['quarantine_changed', 'a', 'analyzing', 'recovered'],
      ['quarantine_changed', 'b', 'none', 'active'],
      ['quarantine_changed', 'b', 'active', 'terminated'],
    ]);
    expect(AuditLog.verify(file, key).ok).toBe(true);
  });

  test('rejects bad input', () => {
    const q = new Quarantine();
    expect(() => q.quarantine('', 'x')).toThrow(TypeError);
    expect(() => q.quarantine('a', '')).toThrow(TypeError);
    expect(() => q.quarantine('a', 'x', { isolation: 'everything' as never })).toThrow(TypeError);
    expect(() => q.quarantine('a', 'x', { isolation: [] })).toThrow(TypeError);
    expect(() => q.quarantine('a', 'x', { isolation: ['ok', 5 as never] })).toThrow(TypeError);
    expect(() => q.quarantine('a', 'x', { isolation: ['bad\\'] })).toThrow(RangeError);
    expect(() => q.quarantine('a', 'x', { forensic: 'all' as never })).toThrow(TypeError);
    expect(() => q.analyze('nobody')).toThrow(/not quarantined/);
    expect(() => q.recover('nobody')).toThrow(/not quarantined/);
    expect(() => new Quarantine({ maxTraces: -1 })).toThrow(RangeError);
    expect(q.list()).toEqual([]);
  });
});
