/**
 * PolicyEngine: the zero-trust policy. `load` validates the whole document
 * (schema, then compile: globs, regexes, ranges), and only then swaps it in
 * atomically; an invalid document or a version that is not newer changes
 * nothing. `evaluate` is pure lookup and arithmetic on the compiled form.
 * `watch(file)` hot-reloads with the same rules and never fails open: a bad
 * or half-written file leaves the active policy in place.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import YAML from 'yaml';
import type { AuditLog } from '../audit/log';
import { ErrorCodes, GuardError, describe } from '../errors';
import { type AgentTrust, CompileError, compilePolicy, type CompiledPolicy, type Mode, type OnViolation, type Penalty, type RuleApproval } from './compile';
import { schemaError } from './schema';
import { POLICY_YAML_OPTIONS, checkNesting } from './source';

export type { Mode, OnViolation } from './compile';

export interface PolicyDecision {
  decision: 'allow' | 'deny' | 'pending';
  reason: string;
  trust_score: number;
  /** The action type whose rule applied, or null when the default did. */
  matched_rule: string | null;
  policy_version: number;
  mode: Mode | 'none';
  /** Set when a rule was violated: what the rule says to do, and why. */
  violation?: { action: OnViolation; reasons: string[] };
  /** In audit and permissive modes: what enforce mode would have decided. */
  would_be?: 'deny' | 'pending';
  /** True when the rule's on_violation is quarantine (enforce mode): the gate isolates the agent. */
  quarantine?: boolean;
  /**
   * False when the answer depends on state that changes without a policy
   * reload: a min_trust rule evaluated with trust below it (trust moves with
   * violations and time). A min_trust decision made with enough trust is
   * cacheable, and the gate serves it only while `meetsMinTrust` holds.
   */
  cacheable: boolean;
}

/**
 * A policy decision, always built with this one shape (object spread here
 * cost over a microsecond per call in V8).
 */
function decisionOf(decision: PolicyDecision['decision'], reason: string, trust: number, matched: string | null, p: CompiledPolicy, cacheable: boolean): PolicyDecision {
  return { decision, reason, trust_score: trust, matched_rule: matched, policy_version: p.version, mode: p.mode, cacheable };
}

function noPolicyDecision(): PolicyDecision {
  return { decision: 'deny', reason: 'no policy loaded', trust_score: 0, matched_rule: null, policy_version: 0, mode: 'none', cacheable: false };
}

/** Bounds of the per-policy memo of identity trust. */
const MEMO_MAX_AGENTS = 10_000;
const MEMO_MAX_AGENT_LENGTH = 256;

export interface PolicyEngineOptions {
  /** Receives policy_reloaded events from load and watch. */
  audit?: AuditLog;
  /** Milliseconds since the epoch; default `Date.now`. */
  clock?: () => number;
  /** Agents whose violation penalties are tracked. Default 100000. */
  maxTrackedAgents?: number;
}

export type PolicyInput = string | Record<string, unknown>;

const HOUR_MS = 3_600_000;

/** What is left of a penalty at `now`, after its recovery since it was set (never below 0). */
function remainingPenalty(e: Penalty, now: number, p: CompiledPolicy): number {
  const left = e.value - (p.recoveryPerHour * Math.max(0, now - e.at)) / HOUR_MS;
  return left > 0 ? left : 0;
}

function invalid(path: string, message: string, cause?: unknown): GuardError {
  return new GuardError(ErrorCodes.POLICY_INVALID, path ? `${path}: ${message}` : message, { path, cause });
}

function round(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}

const isOwnEnumerable = Function.prototype.call.bind(Object.prototype.propertyIsEnumerable) as (o: object, key: string) => boolean;

/**
 * Lookup along a dotted path through own enumerable properties only (the
 * ones the CAR hash covers: a decision must never depend on a value its
 * cache key leaves out); undefined when any step is missing.
 */
function fieldValue(car: Record<string, unknown>, segments: string[]): unknown {
  let v: unknown = car;
  for (const s of segments) {
    if (typeof v !== 'object' || v === null || Array.isArray(v) || !isOwnEnumerable(v, s)) return undefined;
    v = (v as Record<string, unknown>)[s];
  }
  return v;
}

export class PolicyEngine extends EventEmitter {
  #policy: CompiledPolicy | null = null;
  readonly #penalties = new Map<string, Penalty>();
  readonly #audit: AuditLog | undefined;
  #auditFailures = 0;
  readonly #clock: () => number;
  readonly #maxTracked: number;

  constructor(policy?: PolicyInput, options: PolicyEngineOptions = {}) {
    super();
    if (typeof options !== 'object' || options === null) throw new TypeError(`Expected options but received ${describe(options)}`);
    const { audit, clock = Date.now, maxTrackedAgents = 100_000 } = options;
    if (!Number.isSafeInteger(maxTrackedAgents) || maxTrackedAgents < 1) {
      throw new RangeError(`Expected a positive integer for maxTrackedAgents but received ${describe(maxTrackedAgents)}`);
    }
    this.#audit = audit;
    this.#clock = clock;
    this.#maxTracked = maxTrackedAgents;
    if (policy !== undefined) this.load(policy);
  }

  /**
   * Parses YAML or JSON text (JSON is YAML) into a document; duplicate keys
   * are errors, and so is nesting deeper than any policy needs (checked
   * before the parser recurses into it).
   */
  static parse(text: string): unknown {
    if (typeof text !== 'string') throw new TypeError(`Expected policy text but received ${describe(text)}`);
    try {
      checkNesting(text);
      return YAML.parse(text, POLICY_YAML_OPTIONS);
    } catch (err) {
      throw invalid('', `not valid YAML or JSON: ${(err as Error).message.split('\n')[0]}`, err);
    }
  }

  /** Version of the active policy (0 before any load). */
  get version(): number {
    return this.#policy?.version ?? 0;
  }

  get mode(): Mode | 'none' {
    return this.#policy?.mode ?? 'none';
  }

  /** The active document (a frozen copy), or null. */
  get document(): Readonly<Record<string, unknown>> | null {
    return this.#policy?.document ?? null;
  }

  /**
   * Validates, compiles and atomically activates a policy (a document object
   * or YAML/JSON text); returns its version. Throws `GuardError`
   * `ERR_POLICY_INVALID` (with `.path`) and changes nothing on any problem,
   * including a version that is not newer than the active one.
   *
   * With `record` (and an audit log), a reload is audited as
   * `policy_reloaded` with those fields BEFORE the swap: when the log
   * refuses the record, the append's error is thrown and the old policy
   * stays active.
   */
  load(policy: PolicyInput, record?: Record<string, unknown>): number {
    const doc = typeof policy === 'string' ? PolicyEngine.parse(policy) : policy;
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw invalid('', `expected a policy document but received ${describe(doc)}`);
    const problem = schemaError(doc);
    if (problem) throw invalid(problem.path, problem.message);
    const current = this.version;
    const next = (doc as Record<string, unknown>).version as number;
    if (next <= current) throw invalid('version', `${next} is not newer than the active version ${current}`);
    let compiled: CompiledPolicy;
    try {
      compiled = compilePolicy(doc as Record<string, unknown>);
    } catch (err) {
      if (err instanceof CompileError) throw invalid(err.path, err.message, err);
      throw err;
    }
    if (record !== undefined && this.#audit !== undefined) this.#audit.append('policy_reloaded', 'info', { ok: true, ...record, version: compiled.version, previous_version: current });
    this.#policy = compiled; // the swap: one assignment, evaluate sees old or new, never a mix
    this.emit('loaded', compiled.version); // the fleet sync publishes it
    return compiled.version;
  }

  /** Current trust of an agent under the active policy, in [0, 1]. */
  trustScore(agentId: string, now?: number): number {
    const p = this.#policy;
    if (p === null) return 0;
    const m = this.#agentTrust(agentId, p);
    // The clock is read only for an agent with a penalty (most have none; a read costs as much as the rest).
    const t = m.penalty === undefined ? m.base : m.base - remainingPenalty(m.penalty, now ?? this.#clock(), p);
    return round(Math.min(1, Math.max(0, t)));
  }

  /**
   * The agent's memo entry: one map lookup per check (the identity part and
   * the penalty used to be two, and the trust lookup was a gate check's
   * costliest step on traffic from thousands of agents).
   */
  #agentTrust(agentId: string, p: CompiledPolicy): AgentTrust {
    const memo = p.identityTrust.get(agentId);
    if (memo !== undefined) return memo;
    let base = p.trustBase;
    for (const r of p.trustIdentities) if (r.matcher.matches(agentId)) base += r.adjust;
    const m: AgentTrust = { base, penalty: this.#penalties.get(agentId) };
    // Memoized: the glob matches cost more than the lookup. Bounded in count and key size.
    if (agentId.length <= MEMO_MAX_AGENT_LENGTH) {
      if (p.identityTrust.size >= MEMO_MAX_AGENTS) p.identityTrust.clear();
      p.identityTrust.set(agentId, m);
    }
    return m;
  }

  #recordViolation(agentId: string, now: number, p: CompiledPolicy): void {
    const previous = this.#penalties.get(agentId);
    const penalty: Penalty = { value: (previous === undefined ? 0 : remainingPenalty(previous, now, p)) + p.violationPenalty, at: now };
    this.#penalties.delete(agentId); // re-inserted: Map order is last-violation order
    // The memo holds each agent's penalty record too: every change here is made there as well.
    const memo = this.#policy?.identityTrust;
    if (this.#penalties.size >= this.#maxTracked) {
      // Bounded: forget the agent whose last violation is oldest (its penalty has decayed longest).
      const oldest = this.#penalties.keys().next().value as string;
      this.#penalties.delete(oldest);
      const forgotten = memo?.get(oldest);
      if (forgotten !== undefined) forgotten.penalty = undefined;
    }
    this.#penalties.set(agentId, penalty);
    const m = memo?.get(agentId);
    if (m !== undefined) m.penalty = penalty;
  }


  /**
   * True when `trust` satisfies the min_trust of the active rule for
   * `actionType` (or it has none). A cached decision for a min_trust rule was
   * made with enough trust; it stands exactly while this holds.
   */
  meetsMinTrust(actionType: string, trust: number): boolean {
    const min = this.#policy?.rules.get(actionType)?.minTrust;
    return min === undefined || trust >= min;
  }

  /**
   * The approval settings of the active rule for `actionType` when it requires approval (undefined otherwise).
   * Read by the gate's approval stage.
   * @internal
   */
  approvalOf(actionType: string): RuleApproval | undefined {
    const rule = this.#policy?.rules.get(actionType);
    return rule?.requireApproval ? rule.approval : undefined;
  }

  /**
   * The action type the policy's `mcp` section gives calls of MCP tool `tool`
   * on server `serverId` (the server's own mapping first), or undefined.
   */
  mcpToolAction(serverId: string, tool: string): string | undefined {
    const p = this.#policy;
    if (p === null) return undefined;
    return p.mcpServerTools.get(serverId)?.get(tool) ?? p.mcpTools.get(tool);
  }

  /** Every mapping of the policy's `mcp` section that applies to `serverId` (server-specific entries win). */
  mcpToolActions(serverId: string): Record<string, string> {
    const p = this.#policy;
    const out: Record<string, string> = Object.create(null);
    if (p === null) return out;
    for (const [k, v] of p.mcpTools) out[k] = v;
    for (const [k, v] of p.mcpServerTools.get(serverId) ?? []) out[k] = v;
    return out;
  }

  /** Evaluates a (validated) CAR against the active policy. */
  evaluate(car: Record<string, unknown>, context: { now?: number } = {}): PolicyDecision {
    const p = this.#policy;
    if (p === null) return noPolicyDecision();
    // The clock is read only where it is used (a penalty's decay, a violation): most evaluations need none.
    return this.#decide(p, car, this.trustScore(car.agent_id as string, context.now), context.now);
  }

  /**
   * @internal The gate's `evaluate`: `trust` is `trustScore(car.agent_id)`,
   * which the gate has just read for this check (nothing between can change
   * it), so it is not looked up twice. An `evaluate` replaced on the
   * instance or in a subclass is still the one called.
   */
  evaluateWithTrust(car: Record<string, unknown>, trust: number): PolicyDecision {
    if (this.evaluate !== PolicyEngine.prototype.evaluate) return this.evaluate(car);
    const p = this.#policy;
    if (p === null) return noPolicyDecision();
    return this.#decide(p, car, trust, undefined);
  }

  #decide(p: CompiledPolicy, car: Record<string, unknown>, trust: number, now: number | undefined): PolicyDecision {
    const agent = car.agent_id as string;
    const action = car.action_type as string;
    const rule = p.rules.get(action);
    const cacheable = rule?.minTrust === undefined || trust >= rule.minTrust;
    const result = (decision: PolicyDecision['decision'], reason: string, matched: string | null): PolicyDecision => decisionOf(decision, reason, trust, matched, p, cacheable);
    if (rule === undefined) {
      const reason = `no rule for action type ${JSON.stringify(action)}: default ${p.defaultDecision}`;
      if (p.mode === 'enforce' || p.defaultDecision === 'allow') return result(p.defaultDecision, reason, null);
      const d = result('allow', `${p.mode} mode; would deny: ${reason}`, null);
      d.would_be = 'deny';
      return d;
    }
    // Made only when something is violated (most evaluations find nothing).
    let reasons: string[] | null = null;
    if (rule.deny?.matches(agent)) (reasons ??= []).push(`identity ${JSON.stringify(agent)} is denied`);
    else if (rule.allow !== undefined && !rule.allow.matches(agent)) (reasons ??= []).push(`identity ${JSON.stringify(agent)} is not in the allow list`);
    if (rule.minTrust !== undefined && trust < rule.minTrust) (reasons ??= []).push(`trust ${trust} is below ${rule.minTrust}`);
    for (const c of rule.constraints) {
      const v = fieldValue(car, c.segments);
      if (v === undefined) {
        (reasons ??= []).push(`${c.field} is missing`);
        continue;
      }
      for (const check of c.checks) {
        const why = check(v);
        if (why !== null) (reasons ??= []).push(`${c.field} ${why}`);
      }
    }
    if (reasons !== null) {
      const violation = { action: rule.onViolation, reasons };
      const blocks = rule.onViolation === 'block' || rule.onViolation === 'quarantine';
      let d: PolicyDecision;
      if (p.mode === 'enforce') {
        this.#recordViolation(agent, now ?? this.#clock(), p);
        d = blocks
          ? result('deny', `rule ${action}: ${reasons.join('; ')}`, action)
          : result('allow', `rule ${action} (${rule.onViolation}): ${reasons.join('; ')}`, action);
        if (rule.onViolation === 'quarantine') d.quarantine = true;
      } else {
        d = result('allow', `${p.mode} mode; rule ${action}: ${reasons.join('; ')}`, action);
        if (blocks) d.would_be = 'deny';
      }
      d.violation = violation;
      return d;
    }
    // The rule's own name (the same text as `action`): a flat string made once, not per call.
    if (rule.requireApproval) {
      if (p.mode === 'enforce') return result('pending', rule.reasons.approval, rule.actionType);
      const d = result('allow', rule.reasons.observedApproval, rule.actionType);
      d.would_be = 'pending';
      return d;
    }
    return result('allow', rule.reasons.satisfied, rule.actionType);
  }

  /**
   * Reloads `file` whenever it changes (polling its stat, off the hot path),
   * under the same rules as `load`. Emits `reloaded` (version, previous
   * version) or `reload_failed` (error, active version); both are audited as
   * `policy_reloaded`. Returns a function that stops watching.
   */
  watch(file: string, options: { intervalMs?: number } = {}): () => void {
    if (typeof file !== 'string' || file.length === 0) throw new TypeError(`Expected a file path but received ${describe(file)}`);
    const intervalMs = options.intervalMs ?? 500;
    if (!Number.isSafeInteger(intervalMs) || intervalMs < 10) throw new RangeError(`Expected an integer >= 10 for intervalMs but received ${describe(intervalMs)}`);
    const attempt = () => {
      let text: string;
      try {
        text = fs.readFileSync(file, 'utf8');
      } catch (err) {
        this.#reloadFailed(file, invalid('', `cannot read ${file}: ${(err as Error).message}`, err));
        return;
      }
      const previous = this.version;
      try {
        const version = this.load(text, { file }); // audited before the swap
        this.emit('reloaded', version, previous);
      } catch (err) {
        this.#reloadFailed(file, err);
      }
    };
    const watcher = fs.watchFile(file, { interval: intervalMs, persistent: false }, (cur, prev) => {
      if (cur.mtimeMs !== prev.mtimeMs || cur.size !== prev.size || cur.ino !== prev.ino) attempt();
    });
    watcher.unref?.();
    // The file as it is now: a newer version is loaded at once, and a file that
    // does not parse is reported at once. Looked at again once the poller has
    // its baseline, so a change made in between is not missed either.
    const lookNow = () => {
      let current: Record<string, unknown> | null = null;
      try {
        current = PolicyEngine.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown> | null;
      } catch {
        current = null;
      }
      if (current === null || typeof current !== 'object' || typeof current.version !== 'number' || current.version > this.version) attempt();
    };
    const lookIfNewer = () => {
      try {
        const doc = PolicyEngine.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown> | null;
        if (doc && typeof doc.version === 'number' && doc.version > this.version) attempt();
      } catch {
        // a broken file was reported by lookNow, or will be by the next change
      }
    };
    lookNow();
    const second = setTimeout(lookIfNewer, intervalMs * 2);
    second.unref();
    return () => {
      clearTimeout(second);
      fs.unwatchFile(file);
    };
  }

  /**
   * Reloads of a watched file that the audit log could not record (it was
   * closed, or is failing). They happen in a file-watcher callback, where a
   * throw would end the process, so they are counted instead.
   */
  get auditFailures(): number {
    return this.#auditFailures;
  }

  #recordReload(severity: 'info' | 'error', fields: Record<string, unknown>): void {
    try {
      this.#audit?.append('policy_reloaded', severity, fields);
    } catch {
      this.#auditFailures++;
    }
  }

  #reloadFailed(file: string, err: unknown): void {
    const error = err instanceof Error ? err : new Error(String(err));
    this.#recordReload('error', { ok: false, file, error: error.message, active_version: this.version });
    if (this.listenerCount('reload_failed') > 0) this.emit('reload_failed', error, this.version);
  }
}
