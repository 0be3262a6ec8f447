// ComplianceReporter: every built-in check passes on a compliant setup and
// fails when the one thing it inspects is broken; the standards' controls.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  AuditLog,
  BUILTIN_CHECKS,
  ComplianceReporter,
  KernelSandbox,
  Keyring,
  MemoryEncryption,
  ResourceLimits,
  SandboxPolicy,
  STANDARDS,
  STANDARD_IDS,
  VelocityGuard,
  type ComplianceContext,
  type ReportCheck,
  type StandardId,
} from '../lib/index';
import { examplePolicy, makeFixture, makeGate, type Fixture } from './compliance-fixture';

let fx: Fixture;
beforeAll(async () => {
  fx = await makeFixture();
});
afterAll(async () => {
  await fx.close();
});

function line(context: ComplianceContext, id: string, standard = 'soc2'): ReportCheck {
  const report = new ComplianceReporter(context).generate(standard);
  const c = report.checks.find((x) => x.id === id);
  if (c === undefined) throw new Error(`${id} is not in the ${standard} report`);
  return c;
}

function expectCompliant(c: ReportCheck): void {
  expect(c.status, JSON.stringify(c)).toBe('compliant');
  expect(c.evidence).toBeTruthy();
  expect(c.finding).toBeUndefined();
}

function expectFailing(c: ReportCheck, finding: RegExp): void {
  expect(c.status, JSON.stringify(c)).toBe('non_compliant');
  expect(c.finding).toMatch(finding);
  expect(c.recommendation).toBeTruthy();
  expect(c.evidence).toBeUndefined();
}

describe('a compliant setup', () => {
  test('every built-in check is compliant for every standard that maps it', () => {
    for (const standard of STANDARD_IDS) {
      const report = new ComplianceReporter(fx.context).generate(standard);
      for (const c of report.checks) expectCompliant(c);
      expect(report.summary).toEqual({ total: report.checks.length, compliant: report.checks.length, non_compliant: 0, not_applicable: 0 });
    }
  });

  test('the fixture is real: the gate recorded a decision that verifies', () => {
    const c = line(fx.context, 'audit-integrity');
    expect(c.evidence).toMatch(/[1-9]\d* record\(s\) verified now/);
  });
});

describe('memory encryption', () => {
  test('off or closed: non_compliant', async () => {
    expectFailing(line({ ...fx.context, memoryEncryption: undefined }, 'memory-encryption'), /No MemoryEncryption/);
    const closed = new MemoryEncryption({ key: crypto.randomBytes(32), rotateEveryMs: 1000 });
    closed.close();
    expectFailing(line({ ...fx.context, memoryEncryption: closed }, 'memory-encryption'), /closed/);
  });

  test('the evidence names the algorithm, read from the object', () => {
    for (const algorithm of ['aes-256-gcm', 'aes-128-gcm', 'chacha20-poly1305', 'xchacha20-poly1305'] as const) {
      const enc = new MemoryEncryption({ key: crypto.randomBytes(32), algorithm, rotateEveryMs: 1000 });
      const c = line({ ...fx.context, memoryEncryption: enc }, 'memory-encryption');
      expectCompliant(c);
      expect(c.evidence).toContain(algorithm);
      enc.close();
    }
  });

  test('approved-algorithm (FedRAMP): AES-GCM passes, ChaCha20 fails', () => {
    expectCompliant(line(fx.context, 'approved-algorithm', 'fedramp'));
    const chacha = new MemoryEncryption({ key: crypto.randomBytes(32), algorithm: 'chacha20-poly1305', rotateEveryMs: 1000 });
    expectFailing(line({ ...fx.context, memoryEncryption: chacha }, 'approved-algorithm', 'fedramp'), /not a FIPS-approved/);
    expect(line({ ...fx.context, memoryEncryption: undefined }, 'approved-algorithm', 'fedramp').status).toBe('not_applicable');
    chacha.close();
  });

  test('key rotation: never by age, or too rarely, is non_compliant', () => {
    const never = new MemoryEncryption({ key: crypto.randomBytes(32) });
    expectFailing(line({ ...fx.context, memoryEncryption: never }, 'key-rotation'), /never by age/);
    const yearly = new MemoryEncryption({ key: crypto.randomBytes(32), rotateEveryMs: 365 * 86_400_000 });
    expectFailing(line({ ...fx.context, memoryEncryption: yearly }, 'key-rotation'), /365 d, longer than the 90 d/);
    expectCompliant(line({ ...fx.context, memoryEncryption: yearly, requirements: { maxKeyAgeMs: 400 * 86_400_000 } }, 'key-rotation'));
    expect(line({ ...fx.context, memoryEncryption: undefined }, 'key-rotation').status).toBe('not_applicable');
  });

  test('KDF strength: Argon2id defaults pass; weak Argon2id and PBKDF2 below 600k fail; a raw key is not applicable', async () => {
    const strong = await MemoryEncryption.fromPassword('correct horse battery staple', { rotateEveryMs: 1000 });
    const c = line({ ...fx.context, memoryEncryption: strong }, 'kdf-strength');
    expectCompliant(c);
    expect(c.evidence).toMatch(/Argon2id m=65536 KiB, t=3, p=4/);
    const weakArgon = await MemoryEncryption.fromPassword('pw', { kdf: { name: 'argon2id', memoryCost: 19456, timeCost: 2, parallelism: 1 }, rotateEveryMs: 1000 });
    expectFailing(line({ ...fx.context, memoryEncryption: weakArgon }, 'kdf-strength'), /m=19456 KiB, t=2, p=1 is below/);
    const weakPbkdf2 = await MemoryEncryption.fromPassword('pw', { kdf: { name: 'pbkdf2-sha256', iterations: 100_000 }, rotateEveryMs: 1000 });
    expectFailing(line({ ...fx.context, memoryEncryption: weakPbkdf2 }, 'kdf-strength'), /100000 iterations, fewer than 600000/);
    const raw = new MemoryEncryption({ key: crypto.randomBytes(32), rotateEveryMs: 1000 });
    expect(line({ ...fx.context, memoryEncryption: raw }, 'kdf-strength')).toMatchObject({ status: 'not_applicable', why: expect.stringMatching(/supplied directly/) });
    for (const e of [strong, weakArgon, weakPbkdf2, raw]) e.close();
  });
});

describe('audit log', () => {
  test('no log, a gate that does not write to it, or a missing file: non_compliant', () => {
    const noAudit = { ...fx.context, gate: makeGate(undefined), audit: undefined };
    expectFailing(line(noAudit, 'audit-log'), /No audit log/);
    expectFailing(line({ ...fx.context, gate: makeGate(undefined) }, 'audit-log'), /gate has no audit log/);
    expectFailing(line({ ...fx.context, gate: undefined, audit: { file: path.join(fx.dir, 'missing.log'), key: fx.auditKey, retentionDays: 3000 } }, 'audit-log'), /does not exist/);
  });

  test('integrity is verified now: a tampered record fails, with the line', () => {
    const dir = fs.mkdtempSync(path.join(fx.dir, 'tamper-'));
    const file = path.join(dir, 'audit.log');
    const key = crypto.randomBytes(32);
    const log = new AuditLog({ file, key });
    const gate = makeGate(log);
    for (let i = 0; i < 3; i++) gate.check({ car: { action_type: 'file_read', agent_id: `agent-prod-${i}`, resource: '/srv/data/a', args: { mode: 'r' } } });
    const ctx: ComplianceContext = { ...fx.context, gate, audit: { log, file, key, retentionDays: 3000 } };
    expectCompliant(line(ctx, 'audit-integrity'));
    log.flush();
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    lines[1] = lines[1].replace('agent-prod-1', 'agent-prod-X');
    fs.writeFileSync(file, lines.join('\n'));
    expectFailing(line(ctx, 'audit-integrity'), /fails verification at line 2 \(seq 2\): MAC mismatch/);
    // A wrong key is not a verifying chain either.
    expectFailing(line({ ...ctx, audit: { file, key: crypto.randomBytes(32), retentionDays: 3000 } }, 'audit-integrity'), /fails verification/);
    expectFailing(line({ ...fx.context, audit: undefined }, 'audit-integrity'), /audit key .* was not given/);
    log.close();
  });

  test('retention: unset, too short, or forever under GDPR fail; the minimum follows the standard', () => {
    const withRetention = (retentionDays: number | undefined): ComplianceContext => ({ ...fx.context, audit: { ...fx.context.audit!, retentionDays } });
    expectFailing(line(withRetention(undefined), 'audit-retention'), /No audit retention period/);
    expectFailing(line(withRetention(30), 'audit-retention', 'pci-dss'), /30 days \(declared: guardkernel deletes nothing\), less than the 365/);
    expectCompliant(line(withRetention(400), 'audit-retention', 'pci-dss'));
    expectFailing(line(withRetention(400), 'audit-retention', 'hipaa'), /less than the 2190/);
    expectFailing(line(withRetention(400), 'audit-retention', 'fedramp'), /less than the 913/);
    expectCompliant(line(withRetention(30), 'audit-retention', 'gdpr'));
    expectFailing(line(withRetention(Infinity), 'audit-retention', 'gdpr'), /kept forever/);
    expectCompliant(line(withRetention(Infinity), 'audit-retention', 'hipaa'));
    expectCompliant(line({ ...withRetention(30), requirements: { minRetentionDays: 30 } }, 'audit-retention', 'hipaa'));
    expectFailing(line(withRetention(-1), 'audit-retention'), /not a positive number/);
  });

  test('retention: a live log that deletes old rotations reports its enforced period, over the declared one', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-compliance-retention-'));
    const key = crypto.randomBytes(32);
    const log = new AuditLog({ file: path.join(dir, 'audit.log'), key, retentionDays: 400 });
    try {
      const ctx: ComplianceContext = { audit: { log, file: log.file, key, retentionDays: 5000 } };
      const ok = line(ctx, 'audit-retention', 'pci-dss');
      expectCompliant(ok);
      expect(ok.evidence).toMatch(/400 days \(enforced/);
      expectFailing(line(ctx, 'audit-retention', 'hipaa'), /400 days \(enforced.*less than the 2190/);
    } finally {
      log.close();
    }
  });
});

describe('server', () => {
  test('socket mode is read from the file: 0666 fails, 0600 passes', () => {
    expectCompliant(line(fx.context, 'socket-permissions'));
    fs.chmodSync(fx.socketPath, 0o666);
    try {
      // The configuration still says 600: the file wins.
      expectFailing(line(fx.context, 'socket-permissions'), /socket mode is 666 \(from the socket file\)/);
    } finally {
      fs.chmodSync(fx.socketPath, 0o600);
    }
    const absent = { ...fx.context, server: { ...fx.context.server!, socketPath: path.join(fx.dir, 'absent.sock'), socketMode: 0o660 } };
    expectFailing(line(absent, 'socket-permissions'), /660 \(from the configuration/);
    const notSocket = { ...fx.context, server: { ...fx.context.server!, socketPath: fx.secretFile } };
    expectFailing(line(notSocket, 'socket-permissions'), /is not a socket/);
    expect(line({ ...fx.context, server: undefined }, 'socket-permissions').status).toBe('not_applicable');
  });

  test('secret source: a default or unknown source fails, and so does a readable secret file', () => {
    expectCompliant(line(fx.context, 'secret-source'));
    const bad = { ...fx.context, server: { ...fx.context.server!, secretSource: 'default' as 'supplied' } };
    expectFailing(line(bad, 'secret-source'), /"default", neither generated nor supplied/);
    const readable = path.join(fx.dir, 'readable.key');
    fs.writeFileSync(readable, crypto.randomBytes(32));
    fs.chmodSync(readable, 0o644);
    expectFailing(line({ ...fx.context, server: { ...fx.context.server!, secretFile: readable } }, 'secret-source'), /mode 644: others can read/);
    const short = path.join(fx.dir, 'short.key');
    fs.writeFileSync(short, crypto.randomBytes(8), { mode: 0o600 });
    expectFailing(line({ ...fx.context, server: { ...fx.context.server!, secretFile: short } }, 'secret-source'), /8 bytes, fewer than 32/);
  });

  test('authentication off fails', () => {
    expectCompliant(line(fx.context, 'authentication'));
    expectFailing(line({ ...fx.context, server: { ...fx.context.server!, authEnabled: false } }, 'authentication'), /does not require authentication/);
  });
});

describe('gate and sandbox', () => {
  test('rate limits: none, or a guard that limits nothing, fail', () => {
    expect(line(fx.context, 'rate-limits').evidence).toMatch(/100 per agent per 1 min/);
    expectFailing(line({ ...fx.context, gate: makeGate(fx.audit, { velocity: null }) }, 'rate-limits'), /no rate limits/);
    expectFailing(line({ ...fx.context, gate: makeGate(fx.audit, { velocity: new VelocityGuard({ windowMs: 1000 }) }) }, 'rate-limits'), /limits nothing/);
  });

  test('policy: audit mode or default allow fail', () => {
    expect(line(fx.context, 'policy-enforce').evidence).toMatch(/mode enforce, default deny/);
    expectFailing(line({ ...fx.context, gate: makeGate(fx.audit, { policy: { ...examplePolicy(), mode: 'audit' } }) }, 'policy-enforce'), /mode audit/);
    expectFailing(line({ ...fx.context, gate: makeGate(fx.audit, { policy: { ...examplePolicy(), default: 'allow' } }) }, 'policy-enforce'), /default: allow/);
  });

  test('replay window: permits outliving the nonce window fail; the window is read from the gate', () => {
    expectCompliant(line(fx.context, 'replay-window'));
    const longPermits = makeGate(fx.audit, { keyring: new Keyring({ keys: { k1: crypto.randomBytes(32) }, active: 'k1' }) });
    expectFailing(line({ ...fx.context, gate: longPermits }, 'replay-window'), /remembered 5 min, but a permit can be valid for 7 d/);
    const tolerant = makeGate(fx.audit, { keyring: new Keyring({ keys: { k1: crypto.randomBytes(32) }, active: 'k1', maxTtlMs: 300_000, clockToleranceMs: 1000 }) });
    expectFailing(line({ ...fx.context, gate: tolerant }, 'replay-window'), /tolerance 1 s/);
    // The window is read from the gate itself; the context has no field to claim another.
    expect(() => new ComplianceReporter({ ...fx.context, gateNonceTtlMs: 30 * 86_400_000 } as never)).toThrow(/gateNonceTtlMs/);
    expect(line({ ...fx.context, gate: makeGate(fx.audit, { keyring: null }) }, 'replay-window').status).toBe('not_applicable');
  });

  test('sandbox: permissive, read-write, open topics or unlimited resources fail', () => {
    const sandboxed = (sandbox: KernelSandbox): ComplianceContext => ({ ...fx.context, sandbox: { sandbox, untrustedKernels: ['untrusted_a'] } });
    expect(line(fx.context, 'sandbox-untrusted').evidence).toMatch(/K2K only to trusted_\*; topics telemetry\.\*; read-only memory/);
    expectFailing(line(sandboxed(new KernelSandbox(ResourceLimits.conservative(), SandboxPolicy.permissive())), 'sandbox-untrusted'), /allowAllK2k.*every topic is allowed.*memory access is read-write/);
    expectFailing(line(sandboxed(new KernelSandbox(ResourceLimits.conservative(), SandboxPolicy.restrictive().k2kAllowList(['*']))), 'sandbox-untrusted'), /allow list contains '\*'/);
    expectFailing(line(sandboxed(new KernelSandbox(ResourceLimits.conservative(), SandboxPolicy.restrictive().memoryAccess('read-write'))), 'sandbox-untrusted'), /memory access is read-write/);
    expectFailing(line(sandboxed(new KernelSandbox(new ResourceLimits({ maxMemoryBytes: Infinity }), SandboxPolicy.restrictive())), 'sandbox-untrusted'), /memory is unlimited/);
    expectFailing(line(sandboxed(new KernelSandbox(ResourceLimits.conservative(), new SandboxPolicy().k2kDenyList(['evil']))), 'sandbox-untrusted'), /not on the deny list/);
    expect(line({ ...fx.context, sandbox: undefined }, 'sandbox-untrusted').status).toBe('not_applicable');
    expect(line({ ...fx.context, sandbox: { sandbox: fx.context.sandbox!.sandbox, untrustedKernels: [] } }, 'sandbox-untrusted').status).toBe('not_applicable');
  });

  test('without a gate the gate checks are not applicable', () => {
    for (const id of ['rate-limits', 'policy-enforce', 'replay-window']) expect(line({ ...fx.context, gate: undefined }, id).status).toBe('not_applicable');
  });
});

describe('standards', () => {
  const expected: Record<string, Record<string, string[]>> = {
    soc2: { 'memory-encryption': ['CC6.1', 'CC6.7'], 'audit-integrity': ['CC7.2'], 'socket-permissions': ['CC6.1', 'CC6.7'] },
    gdpr: { 'memory-encryption': ['Art. 32(1)(a)'], 'audit-retention': ['Art. 5(1)(e)'] },
    hipaa: { 'memory-encryption': ['164.312(a)(2)(iv)'], 'audit-log': ['164.312(b)', '164.308(a)(1)(ii)(D)'], authentication: ['164.312(d)'] },
    'pci-dss': { 'memory-encryption': ['3.5.1'], 'key-rotation': ['3.7.4'], authentication: ['8.3.1'], 'audit-log': ['10.2.1'], 'audit-retention': ['10.5.1'] },
    iso27001: { 'memory-encryption': ['A.8.24'], 'audit-log': ['A.8.15', 'A.8.16'], 'policy-enforce': ['A.5.15', 'A.8.3'] },
    fedramp: { 'memory-encryption': ['SC-13', 'SC-28', 'SC-28(1)'], 'audit-integrity': ['AU-9'], 'audit-retention': ['AU-11'], authentication: ['IA-2'], 'sandbox-untrusted': ['AC-6', 'SC-39'], 'replay-window': ['IA-2(8)'] },
    'nist-csf': { 'memory-encryption': ['PR.DS-01'], authentication: ['PR.AA-03'], 'audit-log': ['PR.PS-04', 'DE.CM-09'] },
  };

  test.each(STANDARD_IDS)('%s: the report carries its checks and their control ids', (standard) => {
    const report = new ComplianceReporter(fx.context).generate(standard);
    expect(report.standard).toBe(standard);
    expect(report.standardName).toBe(STANDARDS[standard].name);
    expect(report.checks.map((c) => c.id).sort()).toEqual(Object.keys(STANDARDS[standard].controls).sort());
    for (const c of report.checks) expect(c.controls).toEqual(STANDARDS[standard].controls[c.id]);
    for (const [id, controls] of Object.entries(expected[standard])) expect(report.checks.find((c) => c.id === id)?.controls).toEqual(controls);
    expect(report.fingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  test('every built-in check belongs to at least one standard, and the required ones to all seven', () => {
    for (const c of BUILTIN_CHECKS) expect((c.standard as string[]).length).toBeGreaterThan(0);
    for (const id of ['memory-encryption', 'key-rotation', 'kdf-strength', 'audit-log', 'audit-integrity', 'audit-retention', 'socket-permissions', 'secret-source', 'authentication', 'policy-enforce', 'sandbox-untrusted', 'replay-window']) {
      expect(BUILTIN_CHECKS.find((c) => c.id === id)?.standard).toEqual([...STANDARD_IDS]);
    }
  });

  test("the standards table of docs/compliance.md is the code's table", () => {
    const readme = fs.readFileSync(path.join(__dirname, '..', 'docs', 'compliance.md'), 'utf8');
    const rows = readme.split('\n').filter((l) => /^\| `[a-z-]+` \|/.test(l) && l.split('|').length === 10);
    const columns: StandardId[] = ['soc2', 'gdpr', 'hipaa', 'pci-dss', 'iso27001', 'fedramp', 'nist-csf'];
    expect(rows.map((r) => r.split('|')[1].trim().replace(/`/g, '')).sort()).toEqual(BUILTIN_CHECKS.map((c) => c.id).sort());
    for (const row of rows) {
      const cells = row.split('|').slice(1, -1).map((c) => c.trim());
      const id = cells[0].replace(/`/g, '');
      columns.forEach((std, i) => {
        const listed = cells[i + 1] === '' ? undefined : cells[i + 1].split(', ');
        expect(listed, `${id} / ${std}`).toEqual(STANDARDS[std].controls[id]);
      });
    }
  });

  test('the fingerprint follows the configuration, not the time', () => {
    const r = new ComplianceReporter(fx.context);
    const a = r.generate('soc2');
    expect(r.generate('soc2').fingerprint).toBe(a.fingerprint);
    expect(r.generate('hipaa').fingerprint).toBe(a.fingerprint);
    const changed = new ComplianceReporter({ ...fx.context, audit: { ...fx.context.audit!, retentionDays: 10 } }).generate('soc2');
    expect(changed.fingerprint).not.toBe(a.fingerprint);
    expect(JSON.stringify(a.configuration)).not.toContain(fx.auditKey.toString('hex'));
  });
});
