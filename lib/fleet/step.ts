/**
 * Encoding of one gate step (GATE_STEP_LUA): velocity buckets, request nonce
 * and permit jti in one atomic script call, so a check makes one round trip
 * and a batch of checks one pipeline.
 */

/** A token bucket the script refills and charges (numbers as in lib/velocity.ts). */
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

/** `[numKeys, ...keys, ...argv]` for the script. */
export function encodeStep(s: StepInput): Array<string | number> {
  const keys: string[] = [];
  const argv: Array<string | number> = [s.now, s.windowMs];
  for (const b of [s.agent, s.session]) {
    if (b === undefined) {
      argv.push('0', 0, 0, 0);
    } else {
      keys.push(b.key);
      argv.push('1', b.rate, b.capacity, b.fillMs);
    }
  }
  for (const n of [s.nonce, s.jti]) {
    if (n === undefined) {
      argv.push('0', 0);
    } else {
      keys.push(n.key);
      argv.push('1', Math.ceil(n.expiresAtMs));
    }
  }
  return [keys.length, ...keys, ...argv];
}

export function decodeStep(reply: unknown): StepResult {
  if (!Array.isArray(reply)) throw new Error(`unexpected gate step reply ${String(reply)}`);
  switch (reply[0]) {
    case 0:
      return PASS;
    case 1:
      return { kind: 'velocity', scope: reply[1] === 1 ? 'agent' : 'session', retryAfterMs: Number(reply[2]) };
    case 2:
      return NONCE_REPLAY;
    case 3:
      return JTI_REPLAY;
    default:
      throw new Error(`unexpected gate step reply ${JSON.stringify(reply)}`);
  }
}
