/**
 * ApprovalBook: the approval requests of an in-process gate. Every change is
 * audited first, then written to the journal (when the book has one: `serve`
 * keeps it in its state directory), then applied, then announced (the gate's
 * `approval` event, waiters, the webhook). A change whose audit record or
 * journal line cannot be written is not made: the check fails closed.
 *
 * Bounded: open requests in all and per agent (past either, a new request is
 * not opened and the check is denied), and ended requests kept for listing.
 */
import type { AuditLog } from '../../audit/log';
import { ErrorCodes, GuardError, describe } from '../../errors';
import { APPROVAL_ID, approve, auditOf, deny, expire, isDue, resolvePending, type PendingCheck, type Resolution, type Vote } from './transitions';
import type { ApprovalEvent, ApprovalRequest, ApprovalStatus, ApprovalWaitResult } from './types';
import { ExpiryQueue } from './expiry-queue';

const DEFERRED_SYNC = { sync: false } as const;

/** Where changes go besides the book itself. */
export interface ApprovalSinks {
  audit?: AuditLog;
  /**
   * Durable record: `write` must not return before the line is on disk,
   * except with `sync: false` (a new request: on disk by the next turn of the
   * event loop; losing it fails closed, as nobody can have approved it).
   */
  journal?: { write(r: ApprovalRequest, options?: { sync?: boolean }): void };
  /** Announcements (the gate's `approval` event and the webhook); must not throw. */
  announce: (event: ApprovalEvent) => void;
}

export interface ApprovalBookOptions {
  /** Open (pending or granted) requests at once. Default 10000. */
  maxOpen?: number;
  /** Open requests one agent may have. Default 100. */
  maxOpenPerAgent?: number;
  /** Ended requests kept for listing (oldest forgotten first). Default 10000. */
  maxEnded?: number;
  /** Open requests one requesting credential (a socket client) may have, whatever agent ids its CARs name. Default 1000. */
  maxOpenPerRequester?: number;
  /** Bytes of CAR text all kept requests may hold (ended ones are forgotten first, then new ones refused). Default 64 MiB. */
  maxBytes?: number;
}

export interface WaitOptions {
  /** Default 30000; at most 3600000. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

const STATUSES: ReadonlySet<string> = new Set(['pending', 'granted', 'denied', 'expired', 'used']);
export const MAX_WAIT_MS = 3_600_000;

export function checkId(id: unknown): string {
  if (typeof id !== 'string' || !APPROVAL_ID.test(id)) throw new GuardError(ErrorCodes.INVALID_ARGUMENT, `Expected an approval id ("apr_" + 22 base64url characters) but received ${describe(id)}`);
  return id;
}

export function checkWaitTimeout(timeoutMs: unknown): number {
  if (timeoutMs === undefined) return 30_000;
  if (!Number.isSafeInteger(timeoutMs) || (timeoutMs as number) < 0 || (timeoutMs as number) > MAX_WAIT_MS) {
    throw new GuardError(ErrorCodes.INVALID_ARGUMENT, `Expected timeoutMs as an integer in [0, ${MAX_WAIT_MS}] but received ${describe(timeoutMs)}`);
  }
  return timeoutMs as number;
}

export function checkStatusFilter(options: unknown): ApprovalStatus | undefined {
  if (options === undefined) return undefined;
  if (typeof options !== 'object' || options === null) throw new GuardError(ErrorCodes.INVALID_ARGUMENT, `Expected { status? } but received ${describe(options)}`);
  const status = (options as { status?: unknown }).status;
  if (status !== undefined && (typeof status !== 'string' || !STATUSES.has(status))) {
    throw new GuardError(ErrorCodes.INVALID_ARGUMENT, `Expected status as one of ${[...STATUSES].join(', ')} but received ${describe(status)}`);
  }
  return status as ApprovalStatus | undefined;
}

export function checkVote(vote: unknown): Vote {
  if (typeof vote !== 'object' || vote === null) throw new GuardError(ErrorCodes.INVALID_ARGUMENT, `Expected { approver, reason? } but received ${describe(vote)}`);
  return vote as Vote;
}

/** Copies out: callers never hold the book's own records. */
const copy = (r: ApprovalRequest): ApprovalRequest => structuredClone(r);

export class ApprovalBook {
  readonly #requests = new Map<string, ApprovalRequest>();
  /** CAR hash -> the id of the request that stands for it. */
  readonly #byCar = new Map<string, string>();
  readonly #openPerAgent = new Map<string, number>();
  readonly #openPerRequester = new Map<string, number>();
  /** The CAR text size of each kept request, and their sum. */
  readonly #sizes = new Map<string, number>();
  #bytes = 0;
  readonly #maxOpenPerRequester: number;
  readonly #maxBytes: number;
  #open = 0;
  /** Ended ids in the order they ended (Map order), for forgetting the oldest. */
  readonly #ended = new Map<string, true>();
  readonly #waiters = new Map<string, Set<() => void>>();
  readonly #sinks: ApprovalSinks;
  readonly #clock: () => number;
  readonly #maxOpen: number;
  readonly #maxOpenPerAgent: number;
  readonly #maxEnded: number;
  #timer: NodeJS.Timeout | null = null;
  #timerAt = Infinity;
  /** Open requests by expiry (stale entries skipped at the top): the next expiry without a scan. */
  readonly #expiries = new ExpiryQueue();
  #closed = false;

  constructor(sinks: ApprovalSinks, clock: () => number, options: ApprovalBookOptions = {}, restored: readonly ApprovalRequest[] = []) {
    if (typeof options !== 'object' || options === null) throw new TypeError(`Expected approvals options but received ${describe(options)}`);
    const { maxOpen = 10_000, maxOpenPerAgent = 100, maxEnded = 10_000, maxOpenPerRequester = 1000, maxBytes = 64 * 1024 * 1024 } = options;
    for (const [name, v] of [['maxOpen', maxOpen], ['maxOpenPerAgent', maxOpenPerAgent], ['maxEnded', maxEnded], ['maxOpenPerRequester', maxOpenPerRequester], ['maxBytes', maxBytes]] as const) {
      if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`Expected a positive integer for ${name} but received ${describe(v)}`);
    }
    this.#sinks = sinks;
    this.#clock = clock;
    this.#maxOpen = maxOpen;
    this.#maxOpenPerAgent = maxOpenPerAgent;
    this.#maxOpenPerRequester = maxOpenPerRequester;
    this.#maxBytes = maxBytes;
    this.#maxEnded = maxEnded;
    // Restored from the journal, oldest first: the latest request per CAR stands.
    for (const r of [...restored].sort((a, b) => a.requested_at - b.requested_at)) this.#put(r);
    this.#schedule();
  }

  /** Requests, oldest first; `status` filters. Ended ones are kept a while (maxEnded). */
  list(options?: { status?: ApprovalStatus }): ApprovalRequest[] {
    const status = checkStatusFilter(options);
    this.sweep();
    const out: ApprovalRequest[] = [];
    for (const r of this.#requests.values()) if (status === undefined || r.status === status) out.push(copy(r));
    return out.sort((a, b) => a.requested_at - b.requested_at);
  }

  /** One request. Throws ERR_APPROVAL_NOT_FOUND for an id the book does not hold. */
  get(id: string): ApprovalRequest {
    return copy(this.#current(checkId(id)));
  }

  /** Counts `approver`'s approval; granted once the rule's min_approvals distinct approvers agree. Returns the request after. */
  approve(id: string, vote: { approver: string; reason?: string }): ApprovalRequest {
    const r = this.#current(checkId(id));
    return copy(this.#change(r, approve(r, checkVote(vote), this.#clock())));
  }

  /** Denies the request: its CAR is denied until the request expires. Returns the request after. */
  deny(id: string, vote: { approver: string; reason?: string }): ApprovalRequest {
    const r = this.#current(checkId(id));
    return copy(this.#change(r, deny(r, checkVote(vote), this.#clock())));
  }

  /**
   * Resolves with the request once it is no longer pending (granted, denied,
   * expired, used), or after `timeoutMs` with the pending request and
   * `timed_out: true`. An aborted `signal` rejects with its reason.
   */
  wait(id: string, options: WaitOptions = {}): Promise<ApprovalWaitResult> {
    try {
      checkId(id);
      if (typeof options !== 'object' || options === null) throw new GuardError(ErrorCodes.INVALID_ARGUMENT, `Expected wait options but received ${describe(options)}`);
      const timeoutMs = checkWaitTimeout(options.timeoutMs);
      const { signal } = options;
      if (signal?.aborted) return Promise.reject(signal.reason);
      const now = this.#current(id);
      if (now.status !== 'pending') return Promise.resolve(copy(now));
      return new Promise<ApprovalWaitResult>((resolve, reject) => {
        let set = this.#waiters.get(id);
        if (set === undefined) this.#waiters.set(id, (set = new Set()));
        const done = () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', aborted);
          set!.delete(wake);
          if (set!.size === 0 && this.#waiters.get(id) === set) this.#waiters.delete(id);
        };
        const wake = () => {
          const r = this.#requests.get(id);
          if (r !== undefined && r.status === 'pending' && !this.#closed) return;
          done();
          if (r === undefined) reject(new GuardError(ErrorCodes.APPROVAL_NOT_FOUND, `approval ${id} was forgotten while waiting`));
          else resolve(copy(r));
        };
        const aborted = () => {
          done();
          reject(signal!.reason);
        };
        const timer = setTimeout(() => {
          done();
          const r = this.#requests.get(id);
          if (r === undefined) reject(new GuardError(ErrorCodes.APPROVAL_NOT_FOUND, `no approval request ${id}`));
          else resolve(r.status === 'pending' ? { ...copy(r), timed_out: true } : copy(r));
        }, timeoutMs);
        set.add(wake);
        signal?.addEventListener('abort', aborted, { once: true });
      });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * The gate's approval stage for a `pending` policy decision (see
   * transitions.resolvePending). Throws when a change cannot be recorded;
   * returns null when the book is full (the gate denies).
   * Called by the gate.
   * @internal
   */
  resolve(check: PendingCheck): Resolution | null {
    const id = this.#byCar.get(check.carHash);
    let existing = id === undefined ? null : (this.#requests.get(id) ?? null);
    if (existing !== null && isDue(existing, check.now)) existing = this.#change(existing, expire(existing, check.now));
    const res = resolvePending(existing, check);
    if (res.kind === 'use') this.#change(res.request, res.next);
    else if (res.kind === 'open') {
      if (res.close !== null) this.#change(existing!, res.close);
      const agent = res.next.agent_id;
      const requester = res.next.requester;
      if (this.#open >= this.#maxOpen || (this.#openPerAgent.get(agent) ?? 0) >= this.#maxOpenPerAgent) return null;
      if (requester !== null && (this.#openPerRequester.get(requester) ?? 0) >= this.#maxOpenPerRequester) return null;
      if (!this.#room(sizeOf(res.next))) return null;
      this.#change(null, res.next);
    }
    return res;
  }

  /** Expires every request whose time is up (runs on a timer too; call it where the clock is injected). */
  sweep(): void {
    const now = this.#clock();
    // Earliest first (equal expiries in the order they were stored): only the
    // due requests are visited. An expired request's entry is stale once the
    // change is made (#firstOpen drops it); a change that throws leaves it for the retry.
    for (let r = this.#firstOpen(); r !== undefined && isDue(r, now); r = this.#firstOpen()) this.#change(r, expire(r, now));
    this.#schedule();
  }

  /** The open request that expires first (stale queue entries dropped on the way), or undefined. */
  #firstOpen(): ApprovalRequest | undefined {
    const q = this.#expiries;
    for (let id = q.firstId; id !== undefined; id = q.firstId) {
      const r = this.#requests.get(id);
      if (r !== undefined && isOpen(r.status) && r.expires_at === q.firstAt) return r;
      q.pop();
    }
    return undefined;
  }

  get openCount(): number {
    return this.#open;
  }

  /** Stops the expiry timer; waiters resolve with the request as it stands. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    for (const set of [...this.#waiters.values()]) for (const wake of [...set]) wake();
  }

  #current(id: string): ApprovalRequest {
    const r = this.#requests.get(id);
    if (r === undefined) throw new GuardError(ErrorCodes.APPROVAL_NOT_FOUND, `no approval request ${id}`);
    if (isDue(r, this.#clock())) return this.#change(r, expire(r, this.#clock()));
    return r;
  }

  /** Records, then applies, then announces one change. `before` null: a new request. */
  #change(before: ApprovalRequest | null, after: ApprovalRequest): ApprovalRequest {
    const { type, fields } = auditOf(after);
    this.#sinks.audit?.append(type, after.status === 'denied' || after.status === 'expired' ? 'warning' : 'info', fields);
    // Opening a request is the gate's hot path: its line is fsynced with the
    // others of this turn. Every later change (a grant, a use) is synced at once.
    this.#sinks.journal?.write(after, before === null && after.status === 'pending' ? DEFERRED_SYNC : undefined);
    if (before !== null && isOpen(before.status)) this.#countOpen(before, -1);
    this.#put(after);
    if (before === null || before.status !== after.status) {
      const event = eventType(after.status);
      if (event !== null) this.#sinks.announce({ type: event, request: copy(after) });
      const set = this.#waiters.get(after.id);
      if (set !== undefined) for (const wake of [...set]) wake();
    }
    this.#schedule();
    return after;
  }

  /** [expires_at, id] of every open request, in the order they were stored. */
  *#openExpiries(): Iterable<readonly [number, string]> {
    for (const r of this.#requests.values()) if (isOpen(r.status)) yield [r.expires_at, r.id];
  }

  #put(r: ApprovalRequest): void {
    this.#requests.set(r.id, r);
    if (isOpen(r.status)) this.#expiries.push(r.expires_at, r.id);
    const standing = this.#byCar.get(r.car_hash);
    if (standing === undefined || standing === r.id || (this.#requests.get(standing)?.requested_at ?? -1) <= r.requested_at) this.#byCar.set(r.car_hash, r.id);
    if (!this.#sizes.has(r.id)) {
      const size = sizeOf(r);
      this.#sizes.set(r.id, size);
      this.#bytes += size;
    }
    if (isOpen(r.status)) this.#countOpen(r, 1);
    else {
      this.#ended.delete(r.id);
      this.#ended.set(r.id, true);
      while (this.#ended.size > this.#maxEnded) this.#dropOldestEnded();
    }
  }

  #countOpen(r: ApprovalRequest, delta: number): void {
    this.#open += delta;
    count(this.#openPerAgent, r.agent_id, delta);
    if (r.requester !== null) count(this.#openPerRequester, r.requester, delta);
  }

  /** Forgets the request that ended longest ago. */
  #dropOldestEnded(): void {
    const oldest = this.#ended.keys().next().value as string;
    this.#ended.delete(oldest);
    this.#bytes -= this.#sizes.get(oldest) ?? 0;
    this.#sizes.delete(oldest);
    const gone = this.#requests.get(oldest);
    this.#requests.delete(oldest);
    if (gone !== undefined && this.#byCar.get(gone.car_hash) === oldest) this.#byCar.delete(gone.car_hash);
  }

  /** True when `size` more bytes fit, after forgetting ended requests (oldest first) as needed. */
  #room(size: number): boolean {
    while (this.#bytes + size > this.#maxBytes && this.#ended.size > 0) this.#dropOldestEnded();
    return this.#bytes + size <= this.#maxBytes;
  }

  /** One unref'd timer at the earliest expiry of an open request (capped at a minute: the clock may be injected). */
  #schedule(): void {
    if (this.#closed) return;
    // Stale entries (requests that ended early) are bounded: past twice the
    // open requests the queue is rebuilt from them (amortized O(1) a change).
    if (this.#expiries.size > 2 * this.#open + 1024) this.#expiries.rebuild(this.#openExpiries());
    const next = this.#firstOpen()?.expires_at ?? Infinity;
    if (next === this.#timerAt && this.#timer !== null) return;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#timerAt = next;
    if (next === Infinity) return;
    const delay = Math.min(60_000, Math.max(5, next - this.#clock()));
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#timerAt = Infinity;
      try {
        this.sweep();
      } catch {
        // An audit log or journal that refuses: try again in a second (the
        // next access also expires it, and fails closed there).
        this.#timer = setTimeout(() => this.#schedule(), 1000);
        this.#timer.unref();
      }
    }, delay);
    this.#timer.unref();
  }
}

function count(m: Map<string, number>, key: string, delta: number): void {
  const n = (m.get(key) ?? 0) + delta;
  if (n <= 0) m.delete(key);
  else m.set(key, n);
}

/** What a request costs to keep: its CAR's JSON text (the rest is small and fixed). */
function sizeOf(r: ApprovalRequest): number {
  return JSON.stringify(r.car).length + 512;
}

function isOpen(s: ApprovalStatus): boolean {
  return s === 'pending' || s === 'granted';
}

function eventType(s: ApprovalStatus): ApprovalEvent['type'] | null {
  return s === 'pending' ? 'requested' : s;
}
