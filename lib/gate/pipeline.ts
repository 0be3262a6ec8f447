/**
 * The gate's decision pipeline, stage by stage (lib/gate/gate.ts wires the parts
 * and is the public face). In the contract's order:
 *   validate + canonicalize + hash -> quarantine -> velocity -> request nonce
 *   (replay) -> permit (if present) -> cache -> policy -> audit -> cache put.
 * The in-process path runs every stage synchronously; the fleet path runs
 * quarantine and permit signatures locally, velocity/nonce/permit id in one
 * Redis step per request (lib/gate/fleet-checks.ts), then the rest in order.
 */
import type { AuditLog, Severity } from '../audit/log';
import type { DecisionCache } from './cache';
import { carHashForDecision, carHashes, type Car } from '../canonical/car';
import { ErrorCodes, GuardError, describe } from '../errors';
import { PASS, type ChecksOutcome, type FleetGateChecks, type PreparedChecks } from './fleet-checks';
import type { FleetPolicySync } from './policy-sync';
import type { StepResult } from '../fleet/step';
import type { FleetStore, OnStoreError } from '../fleet/store';
import type { Keyring } from '../permits/keyring';
import type { PolicyEngine } from '../policy/engine';
import type { NonceQuota } from './nonce-quota';
import type { Quarantine } from './quarantine';
import type { ReplayDetector } from '../permits/replay';
import type { VelocityGuard } from './velocity';
import type { PendingCheck, Resolution } from './approvals/transitions';
import type { GateDecision, GateRequest, GateSource } from './decision';
import { approvalDecision, pendingCheck } from './approvals/stage';

export type { GateDecision, GateRequest, GateSource } from './decision';

/** What the pipeline works with (the Gate's parts). */
export interface PipelineParts {
  policy: PolicyEngine;
  keyring: Keyring | undefined;
  cache: DecisionCache | null;
  replay: ReplayDetector;
  velocity: VelocityGuard | undefined;
  quarantine: Quarantine;
  audit: AuditLog | undefined;
  nonceTtlMs: number;
  /** Live request nonces per agent and per client (null: no quota). */
  nonceQuota: { agents: NonceQuota; clients: NonceQuota } | null;
  clock: () => number;
  fleet: FleetStore | null;
  onStoreError: OnStoreError;
  fleetChecks: FleetGateChecks | null;
  policySync: FleetPolicySync | null;
  /** True once the gate (or its store) is closed: a fleet gate then denies everything. */
  closed: () => boolean;
  /** The approval stage: in-process (sync) or fleet (async, after the pipeline's Redis step). */
  approvals: { resolve(check: PendingCheck): Resolution | null } | null;
  fleetApprovals: { resolve(check: PendingCheck): Promise<Resolution | null> } | null;
}

/** A pending decision's approval check, for the fleet path to resolve after the synchronous stages. */
const pendingChecks = new WeakMap<GateDecision, PendingCheck>();

/** Marks a request that is not an object (check() reports it as an internal error deny). */
const REQUEST_NOT_OBJECT = new Error('request is not an object');

export function isRequest(request: unknown): request is GateRequest {
  return typeof request === 'object' && request !== null;
}

/**
 * The audit record type of a decision, by the stage that made it and what it
 * decided: a permit that allowed is `permit_accepted`, one refused
 * `permit_rejected` (the stage alone named both the same).
 */
export function auditTypeOf(source: GateSource, decision: GateDecision['decision']): string {
  switch (source) {
    case 'validation':
      return 'input_validation_failure';
    case 'velocity':
      return 'rate_limited';
    case 'replay':
      return 'replay_detected';
    case 'permit':
      return decision === 'allow' ? 'permit_accepted' : 'permit_rejected';
    default:
      return 'gate_decision';
  }
}

export class GatePipeline {
  constructor(private readonly p: PipelineParts) {}

  /** One request, every stage in-process. Never throws for a request object. */
  check(request: GateRequest): GateDecision {
    let hashed: string | GuardError | Error;
    try {
      hashed = isRequest(request) ? carHashForDecision(request.car) : REQUEST_NOT_OBJECT;
    } catch (err) {
      hashed = err instanceof Error ? err : new Error(String(err));
    }
    return this.checkHashed(request, hashed);
  }

  /**
   * One request whose CAR was hashed from its JSON text (the server's fast
   * path, lib/ipc/gate-line.ts): `check`'s stages with `hash` as the CAR
   * hash, `request.car` a stub (the CAR's action_type and agent_id) where
   * they read the CAR, and `loadCar()` for the policy, which reads the whole
   * CAR only when the cache does not answer.
   */
  checkParsed(hash: string, request: GateRequest, loadCar: () => Car): GateDecision {
    return this.checkHashed(request, hash, undefined, loadCar);
  }

  /** Many requests in-process: hashed in one native call, then `check`'s stages each in order. */
  checkBatch(requests: GateRequest[]): GateDecision[] {
    if (!Array.isArray(requests)) throw new TypeError(`Expected an array of requests but received ${describe(requests)}`);
    const hashes = this.hashAll(requests);
    // Cache expiry is judged at one instant for the whole batch (see DecisionCache.now).
    const now = this.p.cache?.now();
    const out = new Array<GateDecision>(requests.length);
    for (let i = 0; i < requests.length; i++) out[i] = this.checkHashed(requests[i], hashes[i], now);
    return out;
  }

  /**
   * Fleet gate: the same decisions as `checkAsync` on each request in order,
   * with all Redis work of the batch in one pipeline. (Exception: when a policy decision inside the batch quarantines
   * an agent, that agent's later requests in the batch are denied by
   * quarantine as in order, but their velocity token and nonce were already
   * spent by the pipeline.)
   */
  async checkBatchFleet(requests: GateRequest[]): Promise<GateDecision[]> {
    const checks = this.p.fleetChecks!;
    if (!Array.isArray(requests)) throw new TypeError(`Expected an array of requests but received ${describe(requests)}`);
    const sync = this.p.policySync!;
    if (sync.behind) await sync.catchUp();
    const n = requests.length;
    const hashes = this.hashAll(requests);
    // Stage 1, local: quarantine and permit signatures; a Redis step for the rest.
    const prepared = new Array<PreparedChecks | undefined>(n);
    const failed = new Array<unknown>(n);
    for (let i = 0; i < n; i++) {
      const hashed = hashes[i];
      if (typeof hashed !== 'string') continue;
      const request = requests[i];
      try {
        const car = request.car as Car;
        if (this.p.quarantine.denies(car.agent_id, car.action_type)) continue;
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
        out[i] = this.invalid(request, hashed);
        continue;
      }
      const p = prepared[i];
      const result = p === undefined ? undefined : results?.[k++];
      let d: GateDecision;
      let trust = 0;
      try {
        const car = request.car as Car;
        trust = this.p.policy.trustScore(car.agent_id);
        if (failed[i] !== undefined) throw failed[i];
        if (this.p.closed()) {
          d = this.deny('error', 'the gate or its fleet store is closed (fail closed)', hashed, trust);
        } else if (sync.behind) {
          d = this.deny('policy', `policy version ${this.p.policy.version} is behind the fleet's ${sync.fleetVersion} (fail closed)`, hashed, trust);
        } else {
          const q = this.quarantineStage(car, hashed, trust);
          if (q !== null) d = q;
          else if (p === undefined) d = this.deny('quarantine', 'agent was quarantined when the check began', hashed, trust);
          else d = this.afterChecks(results !== undefined ? checks.finish(p, result ?? null) : this.storeFailure(storeError, request, hashed), car, hashed, trust, undefined, undefined, request);
          const pending = pendingChecks.get(d);
          if (pending !== undefined) d = approvalDecision(await this.p.fleetApprovals!.resolve(pending), pending, trust);
        }
      } catch (err) {
        d = this.errorDeny(err, hashed, trust);
      }
      out[i] = this.recordOrDeny(d, request, hashed);
    }
    return out;
  }

  /** Every request's CAR hash (or why there is none), in one native call where possible. */
  private hashAll(requests: GateRequest[]): Array<string | GuardError | Error> {
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
          return carHashForDecision(car as Car);
        } catch (err) {
          return err instanceof Error ? err : new Error(String(err));
        }
      });
    }
    for (let i = 0; i < n; i++) if (!isRequest(requests[i])) hashes[i] = REQUEST_NOT_OBJECT;
    return hashes;
  }

  /** Redis could not answer: deny (fail closed) or, with onStoreError 'local', this process's stores decide. */
  private storeFailure(err: unknown, request: GateRequest, hash: string): ChecksOutcome {
    if (this.p.onStoreError === 'local' && err instanceof GuardError && err.code === ErrorCodes.STORE_UNAVAILABLE) {
      this.p.fleet!.noteFallback();
      return this.localChecks(request, (request.car as Car).agent_id, hash, true);
    }
    return { kind: 'deny', source: 'error', reason: `fleet store unavailable (fail closed): ${err instanceof Error ? err.message : String(err)}` };
  }

  /** The pipeline after hashing: `hashed` is the CAR hash, or why there is none; `cacheNow` and `loadCar` as in afterChecks. */
  private checkHashed(request: GateRequest, hashed: string | GuardError | Error, cacheNow?: number, loadCar?: () => Car): GateDecision {
    if (typeof hashed !== 'string') return this.invalid(request, hashed);
    const hash = hashed;
    let d: GateDecision;
    let trust = 0;
    try {
      const car = request.car as Car;
      trust = this.p.policy.trustScore(car.agent_id);
      d = this.quarantineStage(car, hash, trust) ?? this.afterChecks(this.localChecks(request, car.agent_id, hash, false), car, hash, trust, cacheNow, loadCar, request);
    } catch (err) {
      d = this.errorDeny(err, hash, trust);
    }
    return this.recordOrDeny(d, request, hash);
  }

  /** A request without a CAR hash: a validation deny (or an internal error), recorded. */
  private invalid(request: GateRequest, why: GuardError | Error): GateDecision {
    let d: GateDecision;
    if (why === REQUEST_NOT_OBJECT) d = this.deny('error', `internal error: request: expected an object but received ${describe(request)}`, null, 0);
    else if (why instanceof GuardError) d = this.deny('validation', why.message, null, 0);
    else d = this.errorDeny(why, null, 0);
    if (d.source === 'validation') {
      try {
        return this.record(d, request, 'warning');
      } catch (err) {
        return this.deny('error', `audit log unavailable: ${err instanceof Error ? err.message : String(err)}`, null, 0);
      }
    }
    return this.recordOrDeny(d, request, null);
  }

  private errorDeny(err: unknown, hash: string | null, trust: number): GateDecision {
    return this.deny('error', `internal error: ${err instanceof Error ? err.message : String(err)}`, hash, trust);
  }

  private recordOrDeny(d: GateDecision, request: GateRequest, hash: string | null): GateDecision {
    try {
      return this.record(d, request, d.decision === 'allow' ? 'info' : 'warning');
    } catch (err) {
      // A required audit log that cannot record the decision: deny.
      return this.deny('error', `audit log unavailable: ${err instanceof Error ? err.message : String(err)}`, hash, d.trust_score);
    }
  }

  private quarantineStage(car: Car, hash: string, trust: number): GateDecision | null {
    const agent = car.agent_id;
    const action = car.action_type;
    if (!this.p.quarantine.denies(agent, action)) return null;
    const q = this.p.quarantine.get(agent)!;
    this.p.quarantine.observe(agent, { ts: this.p.clock(), action_type: action, decision: 'deny', car_hash: hash });
    return this.deny('quarantine', `agent is quarantined (${q.status}): ${q.reason}`, hash, trust);
  }

  /**
   * Velocity, request nonce and permit against this process's stores (the
   * in-process gate; `fallback`: a fleet gate whose Redis is away, onStoreError 'local').
   */
  private localChecks(request: GateRequest, agent: string, hash: string, fallback: boolean): ChecksOutcome {
    if (this.p.velocity !== undefined) {
      const v = fallback ? this.p.velocity.checkLocal(agent, request.sessionId) : this.p.velocity.check(agent, request.sessionId);
      if (!v.allowed) return { kind: 'deny', source: 'velocity', reason: `rate limit exceeded (${v.scope})`, retryAfterMs: v.retry_after_ms };
    }
    if (request.nonce !== undefined) {
      const now = this.p.clock();
      const expiresAt = now + this.p.nonceTtlMs;
      const quota = this.p.nonceQuota;
      const client = typeof request.client === 'string' ? request.client : undefined;
      // Checked before the store: an agent or client at its share is denied
      // without taking a slot that belongs to the others.
      if (quota !== null) {
        if (!quota.agents.admits(agent, now)) return { kind: 'deny', source: 'replay', reason: `this agent holds its share of the nonce store (${quota.agents.limit} live nonces; fail closed)` };
        if (client !== undefined && !quota.clients.admits(client, now)) return { kind: 'deny', source: 'replay', reason: `this client holds its share of the nonce store (${quota.clients.limit} live nonces; fail closed)` };
      }
      const status = fallback ? this.p.replay.fleet!.checkLocal(request.nonce, expiresAt) : this.p.replay.check(request.nonce, expiresAt);
      if (status !== 'fresh') return { kind: 'deny', source: 'replay', reason: status === 'replay' ? 'request nonce was already used' : 'replay store is full (fail closed)' };
      if (quota !== null) {
        quota.agents.record(agent, expiresAt, now);
        if (client !== undefined) quota.clients.record(client, expiresAt, now);
      }
    }
    if (request.permit !== undefined) {
      if (this.p.keyring === undefined) return { kind: 'deny', source: 'permit', reason: 'a permit was presented but no keyring is configured' };
      const r = this.p.keyring.verify(request.permit, { carHash: hash });
      if (!r.valid) return { kind: 'deny', source: 'permit', reason: `permit rejected: ${r.reason}` };
      return { kind: 'permit', claims: r.claims };
    }
    return PASS;
  }

  /**
   * The decision once the store-backed checks have spoken: their deny, or
   * cache and policy, then the approval stage for a `pending`. A valid permit
   * is an approval, not an exemption: it turns a `pending` into an allow for
   * its CAR and changes no other answer. `cacheNow`: a batch's instant on the
   * cache's clock (undefined: the cache reads its clock). `loadCar`: the
   * whole CAR for the policy, where `car` holds only action_type and agent_id.
   */
  private afterChecks(outcome: ChecksOutcome, car: Car, hash: string, trust: number, cacheNow?: number, loadCar?: () => Car, request?: GateRequest): GateDecision {
    if (outcome.kind === 'deny') {
      const d = this.deny(outcome.source, outcome.reason, hash, trust);
      if (outcome.retryAfterMs !== undefined) d.retry_after_ms = outcome.retryAfterMs;
      return d;
    }
    const permit = outcome.kind === 'permit' ? outcome.claims : null;
    const version = this.p.policy.version;
    // A fleet gate that is not hearing invalidations does not trust its cache.
    // A min_trust decision is cached only when made with enough trust, and
    // served only while the agent still has it.
    if (this.p.cache !== null && (this.p.fleet === null || this.p.fleet.subscribed) && this.p.policy.meetsMinTrust(car.action_type, trust)) {
      // lookupAt: getAt's answer as a decision code and lastReason, with no entry object made.
      const cache = this.p.cache;
      const decision = cache.lookupAt(hash, version, cacheNow);
      if (decision !== undefined) {
        const reason = cache.lastReason;
        const d: GateDecision = { decision, source: 'cache', reason: reason !== '' ? reason : 'cached policy decision', car_hash: hash, policy_version: version, trust_score: trust, confidence: 1 };
        // A pending (put by an operator) still goes to a person.
        return d.decision === 'pending' ? this.pendingStage(d, permit, loadCar === undefined ? car : loadCar(), hash, request) : d;
      }
    }
    const whole = loadCar === undefined ? car : loadCar();
    const p = this.p.policy.evaluateWithTrust(whole, trust);
    if (p.quarantine) this.p.quarantine.quarantine(car.agent_id, `policy: ${p.reason}`);
    const confidence = p.matched_rule === null || p.would_be !== undefined ? 0.5 : 1;
    // Only final decisions a rule made are cached: a cached decision is served
    // with confidence 1, so a default or an audit/permissive override (0.5) is
    // decided afresh each time rather than served with a confidence it lacks;
    // a pending is the approval stage's each time.
    if (this.p.cache !== null && p.cacheable && confidence === 1 && p.policy_version === version && p.decision !== 'pending') {
      this.p.cache.put(hash, { decision: p.decision, reason: p.reason, policyVersion: p.policy_version });
    }
    const d: GateDecision = { decision: p.decision, source: 'policy', reason: p.reason, car_hash: hash, policy_version: p.policy_version, trust_score: p.trust_score, confidence };
    return d.decision === 'pending' ? this.pendingStage(d, permit, whole, hash, request) : d;
  }

  /**
   * A `pending`: a permit for this CAR allows it; else the approval stage
   * (in-process now; in fleet mode marked for checkBatchFleet, which awaits
   * Redis). Without approvals configured, the pending stands as it is.
   */
  private pendingStage(d: GateDecision, permit: { jti: string; use: string } | null, car: Car, hash: string, request?: GateRequest): GateDecision {
    if (permit !== null) return { decision: 'allow', source: 'permit', reason: `permit ${permit.jti} (${permit.use}) approves: ${d.reason}`, car_hash: hash, policy_version: d.policy_version, trust_score: d.trust_score, confidence: 1 };
    const settings = this.p.policy.approvalOf(car.action_type);
    if (settings === undefined || (this.p.approvals === null && this.p.fleetApprovals === null)) return d;
    const check = pendingCheck(d, car, hash, request, settings, this.p.clock());
    if (this.p.approvals === null) {
      pendingChecks.set(d, check);
      return d;
    }
    return approvalDecision(this.p.approvals.resolve(check), check, d.trust_score);
  }

  private deny(source: GateSource, reason: string, hash: string | null, trust: number): GateDecision {
    return { decision: 'deny', source, reason, car_hash: hash, policy_version: this.p.policy.version, trust_score: trust, confidence: 1 };
  }

  private record(d: GateDecision, request: GateRequest, severity: Severity): GateDecision {
    const audit = this.p.audit;
    if (audit === undefined) return d;
    const car = (typeof request === 'object' && request !== null ? request.car : undefined) as Record<string, unknown> | undefined;
    const sessionId = typeof request?.sessionId === 'string' ? request.sessionId : undefined;
    if (d.car_hash !== null && car) {
      // A hashed CAR has string agent_id and action_type: the fixed-shape record.
      audit.appendDecision(auditTypeOf(d.source, d.decision), severity, {
        decision: d.decision,
        source: d.source,
        reason: d.reason,
        car_hash: d.car_hash,
        policy_version: d.policy_version,
        agent_id: car.agent_id as string,
        action_type: car.action_type as string,
        session_id: sessionId,
      });
      return d;
    }
    const fields: Record<string, unknown> = { decision: d.decision, source: d.source, reason: d.reason, car_hash: d.car_hash, policy_version: d.policy_version };
    if (sessionId !== undefined) fields.session_id = sessionId;
    audit.append(auditTypeOf(d.source, d.decision), severity, fields);
    return d;
  }
}
