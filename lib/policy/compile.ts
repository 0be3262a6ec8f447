/**
 * Compiles a validated policy document once: globs and regexes built, identity
 * patterns split into exact-match sets and wildcard lists, constraint paths
 * split into segments. Evaluation then does no parsing.
 */
import { compileGlob, type CompiledGlob } from './glob';
import { canonicalizeJson } from '../canonical/car';

export type Mode = 'enforce' | 'audit' | 'permissive';
export type OnViolation = 'block' | 'quarantine' | 'warn' | 'allow';

/** Identity patterns: exact names in a Set, wildcard patterns tested in order. */
export class IdentityMatcher {
  readonly exact = new Set<string>();
  readonly globs: CompiledGlob[] = [];

  constructor(patterns: readonly string[]) {
    for (const p of patterns) {
      if (/[*?\\]/.test(p)) this.globs.push(compileGlob(p));
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
  onViolation: OnViolation;
}

export interface CompiledPolicy {
  version: number;
  mode: Mode;
  defaultDecision: 'allow' | 'deny';
  trustBase: number;
  trustIdentities: Array<{ matcher: IdentityMatcher; adjust: number }>;
  /** Memo of base + identity adjustments per agent id (they depend only on this policy); bounded by the engine. */
  identityTrust: Map<string, number>;
  violationPenalty: number;
  recoveryPerHour: number;
  rules: Map<string, CompiledRule>;
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

const DOT_SEGMENT = /(^|\/)\.\.?(\/|$)/;

function compileConstraint(path: string, field: string, spec: Record<string, unknown>): CompiledConstraint {
  const checks: FieldCheck[] = [];
  for (const [kind, arg] of Object.entries(spec)) {
    const at = `${path}.${kind}`;
    switch (kind) {
      case 'equals': {
        const want = canonical(arg);
        checks.push((v) => (v !== undefined && canonical(v) === want ? null : `must equal ${want}`));
        break;
      }
      case 'one_of': {
        const set = new Set((arg as unknown[]).map(canonical));
        checks.push((v) => (v !== undefined && set.has(canonical(v)) ? null : 'is not one of the allowed values'));
        break;
      }
      case 'prefix': {
        const p = arg as string;
        checks.push((v) => (typeof v === 'string' && v.startsWith(p) ? null : `must start with ${JSON.stringify(p)}`));
        break;
      }
      case 'glob': {
        let g: CompiledGlob;
        try {
          g = compileGlob(arg as string);
        } catch (err) {
          throw new CompileError(at, (err as Error).message);
        }
        // A path-like pattern never matches "." or ".." segments: "/srv/**"
        // must not admit "/srv/../etc/passwd".
        const pathLike = (arg as string).includes('/');
        checks.push((v) =>
          typeof v === 'string' && !(pathLike && DOT_SEGMENT.test(v)) && g.test(v) ? null : `does not match ${JSON.stringify(arg)}`,
        );
        break;
      }
      case 'regex': {
        let re: RegExp;
        try {
          // Whole-value match: a regex constraint is never a substring search.
          re = new RegExp(`^(?:${arg as string})$`, 'u');
        } catch (err) {
          throw new CompileError(at, `is not a valid regular expression: ${(err as Error).message}`);
        }
        checks.push((v) => (typeof v === 'string' && re.test(v) ? null : `does not match /${arg as string}/`));
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

export function compilePolicy(doc: Record<string, unknown>): CompiledPolicy {
  const trust = (doc.trust ?? {}) as Record<string, unknown>;
  const identities = (trust.identities ?? []) as Array<{ match: string; adjust: number }>;
  const compileIds = (path: string, patterns: string[]) => {
    try {
      return new IdentityMatcher(patterns);
    } catch (err) {
      throw new CompileError(path, (err as Error).message);
    }
  };
  const rules = new Map<string, CompiledRule>();
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
      onViolation: (raw.on_violation as OnViolation | undefined) ?? 'block',
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
