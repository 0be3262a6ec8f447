/**
 * The gate's store-backed checks (velocity, request nonce, single-use permit)
 * against Redis, in the pipeline's order, as one script step per request:
 * one round trip for `checkAsync`, one pipeline for `checkBatchAsync`.
 *
 * Per request: the permit's signature, expiry and CAR binding are verified
 * locally first (a forged or expired permit never reaches Redis); a nonce
 * this process has already seen is a replay without a round trip (the local
 * tier), though the velocity charge that precedes it still goes to Redis;
 * everything else is decided by GATE_STEPS_LUA on the server, each step
 * atomic and the steps in request order.
 */
import type { Keyring, PermitClaims, PermitVerification } from '../permits/keyring';
import type { ReplayDetector } from '../permits/replay';
import type { VelocityGuard } from './velocity';
import { STEPS_PER_CALL, decodeSteps, encodeSteps, type StepInput, type StepResult } from '../fleet/step';
import type { FleetStore } from '../fleet/store';

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

  /** Runs the prepared steps that need Redis, in order: script calls of up to 256 steps, all in one pipeline. */
  async run(prepared: PreparedChecks[]): Promise<Array<StepResult | null>> {
    const steps: StepInput[] = [];
    for (const p of prepared) if (p.step !== null) steps.push(p.step);
    if (steps.length === 0) return prepared.map(() => null);
    const chunks: string[] = [];
    for (let at = 0; at < steps.length; at += STEPS_PER_CALL) chunks.push(encodeSteps(steps.slice(at, at + STEPS_PER_CALL)));
    const replies = await this.store.run(async (r) => {
      if (chunks.length === 1) return [await r.gkGateSteps(chunks[0])];
      const pipe = r.pipeline();
      for (const c of chunks) (pipe as unknown as { gkGateSteps(arg: string): void }).gkGateSteps(c);
      const out = await pipe.exec();
      if (out === null) throw new Error('pipeline discarded');
      return out.map(([err, reply]) => {
        if (err) throw err;
        return reply;
      });
    });
    const results: StepResult[] = [];
    for (let i = 0; i < chunks.length; i++) {
      const count = Math.min(STEPS_PER_CALL, steps.length - i * STEPS_PER_CALL);
      for (const r of decodeSteps(replies[i], count)) results.push(r);
    }
    let at = 0;
    return prepared.map((p) => (p.step === null ? null : results[at++]));
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
