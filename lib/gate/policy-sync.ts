/**
 * Policy version and decision-cache invalidation across a fleet.
 *
 * The newest policy document lives in Redis (a hash: version + JSON). A
 * process that loads a newer version (file watch, `policy_reload`, or
 * `engine.load`) publishes it with a compare-and-set script; every other
 * process hears the version on the events channel, marks itself behind at
 * once (the gate then serves no decision until it has caught up: it waits
 * for the fetch and load, and denies if that fails) and loads the document
 * from Redis. Cached decisions are keyed by policy version, so none made
 * under the old version is served afterwards.
 *
 * Cache invalidations (`cache_invalidate`) are events too: each process drops
 * the entry (or everything) from its own cache.
 */
import type { AuditLog } from '../audit/log';
import type { DecisionCache } from './cache';
import type { PolicyEngine } from '../policy/engine';
import type { FleetEvent, FleetStore } from '../fleet/store';

export class FleetPolicySync {
  readonly #hash: string;
  /** Highest policy version heard of in the fleet. */
  #fleetVersion = 0;
  #catchUp: Promise<void> | null = null;
  #applyingRemote = false;
  readonly #onLoaded: (version: number) => void;
  readonly #listeners: Array<[string, (event: FleetEvent) => void]>;

  constructor(
    readonly store: FleetStore,
    private readonly engine: PolicyEngine,
    private readonly cache: DecisionCache | null,
    private readonly audit: AuditLog | undefined,
  ) {
    this.#hash = store.key('policy', 'current');
    this.#onLoaded = () => {
      if (!this.#applyingRemote) void this.publish().catch(() => {});
    };
    engine.on('loaded', this.#onLoaded);
    this.#listeners = [
      [
        'event:policy',
        (e: FleetEvent) => {
          if (typeof e.v === 'number' && Number.isSafeInteger(e.v)) this.#heard(e.v);
        },
      ],
      [
        'event:cache',
        (e: FleetEvent) => {
          if (this.cache === null) return;
          if (typeof e.h === 'string') this.cache.invalidate(e.h);
          else if (e.h === null) this.cache.clear();
        },
      ],
      // Reconnected: events may have been missed, and Redis may have lost its data.
      ['resync', () => void this.#resync().catch(() => {})],
    ];
    for (const [event, fn] of this.#listeners) store.on(event, fn);
  }

  /** True while a newer version is known in the fleet than the one loaded here. */
  get behind(): boolean {
    return this.engine.version < this.#fleetVersion;
  }

  get fleetVersion(): number {
    return Math.max(this.#fleetVersion, this.engine.version);
  }

  /** Waits for a pending catch-up (if any); afterwards `behind` says whether it worked. */
  async catchUp(): Promise<void> {
    await this.#catchUp;
  }

  /** Publishes the local document if it is newer than the fleet's. */
  async publish(): Promise<void> {
    const doc = this.engine.document;
    if (doc === null) return;
    const version = this.engine.version;
    const text = JSON.stringify(doc);
    const message = this.store.message({ t: 'policy', v: version });
    const mac = this.store.mac('policy', `${version}\u0000${text}`) ?? '';
    const fleet = await this.store.run((r) => r.gkPolicyPublish(this.#hash, version, text, this.store.channel, message, mac));
    if (fleet > version) this.#heard(fleet);
  }

  /** Drops `carHash` (or everything: undefined) from every process's cache, this one included. */
  async invalidate(carHash?: string): Promise<number> {
    let removed = 0;
    if (this.cache !== null) removed = carHash === undefined ? this.cache.clear() : Number(this.cache.invalidate(carHash));
    await this.store.publish({ t: 'cache', h: carHash ?? null });
    return removed;
  }

  /** Stops listening (to the engine and the store). */
  close(): void {
    this.engine.off('loaded', this.#onLoaded);
    for (const [event, fn] of this.#listeners) this.store.off(event, fn);
  }

  /** A fleet policy load for the audit log; heard from Redis, so a log that cannot take it is counted, never thrown. */
  #record(severity: 'info' | 'error', fields: Record<string, unknown>): void {
    try {
      this.audit?.append('policy_reloaded', severity, fields);
    } catch {
      this.store.noteAuditFailure();
    }
  }

  #heard(version: number): void {
    if (version > this.#fleetVersion) this.#fleetVersion = version;
    if (this.behind) this.#catchUp ??= this.#fetch().finally(() => (this.#catchUp = null));
  }

  async #fetch(): Promise<void> {
    const stored = await this.store.run((r) => r.hmget(this.#hash, 'version', 'doc', 'mac')).catch(() => null);
    if (stored === null || stored[0] === null || stored[1] === null) return;
    const version = Number(stored[0]);
    if (version > this.#fleetVersion) this.#fleetVersion = version;
    if (version <= this.engine.version) return;
    // Adopt only a document signed by a process of this fleet: write access
    // to Redis must not be enough to install a policy. Refused: stay behind (deny).
    const refusal = !this.store.signed
      ? 'no signingKey is configured, so policy documents from Redis are not adopted; load version ' + version + ' here'
      : !this.store.verifyMac('policy', `${stored[0]}\u0000${stored[1]}`, stored[2])
        ? 'the stored document does not verify under the fleet signing key'
        : null;
    if (refusal !== null) {
      if (this.store.signed) this.store.refuse('a policy document that does not verify');
      this.#record('error', { ok: false, source: 'fleet', version, error: refusal, active_version: this.engine.version });
      return;
    }
    this.#applyingRemote = true;
    try {
      // Audited by the engine before the swap; a refused record leaves the old version active.
      this.engine.load(JSON.parse(stored[1]) as Record<string, unknown>, { source: 'fleet' });
    } catch (err) {
      // Stays behind: the gate denies until a loadable version arrives.
      this.#record('error', { ok: false, source: 'fleet', version, error: (err as Error).message, active_version: this.engine.version });
    } finally {
      this.#applyingRemote = false;
    }
  }

  async #resync(): Promise<void> {
    const stored = await this.store.run((r) => r.hget(this.#hash, 'version'));
    const version = stored === null ? 0 : Number(stored);
    if (version > this.engine.version) this.#heard(version);
    else if (version < this.engine.version) await this.publish();
  }
}
