/**
 * The gate's store-backed checks (velocity, request nonce, single-use permit)
 * against Redis, in the pipeline's order, as ONE script call per request:
 * one round trip for `checkAsync`, one pipeline for `checkBatchAsync`.
 *
 * Per request: the permit's signature, expiry and CAR binding are verified
 * locally first (a forged or expired permit never reaches Redis); a nonce
 * this process has already seen is a replay without a round trip (the local
 * tier), though the velocity charge that precedes it still goes to Redis;
 * everything else is decided by GATE_STEP_LUA atomically on the server.
 */
import { ErrorCodes, GuardError } from '../errors';
import type { Keyring, PermitClaims, PermitVerification } from '../permit';
import type { ReplayDetector } from '../replay';
import type { VelocityGuard } from '../velocity';
import { decodeStep, encodeStep, type StepInput, type StepResult } from './step';
import type { FleetStore } from './store';

/** What the checks decided: a deny, a valid permit (allow), or pass (go on to cache and policy). */
export type ChecksOutcome =
  | { kind: 'deny'; source: 'velocity' | 'replay' | 'permit' | 'error'; reason: string; retryAfterMs?: number }
  | { kind: 'permit'; claims: PermitClaims }
  | { kind: 'pass' };

export const PASS: ChecksOutcome = Object.freeze({ kind: 'pass' });

export interface CheckRequest {
  agentId: string;
  sessionId?: string;
  nonce?: string;
  permit?: string;
  carHash: string;
}

/** One request between its local part and its Redis answer. */
export interface PreparedChecks {
  request: CheckRequest;
  step: StepInput | null;
  /** Nonce already seen by this process: a replay once velocity has passed. */
  localReplay: boolean;
  nonceExpiresAtMs: number;
  permit: PermitVerification | null;
}

export class FleetGateChecks {
  constructor(
    readonly store: FleetStore,
    private readonly replay: ReplayDetector,
    private readonly velocity: VelocityGuard | undefined,
    private readonly keyring: Keyring | undefined,
    private readonly nonceTtlMs: number,
    private readonly clock: () => number,
  ) {}

  prepare(request: CheckRequest): PreparedChecks {
    const now = this.clock();
    const step: StepInput = { now, windowMs: 0 };
    let needed = false;
    const fleetVelocity = this.velocity?.fleet;
    if (fleetVelocity) {
      Object.assign(step, fleetVelocity.parts(request.agentId, request.sessionId, now));
      needed = step.agent !== undefined || step.session !== undefined;
    }
    let localReplay = false;
    const nonceExpiresAtMs = now + this.nonceTtlMs;
    if (request.nonce !== undefined) {
      const fleetReplay = this.replay.fleet!;
      if (fleetReplay.seenLocally(request.nonce)) {
        localReplay = true;
      } else {
        step.nonce = { key: fleetReplay.key('n', request.nonce), expiresAtMs: nonceExpiresAtMs };
        needed = true;
      }
    }
    let permit: PermitVerification | null = null;
    if (request.permit !== undefined && this.keyring !== undefined && !localReplay) {
      permit = this.keyring.verify(request.permit, { carHash: request.carHash, consume: false });
      if (permit.valid && permit.claims.use === 'once') {
        const expiresAtMs = permit.claims.exp * 1000 + this.keyring.clockToleranceMs;
        step.jti = { key: this.replay.fleet!.key('p', permit.claims.jti), expiresAtMs };
        needed = true;
      }
    }
    return { request, step: needed ? step : null, localReplay, nonceExpiresAtMs, permit };
  }

  /** Runs the prepared steps that need Redis, in order, in one pipeline. */
  async run(prepared: PreparedChecks[]): Promise<Array<StepResult | null>> {
    const withStep = prepared.filter((p) => p.step !== null);
    if (withStep.length === 0) return prepared.map(() => null);
    const replies = await this.store.run(async (r) => {
      if (withStep.length === 1) return [[null, await r.gkGateStep(...(encodeStep(withStep[0].step!) as [number]))]];
      const pipe = r.pipeline();
      for (const p of withStep) (pipe as unknown as { gkGateStep(...a: unknown[]): void }).gkGateStep(...encodeStep(p.step!));
      const out = await pipe.exec();
      if (out === null) throw new Error('pipeline discarded');
      return out;
    });
    let at = 0;
    return prepared.map((p) => {
      if (p.step === null) return null;
      const [err, reply] = replies[at++] as [Error | null, unknown];
      if (err) throw new GuardError(ErrorCodes.STORE_UNAVAILABLE, `Redis store unavailable: ${err.message}`, { cause: err });
      return decodeStep(reply);
    });
  }

  /** The outcome of one request from its Redis answer, in the pipeline's order. */
  finish(p: PreparedChecks, result: StepResult | null): ChecksOutcome {
    const { request } = p;
    if (result !== null && (p.step!.agent !== undefined || p.step!.session !== undefined)) {
      const v = this.velocity!.verdictOf(result);
      if (!v.allowed) return { kind: 'deny', source: 'velocity', reason: `rate limit exceeded (${v.scope})`, retryAfterMs: v.retry_after_ms };
    }
    if (p.step?.nonce !== undefined) this.replay.fleet!.remember(request.nonce!, p.nonceExpiresAtMs);
    if (p.localReplay || result?.kind === 'nonce_replay') return { kind: 'deny', source: 'replay', reason: 'request nonce was already used' };
    if (request.permit === undefined) return PASS;
    if (this.keyring === undefined) return { kind: 'deny', source: 'permit', reason: 'a permit was presented but no keyring is configured' };
    const v = p.permit!;
    if (!v.valid) return { kind: 'deny', source: 'permit', reason: `permit rejected: ${v.reason}` };
    if (result?.kind === 'jti_replay') return { kind: 'deny', source: 'permit', reason: 'permit rejected: replayed' };
    return { kind: 'permit', claims: v.claims };
  }
}
