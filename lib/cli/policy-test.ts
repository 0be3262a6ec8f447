/**
 * `guardkernel policy test`: a policy's decisions on a list of example CARs
 * (the CASES file), against what each case expects. Each case is evaluated
 * by a fresh PolicyEngine on the policy, so no case changes another's answer
 * (enforce mode lowers an agent's trust after a violation; here that stays
 * within the case). These are the policy's decisions: the gate's own state
 * (quarantine, rate limits, replay, permits, approval requests) is not part
 * of them.
 */
import { canonicalize } from '../canonical/car';
import { PolicyEngine } from '../policy/engine';
import { didYouMean, locatePath, parseWithPositions } from '../policy/source';
import { safeText } from './approvals';
import { codeFrame, readTextFile } from './policy-check';

export const CASE_FIELDS = ['name', 'car', 'expect', 'reason'] as const;
const DECISIONS = ['allow', 'deny', 'pending'] as const;
/** Bounds on a CASES file. */
export const MAX_CASES = 10_000;
const MAX_NAME = 256;
const MAX_REASON_PATTERN = 1024;

type Decision = (typeof DECISIONS)[number];

interface LinearRegex {
  test(s: string): boolean;
}

/** A reason expectation: a substring, or `/pattern/` (`/pattern/i`) run on RE2 (linear time, never a JS RegExp). */
interface ReasonMatcher {
  text: string;
  test(reason: string): boolean;
}

export interface TestCase {
  index: number;
  name: string;
  line?: number;
  car: Record<string, unknown>;
  expect: Decision;
  reason?: ReasonMatcher;
}

export interface CaseFailure {
  index: number;
  name: string;
  line?: number;
  expected: Decision;
  expected_reason?: string;
  got: Decision;
  reason: string;
  matched_rule: string | null;
}

export interface TestReport {
  cases: number;
  passed: number;
  failed: number;
  failures: CaseFailure[];
  /** Rules (action types under `actions`) that no case's decision came from. */
  unreached_rules: string[];
  /** Whether some case fell through to the policy's `default`. */
  default_reached: boolean;
}

/** A problem in the CASES file (exit 2), placed in it where possible. */
export class CasesError extends Error {
  constructor(
    message: string,
    readonly where?: { line: number; column: number; frame: string },
  ) {
    super(message);
  }
}

function reasonMatcher(text: string): ReasonMatcher {
  if (text.length > MAX_REASON_PATTERN) throw new Error(`longer than ${MAX_REASON_PATTERN} characters`);
  const m = /^\/(.+)\/(i?)$/s.exec(text);
  if (m === null) return { text, test: (reason) => reason.includes(text) };
  let RE2: new (pattern: string, flags: string) => LinearRegex;
  try {
    RE2 = require('re2') as typeof RE2;
  } catch (err) {
    throw new Error(`a /regex/ needs the re2 package, which did not load: ${(err as Error).message}`);
  }
  let re: LinearRegex;
  try {
    re = new RE2(m[1], `u${m[2]}`);
  } catch (err) {
    throw new Error(`not a regular expression RE2 can run: ${(err as Error).message}`);
  }
  return { text, test: (reason) => re.test(reason) };
}

/** Parses and checks a CASES file's text (YAML or JSON: a list of cases). */
export function parseCases(text: string): TestCase[] {
  let value: unknown;
  try {
    value = PolicyEngine.parse(text); // the same YAML limits as a policy
  } catch (err) {
    const pos = ((err as Error).cause as { pos?: unknown } | undefined)?.pos;
    const message = (err as Error).message.replace(/^not valid YAML or JSON/, 'not valid YAML');
    if (Array.isArray(pos) && typeof pos[0] === 'number') throw new CasesError(message, where(text, pos[0], pos[1] as number));
    throw new CasesError(message);
  }
  if (!Array.isArray(value)) throw new CasesError('expected a list of cases (- car: {...}, expect: allow|deny|pending)');
  if (value.length === 0) throw new CasesError('the list of cases is empty');
  if (value.length > MAX_CASES) throw new CasesError(`more than ${MAX_CASES} cases`);
  let src: ReturnType<typeof parseWithPositions> | undefined;
  const placeAt = (path: string, key = false) => {
    try {
      src ??= parseWithPositions(text);
    } catch {
      return undefined;
    }
    const found = locatePath(src.doc, path);
    const range = key ? (found.keyRange ?? found.valueRange) : (found.valueRange ?? found.keyRange);
    return range === undefined ? undefined : where(text, range[0], range[1]);
  };
  // `path` is the case's index (0-based, as the file's list) and field; cases are named from 1 for people.
  const fail = (path: string, message: string, key = false): never => {
    const [index, ...field] = path.split('.');
    throw new CasesError(`case ${Number(index) + 1}${field.length === 0 ? '' : ` (${safeText(field.join('.').slice(0, 64))})`}: ${message}`, placeAt(path, key));
  };
  return value.map((c: unknown, index): TestCase => {
    if (typeof c !== 'object' || c === null || Array.isArray(c)) return fail(`${index}`, 'expected a mapping with car and expect');
    const o = c as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      if (!(CASE_FIELDS as readonly string[]).includes(k)) {
        const hint = didYouMean(k, CASE_FIELDS);
        fail(`${index}.${k}`, `is not a known field (${CASE_FIELDS.join(', ')})${hint === undefined ? '' : `; did you mean \`${hint}\`?`}`, true);
      }
    }
    if (o.name !== undefined && (typeof o.name !== 'string' || o.name.length > MAX_NAME)) fail(`${index}.name`, `must be a string of at most ${MAX_NAME} characters`);
    if (typeof o.car !== 'object' || o.car === null || Array.isArray(o.car)) fail(`${index}.car`, o.car === undefined ? 'is required (the CAR to decide)' : 'must be a mapping (a CAR)');
    if (!(DECISIONS as readonly unknown[]).includes(o.expect)) {
      const hint = typeof o.expect === 'string' ? didYouMean(o.expect, DECISIONS) : undefined;
      fail(`${index}.expect`, `${o.expect === undefined ? 'is required' : 'must be'} one of allow, deny, pending${hint === undefined ? '' : `; did you mean \`${hint}\`?`}`);
    }
    let reason: ReasonMatcher | undefined;
    if (o.reason !== undefined) {
      if (typeof o.reason !== 'string' || o.reason === '') fail(`${index}.reason`, 'must be a non-empty string (a substring, or /regex/)');
      try {
        reason = reasonMatcher(o.reason as string);
      } catch (err) {
        fail(`${index}.reason`, (err as Error).message);
      }
    }
    const line = placeAt(`${index}`)?.line;
    return { index, name: (o.name as string | undefined) ?? `#${index + 1}`, line, car: o.car as Record<string, unknown>, expect: o.expect as Decision, reason };
  });
}

function where(text: string, start: number, end: number): { line: number; column: number; frame: string } {
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < start; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, column: start - lineStart + 1, frame: codeFrame(text, start, end) };
}

/** Runs every case on a fresh engine of the (valid) policy document. */
export function runCases(policy: Record<string, unknown>, cases: TestCase[]): TestReport {
  const failures: CaseFailure[] = [];
  const reached = new Set<string>();
  let defaultReached = false;
  for (const c of cases) {
    let got: Decision;
    let reason: string;
    let rule: string | null = null;
    try {
      canonicalize(c.car); // what the gate checks first: an invalid CAR is a deny
      const d = new PolicyEngine(policy).evaluate(c.car);
      got = d.decision;
      reason = d.reason;
      rule = d.matched_rule;
      if (rule === null) defaultReached = true;
      else reached.add(rule);
    } catch (err) {
      got = 'deny';
      reason = `invalid CAR: ${(err as Error).message}`;
    }
    if (got !== c.expect || (c.reason !== undefined && !c.reason.test(reason))) {
      failures.push({ index: c.index, name: c.name, line: c.line, expected: c.expect, expected_reason: c.reason?.text, got, reason, matched_rule: rule });
    }
  }
  const rules = Object.keys((policy.actions ?? {}) as object);
  return {
    cases: cases.length,
    passed: cases.length - failures.length,
    failed: failures.length,
    failures,
    unreached_rules: rules.filter((r) => !reached.has(r)),
    default_reached: defaultReached,
  };
}

export function readCases(file: string): TestCase[] {
  return parseCases(readTextFile(file));
}

/** The report as text. */
export function formatReport(report: TestReport, casesFile: string): string {
  let s = '';
  for (const f of report.failures) {
    const at = f.line === undefined ? '' : ` (${safeText(casesFile)}:${f.line})`;
    s += `FAIL ${safeText(f.name)}${at}\n`;
    s += `  expected ${f.expected}${f.expected_reason === undefined ? '' : ` with reason ${safeText(f.expected_reason)}`}\n`;
    s += `  got      ${f.got}: ${safeText(f.reason)}\n`;
  }
  s += `${report.cases} case(s): ${report.passed} passed, ${report.failed} failed\n`;
  if (report.unreached_rules.length > 0) s += `rules no case reached: ${report.unreached_rules.map(safeText).join(', ')}\n`;
  else s += 'every rule was reached by some case\n';
  return s;
}
