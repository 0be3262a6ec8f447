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
 *   (refreshing LRU recency). Exact LRU (`shards: 1`) turns it off. It is
 *   adaptive: where copies seldom serve (mixed traffic, where puts retire
 *   them all the time) a handle stops making them for a while, then tries
 *   again; that changes only which lookups go to the store.
 * - Reasons come back from the native store as interned ids (never reused,
 *   so an id means one text for the life of the store); a handle maps each
 *   id to its text once, with one native call.
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

/** Lookups per near-cache window; a window where copies served fewer than 1 in NEAR_MIN_SERVED pauses filling. */
const NEAR_WINDOW = 1024;
const NEAR_MIN_SERVED = 8;
/** Lookups a paused near cache lets pass straight to the store before it tries again. */
const NEAR_PAUSE = 16384;
/** Reason texts one handle keeps (ids are stable, so forgetting only costs a native call). */
const REASONS_KEPT = 4096;

interface NearEntry {
  /** The full CAR hash: the map is keyed by a few of its digits, which may collide. */
  key: string;
  code: number;
  reason: string;
  policyVersion: number;
  expiresAt: number;
  /** Made on the first get that is served from this copy. */
  entry: Readonly<CacheEntry> | undefined;
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
  /** Near-cache adaptivity: lookups left in this window, copies served in it, lookups left paused. */
  #nearLeft = NEAR_WINDOW;
  #nearServed = 0;
  #nearPaused = 0;
  readonly #reasons = new Map<number, string>();
  /** The last hit of #lookup: its reason ('' for none), version and expiry. */
  #hitReason = '';
  #hitVersion = 0;
  #hitExpires = 0;
  /** The near copy's frozen entry when #lookup answers code + 3. */
  #nearEntry: Readonly<CacheEntry> | undefined = undefined;
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
    const code = this.#lookup(carHash, policyVersion, now, true);
    if (code < 0) return undefined;
    if (code >= 3) return this.#nearEntry!;
    const entry: CacheEntry = { decision: DECISIONS[code], policyVersion: this.#hitVersion, expiresAt: this.#hitExpires };
    if (this.#hitReason !== '') entry.reason = this.#hitReason;
    return Object.freeze(entry);
  }

  /**
   * @internal The gate's lookup: what `getAt(carHash, policyVersion, now)`
   * (or `get`, for `now` undefined) answers, with no object made: the
   * decision of the live entry, or undefined, and its reason in `lastReason`
   * ('' for none). Where get or getAt is overridden (a subclass, a patched
   * instance), it calls them, so the override still sees every lookup.
   */
  lookupAt(carHash: string, policyVersion: number, now: number | undefined): CachedDecisionKind | undefined {
    if (this.get !== PROTO_GET || this.getAt !== PROTO_GET_AT) {
      const hit = now === undefined ? this.get(carHash, policyVersion) : this.getAt(carHash, policyVersion, now);
      this.#hitReason = hit?.reason ?? '';
      return hit?.decision;
    }
    const code = this.#lookup(carHash, policyVersion, now ?? this.#clock(), false);
    return code < 0 ? undefined : DECISIONS[code];
  }

  /** @internal The reason of the last hit of lookupAt ('' for none). */
  get lastReason(): string {
    return this.#hitReason;
  }

  /**
   * The lookup behind get, getAt and lookupAt: -1 for a miss; else the
   * decision code, with reason, version and expiry in the #hit fields. With
   * `wantEntry`, a near-cache hit returns code + 3 and its frozen entry in
   * #nearEntry (one object per copy, not per hit).
   */
  #lookup(carHash: string, policyVersion: number, now: number, wantEntry: boolean): number {
    if (this.#handle !== null) {
      const near = this.#near;
      let slot = -1;
      if (near !== null && this.#nearPaused === 0 && typeof carHash === 'string') {
        slot = nearKey(carHash);
        const e = near.get(slot);
        if (e !== undefined && e.key === carHash && e.uses > 0 && e.policyVersion === policyVersion && e.epoch === Atomics.load(this.#epoch!, 0)) {
          if (e.expiresAt > now) {
            e.uses--;
            if (++this.#nearHits === NEAR_USES) this.#flushNearHits();
            this.#nearServed++;
            this.#nearTick();
            this.#hitReason = e.reason;
            this.#hitVersion = e.policyVersion;
            this.#hitExpires = e.expiresAt;
            if (!wantEntry) return e.code;
            if (e.entry === undefined) {
              const entry: CacheEntry = { decision: DECISIONS[e.code], policyVersion: e.policyVersion, expiresAt: e.expiresAt };
              if (e.reason !== '') entry.reason = e.reason;
              e.entry = Object.freeze(entry);
            }
            this.#nearEntry = e.entry;
            return e.code + 3;
          }
        }
        this.#nearTick();
      } else if (this.#nearPaused > 0) {
        this.#nearPaused--;
      }
      // Read before the lookup: a change racing with it leaves the copy stale, never wrong.
      const epoch = slot >= 0 ? Atomics.load(this.#epoch!, 0) : 0;
      // The addon validates the key itself (one crossing instead of a regex here).
      const r = this.#native!.cacheGet(this.#handle, carHash, checkVersion(policyVersion), now, this.#outBytes, 0);
      if (r === undefined) return -1;
      const out = this.#out;
      const code = out[0];
      const reason = typeof r === 'string' ? r : (this.#reasons.get(r) ?? this.#reasonText(r));
      this.#hitReason = reason;
      this.#hitVersion = out[1];
      this.#hitExpires = out[2];
      if (slot >= 0) {
        if (near!.size >= NEAR_CAPACITY) near!.clear();
        near!.set(slot, { key: carHash, code, reason, policyVersion: out[1], expiresAt: out[2], entry: undefined, epoch, uses: NEAR_USES });
      }
      return code;
    }
    const lru = this.#lru;
    if (lru === null) return this.#closed();
    const e = lru.get(checkKey(carHash), checkVersion(policyVersion), now);
    if (e === undefined) return -1;
    this.#hitReason = e.reason;
    this.#hitVersion = e.policyVersion;
    this.#hitExpires = e.expiresAt;
    return e.decision;
  }

  /** An interned reason's text, fetched once per id (ids are never reused, so a kept text never goes stale). */
  #reasonText(id: number): string {
    const text = this.#native!.cacheReason(this.#handle!, id) ?? '';
    if (this.#reasons.size >= REASONS_KEPT) this.#reasons.clear();
    this.#reasons.set(id, text);
    return text;
  }

  /** Counts one near-cache lookup; at the end of a window where copies seldom served, pauses filling. */
  #nearTick(): void {
    if (--this.#nearLeft > 0) return;
    if (this.#nearServed * NEAR_MIN_SERVED < NEAR_WINDOW) {
      this.#nearPaused = NEAR_PAUSE;
      this.#near!.clear();
    }
    this.#nearLeft = NEAR_WINDOW;
    this.#nearServed = 0;
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

const PROTO_GET = DecisionCache.prototype.get;
const PROTO_GET_AT = DecisionCache.prototype.getAt;
