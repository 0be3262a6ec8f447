// Compliance reports: custom checks, bad input, and the four exports (the
// JSON against its schema, HTML self-contained and escaped, a real PDF).
import { runSync } from './child';
import { skipWithout, toolMissing } from './prerequisites';
import fs from 'node:fs';
import path from 'node:path';
import Ajv from 'ajv';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { COMPLIANCE_REPORT_SCHEMA, ComplianceReporter, validateReport, type ComplianceCheck, type ComplianceReport } from '../lib/index';
import { makeFixture, type Fixture } from './compliance-fixture';
import { repoRoot } from './helpers';

let fx: Fixture;
beforeAll(async () => {
  fx = await makeFixture();
});
afterAll(async () => {
  await fx.close();
});

const HOSTILE = `<script>alert("x")</script> & <img src="https://evil.example/x.png"> | **bold** [link](http://evil.example)`;

function hostileReport(): ComplianceReport {
  const r = new ComplianceReporter({ ...fx.context, server: { ...fx.context.server!, authEnabled: false } });
  r.addCheck({ id: 'hostile', name: HOSTILE, description: HOSTILE, standard: 'soc2', controls: ['CC9.9 <b>'], check: () => ({ status: 'not_applicable', why: HOSTILE }) });
  return r.generate('soc2');
}

describe('custom checks', () => {
  test('run for their standard, built-in or custom, with their controls, over the same context', () => {
    const r = new ComplianceReporter(fx.context);
    const seen: string[] = [];
    const check: ComplianceCheck = {
      id: 'org.backups',
      name: 'Backups are encrypted',
      description: 'Our own rule',
      standard: ['soc2', 'acme-internal'],
      controls: { soc2: ['A1.2'], 'acme-internal': ['BK-1'] },
      check: (ctx, env) => {
        seen.push(env.standard);
        return ctx.memoryEncryption !== undefined ? { status: 'compliant', evidence: 'reuses the memory encryption' } : { status: 'non_compliant', finding: 'none', recommendation: 'add one' };
      },
    };
    r.addCheck(check);
    expect(r.standards()).toContain('acme-internal');
    const soc2 = r.generate('soc2');
    expect(soc2.checks.at(-1)).toMatchObject({ id: 'org.backups', status: 'compliant', controls: ['A1.2'] });
    const custom = r.generate('acme-internal');
    expect(custom.checks).toHaveLength(1);
    expect(custom).toMatchObject({ standard: 'acme-internal', standardName: 'acme-internal', summary: { total: 1, compliant: 1 } });
    expect(custom.checks[0].controls).toEqual(['BK-1']);
    expect(seen).toEqual(['soc2', 'acme-internal']);
    expect(new ComplianceReporter({ ...fx.context, memoryEncryption: undefined }).addCheck(check).generate('acme-internal').checks[0].status).toBe('non_compliant');
  });

  test('a check that throws, returns garbage or a promise is reported non_compliant, never skipped', () => {
    const r = new ComplianceReporter(fx.context);
    r.addCheck({ id: 'throws', name: 'Throws', description: '', standard: 'x', check: () => { throw new Error('boom'); } });
    r.addCheck({ id: 'garbage', name: 'Garbage', description: '', standard: 'x', check: () => ({ status: 'compliant' }) as never });
    r.addCheck({ id: 'async', name: 'Async', description: '', standard: 'x', check: (() => Promise.resolve({ status: 'compliant', evidence: 'later' })) as never });
    r.addCheck({ id: 'status', name: 'Status', description: '', standard: 'x', check: () => ({ status: 'ok', evidence: 'x' }) as never });
    const checks = r.generate('x').checks;
    expect(checks.map((c) => c.status)).toEqual(['non_compliant', 'non_compliant', 'non_compliant', 'non_compliant']);
    expect(checks[0].finding).toMatch(/failed: boom/);
    expect(checks[1].finding).toMatch(/compliant without evidence/);
    expect(checks[2].finding).toMatch(/promise/);
    expect(checks[3].finding).toMatch(/status "ok"/);
  });

  test('bad check objects and duplicate ids are refused with clear errors', () => {
    const r = new ComplianceReporter(fx.context);
    const ok = { id: 'a', name: 'A', description: '', standard: 'soc2', check: () => ({ status: 'not_applicable', why: 'x' }) as const };
    expect(() => r.addCheck(null as never)).toThrow(/Expected a compliance check object but received null/);
    expect(() => r.addCheck({ ...ok, id: 'Bad Id' })).toThrow(/Expected an id of 1 to 64 characters/);
    expect(() => r.addCheck({ ...ok, name: '' })).toThrow(/non-empty string for the name/);
    expect(() => r.addCheck({ ...ok, description: 3 as never })).toThrow(/string for the description/);
    expect(() => r.addCheck({ ...ok, standard: [] })).toThrow(/standard id or a non-empty array/);
    expect(() => r.addCheck({ ...ok, standard: 'SOC 2' })).toThrow(/standard id/);
    expect(() => r.addCheck({ ...ok, controls: [''] })).toThrow(/array of control ids/);
    expect(() => r.addCheck({ ...ok, controls: { hipaa: ['x'] } })).toThrow(/"hipaa", which is not one of its standards/);
    expect(() => r.addCheck({ ...ok, check: 'yes' as never })).toThrow(/Expected a function for the check/);
    expect(() => r.addCheck({ ...ok, id: 'memory-encryption' })).toThrow(/"memory-encryption" already exists/);
    r.addCheck(ok);
    expect(() => r.addCheck(ok)).toThrow(/"a" already exists/);
  });

  test('unknown standards, formats, contexts and reports are refused', async () => {
    const r = new ComplianceReporter(fx.context);
    expect(() => r.generate('sox' as never)).toThrow(/Expected one of soc2, gdpr, hipaa, pci-dss, iso27001, fedramp, nist-csf for standard but received "sox"/);
    expect(() => r.monitor('sox', { intervalMs: 1000 })).toThrow(/for standard/);
    const report = r.generate('soc2');
    await expect(r.export(report, 'docx' as never, path.join(fx.dir, 'x.docx'))).rejects.toThrow(/Expected one of json, html, markdown, pdf for format but received "docx"/);
    await expect(r.export(report, 'json', '')).rejects.toThrow(/Expected a file path/);
    await expect(r.export({ ...report, fingerprint: 'abc' }, 'json', path.join(fx.dir, 'bad.json'))).rejects.toThrow(/\/fingerprint must match pattern/);
    await expect(r.export({ ...report, summary: { ...report.summary, compliant: 99 } }, 'json', path.join(fx.dir, 'bad.json'))).rejects.toThrow(/summary counts its checks/);
    expect(fs.existsSync(path.join(fx.dir, 'bad.json'))).toBe(false);
    expect(() => new ComplianceReporter(null as never)).toThrow(/Expected a compliance context object/);
    expect(() => new ComplianceReporter({ gaet: 1 } as never)).toThrow(/Unknown compliance context field "gaet"/);
    expect(() => new ComplianceReporter({ requirements: { maxKeyAgeMs: -1 } })).toThrow(/requirements.maxKeyAgeMs/);
    expect(() => new ComplianceReporter({ sandbox: { untrustedKernels: ['a'] } as never })).toThrow(/KernelSandbox/);
    expect(() => new ComplianceReporter({ gate: {} as never })).toThrow(/Expected a Gate for gate/);
    expect(() => new ComplianceReporter({ memoryEncryption: { algorithm: 'aes-256-gcm' } as never })).toThrow(/Expected a MemoryEncryption/);
    expect(() => new ComplianceReporter({ audit: { file: 'a.log', key: 42 as never } })).toThrow(/audit.key/);
    expect(() => new ComplianceReporter({ audit: { file: '', key: 'k' } })).toThrow(/audit.file/);
    expect(() => new ComplianceReporter({ server: { socketPath: '' } as never })).toThrow(/server.socketPath/);
  });
});

describe('exports', () => {
  test('JSON: validates against the shipped schema (checked here with a fresh Ajv), and round-trips', async () => {
    const schemaFile = path.join(repoRoot, 'lib', 'compliance', 'report.schema.json');
    const schema = JSON.parse(fs.readFileSync(schemaFile, 'utf8'));
    expect(schema).toEqual(COMPLIANCE_REPORT_SCHEMA);
    const validate = new Ajv({ strict: false }).compile(schema);
    const r = new ComplianceReporter({ ...fx.context, server: { ...fx.context.server!, authEnabled: false }, sandbox: undefined });
    for (const standard of ['soc2', 'hipaa', 'fedramp'] as const) {
      const file = await r.export(r.generate(standard), 'json', path.join(fx.dir, `${standard}.json`));
      const parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
      expect(validate(parsed), JSON.stringify(validate.errors)).toBe(true);
      expect(() => validateReport(parsed)).not.toThrow();
      expect(parsed.summary.non_compliant).toBe(1);
      expect(parsed.summary.not_applicable).toBe(1);
      expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    }
    // The schema is not a rubber stamp: a check with evidence and a finding fails it.
    const report = r.generate('soc2');
    const broken = structuredClone(report);
    broken.checks[0].finding = 'also';
    expect(validate(broken)).toBe(false);
    expect(validate({ ...report, checks: [{ ...report.checks[0], status: 'unknown' }] })).toBe(false);
  });

  test('Markdown: standard, date, fingerprint, summary and every check; hostile text escaped', async () => {
    const report = hostileReport();
    const file = await new ComplianceReporter(fx.context).export(report, 'markdown', path.join(fx.dir, 'r.md'));
    const md = fs.readFileSync(file, 'utf8');
    expect(md).toContain(report.standardName);
    expect(md).toContain(report.generatedAt);
    expect(md).toContain(report.fingerprint);
    expect(md).toMatch(/\| NON-COMPLIANT \| 1 \|/);
    expect(md).toContain('Finding: The server does not require authentication');
    expect(md).not.toContain('<script>');
    expect(md).toContain('&lt;script&gt;');
    expect(md).toContain('\\*\\*bold\\*\\*');
    expect(md).toContain('\\[link\\](http://evil.example)');
    expect(md).not.toMatch(/[^\\]\|\s*\*\*bold/);
  });

  test('HTML: self-contained (no external URL at all) and every text escaped', async () => {
    const report = hostileReport();
    const file = await new ComplianceReporter(fx.context).export(report, 'html', path.join(fx.dir, 'r.html'));
    const html = fs.readFileSync(file, 'utf8');
    expect(html).toMatch(/^<!DOCTYPE html>/);
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/<img/i);
    expect(html).not.toMatch(/\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?\/\//i);
    expect(html).not.toMatch(/@import/i);
    expect(html).not.toMatch(/url\s*\(/i);
    expect(html).not.toMatch(/<link\b/i);
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;');
    expect(html).toContain(report.fingerprint);
    expect(html).toContain(report.generatedAt);
    for (const c of report.checks.filter((x) => x.id !== 'hostile')) expect(html).toContain(c.name);
    expect(html).toContain('<span class="status non_compliant">NON-COMPLIANT</span>');
  });

  const noPdftotext = skipWithout('pdftotext (poppler-utils)', toolMissing('pdftotext', ['-v']));
  const pdftotext = 'pdftotext';

  test.skipIf(noPdftotext)('PDF: a real PDF whose text (pdftotext) holds the header, the summary, every check name and status', async () => {
    const r = new ComplianceReporter({ ...fx.context, server: { ...fx.context.server!, authEnabled: false } });
    const report = r.generate('pci-dss');
    const file = await r.export(report, 'pdf', path.join(fx.dir, 'r.pdf'));
    const bytes = fs.readFileSync(file);
    expect(bytes.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    expect(bytes.subarray(-6).toString('latin1')).toMatch(/%%EOF\s*$/);
    const out = runSync(pdftotext!, ['-raw', file, '-'], { encoding: 'utf8' });
    expect(out.status, out.stderr).toBe(0);
    const text = out.stdout.replace(/\s+/g, ' ');
    expect(text).toContain('Compliance report: PCI DSS v4.0.1');
    expect(text).toContain(report.generatedAt);
    expect(text).toContain(report.fingerprint);
    expect(text).toContain(`COMPLIANT: ${report.summary.compliant}`);
    expect(text).toContain('NON-COMPLIANT: 1');
    for (const c of report.checks) {
      const status = { compliant: 'COMPLIANT', non_compliant: 'NON-COMPLIANT', not_applicable: 'NOT APPLICABLE' }[c.status];
      expect(text).toContain(`${c.name} ${status}`);
    }
    expect(text).toContain('Finding: The server does not require authentication');
    expect(text).toContain('Recommendation: Start the server with --auth-token-file');
  });

  async function hostilePdf(): Promise<string> {
    const report = hostileReport();
    report.checks[report.checks.length - 1].why = 'emoji \u{1F600} and \u4e2d\u6587 and \u2014 dash';
    return new ComplianceReporter(fx.context).export(report, 'pdf', path.join(fx.dir, 'h.pdf'));
  }

  test('PDF of hostile or non-Latin text: still a PDF', async () => {
    const bytes = fs.readFileSync(await hostilePdf());
    expect(bytes.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    expect(bytes.length).toBeGreaterThan(2000);
  });

  test.skipIf(noPdftotext)('PDF of hostile or non-Latin text: its text (pdftotext) holds the input, unsupported characters as "?"', async () => {
    const text = runSync(pdftotext, ['-raw', await hostilePdf(), '-'], { encoding: 'utf8' }).stdout;
    expect(text).toContain('<script>alert("x")</script>');
    expect(text).toContain('emoji ? and ?? and - dash');
  });
});
