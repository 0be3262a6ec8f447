/**
 * The sandbox's mutable state, in typed arrays that every backend (the
 * TypeScript loop, the C++ loop, the CUDA kernels) reads and updates in
 * place, so state carries over between batches whichever backend ran them.
 * The layout is part of the native surface (see native/k2k/sandbox_check.cc).
 *
 *   params      Float64Array(PARAM_COUNT): see the P_* indices
 *   kernelF64   Float64Array(KF_FIELDS * capacity): field f of kernel k at f * capacity + k
 *   kernelI32   Int32Array(KI_FIELDS * capacity), same layout
 *   violations  Float64Array(VERDICT_COUNT * capacity): running totals, kernel k verdict v at k * VERDICT_COUNT + v
 *   dstAllowed  Uint8Array(capacity): 1 where the policy allows K2K to kernel k
 *   topicAllowed Uint8Array(topicCapacity)
 *   connBits    Uint32Array(capacity * capacity / 32): bit (src * capacity + dst) set once src has connected to dst
 *               (empty when connections are unlimited)
 */
import { VERDICT_COUNT } from './verdicts';

export const P_KERNELS = 0;
export const P_TOPICS = 1;
/** Messages per second, or -1 for unlimited. */
export const P_RATE = 2;
/** Bytes, or -1 for unlimited. */
export const P_MEMORY = 3;
/** Connections, or -1 for unlimited. */
export const P_CONNECTIONS = 4;
/** 1 when writes are denied. */
export const P_READ_ONLY = 5;
export const P_CAPACITY = 6;
export const P_TOPIC_CAPACITY = 7;
export const PARAM_COUNT = 8;

/** Milli-tokens in the bucket. */
export const KF_TOKENS = 0;
/** Time of the last refill (ms), -1 before the first. */
export const KF_LAST_MS = 1;
/** Bytes of admitted messages not yet released. */
export const KF_IN_FLIGHT = 2;
/** Memory reported by `recordUsage`. */
export const KF_MEMORY_USED = 3;
/** Largest usage a refused message would have caused (for MemoryExceeded.used). */
export const KF_MEMORY_ATTEMPT = 4;
export const KF_FIELDS = 5;

export const KI_CONNECTIONS = 0;
/** Last destination refused by the ACL, -1 for none. */
export const KI_LAST_TARGET = 1;
/** Last topic refused, -1 for none. */
export const KI_LAST_TOPIC = 2;
export const KI_FIELDS = 3;

export const MAX_KERNELS = 16384;
export const MAX_TOPICS = 1 << 20;
const INITIAL_CAPACITY = 64;

export class SandboxState {
  params = new Float64Array(PARAM_COUNT);
  kernelF64: Float64Array;
  kernelI32: Int32Array;
  violations: Float64Array;
  dstAllowed: Uint8Array;
  topicAllowed: Uint8Array;
  connBits: Uint32Array;

  constructor(rate: number, memory: number, connections: number, readOnly: boolean) {
    const p = this.params;
    p[P_RATE] = Number.isFinite(rate) ? rate : -1;
    p[P_MEMORY] = Number.isFinite(memory) ? memory : -1;
    p[P_CONNECTIONS] = Number.isFinite(connections) ? connections : -1;
    p[P_READ_ONLY] = readOnly ? 1 : 0;
    p[P_CAPACITY] = INITIAL_CAPACITY;
    p[P_TOPIC_CAPACITY] = INITIAL_CAPACITY;
    this.kernelF64 = new Float64Array(KF_FIELDS * INITIAL_CAPACITY);
    this.kernelI32 = new Int32Array(KI_FIELDS * INITIAL_CAPACITY);
    this.violations = new Float64Array(VERDICT_COUNT * INITIAL_CAPACITY);
    this.dstAllowed = new Uint8Array(INITIAL_CAPACITY);
    this.topicAllowed = new Uint8Array(INITIAL_CAPACITY);
    this.connBits = new Uint32Array(this.tracksConnections ? (INITIAL_CAPACITY * INITIAL_CAPACITY) / 32 : 0);
  }

  get kernelCount(): number {
    return this.params[P_KERNELS];
  }

  get topicCount(): number {
    return this.params[P_TOPICS];
  }

  get capacity(): number {
    return this.params[P_CAPACITY];
  }

  get tracksConnections(): boolean {
    return this.params[P_CONNECTIONS] >= 0;
  }

  /** Adds a kernel (growing the arrays as needed); returns its id. */
  addKernel(allowedAsDestination: boolean): number {
    const id = this.kernelCount;
    if (id >= this.capacity) this.#grow(this.capacity * 2);
    const cap = this.capacity;
    this.kernelF64[KF_TOKENS * cap + id] = 0;
    this.kernelF64[KF_LAST_MS * cap + id] = -1;
    this.kernelI32[KI_LAST_TARGET * cap + id] = -1;
    this.kernelI32[KI_LAST_TOPIC * cap + id] = -1;
    this.dstAllowed[id] = allowedAsDestination ? 1 : 0;
    this.params[P_KERNELS] = id + 1;
    return id;
  }

  addTopic(allowed: boolean): number {
    const id = this.topicCount;
    if (id >= this.topicAllowed.length) {
      const next = new Uint8Array(this.topicAllowed.length * 2);
      next.set(this.topicAllowed);
      this.topicAllowed = next;
      this.params[P_TOPIC_CAPACITY] = next.length;
    }
    this.topicAllowed[id] = allowed ? 1 : 0;
    this.params[P_TOPICS] = id + 1;
    return id;
  }

  f64(field: number, kernel: number): number {
    return this.kernelF64[field * this.capacity + kernel];
  }

  setF64(field: number, kernel: number, value: number): void {
    this.kernelF64[field * this.capacity + kernel] = value;
  }

  i32(field: number, kernel: number): number {
    return this.kernelI32[field * this.capacity + kernel];
  }

  #grow(capacity: number): void {
    const old = this.capacity;
    const kf = new Float64Array(KF_FIELDS * capacity);
    for (let f = 0; f < KF_FIELDS; f++) kf.set(this.kernelF64.subarray(f * old, (f + 1) * old), f * capacity);
    const ki = new Int32Array(KI_FIELDS * capacity);
    for (let f = 0; f < KI_FIELDS; f++) ki.set(this.kernelI32.subarray(f * old, (f + 1) * old), f * capacity);
    const viol = new Float64Array(VERDICT_COUNT * capacity);
    viol.set(this.violations);
    const dst = new Uint8Array(capacity);
    dst.set(this.dstAllowed);
    if (this.tracksConnections) {
      // Rows are `capacity` bits long: copy row by row into the wider layout.
      const bits = new Uint32Array((capacity * capacity) / 32);
      const oldWords = old / 32;
      const newWords = capacity / 32;
      for (let s = 0; s < old; s++) bits.set(this.connBits.subarray(s * oldWords, (s + 1) * oldWords), s * newWords);
      this.connBits = bits;
    }
    this.kernelF64 = kf;
    this.kernelI32 = ki;
    this.violations = viol;
    this.dstAllowed = dst;
    this.params[P_CAPACITY] = capacity;
  }
}
