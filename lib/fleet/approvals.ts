/**
 * The Redis side of fleet approvals: a record store with compare-and-set, so
 * that an approval given on one process releases the agent on another and
 * two retries after one grant (anywhere in the fleet) spend it exactly once.
 * The transitions themselves (who may approve, when a grant is spent) are
 * the approval book's; this store only makes each step atomic.
 *
 * Keys (under the store's prefix):
 * - `approval:<id>`: the record, sealed with the fleet signing key when there
 *   is one (`{"r": JSON, "m": MAC}`), else its JSON;
 * - `approval:car:<car hash>`: the id of the request that stands for that CAR;
 * - `approval:index`: every id, scored by requested_at (listing, oldest first);
 * - `approval:expiry`: every id, scored by when its keys expire (trimming).
 * Records and pointers expire 24 h after the request does, so Redis does not
 * grow; each create drops up to 256 expired ids from the indexes.
 *
 * Records are written in canonical form (RFC 8785: sorted keys), so the
 * stored value is a function of the record: replace(previous, next) compares
 * what Redis holds with the encoding of `previous`, byte for byte, in the
 * same script that writes `next`. A record that does not verify (wrong MAC,
 * malformed, not the id it is stored under, over 256 KiB) reads as missing
 * and is reported through `store.refuse`: write access to Redis alone cannot
 * grant an approval. It can still delete records (the check then opens a
 * new request) or put back an older sealed version of the same record, such
 * as a spent grant as it stood before it was used: a MAC over the record
 * cannot tell its versions apart.
 *
 * Changes are announced on the events channel (`t: 'approval'`, id, status)
 * and emitted as `'change'` (id, status) here and on every other process's
 * FleetApprovalStore; the status in an event is a hint (anyone who can
 * publish can send one): waiters re-read with get(). `'resync'` follows a
 * reconnect of the subscriber (events sent meanwhile are lost).
 * Every Redis failure is a GuardError ERR_STORE_UNAVAILABLE.
 */
import { EventEmitter } from 'node:events';
import { canonicalizeJson, isCarHash } from '../canonical/car';
import { describe } from '../errors';
import type { FleetEvent, FleetStore } from './store';

/** `apr_` + 22 base64url characters (128 random bits). */
const APPROVAL_ID = /^apr_[A-Za-z0-9_-]{22}$/;
const STATUSES: ReadonlySet<string> = new Set(['pending', 'granted', 'denied', 'expired', 'used']);

/**
 * What this store reads of an approval record (the gate's R,
 * lib/gate/approvals/types.ts, which sits a layer above, has these and more):
 * it keeps the whole record and checks only these fields.
 */
export interface StoredApproval {
  id: string;
  status: string;
  car_hash: string;
  car: Record<string, unknown>;
  requested_at: number;
  expires_at: number;
  approvals: unknown[];
}

/** A stored record (sealed, in bytes) above this is refused, on write and on read. */
export const MAX_APPROVAL_RECORD_BYTES = 256 * 1024;
/** Records and CAR pointers stay this long after the request expires. */
export const APPROVAL_RETENTION_MS = 24 * 60 * 60 * 1000;
/** Shortest key lifetime: a record written after its retention ended is still readable this long. */
const MIN_TTL_MS = 60_000;
const LIST_DEFAULT = 1000;
const LIST_MAX = 10_000;
/** Ids read per round trip in list() (records of up to 256 KiB each). */
const LIST_CHUNK = 100;

export interface FleetApprovalStoreOptions {
  /** The clock the approval book uses (requested_at, expires_at): key lifetimes are computed against it. Default Date.now. */
  clock?: () => number;
}

export interface ApprovalListOptions {
  /** Only records with this status. */
  status?: string;
  /** At most this many records (default 1000, at most 10000). */
  limit?: number;
}

/** The shape checks shared by reads (a record from Redis) and writes (a record from the book). */
function isRecord(v: unknown): v is StoredApproval {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const r = v as Record<string, unknown>;
  return (
    typeof r.id === 'string' &&
    APPROVAL_ID.test(r.id) &&
    typeof r.status === 'string' &&
    STATUSES.has(r.status) &&
    isCarHash(r.car_hash) &&
    typeof r.car === 'object' &&
    r.car !== null &&
    !Array.isArray(r.car) &&
    Number.isSafeInteger(r.requested_at) &&
    Number.isSafeInteger(r.expires_at) &&
    (r.requested_at as number) >= 0 &&
    (r.expires_at as number) >= 0 &&
    Array.isArray(r.approvals)
  );
}

export class FleetApprovalStore<R extends StoredApproval = StoredApproval> extends EventEmitter {
  readonly #clock: () => number;
  readonly #index: string;
  readonly #expiry: string;
  readonly #listeners: Array<[string, (event: FleetEvent) => void]>;

  constructor(
    readonly store: FleetStore,
    options: FleetApprovalStoreOptions = {},
  ) {
    super();
    this.setMaxListeners(0); // one per waiter; they remove themselves
    if (typeof options !== 'object' || options === null) throw new TypeError(`Expected an options object but received ${describe(options)}`);
    if (options.clock !== undefined && typeof options.clock !== 'function') throw new TypeError(`Expected a function for clock but received ${describe(options.clock)}`);
    this.#clock = options.clock ?? Date.now;
    this.#index = store.key('approval', 'index');
    this.#expiry = store.key('approval', 'expiry');
    const onEvent = (e: FleetEvent) => {
      if (typeof e.id !== 'string' || !APPROVAL_ID.test(e.id)) return;
      this.#emit('change', e.id, typeof e.status === 'string' ? e.status : null);
    };
    const onResync = () => this.#emit('resync');
    this.#listeners = [
      ['event:approval', onEvent],
      ['resync', onResync],
    ];
    for (const [event, fn] of this.#listeners) store.on(event, fn);
  }

  /** Stops relaying events (the store stays usable for reads and writes). */
  detach(): void {
    for (const [event, fn] of this.#listeners) this.store.off(event, fn);
  }

  /** The record `id`, or null when there is none (or it does not verify). */
  async get(id: string): Promise<R | null> {
    if (typeof id !== 'string' || !APPROVAL_ID.test(id)) return null; // ids come from operators: not one of ours is simply unknown
    const stored = await this.store.run((r) => r.get(this.#recordKey(id)));
    if (stored === null) return null;
    const record = this.#decode(id, stored);
    if (record === null) this.store.refuse('approval');
    return record;
  }

  /**
   * The id the CAR pointer of `carHash` holds (the request that stands for
   * that CAR), or null. Returned as stored, so that create() can replace even
   * a pointer that is not an id; the book must check the record's car_hash.
   */
  async currentFor(carHash: string): Promise<string | null> {
    if (!isCarHash(carHash)) throw new TypeError(`Expected a CAR hash ("sha256:" + 64 hex digits) but received ${describe(carHash)}`);
    const id = await this.store.run((r) => r.get(this.#carKey(carHash)));
    if (id !== null && !APPROVAL_ID.test(id)) this.store.refuse('approval');
    return id;
  }

  /**
   * Stores a new request and points its CAR at it, in one step, only if the
   * pointer still holds `expectedCurrent` (null: no pointer) and no record
   * has this id. False (nothing written) otherwise.
   */
  async create(request: R, expectedCurrent: string | null): Promise<boolean> {
    if (expectedCurrent !== null && (typeof expectedCurrent !== 'string' || expectedCurrent.length === 0)) {
      throw new TypeError(`Expected null or an approval id for expectedCurrent but received ${describe(expectedCurrent)}`);
    }
    const stored = this.#encode(request);
    const { ttl, score, now } = this.#lifetime(request);
    const message = this.store.message({ t: 'approval', id: request.id, status: request.status });
    const done = await this.store.run((r) =>
      r.gkApprovalCreate(
        this.#carKey(request.car_hash),
        this.#recordKey(request.id),
        this.#index,
        this.#expiry,
        expectedCurrent ?? '',
        request.id,
        stored,
        ttl,
        request.requested_at,
        score,
        now,
        this.store.channel,
        message,
      ),
    );
    if (done !== 1) return false;
    this.#announce(request);
    return true;
  }

  /**
   * Replaces `previous` with `next` in one step, only if Redis still holds
   * exactly what `previous` is stored as (its canonical encoding); false when
   * it changed first (or is gone). `next` keeps the id and CAR hash.
   */
  async replace(previous: R, next: R): Promise<boolean> {
    const expected = this.#encode(previous);
    const stored = this.#encode(next);
    if (next.id !== previous.id) throw new TypeError(`replace must keep the id: ${previous.id} became ${next.id}`);
    if (next.car_hash !== previous.car_hash) throw new TypeError(`replace must keep the CAR hash of ${previous.id}`);
    const { ttl, score } = this.#lifetime(next);
    const message = this.store.message({ t: 'approval', id: next.id, status: next.status });
    const done = await this.store.run((r) =>
      r.gkApprovalReplace(this.#recordKey(next.id), this.#carKey(next.car_hash), this.#index, this.#expiry, expected, stored, ttl, next.id, next.requested_at, score, this.store.channel, message),
    );
    if (done !== 1) return false;
    this.#announce(next);
    return true;
  }

  /** Records from the index, oldest request first: those that verify and match `status`, at most `limit`. */
  async list(options: ApprovalListOptions = {}): Promise<R[]> {
    if (typeof options !== 'object' || options === null) throw new TypeError(`Expected an options object but received ${describe(options)}`);
    const { status, limit = LIST_DEFAULT } = options;
    if (status !== undefined && typeof status !== 'string') throw new TypeError(`Expected a string for status but received ${describe(status)}`);
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > LIST_MAX) throw new RangeError(`Expected an integer in [1, ${LIST_MAX}] for limit but received ${describe(limit)}`);
    const out: R[] = [];
    let refused = 0;
    // Paged by score (requested_at) with an offset among equal scores, so that
    // ids trimmed meanwhile do not shift later pages past live ones.
    let min = '-inf';
    let skip = 0;
    while (out.length < limit) {
      const from = min;
      const offset = skip;
      const page = await this.store.run((r) => r.zrangebyscore(this.#index, from, '+inf', 'WITHSCORES', 'LIMIT', offset, LIST_CHUNK));
      const ids: string[] = [];
      const scores: string[] = [];
      for (let i = 0; i + 1 < page.length; i += 2) {
        ids.push(page[i]);
        scores.push(page[i + 1]);
      }
      if (ids.length === 0) break;
      const wanted = ids.filter((id) => APPROVAL_ID.test(id));
      const values = wanted.length === 0 ? [] : await this.store.run((r) => r.mget(wanted.map((id) => this.#recordKey(id))));
      refused += ids.length - wanted.length;
      for (let i = 0; i < wanted.length && out.length < limit; i++) {
        const value = values[i];
        if (value === null || value === undefined) continue; // expired, not yet trimmed
        const record = this.#decode(wanted[i], value);
        if (record === null) refused++;
        else if (status === undefined || record.status === status) out.push(record);
      }
      const last = scores[scores.length - 1];
      const atLast = scores.filter((s) => s === last).length;
      if (last === min) skip += atLast;
      else {
        min = last;
        skip = atLast;
      }
      if (ids.length < LIST_CHUNK) break;
    }
    if (refused > 0) this.store.refuse('approval'); // once per listing, not once per record
    return out;
  }

  #recordKey(id: string): string {
    return this.store.key('approval', id);
  }

  #carKey(carHash: string): string {
    return this.store.key('approval', `car:${carHash}`);
  }

  /** What Redis holds for `record`: its canonical JSON, sealed when the store signs. */
  #encode(record: R): string {
    if (!isRecord(record)) throw new TypeError(`Expected an approval request record (id apr_…, a known status, a CAR hash, integer times) but received ${describe(record)}`);
    let text: string;
    try {
      text = canonicalizeJson(record, { maxDepth: 64, maxBytes: 64 * 1024 * 1024 });
    } catch (err) {
      throw new TypeError(`approval ${record.id} is not plain JSON: ${(err as Error).message}`);
    }
    const stored = this.store.signed ? this.store.seal('approval', text) : text;
    const bytes = Buffer.byteLength(stored, 'utf8');
    if (bytes > MAX_APPROVAL_RECORD_BYTES) throw new RangeError(`approval ${record.id} is ${bytes} bytes stored; at most ${MAX_APPROVAL_RECORD_BYTES}`);
    return stored;
  }

  /** The record in `stored`, or null when it does not verify, is malformed, too large, or is not `id`. */
  #decode(id: string, stored: string): R | null {
    if (stored.length > MAX_APPROVAL_RECORD_BYTES || Buffer.byteLength(stored, 'utf8') > MAX_APPROVAL_RECORD_BYTES) return null;
    const text = this.store.signed ? this.store.open('approval', stored) : stored;
    if (text === null) return null;
    let record: unknown;
    try {
      record = JSON.parse(text);
    } catch {
      return null;
    }
    // A signed record copied under another id's key verifies: the id inside must match.
    return isRecord(record) && record.id === id ? (record as R) : null;
  }

  /** Key lifetime (ms from now) and expiry-index score for `r`, and now, in the book's clock. */
  #lifetime(r: R): { ttl: number; score: number; now: number } {
    const now = this.#clock();
    if (!Number.isSafeInteger(now)) throw new TypeError(`Expected the clock to return an integer but received ${describe(now)}`);
    const ttl = Math.max(MIN_TTL_MS, r.expires_at + APPROVAL_RETENTION_MS - now);
    if (!Number.isSafeInteger(ttl) || !Number.isSafeInteger(now + ttl)) throw new RangeError(`approval ${r.id}: expires_at ${r.expires_at} is out of range`);
    return { ttl, score: now + ttl, now };
  }

  /** Tells the listeners of this process (every FleetApprovalStore on this FleetStore): Redis does not echo our own events back. */
  #announce(r: R): void {
    const event: FleetEvent = { o: this.store.originId, t: 'approval', id: r.id, status: r.status };
    try {
      this.store.emit('event:approval', event);
    } catch {
      // A throwing listener elsewhere must not turn a committed write into a failure.
    }
  }

  /**
   * Calls each listener of `event` (once-listeners remove themselves). One
   * that throws is skipped, not allowed to keep the others (waiters) asleep
   * or, on a Redis message, to end the process.
   */
  #emit(event: 'change' | 'resync', ...args: unknown[]): void {
    for (const fn of this.rawListeners(event) as Array<(...a: unknown[]) => unknown>) {
      try {
        fn.apply(this, args);
      } catch {
        // see above
      }
    }
  }
}
