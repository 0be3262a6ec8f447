/**
 * FleetApprovalBook: the approval requests of a fleet gate, kept in Redis
 * (lib/fleet/approvals.ts) so that an approval given through one process
 * releases the agent on another. Every change is a compare-and-set on the
 * stored record: when two processes race (two retries after one grant), one
 * set wins and the other re-reads and decides again, so a grant is used
 * once. The transitions are the in-process book's (./transitions.ts).
 *
 * Audit first: a change's record is appended before the set; a set that
 * loses its race is noted as `approval_change_lost`. Announcements (the
 * gate's `approval` event, the webhook) come from the process that made the
 * change. Expiry happens when a process next touches the request.
 */
import { ErrorCodes, GuardError } from '../../errors';
import { FleetApprovalStore } from '../../fleet/approvals';
import type { FleetStore } from '../../fleet/store';
import type { ApprovalSinks, WaitOptions } from './book';
import { checkId, checkStatusFilter, checkVote, checkWaitTimeout } from './book';
import { approve, auditOf, deny, expire, isDue, resolvePending, type PendingCheck, type Resolution, type Vote } from './transitions';
import type { ApprovalRequest, ApprovalStatus, ApprovalWaitResult } from './types';

/** Compare-and-set rounds before a change gives up (fails closed). */
const ROUNDS = 8;

export class FleetApprovalBook {
  readonly #store: FleetApprovalStore<ApprovalRequest>;
  readonly #sinks: Omit<ApprovalSinks, 'journal'>;
  readonly #clock: () => number;
  readonly #maxOpenPerAgent: number;
  /** Per agent: when the requests this process opened end (a local bound on what one agent can open). */
  readonly #opened = new Map<string, number[]>();
  /** Open waits: close() ends each with the request as last read. */
  readonly #waits = new Set<() => void>();
  #closed = false;

  constructor(store: FleetStore, sinks: Omit<ApprovalSinks, 'journal'>, clock: () => number, options: { maxOpenPerAgent?: number } = {}) {
    this.#store = new FleetApprovalStore<ApprovalRequest>(store, { clock });
    this.#sinks = sinks;
    this.#clock = clock;
    this.#maxOpenPerAgent = options.maxOpenPerAgent ?? 100;
  }

  async list(options?: { status?: ApprovalStatus }): Promise<ApprovalRequest[]> {
    const status = checkStatusFilter(options);
    const now = this.#clock();
    const out: ApprovalRequest[] = [];
    for (let r of await this.#store.list()) {
      if (isDue(r, now)) r = (await this.#expire(r)) ?? r;
      if (status === undefined || r.status === status) out.push(r);
    }
    return out;
  }

  async get(id: string): Promise<ApprovalRequest> {
    return this.#current(checkId(id));
  }

  async approve(id: string, vote: { approver: string; reason?: string }): Promise<ApprovalRequest> {
    checkVote(vote);
    return this.#decide(checkId(id), (r, now) => approve(r, vote as Vote, now));
  }

  async deny(id: string, vote: { approver: string; reason?: string }): Promise<ApprovalRequest> {
    checkVote(vote);
    return this.#decide(checkId(id), (r, now) => deny(r, vote as Vote, now));
  }

  /** As ApprovalBook.wait; woken by the fleet's change messages (and a resync after a reconnect). */
  async wait(id: string, options: WaitOptions = {}): Promise<ApprovalWaitResult> {
    checkId(id);
    const timeoutMs = checkWaitTimeout(options?.timeoutMs);
    const signal = options?.signal;
    if (signal?.aborted) throw signal.reason;
    const first = await this.#current(id);
    if (first.status !== 'pending' || this.#closed) return first;
    return new Promise<ApprovalWaitResult>((resolve, reject) => {
      let settled = false;
      let latest = first;
      let reading = false;
      let again = false;
      const finish = (f: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearTimeout(expiry);
        this.#waits.delete(closing);
        this.#store.off('change', onChange);
        this.#store.off('resync', look);
        signal?.removeEventListener('abort', aborted);
        f();
      };
      const look = () => {
        if (reading) {
          again = true;
          return;
        }
        reading = true;
        this.#current(id).then(
          (r) => {
            reading = false;
            latest = r;
            if (r.status !== 'pending') finish(() => resolve(r));
            else if (again) {
              again = false;
              look();
            }
          },
          (err) => {
            reading = false;
            if (err instanceof GuardError && err.code === ErrorCodes.APPROVAL_NOT_FOUND) finish(() => reject(err));
            // Redis away: the resync after the reconnect looks again.
          },
        );
      };
      const onChange = (changed: string) => {
        if (changed === id) look();
      };
      const aborted = () => finish(() => reject(signal!.reason));
      const closing = () => finish(() => resolve(latest));
      this.#waits.add(closing);
      const timer = setTimeout(() => {
        this.#current(id).then(
          (r) => finish(() => resolve(r.status === 'pending' ? { ...r, timed_out: true } : r)),
          () => finish(() => resolve({ ...first, timed_out: true })),
        );
      }, timeoutMs);
      const expiry = setTimeout(look, Math.max(0, first.expires_at - this.#clock()) + 5);
      expiry.unref();
      this.#store.on('change', onChange);
      this.#store.on('resync', look);
      signal?.addEventListener('abort', aborted, { once: true });
      look(); // a change between the first read and subscribing
    });
  }

  /**
   * The approval stage of a fleet check (see ApprovalBook.resolve).
   * Called by the gate.
   * @internal
   */
  async resolve(check: PendingCheck): Promise<Resolution | null> {
    for (let round = 0; round < ROUNDS; round++) {
      const id = await this.#store.currentFor(check.carHash);
      let existing = id === null ? null : await this.#store.get(id);
      if (existing !== null && isDue(existing, check.now)) {
        const expired = await this.#expire(existing);
        if (expired === null) continue;
        existing = expired;
      }
      const res = resolvePending(existing, check);
      if (res.kind === 'pending' || res.kind === 'denied') return res;
      if (res.kind === 'use') {
        if (await this.#set(res.request, res.next)) return res;
        continue; // another process used it (or it changed): decide again
      }
      if (res.close !== null && !(await this.#set(existing!, res.close))) continue;
      if (!this.#admits(res.next.agent_id, check.now)) return null;
      this.#record(res.next);
      // Expect the pointer as read (it may name a record that no longer verifies).
      if (await this.#store.create(res.next, id)) {
        this.#noteOpened(res.next);
        this.#announce(null, res.next);
        return res;
      }
      this.#lost(res.next);
    }
    throw new GuardError(ErrorCodes.STORE_UNAVAILABLE, `approval request for ${check.carHash} kept changing under this process (${ROUNDS} rounds)`);
  }

  /** Expires every request whose time is up (list does the same). */
  async sweep(): Promise<void> {
    await this.list();
  }

  /** Stops listening to the fleet; open waits resolve with the request as last read. */
  close(): void {
    this.#closed = true;
    for (const end of [...this.#waits]) end();
    this.#store.detach();
  }

  async #current(id: string): Promise<ApprovalRequest> {
    const r = await this.#store.get(id);
    if (r === null) throw new GuardError(ErrorCodes.APPROVAL_NOT_FOUND, `no approval request ${id}`);
    if (isDue(r, this.#clock())) return (await this.#expire(r)) ?? this.#current(id);
    return r;
  }

  async #decide(id: string, change: (r: ApprovalRequest, now: number) => ApprovalRequest): Promise<ApprovalRequest> {
    for (let round = 0; round < ROUNDS; round++) {
      const r = await this.#current(id);
      const next = change(r, this.#clock()); // throws when the vote is refused
      if (await this.#set(r, next)) return next;
    }
    throw new GuardError(ErrorCodes.STORE_UNAVAILABLE, `approval ${id} kept changing under this process (${ROUNDS} rounds)`);
  }

  /** `r` expired in the store; null when someone changed it first. */
  async #expire(r: ApprovalRequest): Promise<ApprovalRequest | null> {
    const next = expire(r, this.#clock());
    return (await this.#set(r, next)) ? next : null;
  }

  /** Audited, then set if `before` still stands; announced when it did. */
  async #set(before: ApprovalRequest, after: ApprovalRequest): Promise<boolean> {
    this.#record(after);
    if (await this.#store.replace(before, after)) {
      this.#announce(before, after);
      return true;
    }
    this.#lost(after);
    return false;
  }

  #record(r: ApprovalRequest): void {
    const { type, fields } = auditOf(r);
    this.#sinks.audit?.append(type, r.status === 'denied' || r.status === 'expired' ? 'warning' : 'info', fields);
  }

  #lost(r: ApprovalRequest): void {
    this.#sinks.audit?.append('approval_change_lost', 'info', { approval_id: r.id, status: r.status, why: 'another process changed the request first; decided again' });
  }

  #announce(before: ApprovalRequest | null, after: ApprovalRequest): void {
    if (before !== null && before.status === after.status) return;
    this.#sinks.announce({ type: after.status === 'pending' ? 'requested' : after.status, request: after });
  }

  #admits(agent: string, now: number): boolean {
    const list = (this.#opened.get(agent) ?? []).filter((t) => t > now);
    if (list.length === 0) this.#opened.delete(agent);
    else this.#opened.set(agent, list);
    return list.length < this.#maxOpenPerAgent;
  }

  #noteOpened(r: ApprovalRequest): void {
    if (this.#opened.size >= 100_000 && !this.#opened.has(r.agent_id)) this.#opened.clear();
    const list = this.#opened.get(r.agent_id) ?? [];
    list.push(r.expires_at);
    this.#opened.set(r.agent_id, list);
  }
}
