/**
 * Quarantine (the "redzone"): agents isolated after a violation.
 *
 * `quarantine(agentId, reason, { isolation, forensic })` puts an agent in
 * status `active`; while `active` or `analyzing` the gate denies that agent's
 * actions in the isolation scope; `terminated` denies everything for good;
 * `recovered` releases the agent. Every change is audited
 * (`quarantine_changed`). With `forensic: 'full'` the agent's recent gate
 * decisions are kept as traces (bounded); `'metadata'` keeps counts only.
 */
import type { AuditLog } from '../audit/log';
import { describe } from '../errors';
import { FleetQuarantine } from '../fleet/quarantine';
import { resolveStore, type FleetStore, type StoreOption } from '../fleet/store';
import { compileNameGlob, type CompiledGlob } from '../policy/glob';

export type QuarantineStatus = 'active' | 'analyzing' | 'terminated' | 'recovered';
export type IsolationScope = 'full' | 'network' | 'filesystem' | string[];
export type ForensicLevel = 'none' | 'metadata' | 'full';

/** Action-type patterns behind the named scopes. */
export const ISOLATION_SCOPES: Readonly<Record<'network' | 'filesystem', readonly string[]>> = Object.freeze({
  network: Object.freeze(['http_*', 'https_*', 'net_*', 'network_*', 'socket_*', 'dns_*', 'fetch*', 'email_*', 'webhook*', 'api_call*']),
  filesystem: Object.freeze(['file_*', 'fs_*', 'dir_*', 'directory_*', 'path_*', 'disk_*']),
});

export interface QuarantineTrace {
  ts: number;
  action_type: string;
  decision: string;
  car_hash?: string;
}

export interface QuarantineRecord {
  agentId: string;
  status: QuarantineStatus;
  reason: string;
  isolation: IsolationScope;
  forensic: ForensicLevel;
  since: number;
  updatedAt: number;
  /** Decisions seen while quarantined (forensic metadata). */
  decisions: number;
  /** Recent decisions (forensic 'full'), oldest first. */
  traces: QuarantineTrace[];
}

export interface QuarantineAnalysis {
  agentId: string;
  status: QuarantineStatus;
  reason: string;
  quarantinedForMs: number;
  decisions: number;
  byActionType: Record<string, number>;
  traces: QuarantineTrace[];
}

export interface QuarantineOptions {
  /** Where changes are recorded. */
  audit?: AuditLog;
  /** Traces kept per agent with forensic 'full'. Default 1000. */
  maxTraces?: number;
  clock?: () => number;
  /**
   * `memory` (default) or Redis: every process on the prefix shares one
   * quarantine list (a hash plus change events; each process mirrors it, so
   * `denies` stays a local lookup). Changes are written behind: `await sync()`.
   */
  store?: StoreOption;
}

const STATUSES: readonly QuarantineStatus[] = ['active', 'analyzing', 'terminated', 'recovered'];
const FORENSICS: readonly ForensicLevel[] = ['none', 'metadata', 'full'];

interface Entry extends QuarantineRecord {
  scope: CompiledGlob[] | null; // null = every action
  byActionType: Map<string, number>;
}

function checkAgent(agentId: unknown): string {
  if (typeof agentId !== 'string' || agentId.length === 0 || agentId.length > 256) {
    throw new TypeError(`Expected a non-empty string for agentId but received ${describe(agentId)}`);
  }
  return agentId;
}

/** Scope patterns are name globs: action types are not paths, so `http_*` also covers `http_get/v2`. */
function compileScope(isolation: unknown): CompiledGlob[] | null {
  if (isolation === 'full') return null;
  if (isolation === 'network' || isolation === 'filesystem') return ISOLATION_SCOPES[isolation].map((p) => compileNameGlob(p));
  if (Array.isArray(isolation) && isolation.length > 0 && isolation.every((p) => typeof p === 'string')) {
    return isolation.map((p: string) => compileNameGlob(p));
  }
  throw new TypeError(`Expected 'full', 'network', 'filesystem' or a non-empty list of action-type patterns for isolation but received ${describe(isolation)}`);
}

export class Quarantine {
  readonly #entries = new Map<string, Entry>();
  readonly #audit: AuditLog | undefined;
  readonly #maxTraces: number;
  readonly #clock: () => number;
  #fleet: FleetQuarantine | null = null;
  #ownedStore: FleetStore | null = null;

  constructor(options: QuarantineOptions = {}) {
    if (typeof options !== 'object' || options === null) throw new TypeError(`Expected options for Quarantine but received ${describe(options)}`);
    const { audit, maxTraces = 1000, clock = Date.now } = options;
    const { store, owned } = resolveStore(options.store, 'Quarantine');
    if (!Number.isSafeInteger(maxTraces) || maxTraces < 0 || maxTraces > 1_000_000) {
      throw new RangeError(`Expected an integer in [0, 1000000] for maxTraces but received ${describe(maxTraces)}`);
    }
    this.#audit = audit;
    this.#maxTraces = maxTraces;
    this.#clock = clock;
    if (store !== null) {
      this.#fleet = new FleetQuarantine(store, {
        wire: (agentId) => {
          const e = this.#entries.get(agentId);
          return e === undefined ? null : JSON.stringify({ agentId, status: e.status, reason: e.reason, isolation: e.isolation, forensic: e.forensic, since: e.since, updatedAt: e.updatedAt });
        },
        apply: (json) => this.#applyRemote(json),
        isolated: () => [...this.#entries.values()].filter((e) => e.status !== 'recovered').map((e) => e.agentId),
      });
      if (owned) this.#ownedStore = store;
    }
  }

  /** True when the list is shared through Redis. */
  get fleet(): boolean {
    return this.#fleet !== null;
  }

  /**
   * Resolves when every local change is in Redis (and announced to the
   * fleet); rejects with ERR_STORE_UNAVAILABLE if Redis cannot take them now
   * (they stay queued and are written when it is back). Memory store: at once.
   */
  async sync(): Promise<void> {
    await this.#fleet?.flush();
  }

  /** Stops following the fleet and quits a Redis connection this quarantine opened. Idempotent. */
  close(): void {
    this.#fleet?.detach();
    void this.#ownedStore?.close();
    this.#ownedStore = null;
  }

  /** A record another process wrote: taken as is when well-formed, audited as a change from the fleet. */
  #applyRemote(json: string): void {
    let r: Record<string, unknown>;
    let scope: CompiledGlob[] | null;
    try {
      r = JSON.parse(json) as Record<string, unknown>;
      checkAgent(r.agentId);
      if (!STATUSES.includes(r.status as QuarantineStatus) || !FORENSICS.includes(r.forensic as ForensicLevel)) return;
      if (typeof r.reason !== 'string' || typeof r.since !== 'number' || typeof r.updatedAt !== 'number') return;
      scope = compileScope(r.isolation);
    } catch {
      return; // not a record we wrote: ignore it rather than guess
    }
    const agentId = r.agentId as string;
    const prior = this.#entries.get(agentId);
    if (prior?.status === 'terminated') return; // final here too
    const entry: Entry = {
      agentId,
      status: r.status as QuarantineStatus,
      reason: r.reason as string,
      isolation: r.isolation as IsolationScope,
      forensic: r.forensic as ForensicLevel,
      since: r.since as number,
      updatedAt: r.updatedAt as number,
      decisions: prior?.decisions ?? 0,
      traces: prior?.traces ?? [],
      scope,
      byActionType: prior?.byActionType ?? new Map(),
    };
    if (prior !== undefined && prior.status === entry.status && prior.updatedAt === entry.updatedAt) return; // already have it
    this.#entries.set(agentId, entry);
    try {
      this.#record(entry, prior?.status ?? 'none', 'fleet');
    } catch {
      // From a Redis message: a throw would end the process. The change is applied; the store counts the lost record.
      this.#fleet?.store.noteAuditFailure();
    }
  }

  /** Isolates `agentId` (or changes the terms of an existing quarantine). */
  quarantine(agentId: string, reason: string, options: { isolation?: IsolationScope; forensic?: ForensicLevel } = {}): QuarantineRecord {
    checkAgent(agentId);
    if (typeof reason !== 'string' || reason.length === 0) throw new TypeError(`Expected a non-empty reason but received ${describe(reason)}`);
    const isolation = options.isolation ?? 'full';
    const forensic = options.forensic ?? 'metadata';
    if (forensic !== 'none' && forensic !== 'metadata' && forensic !== 'full') {
      throw new TypeError(`Expected 'none', 'metadata' or 'full' for forensic but received ${describe(forensic)}`);
    }
    const scope = compileScope(isolation);
    const prior = this.#entries.get(agentId);
    if (prior?.status === 'terminated') throw new RangeError(`Agent "${agentId}" is terminated; it cannot be quarantined again`);
    const now = this.#clock();
    const entry: Entry = {
      agentId,
      status: 'active',
      reason,
      isolation: Array.isArray(isolation) ? [...isolation] : isolation,
      forensic,
      since: now,
      updatedAt: now,
      decisions: 0,
      traces: [],
      scope,
      byActionType: new Map(),
    };
    // Audit first: a change whose record the log refuses is not made.
    this.#record(entry, prior?.status ?? 'none');
    this.#entries.set(agentId, entry);
    this.#fleet?.changed(agentId);
    return this.#view(entry);
  }

  /** The quarantine record of `agentId`, if any. */
  get(agentId: string): QuarantineRecord | undefined {
    const e = this.#entries.get(checkAgent(agentId));
    return e && this.#view(e);
  }

  /** Records that are not `recovered`. */
  list(): QuarantineRecord[] {
    return [...this.#entries.values()].filter((e) => e.status !== 'recovered').map((e) => this.#view(e));
  }

  /** True when the gate must deny `actionType` for `agentId`. Hot path: one Map lookup for free agents. */
  denies(agentId: string, actionType: string): boolean {
    // Most gates hold no quarantine: no lookup (hashing a fresh agent id) then.
    if (this.#entries.size === 0) return false;
    const e = this.#entries.get(agentId);
    if (e === undefined || e.status === 'recovered') return false;
    if (e.status === 'terminated' || e.scope === null) return true;
    for (const g of e.scope) if (g.test(actionType)) return true;
    return false;
  }

  /** Notes a gate decision for a quarantined agent (forensics). */
  observe(agentId: string, trace: QuarantineTrace): void {
    const e = this.#entries.get(agentId);
    if (e === undefined || e.status === 'recovered' || e.forensic === 'none') return;
    e.decisions++;
    e.byActionType.set(trace.action_type, (e.byActionType.get(trace.action_type) ?? 0) + 1);
    if (e.forensic === 'full' && this.#maxTraces > 0) {
      e.traces.push({ ...trace });
      if (e.traces.length > this.#maxTraces) e.traces.shift();
    }
  }

  /** Moves an active quarantine to `analyzing` (still isolated) and reports what was seen. */
  analyze(agentId: string): QuarantineAnalysis {
    const e = this.#require(agentId, ['active', 'analyzing']);
    if (e.status !== 'analyzing') {
      this.#record({ ...e, status: 'analyzing' }, e.status); // audit first, then change
      e.status = 'analyzing';
      e.updatedAt = this.#clock();
      this.#fleet?.changed(agentId);
    }
    return {
      agentId,
      status: e.status,
      reason: e.reason,
      quarantinedForMs: e.updatedAt - e.since,
      decisions: e.decisions,
      byActionType: Object.fromEntries(e.byActionType),
      traces: e.traces.map((t) => ({ ...t })),
    };
  }

  /** Denies every action of `agentId` from now on. Final. */
  terminate(agentId: string, reason?: string): QuarantineRecord {
    const e = this.#require(agentId, ['active', 'analyzing']);
    return this.#transition(e, 'terminated', reason);
  }

  /** Releases `agentId`. */
  recover(agentId: string, reason?: string): QuarantineRecord {
    const e = this.#require(agentId, ['active', 'analyzing']);
    return this.#transition(e, 'recovered', reason);
  }

  #transition(e: Entry, to: QuarantineStatus, reason: string | undefined): QuarantineRecord {
    if (reason !== undefined && (typeof reason !== 'string' || reason.length === 0)) throw new TypeError(`Expected a non-empty reason but received ${describe(reason)}`);
    // Audit first: a change whose record the log refuses is not made (the agent stays as it was).
    this.#record({ ...e, status: to, reason: reason ?? e.reason }, e.status);
    e.status = to;
    e.updatedAt = this.#clock();
    if (reason !== undefined) e.reason = reason;
    this.#fleet?.changed(e.agentId);
    return this.#view(e);
  }

  #require(agentId: string, allowed: QuarantineStatus[]): Entry {
    const e = this.#entries.get(checkAgent(agentId));
    if (e === undefined) throw new RangeError(`Agent "${agentId}" is not quarantined`);
    if (!allowed.includes(e.status)) throw new RangeError(`Agent "${agentId}" is ${e.status}; expected ${allowed.join(' or ')}`);
    return e;
  }

  /** Audits a change to `e` (the state it is about to have); throws, and the caller changes nothing, when the log refuses. */
  #record(e: Pick<Entry, 'agentId' | 'status' | 'reason' | 'isolation' | 'forensic'>, from: string, origin: 'local' | 'fleet' = 'local'): void {
    const fields: Record<string, unknown> = {
      agent_id: e.agentId,
      from,
      to: e.status,
      reason: e.reason,
      isolation: e.isolation,
      forensic: e.forensic,
    };
    if (origin === 'fleet') fields.origin = 'fleet';
    this.#audit?.append('quarantine_changed', e.status === 'recovered' ? 'info' : 'warning', fields);
  }

  #view(e: Entry): QuarantineRecord {
    return {
      agentId: e.agentId,
      status: e.status,
      reason: e.reason,
      isolation: Array.isArray(e.isolation) ? [...e.isolation] : e.isolation,
      forensic: e.forensic,
      since: e.since,
      updatedAt: e.updatedAt,
      decisions: e.decisions,
      traces: e.traces.map((t) => ({ ...t })),
    };
  }
}
