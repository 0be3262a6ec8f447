// `guardkernel report` end to end: against a real `guardkernel serve` child
// over its socket, and against a configuration file; flags and exit codes.
import { runSync } from './child';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import YAML from 'yaml';
import { AuditLog, ComplianceReporter, GuardClient, backends, loadComplianceConfig, validateReport, type ComplianceReport } from '../lib/index';
import { repoRoot } from './helpers';
import { skipWithout, toolMissing } from './prerequisites';
import { cli, startServe } from './serve-process';

const env = { ...process.env, XDG_RUNTIME_DIR: '', GUARD_HMAC_SECRET: '' };
const hasPdftotext = !skipWithout('pdftotext (poppler-utils)', toolMissing('pdftotext', ['-v']));

function report(args: string[]) {
  return runSync(process.execPath, [cli, 'report', ...args], { encoding: 'utf8', env, timeout: 30_000 });
}


const byId = (r: ComplianceReport) => Object.fromEntries(r.checks.map((c) => [c.id, c]));

describe('guardkernel report: usage', () => {
  test('--help documents every flag; bad flags exit 2 with a clear message', () => {
    const help = report(['--help']);
    expect(help.status).toBe(0);
    for (const flag of ['--standard', '--format', '--out', '--socket', '--auth-token-file', '--config']) expect(help.stdout).toContain(flag);
    expect(runSync(process.execPath, [cli, 'help'], { encoding: 'utf8' }).stdout).toContain('report --standard');
    const cases: Array<[string[], RegExp]> = [
      [[], /--standard is required/],
      [['--standard'], /--standard needs a value/],
      [['--standard', 'sox'], /--standard must be one of soc2, gdpr, hipaa, pci-dss, iso27001, fedramp, nist-csf, not "sox"/],
      [['--standard', 'soc2', '--format', 'docx'], /--format must be one of json, html, markdown, pdf, not "docx"/],
      [['--standard', 'soc2', '--format', 'pdf'], /--format pdf needs --out FILE/],
      [['--standard', 'soc2', '--config', 'a.yaml', '--socket', 's'], /cannot be combined/],
      [['--standard', 'soc2', '--nope'], /unknown option "--nope"/],
    ];
    for (const [args, message] of cases) {
      const r = report(args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^guardkernel report: /);
      expect(r.stderr).toMatch(message);
    }
  });

  test('no server at the socket: exit 2, naming the problem', () => {
    const socket = path.join(os.tmpdir(), `gk-none-${process.pid}.sock`);
    const r = report(['--standard', 'soc2', '--socket', socket]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`guardkernel report: no server at ${socket}: start one with "guardkernel serve --socket ${socket}"`);
    expect(r.stderr).toContain('or pass --socket PATH');
  });
});

describe('guardkernel report against a running server', () => {
  test('reports on the live server over its socket (JSON and PDF), authenticated', async () => {
    const state = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-report-'));
    const tokenFile = path.join(state, 'token');
    fs.writeFileSync(tokenFile, crypto.randomBytes(24).toString('hex'), { mode: 0o600 });
    const s = startServe(['--state-dir', state, '--auth-token-file', tokenFile, '--audit-retention-days', '400']);
    await s.ready;
    const socket = path.join(state, 'core.sock');
    try {
      // Let the gate record something, so the chain has records to verify.
      const c = await GuardClient.connect(socket);
      await c.auth(fs.readFileSync(tokenFile, 'utf8'));
      await c.gateCheck({ car: { action_type: 'file_read', agent_id: 'agent-prod-1', resource: '/srv/data/x.csv', args: { mode: 'r' } } });
      await expect(c.call('compliance_report', { standard: 'sox' })).rejects.toMatchObject({ rpcCode: -32602, data: { field: 'standard' } });
      const viaRpc = await c.call<ComplianceReport>('compliance_report', { standard: 'iso27001' });
      expect(() => validateReport(viaRpc)).not.toThrow();
      c.close();

      const unauth = report(['--standard', 'soc2', '--socket', socket]);
      expect(unauth.status).toBe(2);
      expect(unauth.stderr).toMatch(/guardkernel report: .*auth/i);

      const json = report(['--standard', 'soc2', '--socket', socket, '--auth-token-file', tokenFile]);
      expect(json.status, json.stderr).toBe(1); // serve without --max-per-agent has no rate limits: a finding
      const r = JSON.parse(json.stdout) as ComplianceReport;
      validateReport(r);
      const checks = byId(r);
      expect(checks.authentication.status).toBe('compliant');
      expect(checks['socket-permissions'].evidence).toContain(`${socket} has mode 600 (from the socket file)`);
      expect(checks['secret-source']).toMatchObject({ status: 'compliant', evidence: expect.stringContaining('generated') });
      expect(checks['audit-integrity'].evidence).toMatch(/[1-9]\d* record\(s\) verified now/);
      expect(checks['audit-retention'].evidence).toMatch(/kept 400 days/);
      expect(checks['policy-enforce'].status).toBe('compliant');
      expect(checks['memory-encryption'].status).toBe('not_applicable'); // serve holds no device memory
      expect(checks['rate-limits'].status).toBe('non_compliant');
      expect(checks['replay-window']).toMatchObject({ status: 'compliant', evidence: expect.stringMatching(/remembered 5 min; permits live at most 5 min/) });
      expect(checks['sandbox-untrusted'].status).toBe('not_applicable');

      const pdf = path.join(state, 'report.pdf');
      const p = report(['--standard', 'soc2', '--format', 'pdf', '--out', pdf, '--socket', socket, '--auth-token-file', tokenFile]);
      expect(p.status, p.stderr).toBe(1);
      expect(p.stderr).toMatch(/soc2: \d+ compliant, 1 non-compliant, \d+ not applicable; wrote .*report\.pdf/);
      expect(fs.readFileSync(pdf).subarray(0, 5).toString('latin1')).toBe('%PDF-');
      if (hasPdftotext) {
        const text = runSync('pdftotext', ['-raw', pdf, '-'], { encoding: 'utf8' }).stdout.replace(/\s+/g, ' ');
        expect(text).toContain('Clients must authenticate COMPLIANT');
        expect(text).toContain('Rate limits are configured NON-COMPLIANT');
      }
    } finally {
      s.child.kill('SIGTERM');
      expect(await s.exited).toBe(0);
    }
    // Reporting changed nothing in the server's audit chain.
    expect(AuditLog.verify(path.join(state, 'audit.log'), fs.readFileSync(path.join(state, 'audit.key'))).ok).toBe(true);
  });


test('a server without authentication and with a group-writable socket is reported so', async () => {
    const state = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-report-'));
    const s = startServe(['--state-dir', state, '--socket-mode', '660']);
    await s.ready;
    try {
      const r = report(['--standard', 'nist-csf', '--socket', path.join(state, 'core.sock')]);
      if (backends().core.kind !== 'native') {
        // Without the addon the server cannot tell who connected, and a socket
        // its group may open could be anyone's: nobody gets the operator role
        // a report needs (lib/ipc/access.ts).
        expect(r.status).toBe(2);
        expect(r.stderr).toMatch(/Forbidden: compliance_report needs the operator role/);
        return;
      }
      expect(r.status, r.stderr).toBe(1);
      const checks = byId(JSON.parse(r.stdout) as ComplianceReport);
      expect(checks.authentication.status).toBe('non_compliant');
      expect(checks['socket-permissions'].finding).toMatch(/socket mode is 660 \(from the socket file\)/);
      expect(checks['audit-retention'].finding).toMatch(/No audit retention period/);
    } finally {
      s.child.kill('SIGTERM');
      expect(await s.exited).toBe(0);
    }
  });
});

describe('guardkernel report against a configuration file', () => {
  function setup() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-report-config-'));
    const auditKey = crypto.randomBytes(32);
    fs.writeFileSync(path.join(dir, 'audit.key'), auditKey, { mode: 0o600 });
    const log = new AuditLog({ file: path.join(dir, 'audit.log'), key: auditKey });
    log.append('gate_decision', 'info', { decision: 'allow' });
    log.close();
    fs.writeFileSync(path.join(dir, 'hmac.key'), crypto.randomBytes(32), { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'token'), crypto.randomBytes(24).toString('hex'), { mode: 0o600 });
    const config = {
      policy: path.join(repoRoot, 'examples', 'policy.yaml'),
      gate: { nonceTtlMs: 300000, velocity: { maxPerAgent: 100, windowMs: 60000 } },
      permits: { maxTtlMs: 60000 },
      server: { socket: 'core.sock', socketMode: '600', authTokenFile: 'token', secretSource: 'generated', secretFile: 'hmac.key' },
      audit: { file: 'audit.log', keyFile: 'audit.key', retentionDays: 2200 },
      memoryEncryption: { algorithm: 'aes-256-gcm', rotateEveryMs: 86400000, kdf: { name: 'argon2id' } },
      sandbox: { untrustedKernels: ['untrusted_a'], policy: { preset: 'restrictive', k2kAllow: ['trusted_*'], topics: ['telemetry.*'] }, limits: { preset: 'conservative' } },
    };
    const write = (c: unknown, name = 'guardkernel.yaml') => {
      const file = path.join(dir, name);
      fs.writeFileSync(file, name.endsWith('.json') ? JSON.stringify(c) : YAML.stringify(c));
      return file;
    };
    return { dir, config, write };
  }

  test('a compliant setup (YAML) passes every HIPAA check; exit 0; Markdown and HTML files', () => {
    const { dir, config, write } = setup();
    const file = write(config);
    const r = report(['--standard', 'hipaa', '--config', file]);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const parsed = JSON.parse(r.stdout) as ComplianceReport;
    expect(parsed.summary).toMatchObject({ non_compliant: 0, not_applicable: 0 });
    expect(byId(parsed)['kdf-strength'].evidence).toMatch(/Argon2id m=65536 KiB, t=3, p=4/);
    for (const format of ['markdown', 'html'] as const) {
      const out = path.join(dir, `r.${format}`);
      const w = report(['--standard', 'fedramp', '--config', file, '--format', format, '--out', out]);
      expect(w.status, w.stderr).toBe(0);
      expect(fs.readFileSync(out, 'utf8')).toContain(parsed.fingerprint);
    }
  });

  test('a weak setup (JSON) is reported non-compliant check by check; exit 1', () => {
    const { config, write } = setup();
    const weak = {
      ...config,
      permits: {},
      gate: { nonceTtlMs: 300000 },
      server: { ...config.server, socketMode: '666', authTokenFile: undefined, secretSource: 'default' },
      audit: { ...config.audit, retentionDays: 30 },
      memoryEncryption: { algorithm: 'chacha20-poly1305', kdf: { name: 'pbkdf2-sha256', iterations: 100000 } },
      sandbox: { ...config.sandbox, policy: { preset: 'permissive' }, limits: { maxMemoryBytes: 'unlimited' } },
    };
    const r = report(['--standard', 'fedramp', '--config', write(JSON.parse(JSON.stringify(weak)), 'weak.json')]);
    expect(r.status, r.stderr).toBe(1);
    const checks = byId(JSON.parse(r.stdout) as ComplianceReport);
    for (const id of ['approved-algorithm', 'key-rotation', 'kdf-strength', 'audit-retention', 'socket-permissions', 'secret-source', 'authentication', 'rate-limits', 'replay-window', 'sandbox-untrusted']) {
      expect(checks[id].status, id).toBe('non_compliant');
    }
    expect(checks['socket-permissions'].finding).toMatch(/666 \(from the configuration/);
    expect(checks['audit-integrity'].status).toBe('compliant');
  });

  test('a tampered audit file fails the integrity check from the configuration too', () => {
    const { dir, config, write } = setup();
    const auditFile = path.join(dir, 'audit.log');
    fs.writeFileSync(auditFile, fs.readFileSync(auditFile, 'utf8').replace('"allow"', '"deny"'));
    const r = report(['--standard', 'soc2', '--config', write(config)]);
    expect(r.status).toBe(1);
    expect(byId(JSON.parse(r.stdout) as ComplianceReport)['audit-integrity'].finding).toMatch(/MAC mismatch/);
  });

  test('loadComplianceConfig builds the context in process and writes nothing', async () => {
    const { dir, config, write } = setup();
    const file = write(config);
    const before = fs.readdirSync(dir).map((f) => [f, fs.readFileSync(path.join(dir, f)).toString('hex')]);
    const loaded = await loadComplianceConfig(file);
    try {
      expect(loaded.context.gate?.keyring?.maxTtlMs).toBe(60000);
      expect(loaded.context.memoryEncryption?.settings().kdf).toMatchObject({ name: 'argon2id', memoryCost: 65536 });
      expect(loaded.context.sandbox?.sandbox.kernelId('untrusted_a')).toBe(0);
      expect(new ComplianceReporter(loaded.context).generate('gdpr').summary.non_compliant).toBe(0);
    } finally {
      loaded.close();
    }
    expect(fs.readdirSync(dir).map((f) => [f, fs.readFileSync(path.join(dir, f)).toString('hex')])).toEqual(before);
  });

  test('bad configuration files exit 2 naming the setting', () => {
    const { config, write } = setup();
    const cases: Array<[unknown, RegExp]> = [
      [{ ...config, colour: 'blue' }, /colour: unknown setting/],
      [{ ...config, server: { ...config.server, socketMode: 'rw' } }, /server.socketMode: expected an octal mode/],
      [{ ...config, audit: { file: 'audit.log' } }, /audit: file and keyFile are required/],
      [{ ...config, gate: { velocity: { maxPerAgent: 0, windowMs: 1000 } } }, /maxPerAgent/],
      [{ ...config, memoryEncryption: { kdf: { name: 'argon2id', memoryCost: 4 } } }, /memoryCost/],
      [{ ...config, sandbox: { policy: { preset: 'open' } } }, /sandbox.policy.preset/],
      [[1, 2], /expected a configuration object/],
    ];
    for (const [c, message] of cases) {
      const r = report(['--standard', 'soc2', '--config', write(c)]);
      expect(r.status, JSON.stringify(c)).toBe(2);
      expect(r.stderr).toMatch(message);
    }
    const missing = report(['--standard', 'soc2', '--config', '/nonexistent/gk.yaml']);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/ENOENT/);
  });
});
