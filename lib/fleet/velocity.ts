/**
 * The Redis side of a fleet-backed VelocityGuard: one budget per agent (and
 * per agent and session) for the whole fleet. Each check is one Lua script
 * (GATE_STEPS_LUA) doing the guard's integer milli-token arithmetic on a hash
 * per bucket, with a TTL of the bucket's fill time (plus slack) so Redis
 * memory is bounded exactly as the in-process table is.
 *
 * The budget is exact while Redis answers (every charge is one atomic step).
 * During an outage with onStoreError 'local', each process charges its own
 * in-process buckets, so the fleet can admit up to (processes x limit) until
 * Redis is back: that is the documented tolerance.
 */
import type { FleetStore, OnStoreError } from './store';
import { keyDigest } from './store';
import type { BucketPart, StepInput } from './step';

/** The bucket numbers of one limit. */
export interface BucketShape {
  rate: number;
  capacity: number;
  fillMs: number;
}

export class FleetVelocity {
  constructor(
    readonly store: FleetStore,
    readonly onStoreError: OnStoreError,
    readonly windowMs: number,
    private readonly agentShape: BucketShape | null,
    private readonly sessionShape: BucketShape | null,
  ) {}

  /** The velocity part of a gate step for this request. */
  parts(agentId: string, sessionId: string | undefined, now: number): Pick<StepInput, 'now' | 'windowMs' | 'agent' | 'session'> {
    const out: Pick<StepInput, 'now' | 'windowMs' | 'agent' | 'session'> = { now, windowMs: this.windowMs };
    if (this.agentShape !== null) out.agent = this.#bucket(this.store.key('vel:a', keyDigest(agentId)), this.agentShape);
    if (this.sessionShape !== null && sessionId !== undefined) {
      out.session = this.#bucket(this.store.key('vel:s', keyDigest(agentId + '\u0000' + sessionId)), this.sessionShape);
    }
    return out;
  }

  #bucket(key: string, shape: BucketShape): BucketPart {
    return { key, rate: shape.rate, capacity: shape.capacity, fillMs: shape.fillMs };
  }
}
