/**
 * Compiles a validated policy document once: globs and regexes built, identity
 * patterns split into exact-match sets and wildcard lists, constraint paths
 * split into segments. Evaluation then does no parsing.
 */
import { compileGlob, compileNameGlob, isGlobPattern, type CompiledGlob } from './glob';
import { canonicalizeJson } from '../canonical/car';

export type Mode = 'enforce' | 'audit' | 'permissive';
export type OnViolation = 'block' | 'quarantine' | 'warn' | 'allow';

/**
 * Identity patterns: exact names in a Set, wildcard patterns tested in order.
 * Identities are names, not paths: their wildcards match `/` too, so a deny
 * entry `agent-evil*` also covers `agent-evil/2`.
 */
export class IdentityMatcher {
  readonly exact = new Set<string>();
  readonly globs: CompiledGlob[] = [];

  constructor(patterns: readonly string[]) {
    for (const p of patterns) {
      if (isGlobPattern(p)) this.globs.push(compileNameGlob(p));
      else this.exact.add(p);
    }
  }

  matches(id: string): boolean {
    if (this.exact.has(id)) return true;
    for (const g of this.globs) if (g.test(id)) return true;
    return false;
  }
}

export type FieldCheck = (value: unknown) => string | null; // null = passes, else why not

export interface CompiledConstraint {
  field: string;
  segments: string[];
  checks: FieldCheck[];
}

export interface CompiledRule {
  actionType: string;
  minTrust: number | undefined;
  allow: IdentityMatcher | undefined;
  deny: IdentityMatcher | undefined;
  constraints: CompiledConstraint[];
  requireApproval: boolean;
  /** Approval settings of a require_approval rule (the policy's defaults filled in). */
  approval: RuleApproval;
  onViolation: OnViolation;
  /** The reasons of its outcomes that name only the rule: made once, flat (each decision, audit record and reply reuses the same string). */
  reasons: { satisfied: string; approval: string; observedApproval: string };
}

/** A string as one flat sequence (a template literal may be a rope, which every reader would flatten again). */
const flat = (s: string): string => JSON.parse(JSON.stringify(s)) as string;

/** How a rule's approval requests are decided and shown. */
export interface RuleApproval {
  /** The rule's `approvers` globs as written (null: any operator), and their matcher. */
  approvers: string[] | null;
  approverMatcher: IdentityMatcher | null;
  minApprovals: number;
  ttlMs: number;
  /** CAR fields shown to approvers as digests (the policy's list and the rule's), split into segments. */
  redact: string[][];
}

/** Default lifetime of an approval request: 15 minutes. */
export const DEFAULT_APPROVAL_TTL_MS = 15 * 60_000;
const MAX_APPROVAL_TTL_MS = 7 * 24 * 3_600_000;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A policy duration (integer ms, or `15m`-style text: the schema checked the form) in ms, within [1 s, 7 d]. */
function durationMs(path: string, v: unknown): number {
  let ms: number;
  if (typeof v === 'number') ms = v;
  else {
    const m = /^([1-9][0-9]*)(ms|s|m|h|d)$/.exec(v as string)!;
    ms = Number(m[1]) * UNIT_MS[m[2]];
  }
  if (ms < 1000 || ms > MAX_APPROVAL_TTL_MS) throw new CompileError(path, `must be between 1s and 7d (got ${ms} ms)`);
  return ms;
}

/** A violation penalty: its value when last set, and when (ms). */
export interface Penalty {
  value: number;
  at: number;
}

/**
 * One agent's trust inputs, found with one lookup: the policy's part and
 * the engine's penalty record (kept in step with the engine's penalty map
 * by PolicyEngine, the only writer of either).
 */
export interface AgentTrust {
  base: number;
  penalty: Penalty | undefined;
}

export interface CompiledPolicy {
  version: number;
  mode: Mode;
  defaultDecision: 'allow' | 'deny';
  trustBase: number;
  trustIdentities: Array<{ matcher: IdentityMatcher; adjust: number }>;
  /** Memo per agent id: base + identity adjustments (they depend only on this policy) and the engine's penalty; bounded by the engine. */
  identityTrust: Map<string, AgentTrust>;
  violationPenalty: number;
  recoveryPerHour: number;
  rules: Map<string, CompiledRule>;
  /** MCP tool name -> action type: every server's, and per server_id (which wins). */
  mcpTools: ReadonlyMap<string, string>;
  mcpServerTools: ReadonlyMap<string, ReadonlyMap<string, string>>;
  /** The document as loaded (frozen deep copy), for policy_get. */
  document: Readonly<Record<string, unknown>>;
}

/** Thrown while compiling; the engine turns it into ERR_POLICY_INVALID with this path. */
export class CompileError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}

function canonical(v: unknown): string {
  return canonicalizeJson(v);
}

/** A constraint's own value in canonical form; one the CAR rules refuse (too deep, not JSON) is a policy error at `path`. */
function canonicalAt(path: string, v: unknown): string {
  try {
    return canonicalizeJson(v);
  } catch (err) {
    throw new CompileError(path, `not a value a CAR can hold: ${(err as Error).message}`);
  }
}

/**
 * `regex` constraints run on RE2 (the `re2` package), whose time is linear in
 * the input: no backtracking, so no pattern/value pair can stall the gate.
 * Values longer than this many UTF-16 code units fail the constraint without
 * being matched, as do strings that are not well-formed UTF-16 (RE2 reads
 * UTF-8, where a lone surrogate would turn into U+FFFD).
 */
export const MAX_REGEX_INPUT = 8192;

interface LinearRegex {
  test(s: string | Uint8Array): boolean;
}

/**
 * Where a value is written as UTF-8 for RE2: handing `re2` a string made it
 * encode one into a new Buffer per call (about 2 us, and garbage); a Buffer
 * it reads as it is (about 0.25 us). Large enough for MAX_REGEX_INPUT units
 * (at most 3 bytes each in UTF-8). The match is synchronous, so one per
 * thread suffices.
 */
let regexInput: Buffer | null = null;
type LinearRegexClass = new (pattern: string, flags: string) => LinearRegex;

let re2: LinearRegexClass | Error | undefined;

/** Loaded on the first regex constraint: a policy without one never needs the addon. */
function linearRegexClass(): LinearRegexClass | Error {
  if (re2 === undefined) {
    try {
      re2 = require('re2') as LinearRegexClass;
    } catch (err) {
      re2 = err as Error;
    }
  }
  return re2;
}

// JavaScript's \s (white space and line terminators) written out: RE2's \s is ASCII only.
const JS_SPACE = '\\t\\n\\v\\f\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff';
const JS_DOT = '[^\\n\\r\\u2028\\u2029]';

/**
 * Rewrites what RE2 reads differently from JavaScript, so a pattern means
 * what its author tested: `.` (JavaScript also excludes \r, U+2028 and
 * U+2029; RE2 only \n) and `\s` / `\S` (Unicode white space in JavaScript).
 * Null for `\S` inside a class, which has no RE2 spelling.
 */
function toRe2Syntax(pattern: string): string | null {
  let out = '';
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') {
      const e = pattern[++i];
      if (e === 's') out += inClass ? JS_SPACE : `[${JS_SPACE}]`;
      else if (e !== 'S') out += c + e;
      else if (inClass) return null;
      else out += `[^${JS_SPACE}]`;
    } else if (inClass) {
      if (c === ']') inClass = false;
      out += c;
    } else if (c === '[') {
      inClass = true;
      out += c;
    } else out += c === '.' ? JS_DOT : c;
  }
  return out;
}

/**
 * The syntax and meaning are JavaScript's (`u` mode) less what RE2 cannot
 * run in linear time: backreferences, lookahead, lookbehind. The pattern must
 * parse on its own first, so one such as `a)|(b` cannot break out of the
 * anchoring group.
 */
function compileRegex(at: string, pattern: string): LinearRegex {
  try {
    new RegExp(pattern, 'u'); // syntax check only: never used to match
  } catch (err) {
    throw new CompileError(at, `is not a valid regular expression: ${(err as Error).message}`);
  }
  const source = toRe2Syntax(pattern);
  if (source === null) throw new CompileError(at, 'cannot use \\S inside a character class (write the class without it)');
  const RE2 = linearRegexClass();
  if (RE2 instanceof Error) throw new CompileError(at, `regex constraints need the re2 package, which did not load: ${RE2.message}`);
  try {
    // Whole-value match: a regex constraint is never a substring search.
    return new RE2(`^(?:${source})$`, 'u');
  } catch (err) {
    throw new CompileError(at, `cannot run in linear time (no backreferences, lookaround or repetition counts over 1000): ${(err as Error).message}`);
  }
}

/**
 * Why a string can never satisfy a path constraint (`glob`, `prefix`), or
 * null. Refused whatever the pattern:
 * - a backslash: a separator on Windows that `*` and prefixes do not see;
 * - a dot segment: a `/`-separated segment made only of dots and spaces, with
 *   at least one dot (`.`, `..`, and Windows' `...` and `.. `, which it reads
 *   as those), so `/srv/data/**` and `/srv/data/` never admit
 *   `/srv/data/../../etc/passwd`.
 * Percent-encoded forms count as what they decode to (`%2e` a dot, `%2f` a
 * separator, `%5c` a backslash; one level), for values a later step decodes.
 */
function pathRefusal(v: string): string | null {
  let dots = 0; // in the current segment
  let other = false; // the current segment has a character that is not a dot or a space
  const n = v.length;
  for (let i = 0; i <= n; i++) {
    let c = i < n ? v.charCodeAt(i) : 0x2f; // a final separator closes the last segment
    if (c === 0x25 && i + 2 < n) {
      const h = v.charCodeAt(i + 1);
      const l = v.charCodeAt(i + 2) | 0x20; // hex digits in either case
      const d = h === 0x32 ? (l === 0x65 ? 0x2e : l === 0x66 ? 0x2f : 0) : h === 0x35 && l === 0x63 ? 0x5c : 0;
      if (d !== 0) {
        c = d;
        i += 2;
      }
    }
    if (c === 0x5c) return 'contains a backslash (path constraints take "/" only)';
    if (c === 0x2f) {
      if (dots > 0 && !other) return 'has a "." or ".." segment';
      dots = 0;
      other = false;
    } else if (c === 0x2e) dots++;
    else if (c !== 0x20) other = true;
  }
  return null;
}

/**
 * The first escape in a policy glob that escapes nothing (`\e`), or null. The
 * dialect reads `\e` as `e`, so `CORP\evil` in a deny list would deny
 * `CORPevil` and let `CORP\evil` through: refused at load instead. Only `\*`,
 * `\?` and `\\` are escapes in a policy.
 */
function idleEscape(pattern: string): string | null {
  for (let i = 0; i < pattern.length; i++) {
    if (pattern.charCodeAt(i) === 0x5c) {
      const e = pattern[++i];
      if (e !== undefined && e !== '*' && e !== '?' && e !== '\\') return `\\${e}`;
    }
  }
  return null;
}

function checkEscapes(path: string, pattern: string): void {
  const e = idleEscape(pattern);
  if (e !== null) throw new CompileError(path, `${JSON.stringify(e)} in ${JSON.stringify(pattern)} escapes nothing (escape only *, ? and \\; write \\\\ for a backslash)`);
}

/** True when a glob pattern has an escaped backslash (`\\`): a path glob that could never match. */
function globHasBackslash(pattern: string): boolean {
  for (let i = 0; i < pattern.length; i++) {
    if (pattern.charCodeAt(i) === 0x5c) {
      if (pattern.charCodeAt(i + 1) === 0x5c) return true;
      i++;
    }
  }
  return false;
}

function compileConstraint(path: string, field: string, spec: Record<string, unknown>): CompiledConstraint {
  const checks: FieldCheck[] = [];
  for (const [kind, arg] of Object.entries(spec)) {
    const at = `${path}.${kind}`;
    switch (kind) {
      case 'equals': {
        const want = canonicalAt(at, arg);
        checks.push((v) => (v !== undefined && canonical(v) === want ? null : `must equal ${want}`));
        break;
      }
      case 'one_of': {
        const set = new Set((arg as unknown[]).map((x, i) => canonicalAt(`${at}.${i}`, x)));
        checks.push((v) => (v !== undefined && set.has(canonical(v)) ? null : 'is not one of the allowed values'));
        break;
      }
      case 'prefix': {
        const p = arg as string;
        if (p.includes('\\')) throw new CompileError(at, 'a path prefix cannot contain "\\" (write paths with "/")');
        const why = `must start with ${JSON.stringify(p)}`;
        checks.push((v) => (typeof v !== 'string' || !v.startsWith(p) ? why : pathRefusal(v)));
        break;
      }
      case 'glob': {
        const pattern = arg as string;
        let g: CompiledGlob;
        try {
          g = compileGlob(pattern);
        } catch (err) {
          throw new CompileError(at, (err as Error).message);
        }
        checkEscapes(at, pattern);
        if (globHasBackslash(pattern)) throw new CompileError(at, 'a path glob cannot match "\\" (write paths with "/")');
        const why = `does not match ${JSON.stringify(pattern)}`;
        checks.push((v) => (typeof v !== 'string' || !g.test(v) ? why : pathRefusal(v)));
        break;
      }
      case 'regex': {
        const re = compileRegex(at, arg as string);
        const why = `does not match /${arg as string}/`;
        const tooLong = `is longer than the ${MAX_REGEX_INPUT} characters a regex constraint reads`;
        checks.push((v) => {
          if (typeof v !== 'string') return why;
          if (v.length > MAX_REGEX_INPUT) return tooLong;
          if (!v.isWellFormed()) return why;
          const input = (regexInput ??= Buffer.allocUnsafeSlow(3 * MAX_REGEX_INPUT));
          return re.test(input.subarray(0, input.write(v, 0, 'utf8'))) ? null : why;
        });
        break;
      }
      case 'range': {
        const { min, max } = arg as { min?: number; max?: number };
        if (min !== undefined && max !== undefined && min > max) throw new CompileError(at, `min ${min} is greater than max ${max}`);
        checks.push((v) =>
          typeof v === 'number' && Number.isFinite(v) && (min === undefined || v >= min) && (max === undefined || v <= max)
            ? null
            : `is not a number in [${min ?? '-inf'}, ${max ?? 'inf'}]`,
        );
        break;
      }
      case 'max_length': {
        const n = arg as number;
        checks.push((v) => ((typeof v === 'string' || Array.isArray(v)) && v.length <= n ? null : `is longer than ${n}`));
        break;
      }
    }
  }
  return { field, segments: field.split('.'), checks };
}

interface McpSection {
  tools?: Record<string, string>;
  servers?: Record<string, { tools?: Record<string, string> }>;
}

/** The `mcp` section as maps (the schema bounded its sizes and checked its types). */
function compileMcp(mcp: McpSection | undefined): Pick<CompiledPolicy, 'mcpTools' | 'mcpServerTools'> {
  const toMap = (o: Record<string, string> | undefined) => new Map(Object.entries(o ?? {}));
  const servers = new Map<string, ReadonlyMap<string, string>>();
  for (const [id, s] of Object.entries(mcp?.servers ?? {})) servers.set(id, toMap(s.tools));
  return { mcpTools: toMap(mcp?.tools), mcpServerTools: servers };
}

export function compilePolicy(doc: Record<string, unknown>): CompiledPolicy {
  const trust = (doc.trust ?? {}) as Record<string, unknown>;
  const identities = (trust.identities ?? []) as Array<{ match: string; adjust: number }>;
  const compileIds = (path: string, patterns: string[]) => {
    for (const p of patterns) checkEscapes(path, p);
    try {
      return new IdentityMatcher(patterns);
    } catch (err) {
      throw new CompileError(path, (err as Error).message);
    }
  };
  const rules = new Map<string, CompiledRule>();
  const defaultTtl = doc.approval_ttl === undefined ? DEFAULT_APPROVAL_TTL_MS : durationMs('approval_ttl', doc.approval_ttl);
  const policyRedact = (doc.redact ?? []) as string[];
  for (const [actionType, raw] of Object.entries((doc.actions ?? {}) as Record<string, Record<string, unknown>>)) {
    const at = `actions.${actionType}`;
    const constraints = Object.entries((raw.constraints ?? {}) as Record<string, Record<string, unknown>>).map(([field, spec]) =>
      compileConstraint(`${at}.constraints.${field}`, field, spec),
    );
    rules.set(actionType, {
      actionType,
      minTrust: raw.min_trust as number | undefined,
      allow: raw.allow_identities === undefined ? undefined : compileIds(`${at}.allow_identities`, raw.allow_identities as string[]),
      deny: raw.deny_identities === undefined ? undefined : compileIds(`${at}.deny_identities`, raw.deny_identities as string[]),
      constraints,
      requireApproval: raw.require_approval === true,
      approval: {
        approvers: raw.approvers === undefined ? null : [...(raw.approvers as string[])],
        approverMatcher: raw.approvers === undefined ? null : compileIds(`${at}.approvers`, raw.approvers as string[]),
        minApprovals: (raw.min_approvals as number | undefined) ?? 1,
        ttlMs: raw.approval_ttl === undefined ? defaultTtl : durationMs(`${at}.approval_ttl`, raw.approval_ttl),
        redact: [...new Set([...policyRedact, ...((raw.redact ?? []) as string[])])].map((f) => f.split('.')),
      },
      onViolation: (raw.on_violation as OnViolation | undefined) ?? 'block',
      reasons: {
        satisfied: flat(`rule ${actionType} satisfied`),
        approval: flat(`rule ${actionType} requires approval`),
        observedApproval: flat(`${doc.mode as string} mode; rule ${actionType} requires approval`),
      },
    });
  }
  return {
    version: doc.version as number,
    mode: doc.mode as Mode,
    defaultDecision: (doc.default as 'allow' | 'deny' | undefined) ?? 'deny',
    trustBase: (trust.base as number | undefined) ?? 0.5,
    trustIdentities: identities.map((r, i) => ({ matcher: compileIds(`trust.identities.${i}.match`, [r.match]), adjust: r.adjust })),
    identityTrust: new Map(),
    violationPenalty: (trust.violation_penalty as number | undefined) ?? 0.1,
    recoveryPerHour: (trust.recovery_per_hour as number | undefined) ?? 0.05,
    rules,
    ...compileMcp(doc.mcp as McpSection | undefined),
    document: deepFreeze(structuredClone(doc)),
  };
}

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null) {
    for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
    Object.freeze(v);
  }
  return v;
}
