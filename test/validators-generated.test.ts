// The JSON Schema validators are generated ahead of time (scripts/
// gen-validators.js) so the package needs no code generation at run time.
// They must match their schemas, and the package must load and work where
// code generation from strings is disabled.
import { runSync } from './child';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { POLICY_SCHEMA } from '../lib/policy/policy-schema';
import { repoRoot } from './helpers';

const require_ = createRequire(__filename);
const gen = require_('../scripts/gen-validators.js') as {
  VALIDATORS: Array<{ out: string; options: Record<string, unknown> }>;
  generate(schema: unknown, options: Record<string, unknown>): string;
};

describe('generated schema validators', () => {
  test('each committed validator is exactly what the generator writes for its schema (run npm run gen:validators after a schema change)', () => {
    const schemas: Record<string, unknown> = {
      'lib/policy/policy-schema.validate.ts': POLICY_SCHEMA,
      'lib/compliance/report-schema.validate.ts': JSON.parse(fs.readFileSync(path.join(repoRoot, 'lib/compliance/report.schema.json'), 'utf8')),
    };
    expect(gen.VALIDATORS.map((v) => v.out).sort()).toEqual(Object.keys(schemas).sort());
    for (const v of gen.VALIDATORS) {
      const committed = fs.readFileSync(path.join(repoRoot, v.out), 'utf8');
      expect({ file: v.out, same: committed === gen.generate(schemas[v.out], v.options) }).toEqual({ file: v.out, same: true });
    }
    // A schema change shows: the generated text depends on the schema.
    const changed = { ...POLICY_SCHEMA, required: ['version'] };
    expect(gen.generate(changed, gen.VALIDATORS[0].options)).not.toBe(gen.generate(POLICY_SCHEMA, gen.VALIDATORS[0].options));
  });

  test('the package loads and decides under --disallow-code-generation-from-strings', () => {
    const script = `
      const gk = require(${JSON.stringify(path.join(repoRoot, 'dist', 'index.js'))});
      const fs = require('node:fs');
      const out = {};
      try { eval('1'); out.evalAllowed = true; } catch { out.evalAllowed = false; }
      const gate = new gk.Gate({ policy: fs.readFileSync(${JSON.stringify(path.join(repoRoot, 'examples', 'policy.yaml'))}, 'utf8') });
      const car = { action_type: 'file_read', agent_id: 'agent-1', resource: '/etc/passwd' };
      out.decisions = [];
      for (let i = 0; i < 20; i++) out.decisions.push(gate.check({ car: { ...car, n: i } }).decision);
      out.hashes = new Set(Array.from({ length: 20 }, () => gk.carHash(car))).size;
      out.sameHash = gk.carHash(car) === gk.carHash({ resource: '/etc/passwd', agent_id: 'agent-1', action_type: 'file_read' });
      try { new gk.PolicyEngine({ version: 1, mode: 'enforce', actions: { x: { min_trust: 3 } } }); } catch (e) { out.policyError = [e.code, e.path]; }
      try { gk.validateReport({}); } catch (e) { out.reportError = e.constructor.name; }
      process.stdout.write(JSON.stringify(out));
    `;
    const r = runSync(process.execPath, ['--disallow-code-generation-from-strings', '-e', script], { encoding: 'utf8', env: { ...process.env } });
    expect(r.stderr).not.toMatch(/EvalError|Code generation from strings disallowed/);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toEqual({
      evalAllowed: false,
      decisions: Array(20).fill('deny'),
      hashes: 1,
      sameHash: true,
      policyError: ['ERR_POLICY_INVALID', 'actions.x.min_trust'],
      reportError: 'TypeError',
    });
  });
});
