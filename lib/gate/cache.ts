/**
 * DecisionCache: policy decisions keyed by CAR hash, each stamped with the
 * policy version that made it and an expiry.
 *
 * - `get(carHash, policyVersion)` never returns an entry of another policy
 *   version (such an entry is dropped), nor an expired one.
 * - Capacity bound with LRU eviction. Native: sharded (default 16 shards for
 *   capacities of 4096 and more, else 1); each shard is exact LRU over its
 *   equal part of the capacity, so with `shards: 1` the whole cache is exact
 *   LRU. Fallback: one exact-LRU Map per thread.
 * - `DecisionCache.shared(name, options)` gives every worker_thread of the
 *   process a handle to one native store (fallback: shared within the thread).
 * - Near cache (native, on by default when sharded): each handle keeps copies
 *   of entries it read, valid only while the store's mutation counter (read
 *   from shared memory, no native call) is unchanged, so any put, invalidate,
 *   clear, eviction or expiry anywhere in the process retires them. A copy
 *   serves at most NEAR_USES hits before the next get goes to the store again
 *   (refreshing LRU recency). Exact LRU (`shards: 1`) turns it off.
 * Only policy decisions belong here: quarantine, velocity and replay checks
 * run before the cache, so a cached allow never bypasses them.
 */
import { isCarHash } from '../canonical/car';
import { ErrorCodes, GuardError, describe } from '../errors';
import { coreAddon } from '../native/loader';
import type { CoreAddon, NativeHandle } from '../native/addon-types';
import { JsSharedRegistry, MAX_CAPACITY, clockOption, integerOption, optionsObject, storeName } from '../native/store-common';

export type CachedDecisionKind = 'allow' | 'deny' | 'pending';

export interface DecisionCacheOptions {
  /** Most entries kept. Default 10000. */
  capacity?: number;
  /** Default time to live of an entry, in ms. Default 60000. */
  ttlMs?: number;
  /** Native shard count (1..256). Default 16 when capacity >= 4096, else 1. Ignored by the fallback. */
  shards?: number;
  /** Milliseconds since the epoch; default `Date.now`. */
  clock?: () => number;
  /** Per-handle near cache in front of the native store. Default: on when `shards` > 1. */
  nearCache?: boolean;
}

export interface CachePutValue {
  decision: CachedDecisionKind;
  reason?: string;
  policyVersion: number;
  /** Overrides the cache's default TTL for this entry. */
  ttlMs?: number;
}

export interface CacheEntry {
  decision: CachedDecisionKind;
  reason?: string;
  policyVersion: number;
  /** Expiry, ms since the epoch. */
  expiresAt: number;
}

export interface CacheStats {
  entries: number;
  capacity: number;
  hits: number;
  misses: number;
  evictions: number;
  expirations: number;
}

export const DEFAULT_CACHE_CAPACITY = 10000;
export const DEFAULT_CACHE_TTL_MS = 60000;
/** Longest reason stored, in UTF-16 units (the native store caps the UTF-8 at 4096 bytes). */
export const MAX_REASON_LENGTH = 1024;

const DECISIONS: readonly CachedDecisionKind[] = ['allow', 'deny', 'pending'];
/** Hits a near-cache copy serves before a get goes back to the store. */
const NEAR_USES = 256;
/** Copies one handle keeps; past this the near cache starts over. */
const NEAR_CAPACITY = 4096;

interface NearEntry {
  /** The full CAR hash: the map is keyed by a few of its digits, which may collide. */
  key: string;
  entry: Readonly<CacheEntry>;
  epoch: number;
  uses: number;
}
/**
 * The near cache's map key: eight hex digits of the digest folded into a
 * small integer. A Map looks an integer up without hashing; a CAR hash fresh
 * from the hasher would have all 71 characters hashed on every lookup (more
 * than half the cost of a near hit). Entries keep the full hash, compared on
 * every hit, so a collision is only a miss.
 */
function nearKey(carHash: string): number {
  let k = 0;
  for (let i = 7; i < 15; i++) k = (k * 31 + carHash.charCodeAt(i)) | 0;
  return k & 0x3fffffff;
}

const BAD_KEY = 'Expected a CAR hash ("sha256:" + 64 lower-case hex digits) for carHash';

interface JsEntry {
  decision: number;
  reason: string;
  policyVersion: number;
  expiresAt: number;
}

/** Exact LRU over a Map (insertion order = recency): same semantics as one native shard. */
class JsLru {
  readonly map = new Map<string, JsEntry>();
  hits = 0;
  misses = 0;
  evictions = 0;
  expirations = 0;

  constructor(readonly capacity: number) {}

  get(key: string, version: number, now: number): JsEntry | undefined {
    const e = this.map.get(key);
    if (e === undefined) {
      this.misses++;
      return undefined;
    }
    if (e.expiresAt <= now) {
      this.expirations++;
      this.misses++;
      this.map.delete(key);
      return undefined;
    }
    if (e.policyVersion !== version) {
      this.misses++;
      this.map.delete(key);
      return undefined;
    }
    this.map.delete(key);
    this.map.set(key, e);
    this.hits++;
    return e;
  }

  put(key: string, entry: JsEntry): void {
    if (this.map.has(key)) {
      this.map.delete(key);
    } else if (this.map.size >= this.capacity) {
      const oldest = this.map.keys().next().value as string;
      this.map.delete(oldest);
      this.evictions++;
    }
    this.map.set(key, entry);
  }
}

const jsShared = new JsSharedRegistry<JsLru>();

function checkKey(carHash: unknown): string {
  if (!isCarHash(carHash)) throw new TypeError(`${BAD_KEY} but received ${describe(carHash)}`);
  return carHash;
}

function checkVersion(v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new TypeError(`Expected a finite number for policyVersion but received ${describe(v)}`);
  }
  return v;
}

export class DecisionCache {
  readonly #native: CoreAddon | null;
  #handle: NativeHandle | null = null;
  #lru: JsLru | null = null;
  readonly #clock: () => number;
  readonly #ttlMs: number;
  #sharedName: string | undefined;
  #near: Map<number, NearEntry> | null = null;
  #epoch: Uint32Array | null = null;
  #nearHits = 0;
  readonly #out = new Float64Array(6);
  readonly #outBytes = new Uint8Array(this.#out.buffer);

  /** A cache whose store is shared, by name, with every worker_thread of the process. */
  static shared(name: string, options?: DecisionCacheOptions): DecisionCache {
    return new DecisionCache(options, storeName(name));
  }

  constructor(options?: DecisionCacheOptions, sharedName?: string) {
    const o = optionsObject(options, 'DecisionCache');
    const capacity = integerOption(o.capacity ?? DEFAULT_CACHE_CAPACITY, 'capacity', 1, MAX_CAPACITY);
    this.#ttlMs = integerOption(o.ttlMs ?? DEFAULT_CACHE_TTL_MS, 'ttlMs', 1, 2 ** 31);
    const shards = integerOption(o.shards ?? (capacity >= 4096 ? 16 : 1), 'shards', 1, 256);
    this.#clock = clockOption(o.clock);
    this.#native = coreAddon();
    if (this.#native) {
      this.#handle = sharedName === undefined
        ? this.#native.cacheCreate(capacity, shards)
        : this.#native.cacheShared(sharedName, capacity, shards);
      if (o.nearCache ?? shards > 1) {
        const epoch = this.#native.cacheEpochBuffer(this.#handle);
        if (epoch !== undefined) {
          this.#epoch = new Uint32Array(epoch);
          this.#near = new Map();
        }
      }
    } else if (sharedName !== undefined) {
      this.#lru = jsShared.acquire(sharedName, capacity, () => new JsLru(capacity), this, 'decision cache');
      this.#sharedName = sharedName;
    } else {
      this.#lru = new JsLru(capacity);
    }
  }

  get closed(): boolean {
    return this.#handle === null && this.#lru === null;
  }

  #closed(): never {
    throw new GuardError(ErrorCodes.CLOSED, 'DecisionCache has been closed');
  }

  /** The live entry for `carHash` made under exactly `policyVersion` (a frozen object), or undefined. */
  get(carHash: string, policyVersion: number): Readonly<CacheEntry> | undefined {
    return this.getAt(carHash, policyVersion, this.#clock());
  }

  /**
   * @internal This cache's clock, read once by gate.checkBatch: a whole batch
   * is judged against one instant (a clock read costs ~60–90 ns on a VM,
   * more than a near-cache hit).
   */
  now(): number {
    return this.#clock();
  }

  /** @internal `get` with expiry judged at `now` (a value of this cache's clock). */
  getAt(carHash: string, policyVersion: number, now: number): Readonly<CacheEntry> | undefined {
    if (this.#handle !== null) {
      const near = this.#near;
      const slot = near !== null && typeof carHash === 'string' ? nearKey(carHash) : -1;
      if (slot >= 0) {
        const e = near!.get(slot);
        if (e !== undefined && e.key === carHash && e.uses > 0 && e.entry.policyVersion === policyVersion && e.epoch === Atomics.load(this.#epoch!, 0)) {
          if (e.entry.expiresAt > now) {
            e.uses--;
            if (++this.#nearHits === NEAR_USES) this.#flushNearHits();
            return e.entry; // frozen: callers cannot alter what others read
          }
        }
      }
      // Read before the lookup: a change racing with it leaves the copy stale, never wrong.
      const epoch = near !== null ? Atomics.load(this.#epoch!, 0) : 0;
      // The addon validates the key itself (one crossing instead of a regex here).
      const reason = this.#native!.cacheGet(this.#handle, carHash, checkVersion(policyVersion), now, this.#outBytes, 0);
      if (reason === undefined) return undefined;
      const out = this.#out;
      const entry: CacheEntry = { decision: DECISIONS[out[0]], policyVersion: out[1], expiresAt: out[2] };
      if (reason !== '') entry.reason = reason;
      Object.freeze(entry);
      if (slot >= 0) {
        if (near!.size >= NEAR_CAPACITY) near!.clear();
        near!.set(slot, { key: carHash, entry, epoch, uses: NEAR_USES });
      }
      return entry;
    }
    const lru = this.#lru;
    if (lru === null) return this.#closed();
    const e = lru.get(checkKey(carHash), checkVersion(policyVersion), now);
    if (e === undefined) return undefined;
    const entry: CacheEntry = { decision: DECISIONS[e.decision], policyVersion: e.policyVersion, expiresAt: e.expiresAt };
    if (e.reason !== '') entry.reason = e.reason;
    return Object.freeze(entry);
  }

  /** Stores a policy decision; an existing entry for `carHash` is replaced. */
  put(carHash: string, value: CachePutValue): void {
    const { code, reason, version, ttl } = this.#prepare(value);
    const expiresAt = this.#clock() + ttl;
    if (this.#handle !== null) {
      this.#native!.cachePut(this.#handle, carHash, code, version, expiresAt, reason);
      return;
    }
    const lru = this.#lru;
    if (lru === null) return this.#closed();
    lru.put(checkKey(carHash), { decision: code, reason, policyVersion: version, expiresAt });
  }

  /** Throws what `put` would throw for these arguments, and stores nothing (a caller audits between the two). */
  checkPut(carHash: string, value: CachePutValue): void {
    checkKey(carHash);
    this.#prepare(value);
  }

  /** The value's checks; the key is checked by the addon on the native path, by checkKey on the JS path. */
  #prepare(value: CachePutValue): { code: number; reason: string; version: number; ttl: number } {
    if (typeof value !== 'object' || value === null) {
      throw new TypeError(`Expected an object for value but received ${describe(value)}`);
    }
    const code = DECISIONS.indexOf(value.decision);
    if (code < 0) throw new TypeError(`Expected 'allow', 'deny' or 'pending' for decision but received ${describe(value.decision)}`);
    const reason = value.reason ?? '';
    if (typeof reason !== 'string' || reason.length > MAX_REASON_LENGTH || !reason.isWellFormed()) {
      throw new TypeError(`Expected a well-formed string of at most ${MAX_REASON_LENGTH} characters for reason but received ${describe(value.reason)}`);
    }
    const version = checkVersion(value.policyVersion);
    const ttl = value.ttlMs === undefined ? this.#ttlMs : integerOption(value.ttlMs, 'ttlMs', 1, 2 ** 31);
    return { code, reason, version, ttl };
  }

  /** Removes the entry for `carHash`; true if there was one. */
  invalidate(carHash: string): boolean {
    if (this.#handle !== null) return this.#native!.cacheInvalidate(this.#handle, carHash);
    const lru = this.#lru;
    if (lru === null) return this.#closed();
    return lru.map.delete(checkKey(carHash));
  }

  /** Removes every entry; returns how many there were. */
  clear(): number {
    if (this.#handle !== null) return this.#native!.cacheClear(this.#handle);
    const lru = this.#lru;
    if (lru === null) return this.#closed();
    const n = lru.map.size;
    lru.map.clear();
    return n;
  }

  #flushNearHits(): void {
    if (this.#nearHits > 0 && this.#handle !== null) this.#native!.cacheAddNearHits(this.#handle, this.#nearHits);
    this.#nearHits = 0;
  }

  stats(): CacheStats {
    if (this.#handle !== null) {
      this.#flushNearHits();
      this.#native!.cacheStats(this.#handle, this.#outBytes, 0);
      const s = this.#out;
      return { entries: s[0], capacity: s[1], hits: s[2], misses: s[3], evictions: s[4], expirations: s[5] };
    }
    const l = this.#lru;
    if (l === null) return this.#closed();
    return { entries: l.map.size, capacity: l.capacity, hits: l.hits, misses: l.misses, evictions: l.evictions, expirations: l.expirations };
  }

  /** Releases this handle (a shared store lives on while other handles hold it). Idempotent. */
  close(): void {
    this.#flushNearHits();
    if (this.#handle !== null) this.#native!.cacheClose(this.#handle);
    this.#near = null;
    this.#epoch = null;
    if (this.#lru !== null && this.#sharedName !== undefined) jsShared.releaseFor(this.#sharedName, this);
    this.#handle = null;
    this.#lru = null;
  }
}
