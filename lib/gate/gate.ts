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
import { EventEmitter } from 'node:events';
import type { AuditLog } from '../audit/log';
import { ApprovalBook, type ApprovalBookOptions } from './approvals/book';
import { FleetApprovalBook } from './approvals/fleet-book';
import { ApprovalJournal } from './approvals/journal';
import { ApprovalWebhook, type ApprovalWebhookOptions } from './approvals/webhook';
import type { ApprovalEvent } from './approvals/types';
import type { Car } from '../canonical/car';
import { DecisionCache } from './cache';
import { ErrorCodes, GuardError, describe } from '../errors';
import { FleetGateChecks } from './fleet-checks';
import { FleetPolicySync } from './policy-sync';
import { checkOnStoreError, resolveStore, type FleetStore, type OnStoreError, type StoreOption } from '../fleet/store';
import { GatePipeline } from './pipeline';
import type { GateDecision, GateRequest } from './decision';
import type { Keyring } from '../permits/keyring';
import { PolicyEngine, type PolicyInput } from '../policy/engine';
import { Quarantine } from './quarantine';
import { sandboxProfileFor } from './sandbox-profile';
import type { SandboxProfile } from '../sandbox/types';
import { ReplayDetector } from '../permits/replay';
import { NonceQuota } from './nonce-quota';
import { VelocityGuard, type VelocityGuardOptions } from './velocity';

export type { GateDecision, GateRequest, GateSource } from './decision';

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
  /**
   * Each agent's and each client's share of the nonce store: the live
   * request nonces one may hold (past it, its own nonce requests are denied,
   * source 'replay', and nobody else's). Default: a sixteenth of the replay
   * store's capacity per agent, a quarter per client; `false`: no quota.
   */
  nonceQuota?: { perAgent?: number; perClient?: number } | false;
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
  /**
   * Approval requests for `pending` decisions (on by default, in memory; in
   * Redis for a fleet gate). `journal`: a file that keeps them across
   * restarts (`serve` uses its state directory). `false`: no approval stage,
   * a pending stays a bare pending.
   */
  approvals?: (ApprovalBookOptions & { journal?: string }) | false;
  /** POST each new approval request and each resolution, signed (see ApprovalWebhook). */
  webhook?: ApprovalWebhookOptions | ApprovalWebhook;
}

export class Gate extends EventEmitter {
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
  readonly #pipeline: GatePipeline;
  #closed = false;
  readonly #ownsQuarantine: boolean;
  /**
   * Approval requests: list, get, approve, deny, wait. In-process gates
   * answer at once (await works too); a fleet gate's answers are promises.
   */
  readonly approvals: ApprovalBook | FleetApprovalBook | null;
  readonly #webhook: ApprovalWebhook | null;
  readonly #ownsWebhook: boolean;
  readonly #journal: ApprovalJournal | null = null;
  /** `approval` listeners that threw (their errors are not the gate's: counted, audited). */
  approvalListenerErrors = 0;

  constructor(options: GateOptions) {
    super();
    if (typeof options !== 'object' || options === null || options.policy === undefined) {
      throw new TypeError(`Expected options with a policy for Gate but received ${describe(options)}`);
    }
    const { policy, keyring, cache, replay, velocity, quarantine, audit, nonceTtlMs = 300_000, clock = Date.now, nonceQuota } = options;
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
    this.#ownsQuarantine = quarantine === undefined;
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
    const approvals = options.approvals ?? {};
    if (approvals !== false && (typeof approvals !== 'object' || approvals === null)) throw new TypeError(`Expected approvals as options or false but received ${describe(approvals)}`);
    const webhook = options.webhook;
    this.#ownsWebhook = webhook !== undefined && !(webhook instanceof ApprovalWebhook);
    this.#webhook = webhook === undefined ? null : webhook instanceof ApprovalWebhook ? webhook : new ApprovalWebhook({ audit, ...webhook });
    const announce = (event: ApprovalEvent) => this.#announce(event);
    if (approvals === false) this.approvals = null;
    else if (fleet !== null) {
      if (approvals.journal !== undefined) throw new TypeError('A fleet gate keeps approval requests in Redis: drop approvals.journal');
      this.approvals = new FleetApprovalBook(fleet, { audit, announce }, clock);
    } else {
      let restored: ReturnType<typeof ApprovalJournal.open>['requests'] = [];
      if (approvals.journal !== undefined) {
        const opened = ApprovalJournal.open(approvals.journal);
        this.#journal = opened.journal;
        restored = opened.requests;
      }
      this.approvals = new ApprovalBook({ audit, journal: this.#journal ?? undefined, announce }, clock, approvals, restored);
    }
    let quota: { agents: NonceQuota; clients: NonceQuota } | null = null;
    if (nonceQuota !== false) {
      if (nonceQuota !== undefined && (typeof nonceQuota !== 'object' || nonceQuota === null)) throw new TypeError(`Expected nonceQuota as { perAgent?, perClient } or false but received ${describe(nonceQuota)}`);
      const capacity = this.replay.stats().capacity;
      const perAgent = nonceQuota?.perAgent ?? Math.max(1, Math.floor(capacity / 16));
      const perClient = nonceQuota?.perClient ?? Math.max(1, Math.floor(capacity / 4));
      quota = { agents: new NonceQuota(perAgent), clients: new NonceQuota(perClient) };
    }
    this.#pipeline = new GatePipeline({
      policy: this.policy,
      keyring: this.keyring,
      cache: this.cache,
      replay: this.replay,
      velocity: this.velocity,
      quarantine: this.quarantine,
      audit,
      nonceTtlMs,
      nonceQuota: quota,
      clock,
      fleet,
      onStoreError: this.#onStoreError,
      fleetChecks: this.#fleetChecks,
      policySync: this.#policySync,
      closed: () => this.#closed || (fleet !== null && fleet.closed),
      approvals: this.approvals instanceof ApprovalBook ? this.approvals : null,
      fleetApprovals: this.approvals instanceof FleetApprovalBook ? this.approvals : null,
    });
  }

  /** Tells `approval` listeners and the webhook; a listener's throw is not the gate's failure. */
  #announce(event: ApprovalEvent): void {
    try {
      this.emit('approval', event);
    } catch (err) {
      this.approvalListenerErrors++;
      try {
        this.audit?.append('approval_listener_failed', 'warning', { approval_id: event.request.id, event: event.type, error: err instanceof Error ? err.message : String(err) });
      } catch {
        // the change itself was recorded; a closed log cannot take this note
      }
    }
    this.#webhook?.send(event);
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

  /**
   * Stops listening to the fleet and quits a Redis connection the gate
   * opened; a fleet gate denies every check afterwards. Idempotent.
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.approvals?.close();
    this.#journal?.close();
    if (this.#ownsWebhook) await this.#webhook?.close();
    this.#policySync?.close();
    if (this.#ownsQuarantine) this.quarantine.close();
    const owned = this.#ownedStore;
    this.#ownedStore = null;
    await owned?.close();
  }

  /** How long a request nonce is remembered, ms (what a permit's lifetime must fit in). */
  get nonceTtlMs(): number {
    return this.#nonceTtlMs;
  }

  /** The process sandbox profile this agent's quarantine requires (lib/gate/sandbox-profile.ts). */
  sandboxFor(agentId: string): SandboxProfile {
    return sandboxProfileFor(this.quarantine, agentId);
  }

  /** Decides one request. Never throws for a request object: failures are denies. */
  check(request: GateRequest): GateDecision {
    if (this.#fleet !== null) throw new GuardError(ErrorCodes.STORE_ASYNC, 'This Gate keeps its state in Redis: use checkAsync / checkBatchAsync');
    return this.#pipeline.check(request);
  }

  /**
   * @internal The IPC server's fast path: `check` for a request whose CAR was
   * hashed from its JSON text (lib/ipc/gate-line.ts). `request.car` holds
   * only the CAR's action_type and agent_id; `loadCar` gives the whole CAR
   * when the policy must read it. The request's other fields are as in
   * `check`.
   */
  checkParsed(carHash: string, request: GateRequest, loadCar: () => Car): GateDecision {
    if (this.#fleet !== null) throw new GuardError(ErrorCodes.STORE_ASYNC, 'This Gate keeps its state in Redis: use checkAsync / checkBatchAsync');
    return this.#pipeline.checkParsed(carHash, request, loadCar);
  }

  /**
   * Decides many requests: the same answers as calling `check` on each, in
   * order. All CARs are read and hashed first, in one native call; cached
   * decisions' expiry is judged at one instant (the cache clock is read once).
   */
  checkBatch(requests: GateRequest[]): GateDecision[] {
    if (this.#fleet !== null) throw new GuardError(ErrorCodes.STORE_ASYNC, 'This Gate keeps its state in Redis: use checkAsync / checkBatchAsync');
    return this.#pipeline.checkBatch(requests);
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
    if (this.#fleet === null) return this.checkBatch(requests);
    return this.#pipeline.checkBatchFleet(requests);
  }
}
