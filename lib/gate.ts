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
 *
 * Fleet mode (`store: { redis }`): replay, velocity, quarantine, the policy
 * version and cache invalidations are shared through Redis (lib/fleet/).
 * Such a gate is asynchronous: `checkAsync` / `checkBatchAsync` (one round
 * trip per check, one pipeline per batch); the sync `check` throws
 * ERR_STORE_ASYNC rather than decide from this process's state alone.
 */
import { AuditLog, type Severity } from './audit';
import { DecisionCache } from './cache';
import { carHash, carHashes, type Car } from './car';
import { ErrorCodes, GuardError, describe } from './errors';
import { FleetGateChecks, PASS, type ChecksOutcome, type PreparedChecks } from './fleet/gate-checks';
import { FleetPolicySync } from './fleet/policy-sync';
import { checkOnStoreError, resolveStore, type FleetStore, type OnStoreError, type StoreOption } from './fleet/store';
import type { StepResult } from './fleet/step';
import type { Keyring } from './permit';
import { PolicyEngine, type PolicyInput } from './policy/engine';
import { Quarantine } from './quarantine';
import { ReplayDetector } from './replay';
import { VelocityGuard, type VelocityGuardOptions } from './velocity';

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
  /** Rate limits: a guard, or its options (built on the gate's store and clock); default none. */
  velocity?: VelocityGuard | VelocityGuardOptions;
  /** Default a private Quarantine. */
  quarantine?: Quarantine;
  /** Every decision is recorded here when given. */
  audit?: AuditLog;
  /** How long a request nonce is remembered, ms. Default 300000. */
  nonceTtlMs?: number;
  /** Milliseconds since the epoch; default `Date.now`. */
  clock?: () => number;
  /**
   * `memory` (default) or Redis (`{ redis: url | client, prefix? }` or a
   * FleetStore): the default replay detector, velocity guard (from options)
   * and quarantine live there, and policy versions and cache invalidations
   * are shared. Components passed in must use the same FleetStore.
   */
  store?: StoreOption;
  /** When Redis cannot answer a check: `deny` (default, fail closed) or `local` (this process's stores decide; a security event is logged). */
  onStoreError?: OnStoreError;
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
  readonly #fleet: FleetStore | null;
  #ownedStore: FleetStore | null = null;
  readonly #onStoreError: OnStoreError;
  readonly #fleetChecks: FleetGateChecks | null = null;
  readonly #policySync: FleetPolicySync | null = null;

  constructor(options: GateOptions) {
    if (typeof options !== 'object' || options === null || options.policy === undefined) {
      throw new TypeError(`Expected options with a policy for Gate but received ${describe(options)}`);
    }
    const { policy, keyring, cache, replay, velocity, quarantine, audit, nonceTtlMs = 300_000, clock = Date.now } = options;
    if (!Number.isSafeInteger(nonceTtlMs) || nonceTtlMs < 1000) throw new RangeError(`Expected an integer >= 1000 for nonceTtlMs but received ${describe(nonceTtlMs)}`);
    this.#onStoreError = checkOnStoreError(options.onStoreError);
    const { store: fleet, owned } = resolveStore(options.store, 'Gate');
    this.#fleet = fleet;
    if (owned) this.#ownedStore = fleet;
    fleet?.attachAudit(audit);
    const store = fleet ?? 'memory';
    this.audit = audit;
    this.policy = policy instanceof PolicyEngine ? policy : new PolicyEngine(policy, { audit, clock });
    this.keyring = keyring;
    // The private stores share the gate's clock: a nonce's expiry is computed
    // from it, so a detector on another clock would see it as already past.
    this.cache = cache === false ? null : (cache ?? new DecisionCache({ clock }));
    this.replay = replay ?? new ReplayDetector({ clock, store, onStoreError: this.#onStoreError });
    this.velocity = velocity === undefined || velocity instanceof VelocityGuard ? velocity : new VelocityGuard({ clock, ...velocity, store, onStoreError: this.#onStoreError });
    this.quarantine = quarantine ?? new Quarantine({ audit, clock, store });
    this.#nonceTtlMs = nonceTtlMs;
    this.#clock = clock;
    const mismatch = (fleet === null ? [this.replay.fleet !== null, this.velocity?.fleet != null, this.quarantine.fleet] : [this.replay.fleet?.store !== fleet, this.velocity !== undefined && this.velocity.fleet?.store !== fleet, !this.quarantine.fleet]).indexOf(true);
    if (mismatch >= 0) {
      const part = ['replay', 'velocity', 'quarantine'][mismatch];
      throw new TypeError(fleet === null ? `The ${part} given uses a Redis store: give the Gate that store (store option) too` : `The ${part} given must use the Gate's FleetStore (pass its options, or build it with store: the same FleetStore)`);
    }
    if (fleet !== null) {
      this.#fleetChecks = new FleetGateChecks(fleet, this.replay, this.velocity, this.keyring, nonceTtlMs, clock);
      this.#policySync = new FleetPolicySync(fleet, this.policy, this.cache, audit);
    }
  }

  /** The shared store, or null for an in-process gate. */
  get store(): FleetStore | null {
    return this.#fleet;
  }

  /**
   * Fleet gate: resolves once Redis is connected, subscribed and the policy
   * versions are reconciled (a newer fleet policy loaded, or this one
   * published). In-process gate: at once.
   */
  async ready(timeoutMs = 5000): Promise<void> {
    if (this.#fleet === null) return;
    await this.#fleet.ready(timeoutMs);
    await this.#policySync!.publish();
    await this.#policySync!.catchUp();
  }

  /** Drops a cached decision (or all of them) here and, in fleet mode, in every process. Returns how many were removed here. */
  async invalidateCache(carHash?: string): Promise<number> {
    if (this.#policySync !== null) return this.#policySync.invalidate(carHash);
    if (this.cache === null) return 0;
    return carHash === undefined ? this.cache.clear() : Number(this.cache.invalidate(carHash));
  }

  /** Stops listening to the fleet and quits a Redis connection the gate opened. Idempotent. */
  async close(): Promise<void> {
    this.#policySync?.close();
    const owned = this.#ownedStore;
    this.#ownedStore = null;
    await owned?.close();
  }

  /** How long a request nonce is remembered, ms (what a permit's lifetime must fit in). */
  get nonceTtlMs(): number {
    return this.#nonceTtlMs;
  }

  /** Decides one request. Never throws for a request object: failures are denies. */
  check(request: GateRequest): GateDecision {
    if (this.#fleet !== null) throw new GuardError(ErrorCodes.STORE_ASYNC, 'This Gate keeps its state in Redis: use checkAsync / checkBatchAsync');
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
    if (this.#fleet !== null) throw new GuardError(ErrorCodes.STORE_ASYNC, 'This Gate keeps its state in Redis: use checkAsync / checkBatchAsync');
    if (!Array.isArray(requests)) throw new TypeError(`Expected an array of requests but received ${describe(requests)}`);
    const hashes = this.#hashAll(requests);
    const out = new Array<GateDecision>(requests.length);
    for (let i = 0; i < requests.length; i++) out[i] = this.#checkHashed(requests[i], hashes[i]);
    return out;
  }

  /**
   * `check` for any gate; the way to check with a fleet gate (one Redis
   * round trip at most). An in-process gate answers at once.
   */
  async checkAsync(request: GateRequest): Promise<GateDecision> {
    if (this.#fleet === null) return this.check(request);
    return (await this.checkBatchAsync([request]))[0];
  }

  /**
   * `checkBatch` for any gate. Fleet gate: the same decisions as `checkAsync`
   * on each request in order, with all Redis work of the batch in one
   * pipeline. (Exception: when a policy decision inside the batch quarantines
   * an agent, that agent's later requests in the batch are denied by
   * quarantine as in order, but their velocity token and nonce were already
   * spent by the pipeline.)
   */
  async checkBatchAsync(requests: GateRequest[]): Promise<GateDecision[]> {
    const checks = this.#fleetChecks;
    if (checks === null) return this.checkBatch(requests);
    if (!Array.isArray(requests)) throw new TypeError(`Expected an array of requests but received ${describe(requests)}`);
    const sync = this.#policySync!;
    if (sync.behind) await sync.catchUp();
    const n = requests.length;
    const hashes = this.#hashAll(requests);
    // Stage 1, local: quarantine and permit signatures; a Redis step for the rest.
    const prepared = new Array<PreparedChecks | undefined>(n);
    const failed = new Array<unknown>(n);
    for (let i = 0; i < n; i++) {
      const hashed = hashes[i];
      if (typeof hashed !== 'string') continue;
      const request = requests[i];
      try {
        const car = request.car as Car;
        if (this.quarantine.denies(car.agent_id, car.action_type)) continue;
        prepared[i] = checks.prepare({ agentId: car.agent_id, sessionId: request.sessionId, nonce: request.nonce, permit: request.permit, carHash: hashed });
      } catch (err) {
        failed[i] = err ?? new Error('undefined thrown');
      }
    }
    // Stage 2: one pipeline.
    const pending = prepared.filter((p): p is PreparedChecks => p !== undefined);
    let results: Array<StepResult | null> | undefined;
    let storeError: unknown;
    try {
      results = await checks.run(pending);
    } catch (err) {
      storeError = err;
    }
    if (sync.behind) await sync.catchUp(); // a reload heard meanwhile
    // Stage 3, in request order (trust and quarantine move with earlier
    // decisions): the rest of the pipeline and the audit record.
    const out = new Array<GateDecision>(n);
    let k = 0;
    for (let i = 0; i < n; i++) {
      const request = requests[i];
      const hashed = hashes[i];
      if (typeof hashed !== 'string') {
        out[i] = this.#invalid(request, hashed);
        continue;
      }
      const p = prepared[i];
      const result = p === undefined ? undefined : results?.[k++];
      let d: GateDecision;
      let trust = 0;
      try {
        const car = request.car as Car;
        trust = this.policy.trustScore(car.agent_id);
        if (failed[i] !== undefined) throw failed[i];
        if (sync.behind) {
          d = this.#deny('policy', `policy version ${this.policy.version} is behind the fleet's ${sync.fleetVersion} (fail closed)`, hashed, trust);
        } else {
          const q = this.#quarantineStage(car, hashed, trust);
          if (q !== null) d = q;
          else if (p === undefined) d = this.#deny('quarantine', 'agent was quarantined when the check began', hashed, trust);
          else d = this.#afterChecks(results !== undefined ? checks.finish(p, result ?? null) : this.#storeFailure(storeError, request, hashed), car, hashed, trust);
        }
      } catch (err) {
        d = this.#errorDeny(err, hashed, trust);
      }
      out[i] = this.#recordOrDeny(d, request, hashed);
    }
    return out;
  }

  /** Every request's CAR hash (or why there is none), in one native call where possible. */
  #hashAll(requests: GateRequest[]): Array<string | GuardError | Error> {
    const n = requests.length;
    const cars = new Array<unknown>(n);
    for (let i = 0; i < n; i++) cars[i] = isRequest(requests[i]) ? requests[i].car : undefined;
    let hashes: Array<string | GuardError | Error>;
    try {
      hashes = carHashes(cars);
    } catch {
      // A CAR's getter threw: hash one by one so the error is that request's.
      hashes = cars.map((car) => {
        try {
          return carHash(car as Car);
        } catch (err) {
          return err instanceof Error ? err : new Error(String(err));
        }
      });
    }
    for (let i = 0; i < n; i++) if (!isRequest(requests[i])) hashes[i] = REQUEST_NOT_OBJECT;
    return hashes;
  }

  /** Redis could not answer: deny (fail closed) or, with onStoreError 'local', this process's stores decide. */
  #storeFailure(err: unknown, request: GateRequest, hash: string): ChecksOutcome {
    if (this.#onStoreError === 'local' && err instanceof GuardError && err.code === ErrorCodes.STORE_UNAVAILABLE) {
      this.#fleet!.noteFallback();
      return this.#localChecks(request, (request.car as Car).agent_id, hash, true);
    }
    return { kind: 'deny', source: 'error', reason: `fleet store unavailable (fail closed): ${err instanceof Error ? err.message : String(err)}` };
  }

  /** The pipeline after hashing: `hashed` is the CAR hash, or why there is none. */
  #checkHashed(request: GateRequest, hashed: string | GuardError | Error): GateDecision {
    if (typeof hashed !== 'string') return this.#invalid(request, hashed);
    const hash = hashed;
    let d: GateDecision;
    let trust = 0;
    try {
      const car = request.car as Car;
      trust = this.policy.trustScore(car.agent_id);
      d = this.#quarantineStage(car, hash, trust) ?? this.#afterChecks(this.#localChecks(request, car.agent_id, hash, false), car, hash, trust);
    } catch (err) {
      d = this.#errorDeny(err, hash, trust);
    }
    return this.#recordOrDeny(d, request, hash);
  }

  /** A request without a CAR hash: a validation deny (or an internal error), recorded. */
  #invalid(request: GateRequest, why: GuardError | Error): GateDecision {
    let d: GateDecision;
    if (why === REQUEST_NOT_OBJECT) d = this.#deny('error', `internal error: request: expected an object but received ${describe(request)}`, null, 0);
    else if (why instanceof GuardError) d = this.#deny('validation', why.message, null, 0);
    else d = this.#errorDeny(why, null, 0);
    if (d.source === 'validation') {
      try {
        return this.#record(d, request, 'warning');
      } catch (err) {
        return this.#deny('error', `audit log unavailable: ${err instanceof Error ? err.message : String(err)}`, null, 0);
      }
    }
    return this.#recordOrDeny(d, request, null);
  }

  #errorDeny(err: unknown, hash: string | null, trust: number): GateDecision {
    return this.#deny('error', `internal error: ${err instanceof Error ? err.message : String(err)}`, hash, trust);
  }

  #recordOrDeny(d: GateDecision, request: GateRequest, hash: string | null): GateDecision {
    try {
      return this.#record(d, request, d.decision === 'allow' ? 'info' : 'warning');
    } catch (err) {
      // A required audit log that cannot record the decision: deny.
      return this.#deny('error', `audit log unavailable: ${err instanceof Error ? err.message : String(err)}`, hash, d.trust_score);
    }
  }

  #quarantineStage(car: Car, hash: string, trust: number): GateDecision | null {
    const agent = car.agent_id;
    const action = car.action_type;
    if (!this.quarantine.denies(agent, action)) return null;
    const q = this.quarantine.get(agent)!;
    this.quarantine.observe(agent, { ts: this.#clock(), action_type: action, decision: 'deny', car_hash: hash });
    return this.#deny('quarantine', `agent is quarantined (${q.status}): ${q.reason}`, hash, trust);
  }

  /**
   * Velocity, request nonce and permit against this process's stores (the
   * in-process gate; `fallback`: a fleet gate whose Redis is away, onStoreError 'local').
   */
  #localChecks(request: GateRequest, agent: string, hash: string, fallback: boolean): ChecksOutcome {
    if (this.velocity !== undefined) {
      const v = fallback ? this.velocity.checkLocal(agent, request.sessionId) : this.velocity.check(agent, request.sessionId);
      if (!v.allowed) return { kind: 'deny', source: 'velocity', reason: `rate limit exceeded (${v.scope})`, retryAfterMs: v.retry_after_ms };
    }
    if (request.nonce !== undefined) {
      const expiresAt = this.#clock() + this.#nonceTtlMs;
      const status = fallback ? this.replay.fleet!.checkLocal(request.nonce, expiresAt) : this.replay.check(request.nonce, expiresAt);
      if (status !== 'fresh') return { kind: 'deny', source: 'replay', reason: status === 'replay' ? 'request nonce was already used' : 'replay store is full (fail closed)' };
    }
    if (request.permit !== undefined) {
      if (this.keyring === undefined) return { kind: 'deny', source: 'permit', reason: 'a permit was presented but no keyring is configured' };
      const r = this.keyring.verify(request.permit, { carHash: hash });
      if (!r.valid) return { kind: 'deny', source: 'permit', reason: `permit rejected: ${r.reason}` };
      return { kind: 'permit', claims: r.claims };
    }
    return PASS;
  }

  /** The decision once the store-backed checks have spoken: their deny, a permit's allow, or cache and policy. */
  #afterChecks(outcome: ChecksOutcome, car: Car, hash: string, trust: number): GateDecision {
    if (outcome.kind === 'deny') {
      const d = this.#deny(outcome.source, outcome.reason, hash, trust);
      if (outcome.retryAfterMs !== undefined) d.retry_after_ms = outcome.retryAfterMs;
      return d;
    }
    if (outcome.kind === 'permit') {
      // A valid permit authorizes exactly this CAR; it is never cached.
      const c = outcome.claims;
      return { decision: 'allow', source: 'permit', reason: `permit ${c.jti} (${c.use})`, car_hash: hash, policy_version: this.policy.version, trust_score: trust, confidence: 1 };
    }
    const version = this.policy.version;
    // A fleet gate that is not hearing invalidations does not trust its cache.
    if (this.cache !== null && (this.#fleet === null || this.#fleet.subscribed)) {
      const hit = this.cache.get(hash, version);
      if (hit !== undefined) {
        return { decision: hit.decision, source: 'cache', reason: hit.reason ?? 'cached policy decision', car_hash: hash, policy_version: version, trust_score: trust, confidence: 1 };
      }
    }
    const p = this.policy.evaluate(car);
    if (p.quarantine) this.quarantine.quarantine(car.agent_id, `policy: ${p.reason}`);
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
