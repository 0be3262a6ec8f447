/**
 * Gate: the composite decision pipeline, in the contract's order:
 *   validate + canonicalize + hash -> quarantine -> velocity -> request nonce
 *   (replay) -> permit (if present) -> cache -> policy -> audit -> cache put.
 * Quarantine, velocity and replay run before the cache, so a cached allow
 * never bypasses them. Only policy decisions are cached (never a permit's
 * allow: a single-use permit must not turn into a reusable allow), and only
 * when they do not depend on moving trust. Any exception in any stage is a
 * deny with `source: 'error'`. `check` is synchronous: audit records are
 * sealed at once and written off the hot path.
 */
import { AuditLog, type Severity } from './audit';
import { DecisionCache } from './cache';
import { carHash, carHashes, type Car } from './car';
import { GuardError, describe } from './errors';
import type { Keyring } from './permit';
import { PolicyEngine, type PolicyInput } from './policy/engine';
import { Quarantine } from './quarantine';
import { ReplayDetector } from './replay';
import { VelocityGuard } from './velocity';

export type GateSource = 'validation' | 'quarantine' | 'velocity' | 'replay' | 'permit' | 'cache' | 'policy' | 'error';

export interface GateDecision {
  decision: 'allow' | 'deny' | 'pending';
  source: GateSource;
  reason: string;
  /** null only when the CAR itself was invalid. */
  car_hash: string | null;
  policy_version: number;
  trust_score: number;
  /** 1 for decisions from a rule or a check; 0.5 for a policy default or an audit/permissive override. */
  confidence: number;
  /** With a velocity deny: when to retry. */
  retry_after_ms?: number;
}

export interface GateRequest {
  car: Car | Record<string, unknown>;
  permit?: string;
  nonce?: string;
  sessionId?: string;
}

export interface GateOptions {
  /** A policy document, its YAML/JSON text, or a PolicyEngine. */
  policy: PolicyInput | PolicyEngine;
  /** Verifies permits; requests with a permit are denied without one. */
  keyring?: Keyring;
  /** Decision cache; default a private one. `false`: no cache. */
  cache?: DecisionCache | false;
  /** Request nonces are checked here; default a private detector. */
  replay?: ReplayDetector;
  /** Rate limits; default none. */
  velocity?: VelocityGuard;
  /** Default a private Quarantine. */
  quarantine?: Quarantine;
  /** Every decision is recorded here when given. */
  audit?: AuditLog;
  /** How long a request nonce is remembered, ms. Default 300000. */
  nonceTtlMs?: number;
  /** Milliseconds since the epoch; default `Date.now`. */
  clock?: () => number;
}

/** Marks a request that is not an object (check() reports it as an internal error deny). */
const REQUEST_NOT_OBJECT = new Error('request is not an object');

function isRequest(request: unknown): request is GateRequest {
  return typeof request === 'object' && request !== null;
}

const AUDIT_TYPE: Record<GateSource, string> = {
  validation: 'input_validation_failure',
  quarantine: 'gate_decision',
  velocity: 'rate_limited',
  replay: 'replay_detected',
  permit: 'permit_rejected',
  cache: 'gate_decision',
  policy: 'gate_decision',
  error: 'gate_decision',
};

export class Gate {
  readonly policy: PolicyEngine;
  readonly keyring: Keyring | undefined;
  readonly cache: DecisionCache | null;
  readonly replay: ReplayDetector;
  readonly velocity: VelocityGuard | undefined;
  readonly quarantine: Quarantine;
  readonly audit: AuditLog | undefined;
  readonly #nonceTtlMs: number;
  readonly #clock: () => number;

  constructor(options: GateOptions) {
    if (typeof options !== 'object' || options === null || options.policy === undefined) {
      throw new TypeError(`Expected options with a policy for Gate but received ${describe(options)}`);
    }
    const { policy, keyring, cache, replay, velocity, quarantine, audit, nonceTtlMs = 300_000, clock = Date.now } = options;
    if (!Number.isSafeInteger(nonceTtlMs) || nonceTtlMs < 1000) throw new RangeError(`Expected an integer >= 1000 for nonceTtlMs but received ${describe(nonceTtlMs)}`);
    this.audit = audit;
    this.policy = policy instanceof PolicyEngine ? policy : new PolicyEngine(policy, { audit, clock });
    this.keyring = keyring;
    // The private stores share the gate's clock: a nonce's expiry is computed
    // from it, so a detector on another clock would see it as already past.
    this.cache = cache === false ? null : (cache ?? new DecisionCache({ clock }));
    this.replay = replay ?? new ReplayDetector({ clock });
    this.velocity = velocity;
    this.quarantine = quarantine ?? new Quarantine({ audit, clock });
    this.#nonceTtlMs = nonceTtlMs;
    this.#clock = clock;
  }

  /** How long a request nonce is remembered, ms (what a permit's lifetime must fit in). */
  get nonceTtlMs(): number {
    return this.#nonceTtlMs;
  }

  /** Decides one request. Never throws for a request object: failures are denies. */
  check(request: GateRequest): GateDecision {
    let hashed: string | GuardError | Error;
    try {
      hashed = isRequest(request) ? carHash(request.car) : REQUEST_NOT_OBJECT;
    } catch (err) {
      hashed = err instanceof Error ? err : new Error(String(err));
    }
    return this.#checkHashed(request, hashed);
  }

  /**
   * Decides many requests: the same answers as calling `check` on each, in
   * order. All CARs are read and hashed first, in one native call.
   */
  checkBatch(requests: GateRequest[]): GateDecision[] {
    if (!Array.isArray(requests)) throw new TypeError(`Expected an array of requests but received ${describe(requests)}`);
    const n = requests.length;
    const out = new Array<GateDecision>(n);
    const cars = new Array<unknown>(n);
    for (let i = 0; i < n; i++) cars[i] = isRequest(requests[i]) ? requests[i].car : undefined;
    let hashes: Array<string | GuardError>;
    try {
      hashes = carHashes(cars);
    } catch {
      // A CAR's getter threw: let check() attribute it to its own request.
      for (let i = 0; i < n; i++) out[i] = this.check(requests[i]);
      return out;
    }
    for (let i = 0; i < n; i++) out[i] = this.#checkHashed(requests[i], isRequest(requests[i]) ? hashes[i] : REQUEST_NOT_OBJECT);
    return out;
  }

  /** The pipeline after hashing: `hashed` is the CAR hash, or why there is none. */
  #checkHashed(request: GateRequest, hashed: string | GuardError | Error): GateDecision {
    let hash: string | null = null;
    let d: GateDecision;
    try {
      if (typeof hashed !== 'string') {
        if (hashed === REQUEST_NOT_OBJECT) throw new GuardError('ERR_CAR_INVALID', `request: expected an object but received ${describe(request)}`);
        if (!(hashed instanceof GuardError)) throw hashed;
        d = this.#deny('validation', hashed.message, null, 0);
        return this.#record(d, request, 'warning');
      }
      hash = hashed;
      d = this.#decide(request, request.car as Car, hash);
    } catch (err) {
      d = this.#deny('error', `internal error: ${err instanceof Error ? err.message : String(err)}`, hash, 0);
    }
    try {
      return this.#record(d, request, d.decision === 'allow' ? 'info' : 'warning');
    } catch (err) {
      // A required audit log that cannot record the decision: deny.
      return this.#deny('error', `audit log unavailable: ${err instanceof Error ? err.message : String(err)}`, hash, d.trust_score);
    }
  }

  #decide(request: GateRequest, car: Car, hash: string): GateDecision {
    const agent = car.agent_id;
    const action = car.action_type;
    const trust = this.policy.trustScore(agent);
    if (this.quarantine.denies(agent, action)) {
      const q = this.quarantine.get(agent)!;
      this.quarantine.observe(agent, { ts: this.#clock(), action_type: action, decision: 'deny', car_hash: hash });
      return this.#deny('quarantine', `agent is quarantined (${q.status}): ${q.reason}`, hash, trust);
    }
    if (this.velocity !== undefined) {
      const v = this.velocity.check(agent, request.sessionId);
      if (!v.allowed) {
        const d = this.#deny('velocity', `rate limit exceeded (${v.scope})`, hash, trust);
        d.retry_after_ms = v.retry_after_ms;
        return d;
      }
    }
    if (request.nonce !== undefined) {
      const status = this.replay.check(request.nonce, this.#clock() + this.#nonceTtlMs);
      if (status !== 'fresh') return this.#deny('replay', status === 'replay' ? 'request nonce was already used' : 'replay store is full (fail closed)', hash, trust);
    }
    if (request.permit !== undefined) {
      if (this.keyring === undefined) return this.#deny('permit', 'a permit was presented but no keyring is configured', hash, trust);
      const r = this.keyring.verify(request.permit, { carHash: hash });
      if (!r.valid) return this.#deny('permit', `permit rejected: ${r.reason}`, hash, trust);
      // A valid permit authorizes exactly this CAR; it is never cached.
      return { decision: 'allow', source: 'permit', reason: `permit ${r.claims.jti} (${r.claims.use})`, car_hash: hash, policy_version: this.policy.version, trust_score: trust, confidence: 1 };
    }
    const version = this.policy.version;
    if (this.cache !== null) {
      const hit = this.cache.get(hash, version);
      if (hit !== undefined) {
        return { decision: hit.decision, source: 'cache', reason: hit.reason ?? 'cached policy decision', car_hash: hash, policy_version: version, trust_score: trust, confidence: 1 };
      }
    }
    const p = this.policy.evaluate(car);
    if (p.quarantine) this.quarantine.quarantine(agent, `policy: ${p.reason}`);
    const confidence = p.matched_rule === null || p.would_be !== undefined ? 0.5 : 1;
    if (this.cache !== null && p.cacheable && p.policy_version === version) {
      this.cache.put(hash, { decision: p.decision, reason: p.reason, policyVersion: p.policy_version });
    }
    return { decision: p.decision, source: 'policy', reason: p.reason, car_hash: hash, policy_version: p.policy_version, trust_score: p.trust_score, confidence };
  }

  #deny(source: GateSource, reason: string, hash: string | null, trust: number): GateDecision {
    return { decision: 'deny', source, reason, car_hash: hash, policy_version: this.policy.version, trust_score: trust, confidence: 1 };
  }

  #record(d: GateDecision, request: GateRequest, severity: Severity): GateDecision {
    if (this.audit !== undefined) {
      const car = (typeof request === 'object' && request !== null ? request.car : undefined) as Record<string, unknown> | undefined;
      const fields: Record<string, unknown> = {
        decision: d.decision,
        source: d.source,
        reason: d.reason,
        car_hash: d.car_hash,
        policy_version: d.policy_version,
      };
      if (d.car_hash !== null && car) {
        fields.agent_id = car.agent_id;
        fields.action_type = car.action_type;
      }
      if (typeof request?.sessionId === 'string') fields.session_id = request.sessionId;
      this.audit.append(AUDIT_TYPE[d.source], severity, fields);
    }
    return d;
  }
}
