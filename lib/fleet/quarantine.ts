/**
 * The Redis side of a fleet-backed Quarantine: one hash holds every isolated
 * agent's record (agent id -> JSON), and each change is announced on the
 * events channel, so a quarantine made by one process denies in every other
 * as soon as the message arrives (one round trip), with no lookup on the
 * gate's hot path: each process keeps a mirror of the hash.
 *
 * Local changes apply at once and are written behind (in order, retried
 * after an outage until Redis takes them); `Quarantine.sync()` waits for
 * them. A stored `terminated` record is final: a write that would undo it is
 * refused by the script and the mirror takes the terminated record instead.
 * Records are sealed with the fleet signing key when one is configured, and
 * one that does not verify is ignored (write access to Redis alone cannot
 * release an agent).
 * When the subscriber (re)connects, the mirror is refreshed from the hash,
 * since events sent while it was away are lost; an isolation the hash lacks
 * is written back rather than dropped (fail closed).
 */
import type { FleetEvent, FleetStore } from './store';

/** What the fleet side needs from the Quarantine it serves. */
export interface QuarantineMirror {
  /** Wire JSON of the local record of `agentId`, or null if there is none. */
  wire(agentId: string): string | null;
  /** Applies a record written by another process (ignored if malformed). */
  apply(json: string): void;
  /** Agents with a local record that is not `recovered`. */
  isolated(): string[];
}

export class FleetQuarantine {
  readonly #dirty = new Set<string>();
  #flushing: Promise<void> | null = null;
  readonly #hash: string;
  readonly #listeners: Array<[string, (event: FleetEvent) => void]>;

  constructor(
    readonly store: FleetStore,
    private readonly mirror: QuarantineMirror,
  ) {
    this.#hash = store.key('quarantine', 'agents');
    this.#listeners = [
      [
        'event:quarantine',
        (e: FleetEvent) => {
          if (typeof e.r !== 'string' || typeof e.a !== 'string' || this.#dirty.has(e.a)) return; // our newer write follows
          this.#apply(e.r);
        },
      ],
      ['resync', () => void this.#resync().catch(() => {})],
      ['recovered', () => void this.flush().catch(() => {})],
    ];
    for (const [event, fn] of this.#listeners) store.on(event, fn);
  }

  /** Stops mirroring (changes still pending stay unwritten). */
  detach(): void {
    for (const [event, fn] of this.#listeners) this.store.off(event, fn);
  }

  /** Queues the current local record of `agentId` for Redis. */
  changed(agentId: string): void {
    this.#dirty.add(agentId);
    void this.flush().catch(() => {}); // a failure leaves it dirty: retried on recovery, reported by sync()
  }

  /** Writes every pending change; rejects (leaving them pending) if Redis cannot take them. */
  flush(): Promise<void> {
    this.#flushing ??= this.#drain().finally(() => {
      this.#flushing = null;
    });
    return this.#flushing;
  }

  /** Changes not yet in Redis. */
  get pending(): number {
    return this.#dirty.size;
  }

  async #drain(): Promise<void> {
    while (this.#dirty.size > 0) {
      const agentId = this.#dirty.values().next().value as string;
      const json = this.mirror.wire(agentId);
      if (json === null) {
        this.#dirty.delete(agentId);
        continue;
      }
      const sealed = this.store.seal('quarantine', json);
      const message = this.store.message({ t: 'quarantine', a: agentId, r: sealed });
      const refused = await this.store.run((r) => r.gkQuarantineSet(this.#hash, agentId, sealed, this.store.channel, message));
      // Only now: a change made while the write was in flight stays dirty.
      if (this.mirror.wire(agentId) === json) this.#dirty.delete(agentId);
      if (refused !== null) {
        this.#dirty.delete(agentId);
        this.#apply(refused); // terminated elsewhere: final
      }
    }
  }

  /** A sealed record from Redis: applied only when its MAC verifies (with a signing key). */
  #apply(sealed: string): void {
    const json = this.store.open('quarantine', sealed);
    if (json !== null) this.mirror.apply(json);
    else this.store.refuse('a quarantine record that does not verify');
  }

  async #resync(): Promise<void> {
    await this.flush().catch(() => {});
    const all = await this.store.run((r) => r.hgetall(this.#hash));
    for (const [agentId, sealed] of Object.entries(all)) if (!this.#dirty.has(agentId)) this.#apply(sealed);
    // An isolation this process holds but Redis does not (Redis lost its data,
    // or a recover elsewhere was missed) is written back: fail closed, an
    // operator can recover the agent again.
    for (const agentId of this.mirror.isolated()) {
      if (!Object.hasOwn(all, agentId)) this.changed(agentId);
    }
  }
}
