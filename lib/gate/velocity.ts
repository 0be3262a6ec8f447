/**
 * VelocityGuard: token-bucket rate limits per agent and per (agent, session).
 *
 * Integer milli-token arithmetic with exact refill: a limit of N per W ms adds
 * N*1000 milli-tokens every W ms, and the fraction of a milli-token that one
 * refill leaves over is carried to the next (so 10 per 60 s is exactly 10 per
 * 60 s, never rounded to whole tokens per second). A bucket holds at most
 * N * burst tokens. A request costs one token from every bucket it touches,
 * and only when all of them can pay.
 *
 * Memory is bounded: buckets are kept in last-use order and one that has been
 * idle long enough to refill completely is dropped (it is the same as a new
 * one). When the table is full of buckets that are not yet full, a new agent
 * is denied (fail closed) rather than resetting someone's bucket.
 *
 * Plain TypeScript: a Map lookup costs less than one N-API crossing, so a
 * native version would be slower through the whole gate.
 */
import { ErrorCodes, GuardError, describe } from '../errors';
import { decodeSteps, encodeSteps, type StepResult } from '../fleet/step';
import { checkOnStoreError, resolveStore, type FleetStore, type OnStoreError, type StoreOption } from '../fleet/store';
import { FleetVelocity } from '../fleet/velocity';
import { clockOption, optionsObject } from '../native/store-common';

export interface VelocityGuardOptions {
  /** Requests per window for each agent; omit for no per-agent limit. */
  maxPerAgent?: number;
  /** Requests per window for each (agent, session); omit for no per-session limit. */
  maxPerSession?: number;
  /** The window, in ms (1 ms to 24 h). */
  windowMs: number;
  /** Bucket size as a multiple of the per-window limit (1 to 100). Default 1. */
  burst?: number;
  /** Most buckets kept per scope. Default 100000. */
  maxBuckets?: number;
  /** Milliseconds (any monotonic origin); default `Date.now`. */
  clock?: () => number;
  /**
   * Where the buckets live: `memory` (default) or Redis, one budget for every
   * process on the same prefix (use `checkAsync`; the sync `check` throws
   * ERR_STORE_ASYNC). Every process must use the same limits.
   */
  store?: StoreOption;
  /** With Redis unreachable: `deny` (default) or `local` (charge this process's buckets). */
  onStoreError?: OnStoreError;
}

export type VelocityScope = 'agent' | 'session';

export type VelocityVerdict =
  | { allowed: true }
  | {
      allowed: false;
      /** Which limit denied: a bucket, or `capacity` when no bucket could be kept for a new key (fail closed). */
      scope: VelocityScope | 'capacity';
      /** Wait at least this long before the request would be allowed (0 for `capacity`: unknown). */
      retry_after_ms: number;
    };

/** The limits a VelocityGuard enforces (`maxPerAgent` / `maxPerSession` absent: no such limit). */
export interface VelocityLimits {
  maxPerAgent?: number;
  maxPerSession?: number;
  windowMs: number;
  burst: number;
  maxBuckets: number;
}

export interface VelocityStats {
  agents: number;
  sessions: number;
  allowed: number;
  denied: number;
  evicted: number;
}

const MILLI = 1000;
export const DEFAULT_MAX_BUCKETS = 100_000;

interface Bucket {
  /** Milli-tokens available. */
  tokens: number;
  /** Refill numerator carried over: milli-tokens * windowMs not yet whole. */
  carry: number;
  /** Clock value of the last refill. */
  at: number;
}

/** One limit (agent or session): its buckets and their arithmetic. */
class BucketTable {
  readonly buckets = new Map<string, Bucket>();
  /** Milli-tokens added per window. */
  readonly rate: number;
  /** Bucket size in milli-tokens. */
  readonly capacity: number;
  /** Time for an empty bucket to fill: idle this long means "as new". */
  readonly fillMs: number;
  evicted = 0;

  constructor(
    perWindow: number,
    burst: number,
    readonly windowMs: number,
    readonly maxBuckets: number,
  ) {
    this.rate = perWindow * MILLI;
    this.capacity = perWindow * burst * MILLI;
    this.fillMs = Math.ceil((this.capacity * windowMs) / this.rate);
  }

  /** The bucket for `key`, refilled to `now`; null when none can be kept. */
  bucket(key: string, now: number): Bucket | null {
    let b = this.buckets.get(key);
    if (b === undefined) {
      if (this.buckets.size >= this.maxBuckets && !this.evictIdle(now)) return null;
      b = { tokens: this.capacity, carry: 0, at: now };
    } else {
      this.refill(b, now);
      this.buckets.delete(key); // re-inserted below: Map order is last-use order
    }
    this.buckets.set(key, b);
    return b;
  }

  refill(b: Bucket, now: number): void {
    const elapsed = now - b.at;
    if (elapsed <= 0) return; // a clock that stepped back adds nothing
    b.at = now;
    if (b.tokens >= this.capacity) return;
    if (elapsed >= this.fillMs) {
      b.tokens = this.capacity;
      b.carry = 0;
      return;
    }
    // elapsed < fillMs keeps this product below 2^53 (checked at construction).
    const numerator = elapsed * this.rate + b.carry;
    const added = Math.floor(numerator / this.windowMs);
    b.carry = numerator - added * this.windowMs;
    b.tokens += added;
    if (b.tokens >= this.capacity) {
      b.tokens = this.capacity;
      b.carry = 0;
    }
  }

  /** Milliseconds until `b` holds one token. */
  retryAfter(b: Bucket): number {
    const deficit = MILLI - b.tokens;
    return Math.max(1, Math.ceil((deficit * this.windowMs - b.carry) / this.rate));
  }

  /** Drops the least recently used buckets that are idle enough to be full again. */
  private evictIdle(now: number): boolean {
    let freed = false;
    for (const [key, b] of this.buckets) {
      if (now - b.at < this.fillMs && b.tokens < this.capacity) break; // oldest is still draining
      this.buckets.delete(key);
      this.evicted++;
      freed = true;
      if (this.buckets.size < this.maxBuckets * 0.99) break;
    }
    return freed;
  }
}

function limitOption(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > 1_000_000) {
    throw new RangeError(`Expected an integer in [1, 1000000] for ${name} but received ${describe(value)}`);
  }
  return value;
}

export class VelocityGuard {
  readonly #agents: BucketTable | null;
  readonly #sessions: BucketTable | null;
  readonly #clock: () => number;
  readonly #limits: Readonly<VelocityLimits>;
  #allowed = 0;
  #denied = 0;
  #fleet: FleetVelocity | null = null;
  #ownedStore: FleetStore | null = null;

  constructor(options: VelocityGuardOptions) {
    const o = optionsObject(options, 'VelocityGuard');
    const perAgent = limitOption(o.maxPerAgent, 'maxPerAgent');
    const perSession = limitOption(o.maxPerSession, 'maxPerSession');
    const windowMs = o.windowMs;
    if (typeof windowMs !== 'number' || !Number.isSafeInteger(windowMs) || windowMs < 1 || windowMs > 86_400_000) {
      throw new RangeError(`Expected an integer in [1, 86400000] for windowMs but received ${describe(windowMs)}`);
    }
    const burst = o.burst ?? 1;
    if (typeof burst !== 'number' || !Number.isFinite(burst) || burst < 1 || burst > 100) {
      throw new RangeError(`Expected a number in [1, 100] for burst but received ${describe(burst)}`);
    }
    const maxBuckets = o.maxBuckets ?? DEFAULT_MAX_BUCKETS;
    if (!Number.isSafeInteger(maxBuckets) || maxBuckets < 1 || maxBuckets > 10_000_000) {
      throw new RangeError(`Expected an integer in [1, 10000000] for maxBuckets but received ${describe(maxBuckets)}`);
    }
    const table = (perWindow: number | undefined, name: string) => {
      if (perWindow === undefined) return null;
      if (!Number.isSafeInteger(perWindow * burst * MILLI)) {
        throw new RangeError(`Expected ${name} * burst to be a whole number of milli-tokens`);
      }
      // Refill products stay below 2^53: capacity * window (and so rate * fillMs).
      if (perWindow * burst * MILLI * windowMs > Number.MAX_SAFE_INTEGER / 2) {
        throw new RangeError(`${name} * burst * windowMs is too large for exact integer refill`);
      }
      return new BucketTable(perWindow, burst, windowMs, maxBuckets);
    };
    this.#agents = table(perAgent, 'maxPerAgent');
    this.#sessions = table(perSession, 'maxPerSession');
    this.#clock = clockOption(o.clock);
    const limits: VelocityLimits = { windowMs, burst, maxBuckets };
    if (perAgent !== undefined) limits.maxPerAgent = perAgent;
    if (perSession !== undefined) limits.maxPerSession = perSession;
    this.#limits = Object.freeze(limits);
    const onStoreError = checkOnStoreError(o.onStoreError);
    const { store, owned } = resolveStore(o.store, 'VelocityGuard');
    if (store !== null) {
      const shape = (t: BucketTable | null) => (t === null ? null : { rate: t.rate, capacity: t.capacity, fillMs: t.fillMs });
      this.#fleet = new FleetVelocity(store, onStoreError, windowMs, shape(this.#agents), shape(this.#sessions));
      if (owned) this.#ownedStore = store;
    }
  }

  /**
   * The Redis side, or null for in-process buckets (the gate folds it into its one round trip).
   * Read by the gate.
   * @internal
   */
  get fleet(): FleetVelocity | null {
    return this.#fleet;
  }

  /**
   * `check` for any store. With Redis: one atomic script, one round trip;
   * when Redis cannot answer, ERR_STORE_UNAVAILABLE (onStoreError 'deny') or
   * this process's buckets decide ('local').
   */
  async checkAsync(agentId: string, sessionId?: string): Promise<VelocityVerdict> {
    const fleet = this.#fleet;
    if (fleet === null) return this.#checkLocal(agentId, sessionId);
    checkIds(agentId, sessionId);
    const now = this.#now();
    if (now === null) {
      this.#denied++;
      return { allowed: false, scope: 'capacity', retry_after_ms: 0 };
    }
    let reply: unknown;
    try {
      const steps = encodeSteps([fleet.parts(agentId, sessionId, now)]);
      reply = await fleet.store.run((r) => r.gkGateSteps(steps));
    } catch (err) {
      if (fleet.onStoreError === 'local' && err instanceof GuardError && err.code === ErrorCodes.STORE_UNAVAILABLE) {
        fleet.store.noteFallback();
        return this.#checkLocal(agentId, sessionId);
      }
      throw err;
    }
    return this.verdictOf(decodeSteps(reply, 1)[0]);
  }

  /**
   * Counts and shapes a step's velocity answer (the gate's batched path uses it too).
   * Used by the gate's batched path.
   * @internal
   */
  verdictOf(step: StepResult): VelocityVerdict {
    if (step.kind === 'velocity') {
      this.#denied++;
      return { allowed: false, scope: step.scope, retry_after_ms: step.retryAfterMs };
    }
    this.#allowed++;
    return ALLOWED;
  }

  /** Charges the in-process buckets (the 'local' fallback of a fleet guard). */
  checkLocal(agentId: string, sessionId?: string): VelocityVerdict {
    return this.#checkLocal(agentId, sessionId);
  }

  /** Quits a Redis connection this guard opened. Idempotent. */
  close(): void {
    void this.#ownedStore?.close();
    this.#ownedStore = null;
  }

  #now(): number | null {
    try {
      const now = this.#clock();
      return Number.isFinite(now) ? now : null;
    } catch {
      return null;
    }
  }

  /** The configured limits (read-only). */
  get limits(): Readonly<VelocityLimits> {
    return this.#limits;
  }

  /**
   * Charges one request to `agentId` (and to `(agentId, sessionId)` when a
   * session is given and a per-session limit is set). Nothing is charged on a
   * deny. Any internal failure is a deny.
   */
  check(agentId: string, sessionId?: string): VelocityVerdict {
    if (this.#fleet !== null) throw new GuardError(ErrorCodes.STORE_ASYNC, 'This VelocityGuard keeps its buckets in Redis: use checkAsync');
    return this.#checkLocal(agentId, sessionId);
  }

  #checkLocal(agentId: string, sessionId?: string): VelocityVerdict {
    checkIds(agentId, sessionId);
    const now = this.#now();
    if (now === null) {
      this.#denied++;
      return { allowed: false, scope: 'capacity', retry_after_ms: 0 };
    }
    const a = this.#agents?.bucket(agentId, now);
    const s = sessionId === undefined ? undefined : this.#sessions?.bucket(agentId + '\u0000' + sessionId, now);
    if (a === null || s === null) {
      this.#denied++;
      return { allowed: false, scope: 'capacity', retry_after_ms: 0 };
    }
    const agentShort = a !== undefined && a.tokens < MILLI;
    const sessionShort = s !== undefined && s.tokens < MILLI;
    if (agentShort || sessionShort) {
      this.#denied++;
      const retry = Math.max(agentShort ? this.#agents!.retryAfter(a!) : 0, sessionShort ? this.#sessions!.retryAfter(s!) : 0);
      return { allowed: false, scope: agentShort ? 'agent' : 'session', retry_after_ms: retry };
    }
    if (a !== undefined) a.tokens -= MILLI;
    if (s !== undefined) s.tokens -= MILLI;
    this.#allowed++;
    return ALLOWED;
  }

  stats(): VelocityStats {
    return {
      agents: this.#agents?.buckets.size ?? 0,
      sessions: this.#sessions?.buckets.size ?? 0,
      allowed: this.#allowed,
      denied: this.#denied,
      evicted: (this.#agents?.evicted ?? 0) + (this.#sessions?.evicted ?? 0),
    };
  }
}

const ALLOWED: VelocityVerdict = Object.freeze({ allowed: true });

function checkIds(agentId: unknown, sessionId: unknown): void {
  if (typeof agentId !== 'string' || agentId.length === 0) {
    throw new TypeError(`Expected a non-empty string for agentId but received ${describe(agentId)}`);
  }
  if (sessionId !== undefined && (typeof sessionId !== 'string' || sessionId.length === 0)) {
    throw new TypeError(`Expected a non-empty string or undefined for sessionId but received ${describe(sessionId)}`);
  }
}
