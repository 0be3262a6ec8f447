/**
 * ComplianceReporter: runs the checks of a standard over the live objects of
 * a guardkernel setup and builds a report; exports it; monitors it.
 *
 * Every check inspects state at the time of the run (a setting read from the
 * object, a file's mode read from the file, the audit chain verified now);
 * a check that throws or answers something malformed is reported as
 * non_compliant, never skipped.
 */
import { describe } from '../errors';
import { VERSION } from '../version';
import { shown } from './check-helpers';
import { BUILTIN_CHECKS } from './checks';
import { fingerprint, inspectConfiguration } from './configuration';
import { exportReport } from './export';
import { ComplianceMonitor, type MonitorOptions } from './monitor';
import { STANDARDS } from './standards';
import {
  STANDARD_IDS,
  STATUSES,
  type ComplianceCheckResult,
  type ComplianceCheck,
  type ComplianceContext,
  type ComplianceReport,
  type ExportFormat,
  type ReportCheck,
  type StandardId,
} from './types';

const ID = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const CONTEXT_KEYS = new Set(['gate', 'server', 'memoryEncryption', 'deviceMemory', 'sandbox', 'audit', 'requirements']);

function nonEmptyString(v: unknown, what: string): string {
  if (typeof v !== 'string' || v.trim().length === 0) throw new TypeError(`Expected a non-empty string for ${what} but received ${describe(v)}`);
  return v;
}

function controlList(v: unknown, what: string): readonly string[] {
  if (!Array.isArray(v) || v.some((c) => typeof c !== 'string' || c.length === 0)) throw new TypeError(`Expected an array of control ids for ${what} but received ${describe(v)}`);
  return Object.freeze([...(v as string[])]);
}

function checkContext(context: unknown): ComplianceContext {
  if (typeof context !== 'object' || context === null || Array.isArray(context)) throw new TypeError(`Expected a compliance context object but received ${describe(context)}`);
  for (const k of Object.keys(context)) if (!CONTEXT_KEYS.has(k)) throw new TypeError(`Unknown compliance context field "${k}" (expected ${[...CONTEXT_KEYS].join(', ')})`);
  const c = context as ComplianceContext;
  for (const [k, v] of Object.entries(c.requirements ?? {})) {
    if (k !== 'maxKeyAgeMs' && k !== 'minRetentionDays') throw new TypeError(`Unknown requirement "${k}" (expected maxKeyAgeMs, minRetentionDays)`);
    if (!Number.isSafeInteger(v) || (v as number) < 0) throw new RangeError(`Expected a non-negative integer for requirements.${k} but received ${describe(v)}`);
  }
  const has = (o: unknown, ...methods: string[]) => typeof o === 'object' && o !== null && methods.every((m) => typeof (o as Record<string, unknown>)[m] === 'function');
  if (c.gate !== undefined && (!has(c.gate, 'check') || !has(c.gate.policy, 'evaluate'))) throw new TypeError(`Expected a Gate for gate but received ${describe(c.gate)}`);
  if (c.memoryEncryption !== undefined && !has(c.memoryEncryption, 'settings', 'encrypt', 'decrypt')) throw new TypeError(`Expected a MemoryEncryption for memoryEncryption but received ${describe(c.memoryEncryption)}`);
  if (c.deviceMemory !== undefined && typeof c.deviceMemory !== 'boolean') throw new TypeError(`Expected a boolean for deviceMemory but received ${describe(c.deviceMemory)}`);
  if (c.server !== undefined) nonEmptyString(c.server?.socketPath, 'server.socketPath');
  if (c.audit !== undefined) {
    nonEmptyString(c.audit?.file, 'audit.file');
    if (typeof c.audit.key !== 'string' && !(c.audit.key instanceof Uint8Array)) throw new TypeError(`Expected a string or Uint8Array for audit.key but received ${describe(c.audit.key)}`);
    if (c.audit.log !== undefined && !has(c.audit.log, 'append', 'flush')) throw new TypeError(`Expected an AuditLog for audit.log but received ${describe(c.audit.log)}`);
  }
  if (c.sandbox !== undefined && (!Array.isArray(c.sandbox?.untrustedKernels) || typeof c.sandbox?.sandbox?.policy?.toJSON !== 'function')) {
    throw new TypeError(`Expected sandbox: { sandbox: KernelSandbox, untrustedKernels: string[] } but received ${describe(c.sandbox)}`);
  }
  return c;
}

/** Validates a custom check and returns a frozen copy. */
function checkDefinition(check: unknown): ComplianceCheck {
  if (typeof check !== 'object' || check === null) throw new TypeError(`Expected a compliance check object but received ${describe(check)}`);
  const c = check as Partial<ComplianceCheck>;
  if (typeof c.id !== 'string' || !ID.test(c.id)) throw new TypeError(`Expected an id of 1 to 64 characters [a-z0-9._-] for the check but received ${describe(c.id)}`);
  const name = nonEmptyString(c.name, `the name of check "${c.id}"`);
  if (typeof c.description !== 'string') throw new TypeError(`Expected a string for the description of check "${c.id}" but received ${describe(c.description)}`);
  const standards = typeof c.standard === 'string' ? [c.standard] : c.standard;
  if (!Array.isArray(standards) || standards.length === 0 || standards.some((s) => typeof s !== 'string' || !ID.test(s))) {
    throw new TypeError(`Expected a standard id or a non-empty array of them for check "${c.id}" but received ${describe(c.standard)}`);
  }
  let controls: ComplianceCheck['controls'];
  if (Array.isArray(c.controls)) controls = controlList(c.controls, `the controls of check "${c.id}"`);
  else if (typeof c.controls === 'object' && c.controls !== null) {
    const byStandard: Record<string, readonly string[]> = {};
    for (const [std, list] of Object.entries(c.controls)) {
      if (!standards.includes(std)) throw new TypeError(`Check "${c.id}" lists controls for "${std}", which is not one of its standards`);
      byStandard[std] = controlList(list, `the ${std} controls of check "${c.id}"`);
    }
    controls = Object.freeze(byStandard);
  } else if (c.controls !== undefined) throw new TypeError(`Expected an array or a per-standard object for the controls of check "${c.id}" but received ${describe(c.controls)}`);
  if (typeof c.check !== 'function') throw new TypeError(`Expected a function for the check of "${c.id}" but received ${describe(c.check)}`);
  return Object.freeze({ id: c.id, name, description: c.description, standard: Object.freeze([...standards]), controls, check: c.check });
}

function standardsOf(check: ComplianceCheck): readonly string[] {
  return typeof check.standard === 'string' ? [check.standard] : check.standard;
}

function controlsFor(check: ComplianceCheck, standard: string): string[] {
  const c = check.controls;
  if (c === undefined) return [];
  if (Array.isArray(c)) return [...c];
  return [...((c as Record<string, readonly string[]>)[standard] ?? [])];
}

/** Runs one check; anything but a well-formed result becomes a non_compliant line. */
function runCheck(check: ComplianceCheck, context: ComplianceContext, standard: string, now: number): ComplianceCheckResult {
  let r: unknown;
  try {
    r = check.check(context, { standard, now });
  } catch (err) {
    return { status: 'non_compliant', finding: `The check failed: ${err instanceof Error ? err.message : String(err)}`, recommendation: 'Fix the configuration the check inspects, or the check itself, and report again.' };
  }
  const bad = (why: string): ComplianceCheckResult => ({ status: 'non_compliant', finding: `The check returned an invalid result: ${why}.`, recommendation: 'Return { status: "compliant", evidence }, { status: "non_compliant", finding, recommendation } or { status: "not_applicable", why } synchronously.' });
  if (r instanceof Promise || (typeof r === 'object' && r !== null && typeof (r as { then?: unknown }).then === 'function')) {
    void Promise.resolve(r).catch(() => {});
    return bad('a promise (checks must be synchronous)');
  }
  if (typeof r !== 'object' || r === null) return bad(describe(r));
  const o = r as Record<string, unknown>;
  const text = (k: string) => typeof o[k] === 'string' && (o[k] as string).trim().length > 0;
  switch (o.status) {
    case 'compliant':
      return text('evidence') ? { status: 'compliant', evidence: o.evidence as string } : bad('compliant without evidence');
    case 'non_compliant':
      return text('finding') && text('recommendation') ? { status: 'non_compliant', finding: o.finding as string, recommendation: o.recommendation as string } : bad('non_compliant without finding and recommendation');
    case 'not_applicable':
      return text('why') ? { status: 'not_applicable', why: o.why as string } : bad('not_applicable without why');
    default:
      return bad(`status ${shown(o.status)} (expected one of ${STATUSES.join(', ')})`);
  }
}

export class ComplianceReporter {
  readonly context: ComplianceContext;
  readonly #custom = new Map<string, ComplianceCheck>();

  constructor(context: ComplianceContext) {
    this.context = checkContext(context);
  }

  /** Adds a custom check; its id must not be taken by a built-in or another custom check. */
  addCheck(check: ComplianceCheck): this {
    const c = checkDefinition(check);
    if (BUILTIN_CHECKS.some((b) => b.id === c.id) || this.#custom.has(c.id)) throw new RangeError(`A check with id "${c.id}" already exists`);
    this.#custom.set(c.id, c);
    return this;
  }

  /** The built-in standards and every custom standard a custom check names. */
  standards(): string[] {
    const out: string[] = [...STANDARD_IDS];
    for (const c of this.#custom.values()) for (const s of standardsOf(c)) if (!out.includes(s)) out.push(s);
    return out;
  }

  /** The checks a report on `standard` runs, built-ins first. */
  checksFor(standard: string): ComplianceCheck[] {
    if (typeof standard !== 'string' || !this.standards().includes(standard)) {
      throw new TypeError(`Expected one of ${this.standards().join(', ')} for standard but received ${shown(standard)}`);
    }
    return [...BUILTIN_CHECKS, ...this.#custom.values()].filter((c) => standardsOf(c).includes(standard));
  }

  /** Runs every check of `standard` now. */
  generate(standard: StandardId | string): ComplianceReport {
    const checks = this.checksFor(standard);
    const now = Date.now();
    const summary = { total: 0, compliant: 0, non_compliant: 0, not_applicable: 0 };
    const lines: ReportCheck[] = checks.map((c) => {
      const r = runCheck(c, this.context, standard, now);
      summary.total++;
      summary[r.status]++;
      return { id: c.id, name: c.name, description: c.description, controls: controlsFor(c, standard), ...r };
    });
    const configuration = inspectConfiguration(this.context);
    return {
      schema: 'guardkernel-compliance-report/1',
      standard,
      standardName: STANDARDS[standard as StandardId]?.name ?? standard,
      generatedAt: new Date(now).toISOString(),
      guardkernelVersion: VERSION,
      fingerprint: fingerprint(configuration),
      summary,
      checks: lines,
      configuration,
    };
  }

  /** Writes `report` to `file` as json, html, markdown or pdf; resolves to the absolute path. */
  export(report: ComplianceReport, format: ExportFormat, file: string): Promise<string> {
    return exportReport(report, format, file);
  }

  /** Re-runs `standard` every intervalMs; emits 'change' and writes an audit record when a status changes. */
  monitor(standard: StandardId | string, options: MonitorOptions): ComplianceMonitor {
    this.checksFor(standard); // unknown standards fail now, not on the timer
    return new ComplianceMonitor(this, standard, options);
  }
}
