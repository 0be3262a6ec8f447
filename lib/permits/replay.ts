/**
 * ReplayDetector: remembers nonces until they expire and answers, in one
 * atomic check-and-insert, whether a nonce is `fresh`, a `replay`, or whether
 * the detector is `saturated` (full of live nonces: fail closed, never evict
 * a live one).
 *
 * Memory is bounded: a ring of `capacity` (nonce, expiry) slots plus a hash
 * index. A new nonce takes the slot at the ring's head; if that slot still
 * holds a live nonce the answer is `saturated`. With one TTL for all nonces
 * the ring is in expiry order, so this is exactly "full"; with mixed TTLs a
 * long-lived nonce at the head saturates the ring early (never late).
 *
 * Native: one store per detector (or per name, shared by every worker_thread
 * of the process), nonces kept as 128-bit keyed digests, one mutex. Fallback:
 * the same ring in TypeScript, per thread.
 */
import { ErrorCodes, GuardError, describe } from '../errors';
import { coreAddon } from '../native/loader';
import type { CoreAddon, NativeHandle } from '../native/addon-types';
import { FleetReplay } from '../fleet/replay';
import { checkOnStoreError, resolveStore, type FleetStore, type OnStoreError, type StoreOption } from '../fleet/store';
import { JsSharedRegistry, MAX_CAPACITY, clockOption, integerOption, optionsObject, storeName } from '../native/store-common';

export type ReplayStatus = 'fresh' | 'replay' | 'saturated';

export interface ReplayDetectorOptions {
  /** Most nonces remembered at once. Default 65536. */
  capacity?: number;
  /** Milliseconds since the epoch; default `Date.now`. Tests pass a fake clock. */
  clock?: () => number;
  /**
   * Where nonces are shared: `memory` (default, this process) or Redis, so a
   * nonce accepted by one process is a replay in every other. With Redis, use
   * `checkAsync` (the sync `check` throws ERR_STORE_ASYNC) and a wall clock.
   */
  store?: StoreOption;
  /** With Redis unreachable: `deny` (default, checkAsync throws ERR_STORE_UNAVAILABLE) or `local` (answer from this process's store). */
  onStoreError?: OnStoreError;
}

export interface ReplayStats {
  /** Slots in use (live nonces, plus expired ones not yet reclaimed). */
  size: number;
  capacity: number;
  /** Checks answered `replay`. */
  replays: number;
  /** Checks answered `saturated`. */
  saturated: number;
  /** Checks answered `fresh`. */
  accepted: number;
}

export const DEFAULT_REPLAY_CAPACITY = 65536;
/** Longest nonce accepted, in UTF-16 units. */
export const MAX_NONCE_LENGTH = 1024;

const STATUSES: readonly ReplayStatus[] = ['fresh', 'replay', 'saturated'];

/** The TypeScript ring: same semantics as native/stores/replay_store.cc. */
class JsReplayRing {
  private readonly keys: (string | undefined)[];
  private readonly expiries: Float64Array;
  private readonly index = new Map<string, number>();
  private head = 0;
  replays = 0;
  saturated = 0;
  accepted = 0;

  constructor(readonly capacity: number) {
    this.keys = new Array(capacity).fill(undefined);
    this.expiries = new Float64Array(capacity);
  }

  check(nonce: string, expiresAtMs: number, nowMs: number): number {
    const at = this.index.get(nonce);
    if (at !== undefined) {
      if (this.expiries[at] > nowMs) {
        this.replays++;
        return 1;
      }
      this.keys[at] = undefined;
      this.index.delete(nonce);
    }
    const head = this.head;
    const occupant = this.keys[head];
    if (occupant !== undefined) {
      if (this.expiries[head] > nowMs) {
        this.saturated++;
        return 2;
      }
      this.index.delete(occupant);
    }
    this.keys[head] = nonce;
    this.expiries[head] = expiresAtMs;
    this.index.set(nonce, head);
    this.head = (head + 1) % this.capacity;
    this.accepted++;
    return 0;
  }

  has(nonce: string, nowMs: number): boolean {
    const at = this.index.get(nonce);
    return at !== undefined && this.expiries[at] > nowMs;
  }

  get size(): number {
    return this.index.size;
  }
}

// Per-thread registry for the fallback's shared(): without the addon there is
// no memory shared between threads, so "shared" means shared in this thread.
const jsShared = new JsSharedRegistry<JsReplayRing>();

function checkNonce(nonce: unknown): string {
  if (typeof nonce !== 'string' || nonce.length === 0 || nonce.length > MAX_NONCE_LENGTH) {
    throw new TypeError(`Expected a non-empty string of at most ${MAX_NONCE_LENGTH} characters for nonce but received ${describe(nonce)}`);
  }
  if (!nonce.isWellFormed()) throw new TypeError('Expected well-formed UTF-16 for nonce but received a string with a lone surrogate');
  return nonce;
}

export class ReplayDetector {
  readonly #native: CoreAddon | null;
  #handle: NativeHandle | null = null;
  #ring: JsReplayRing | null = null;
  readonly #clock: () => number;
  readonly #capacity: number;
  #sharedName: string | undefined;
  readonly #statsBuffer = new Float64Array(5);
  readonly #statsBytes = new Uint8Array(this.#statsBuffer.buffer);
  #fleet: FleetReplay | null = null;
  #ownedStore: FleetStore | null = null;

  /** A detector whose store is shared, by name, with every worker_thread of the process. */
  static shared(name: string, options?: ReplayDetectorOptions): ReplayDetector {
    return new ReplayDetector(options, storeName(name));
  }

  constructor(options?: ReplayDetectorOptions, sharedName?: string) {
    const o = optionsObject(options, 'ReplayDetector');
    this.#capacity = integerOption(o.capacity ?? DEFAULT_REPLAY_CAPACITY, 'capacity', 1, MAX_CAPACITY);
    this.#clock = clockOption(o.clock);
    const onStoreError = checkOnStoreError(o.onStoreError);
    const { store, owned } = resolveStore(o.store, 'ReplayDetector');
    if (store !== null) {
      if (sharedName !== undefined) throw new TypeError('A shared (worker_threads) detector cannot also have a Redis store: the Redis store is already shared');
      this.#fleet = new FleetReplay(store, onStoreError, { seen: (n) => this.seen(n), checkLocal: (n, e) => this.#checkLocal(n, e) });
      if (owned) this.#ownedStore = store;
    }
    this.#native = coreAddon();
    if (this.#native) {
      this.#handle = sharedName === undefined
        ? this.#native.replayCreate(this.#capacity)
        : this.#native.replayShared(sharedName, this.#capacity);
    } else if (sharedName !== undefined) {
      const capacity = this.#capacity;
      this.#ring = jsShared.acquire(sharedName, capacity, () => new JsReplayRing(capacity), this, 'replay detector');
      this.#sharedName = sharedName;
    } else {
      this.#ring = new JsReplayRing(this.#capacity);
    }
  }

  /** True once `close()` has run. */
  get closed(): boolean {
    return this.#handle === null && this.#ring === null;
  }

  #closed(): never {
    throw new GuardError(ErrorCodes.CLOSED, 'ReplayDetector has been closed');
  }

  /**
   * Atomically: if `nonce` is remembered and not expired, `replay`; otherwise
   * remember it until `expiresAtMs` and answer `fresh`, or `saturated` when
   * there is no room without forgetting a live nonce.
   */
  check(nonce: string, expiresAtMs: number): ReplayStatus {
    if (this.#fleet !== null) throw new GuardError(ErrorCodes.STORE_ASYNC, 'This ReplayDetector keeps its nonces in Redis: use checkAsync');
    return this.#checkLocal(nonce, expiresAtMs);
  }

  /**
   * `check` for any store: with Redis, the local store answers `replay` for a
   * nonce this process has seen, and anything else is one atomic
   * `SET NX PXAT` round trip. Rejects with ERR_STORE_UNAVAILABLE when Redis
   * cannot answer and onStoreError is `deny`.
   */
  async checkAsync(nonce: string, expiresAtMs: number): Promise<ReplayStatus> {
    if (this.#fleet === null) return this.#checkLocal(nonce, expiresAtMs);
    checkNonce(nonce);
    this.#checkExpiry(expiresAtMs);
    return this.#fleet.check(nonce, expiresAtMs);
  }

  /**
   * The Redis tier, or null for a memory store (the gate batches its round trips through it).
   * Read by the gate.
   * @internal
   */
  get fleet(): FleetReplay | null {
    return this.#fleet;
  }

  #checkExpiry(expiresAtMs: number): number {
    if (typeof expiresAtMs !== 'number' || !Number.isFinite(expiresAtMs)) {
      throw new TypeError(`Expected a finite number for expiresAtMs but received ${describe(expiresAtMs)}`);
    }
    const now = this.#clock();
    if (expiresAtMs <= now) {
      // Remembering an already-expired nonce would protect nothing.
      throw new RangeError(`Expected expiresAtMs in the future but received ${expiresAtMs} (now ${now})`);
    }
    return now;
  }

  #checkLocal(nonce: string, expiresAtMs: number): ReplayStatus {
    checkNonce(nonce);
    const now = this.#checkExpiry(expiresAtMs);
    if (this.#handle !== null) return STATUSES[this.#native!.replayCheck(this.#handle, nonce, expiresAtMs, now)];
    if (this.#ring !== null) return STATUSES[this.#ring.check(nonce, expiresAtMs, now)];
    return this.#closed();
  }

  /**
   * True when `nonce` is remembered and not yet expired. Read-only (nothing is
   * inserted): the fleet store asks this before a round trip to Redis.
   */
  seen(nonce: string): boolean {
    checkNonce(nonce);
    const now = this.#clock();
    if (this.#handle !== null) return this.#native!.replayContains(this.#handle, nonce, now);
    if (this.#ring !== null) return this.#ring.has(nonce, now);
    return this.#closed();
  }

  stats(): ReplayStats {
    if (this.#handle !== null) {
      this.#native!.replayStats(this.#handle, this.#statsBytes, 0);
      const s = this.#statsBuffer;
      return { size: s[0], capacity: s[1], replays: s[2], saturated: s[3], accepted: s[4] };
    }
    const r = this.#ring;
    if (r === null) return this.#closed();
    return { size: r.size, capacity: r.capacity, replays: r.replays, saturated: r.saturated, accepted: r.accepted };
  }

  /** Releases this handle (a shared store lives on while other handles hold it), and quits a Redis connection it opened. Idempotent. */
  close(): void {
    void this.#ownedStore?.close();
    this.#ownedStore = null;
    if (this.#handle !== null) this.#native!.replayClose(this.#handle);
    if (this.#ring !== null && this.#sharedName !== undefined) jsShared.releaseFor(this.#sharedName, this);
    this.#handle = null;
    this.#ring = null;
  }
}
