/**
 * The TypeScript message checker: one pass in index order over a columnar
 * batch, updating SandboxState in place. native/k2k/sandbox_check.cc is the same
 * loop in C++ and the CUDA kernels compute the same answers in parallel; the
 * differential tests hold all three to this one.
 *
 * Order of the rules for one message (the first that fails is its verdict):
 *   unknown_kernel    src or dst is not a registered kernel id
 *   unauthorized_k2k  the policy refuses K2K to dst
 *   topic_denied      the topic id is unknown or not allowed
 *   write_denied      read-only policy and bytes > 0
 *   connection_limit  dst is a new destination for src and src already has
 *                     the maximum (a message that passes this rule opens the
 *                     connection even if a later rule refuses it)
 *   rate_limited      src's bucket holds less than one token (1000 milli-tokens);
 *                     otherwise the message takes one (even if memory then refuses it)
 *   memory_exceeded   src's recorded memory + bytes in flight + bytes > limit;
 *                     otherwise bytes are added to src's bytes in flight
 * Buckets refill at the batch's `nowMs`: limit milli-tokens per ms elapsed,
 * up to one second's worth (limit * 1000); a clock that goes back refills nothing.
 */
import {
  KF_IN_FLIGHT,
  KF_LAST_MS,
  KF_MEMORY_ATTEMPT,
  KF_MEMORY_USED,
  KF_TOKENS,
  KI_CONNECTIONS,
  KI_LAST_TARGET,
  KI_LAST_TOPIC,
  P_CAPACITY,
  P_CONNECTIONS,
  P_KERNELS,
  P_MEMORY,
  P_RATE,
  P_READ_ONLY,
  P_TOPICS,
  type SandboxState,
} from './state';
import { SandboxVerdict as V, VERDICT_COUNT } from './verdicts';

export interface MessageColumns {
  src: Uint32Array;
  dst: Uint32Array;
  topic: Uint32Array;
  bytes: Uint32Array;
}

/** Milli-tokens one message costs. */
export const MILLI_PER_MESSAGE = 1000;

/** Refills `src`'s bucket at `nowMs` (idempotent for one nowMs). */
export function refill(kf: Float64Array, cap: number, src: number, rate: number, nowMs: number): void {
  const last = kf[KF_LAST_MS * cap + src];
  if (last < 0) {
    kf[KF_TOKENS * cap + src] = rate * MILLI_PER_MESSAGE;
    kf[KF_LAST_MS * cap + src] = nowMs;
  } else if (nowMs > last) {
    // A full second refills the bucket: cap the elapsed time first so the
    // product stays an exact integer.
    const elapsed = Math.min(nowMs - last, MILLI_PER_MESSAGE);
    kf[KF_TOKENS * cap + src] = Math.min(rate * MILLI_PER_MESSAGE, kf[KF_TOKENS * cap + src] + elapsed * rate);
    kf[KF_LAST_MS * cap + src] = nowMs;
  }
}

/** Checks `batch` against `state` at `nowMs`; writes verdicts and per-verdict counts. */
export function checkMessagesJs(state: SandboxState, batch: MessageColumns, nowMs: number, verdicts: Uint8Array, counts: Float64Array): void {
  const p = state.params;
  const kernels = p[P_KERNELS];
  const topics = p[P_TOPICS];
  const rate = p[P_RATE];
  const memory = p[P_MEMORY];
  const maxConn = p[P_CONNECTIONS];
  const readOnly = p[P_READ_ONLY] === 1;
  const cap = p[P_CAPACITY];
  const { kernelF64: kf, kernelI32: ki, violations, dstAllowed, topicAllowed, connBits } = state;
  const { src, dst, topic, bytes } = batch;
  const n = src.length;
  counts.fill(0, 0, VERDICT_COUNT);

  for (let i = 0; i < n; i++) {
    const s = src[i];
    const d = dst[i];
    const t = topic[i];
    const b = bytes[i];
    let v: number = V.allow;
    if (s >= kernels || d >= kernels) {
      v = V.unknown_kernel;
    } else if (dstAllowed[d] === 0) {
      v = V.unauthorized_k2k;
      ki[KI_LAST_TARGET * cap + s] = d;
    } else if (t >= topics || topicAllowed[t] === 0) {
      v = V.topic_denied;
      ki[KI_LAST_TOPIC * cap + s] = t;
    } else if (readOnly && b > 0) {
      v = V.write_denied;
    } else {
      if (maxConn >= 0) {
        const bit = s * cap + d;
        const word = bit >>> 5;
        const mask = 1 << (bit & 31);
        if ((connBits[word] & mask) === 0) {
          if (ki[KI_CONNECTIONS * cap + s] >= maxConn) {
            v = V.connection_limit;
          } else {
            connBits[word] |= mask;
            ki[KI_CONNECTIONS * cap + s]++;
          }
        }
      }
      if (v === V.allow && rate >= 0) {
        refill(kf, cap, s, rate, nowMs);
        const tokens = kf[KF_TOKENS * cap + s];
        if (tokens < MILLI_PER_MESSAGE) v = V.rate_limited;
        else kf[KF_TOKENS * cap + s] = tokens - MILLI_PER_MESSAGE;
      }
      if (v === V.allow) {
        const used = kf[KF_MEMORY_USED * cap + s] + kf[KF_IN_FLIGHT * cap + s] + b;
        if (memory >= 0 && used > memory) {
          v = V.memory_exceeded;
          if (used > kf[KF_MEMORY_ATTEMPT * cap + s]) kf[KF_MEMORY_ATTEMPT * cap + s] = used;
        } else {
          kf[KF_IN_FLIGHT * cap + s] += b;
        }
      }
    }
    verdicts[i] = v;
    counts[v]++;
    if (v !== V.allow && s < kernels) violations[s * VERDICT_COUNT + v]++;
  }
}
