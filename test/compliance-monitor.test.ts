// Continuous monitoring: a status change emits 'change' and appends a
// compliance_status_changed record that verifies with the rest of the chain.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { AuditLog, ComplianceReporter, MemoryEncryption, SECURITY_EVENT_TYPES, type ComplianceChange, type ComplianceContext } from '../lib/index';
import { makeFixture, type Fixture } from './compliance-fixture';

let fx: Fixture;
beforeAll(async () => {
  fx = await makeFixture();
});
afterAll(async () => {
  await fx.close();
});

test('compliance_status_changed is a listed security event type', () => {
  expect(SECURITY_EVENT_TYPES).toContain('compliance_status_changed');
});

test('a status change on the timer emits change and writes a verifying audit record; an unchanged run writes nothing', async () => {
  const enc = new MemoryEncryption({ key: crypto.randomBytes(32), rotateEveryMs: 86_400_000 });
  const context: ComplianceContext = { ...fx.context, memoryEncryption: enc };
  const monitor = new ComplianceReporter(context).monitor('hipaa', { intervalMs: 20 });
  try {
    expect(monitor.running).toBe(true);
    expect(monitor.lastReport.checks.find((c) => c.id === 'memory-encryption')?.status).toBe('compliant');
    const seqBefore = fx.audit.seq;
    expect(monitor.runNow()).toEqual([]);
    expect(fx.audit.seq).toBe(seqBefore);
    const change = new Promise<ComplianceChange>((resolve) => monitor.once('change', resolve));
    enc.close(); // encryption goes off under the monitor
    const c = await change;
    expect(c).toMatchObject({ standard: 'hipaa', checkId: 'memory-encryption', from: 'compliant', to: 'non_compliant' });
    expect(c.auditSeq).toBeGreaterThan(seqBefore);
    fx.audit.flush();
    expect(AuditLog.verify(fx.auditFile, fx.auditKey)).toMatchObject({ ok: true });
    const records = fs.readFileSync(fx.auditFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const rec = records.find((r) => r.seq === c.auditSeq);
    expect(rec).toMatchObject({ type: 'compliance_status_changed', severity: 'warning', standard: 'hipaa', check_id: 'memory-encryption', from: 'compliant', to: 'non_compliant', fingerprint: c.report.fingerprint });
    expect(rec.detail).toMatch(/closed/);
    // Steady state again: no more records for the same status.
    const seq = fx.audit.seq;
    await new Promise((r) => setTimeout(r, 80));
    expect(fx.audit.seq).toBe(seq);
  } finally {
    monitor.stop();
  }
  expect(monitor.running).toBe(false);
});

test('a change back to compliant is recorded at info; an explicit audit log receives the records', () => {
  const dir = fs.mkdtempSync(fx.dir + '/mon-');
  const key = crypto.randomBytes(32);
  const log = new AuditLog({ file: dir + '/changes.log', key });
  const server = { ...fx.context.server!, authEnabled: false };
  const context: ComplianceContext = { ...fx.context, server };
  const monitor = new ComplianceReporter(context).monitor('soc2', { intervalMs: 60_000, audit: log });
  try {
    server.authEnabled = true;
    const [c] = monitor.runNow();
    expect(c).toMatchObject({ checkId: 'authentication', from: 'non_compliant', to: 'compliant' });
    log.flush();
    const [rec] = fs.readFileSync(dir + '/changes.log', 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(rec).toMatchObject({ type: 'compliance_status_changed', severity: 'info', check_id: 'authentication', to: 'compliant' });
    expect(AuditLog.verify(dir + '/changes.log', key).ok).toBe(true);
  } finally {
    monitor.stop();
    log.close();
  }
});

test('bad monitor options are refused; stop is idempotent', () => {
  const r = new ComplianceReporter(fx.context);
  expect(() => r.monitor('soc2', { intervalMs: 1 })).toThrow(/intervalMs/);
  expect(() => r.monitor('soc2', null as never)).toThrow(/monitor options/);
  expect(() => r.monitor('soc2', { intervalMs: 1000, audit: {} as never })).toThrow(/AuditLog/);
  const m = r.monitor('soc2', { intervalMs: 1000 });
  m.stop();
  m.stop();
});
