/**
 * Encoding of gate steps (GATE_STEPS_LUA): velocity buckets, request nonce
 * and permit jti of each request, many requests per script call, so a check
 * makes one round trip and a batch of checks one pipeline.
 */

/** A token bucket the script refills and charges (numbers as in lib/gate/velocity.ts). */
export interface BucketPart {
  key: string;
  /** Milli-tokens per window. */
  rate: number;
  /** Bucket size, milli-tokens. */
  capacity: number;
  /** Idle this long, the bucket is full again. */
  fillMs: number;
}

export interface StepInput {
  now: number;
  windowMs: number;
  agent?: BucketPart;
  session?: BucketPart;
  nonce?: { key: string; expiresAtMs: number };
  jti?: { key: string; expiresAtMs: number };
}

export type StepResult =
  | { kind: 'pass' }
  | { kind: 'velocity'; scope: 'agent' | 'session'; retryAfterMs: number }
  | { kind: 'nonce_replay' }
  | { kind: 'jti_replay' };

const PASS: StepResult = Object.freeze({ kind: 'pass' });
const NONCE_REPLAY: StepResult = Object.freeze({ kind: 'nonce_replay' });
const JTI_REPLAY: StepResult = Object.freeze({ kind: 'jti_replay' });

/** Steps per script call: bounds how long one call holds Redis (~10 µs a step). */
export const STEPS_PER_CALL = 256;

/** The JSON argument of GATE_STEPS_LUA for these steps. */
export function encodeSteps(steps: readonly StepInput[]): string {
  const rows = new Array<unknown[]>(steps.length);
  for (let i = 0; i < steps.length; i++) {
    const s = steps[i];
    const a = s.agent;
    const b = s.session;
    rows[i] = [
      s.now,
      s.windowMs,
      a === undefined ? '' : a.key,
      a?.rate ?? 0,
      a?.capacity ?? 0,
      a?.fillMs ?? 0,
      b === undefined ? '' : b.key,
      b?.rate ?? 0,
      b?.capacity ?? 0,
      b?.fillMs ?? 0,
      s.nonce === undefined ? '' : s.nonce.key,
      s.nonce === undefined ? 0 : Math.ceil(s.nonce.expiresAtMs),
      s.jti === undefined ? '' : s.jti.key,
      s.jti === undefined ? 0 : Math.ceil(s.jti.expiresAtMs),
    ];
  }
  return JSON.stringify(rows);
}

/** The script's reply: three integers per step. */
export function decodeSteps(reply: unknown, count: number): StepResult[] {
  if (!Array.isArray(reply) || reply.length !== count * 3) throw new Error(`unexpected gate step reply for ${count} steps`);
  const out = new Array<StepResult>(count);
  for (let i = 0; i < count; i++) {
    switch (reply[3 * i]) {
      case 0:
        out[i] = PASS;
        break;
      case 1:
        out[i] = { kind: 'velocity', scope: reply[3 * i + 1] === 1 ? 'agent' : 'session', retryAfterMs: Number(reply[3 * i + 2]) };
        break;
      case 2:
        out[i] = NONCE_REPLAY;
        break;
      case 3:
        out[i] = JTI_REPLAY;
        break;
      default:
        throw new Error(`unexpected gate step code ${String(reply[3 * i])}`);
    }
  }
  return out;
}
