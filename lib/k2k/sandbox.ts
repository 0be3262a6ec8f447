/**
 * KernelSandbox: holds GPU actors (kernels) that message each other
 * kernel-to-kernel to one set of ResourceLimits and one SandboxPolicy.
 *
 * Kernels and topics register by name and get dense ids; the policy is
 * resolved per name at registration (a kernel registered after the policy is
 * resolved the same way), so `checkMessages` works on ids only. Its state
 * (buckets, connections, bytes in flight, violation totals) lives in
 * SandboxState and carries over between batches and across backends.
 *
 * Backends: 'js' (TypeScript loop), 'native' (the same loop in C++), 'cuda'
 * (parallel kernels: sort by source, segmented scans), 'auto' (CUDA for
 * batches of at least CUDA_MIN_BATCH when a GPU is present, else native for
 * batches of at least NATIVE_MIN_BATCH when the addon loaded, else js). All give the same verdicts and the same state.
 */
import type { AuditLog } from '../audit/log';
import { ErrorCodes, GuardError, describe } from '../errors';
import { coreAddon, gpuBackend } from '../native/loader';
import { MAX_BATCH, type SandboxBackend, backendOption, checkName, columns } from './args';
import { type MessageColumns, checkMessagesJs } from './check-js';
import { ResourceLimits, type ResourceLimitsInit } from './limits';
import { SandboxPolicy } from './policy';
import {
  KF_IN_FLIGHT,
  KF_LAST_MS,
  KF_MEMORY_ATTEMPT,
  KF_MEMORY_USED,
  KF_TOKENS,
  KI_CONNECTIONS,
  KI_LAST_TARGET,
  KI_LAST_TOPIC,
  MAX_KERNELS,
  MAX_TOPICS,
  SandboxState,
} from './state';
import { type SandboxVerdictName, SandboxVerdict as V, VERDICT_COUNT } from './verdicts';
import type { SandboxViolation, ViolationSummary } from './violations';

export { MAX_BATCH, type SandboxBackend };

export interface KernelSandboxOptions {
  /** Where `sandbox_violation` events go. */
  audit?: AuditLog;
  /** Default backend of `checkMessages`. Default 'auto'. */
  backend?: SandboxBackend;
}

export interface CheckOptions {
  backend?: SandboxBackend;
  /** Reuse this array for the verdicts (at least as long as the batch). */
  out?: Uint8Array;
}

export interface CheckResult {
  /** One SandboxVerdict code per message. */
  verdicts: Uint8Array;
  violations: ViolationSummary;
  /** The backend that ran. */
  backend: 'js' | 'native' | 'cuda';
}

export interface KernelUsage {
  memoryBytes: number;
  inFlightBytes: number;
  executionMs: number;
  connections: number;
  /** Whole messages the bucket could pay for at its last refill (Infinity when unlimited). */
  tokens: number;
}

/**
 * Smallest batch 'auto' sends to the GPU. Not yet measured on a device (no
 * GPU was available where this was written): set high so 'auto' only uses
 * CUDA where transfer costs are surely amortized. See README.
 */
export const CUDA_MIN_BATCH = 1 << 20;
/**
 * Smallest batch 'auto' sends to the C++ checker. Below it the TypeScript
 * loop wins: measured here (2026-11-23) 0.3–0.6 µs vs 0.8–1.6 µs for 8
 * messages, even at 32, native 1.6× faster at 128 (the 14-argument N-API
 * crossing and its typed-array checks cost about a microsecond).
 */
export const NATIVE_MIN_BATCH = 32;

// Policy breaches are critical; running into a quota is a warning.
const SEVERITY_BY_TYPE: Record<SandboxViolation['type'], 'warning' | 'critical'> = {
  UnauthorizedK2K: 'critical',
  TopicDenied: 'critical',
  WriteDenied: 'critical',
  UnknownKernel: 'critical',
  ConnectionLimitExceeded: 'warning',
  RateLimitExceeded: 'warning',
  MemoryExceeded: 'warning',
  ExecutionTimeout: 'warning',
};

/** A violation as audit fields: `type` is the record's own, so the kind goes in `violation`. */
function auditFields(v: SandboxViolation): Record<string, unknown> {
  const fields: Record<string, unknown> = Object.assign({}, v);
  delete fields.type;
  fields.violation = v.type;
  return fields;
}

export class KernelSandbox {
  readonly limits: ResourceLimits;
  readonly policy: SandboxPolicy;
  readonly #state: SandboxState;
  readonly #limits: Required<ResourceLimitsInit>;
  readonly #kernelIds = new Map<string, number>();
  readonly #kernelNames: string[] = [];
  readonly #topicIds = new Map<string, number>();
  readonly #topicNames: string[] = [];
  readonly #audit: AuditLog | undefined;
  readonly #backend: SandboxBackend;
  readonly #counts = new Float64Array(VERDICT_COUNT);
  /** Violation totals already returned by checkViolations / already audited, per kernel. */
  #reported = new Float64Array(0);
  #audited = new Float64Array(0);
  #executionMs: number[] = [];

  constructor(limits?: ResourceLimits | ResourceLimitsInit, policy?: SandboxPolicy, options: KernelSandboxOptions = {}) {
    if (policy !== undefined && !(policy instanceof SandboxPolicy)) {
      throw new TypeError(`Expected a SandboxPolicy but received ${describe(policy)}`);
    }
    if (typeof options !== 'object' || options === null) throw new TypeError(`Expected an options object but received ${describe(options)}`);
    this.limits = ResourceLimits.from(limits);
    // Copies: later edits to the caller's builders do not change a live sandbox.
    this.policy = (policy ?? SandboxPolicy.restrictive()).clone();
    this.#limits = this.limits.toJSON();
    this.#audit = options.audit;
    this.#backend = backendOption(options.backend);
    const l = this.#limits;
    this.#state = new SandboxState(l.maxMessagesPerSecond, l.maxMemoryBytes, l.maxK2kConnections, this.policy.readOnly);
  }

  /** The seed API's spelling of `new KernelSandbox(limits, policy)`. */
  static withPolicy(limits: ResourceLimits | ResourceLimitsInit, policy: SandboxPolicy, options?: KernelSandboxOptions): KernelSandbox {
    return new KernelSandbox(limits, policy, options);
  }

  /** Registers a kernel (idempotent per name); returns its id. */
  registerKernel(name: string): number {
    checkName(name, 'kernel');
    const known = this.#kernelIds.get(name);
    if (known !== undefined) return known;
    if (this.#kernelNames.length >= MAX_KERNELS) throw new RangeError(`A sandbox holds at most ${MAX_KERNELS} kernels`);
    const id = this.#state.addKernel(this.policy.allowsK2kTo(name));
    this.#kernelIds.set(name, id);
    this.#kernelNames.push(name);
    this.#executionMs.push(0);
    return id;
  }

  /** Registers a topic (idempotent per name); returns its id. */
  registerTopic(name: string): number {
    checkName(name, 'topic');
    const known = this.#topicIds.get(name);
    if (known !== undefined) return known;
    if (this.#topicNames.length >= MAX_TOPICS) throw new RangeError(`A sandbox holds at most ${MAX_TOPICS} topics`);
    const id = this.#state.addTopic(this.policy.allowsTopic(name));
    this.#topicIds.set(name, id);
    this.#topicNames.push(name);
    return id;
  }

  kernelId(name: string): number | undefined {
    return this.#kernelIds.get(name);
  }

  kernelName(id: number): string | undefined {
    return this.#kernelNames[id];
  }

  topicId(name: string): number | undefined {
    return this.#topicIds.get(name);
  }

  get kernelCount(): number {
    return this.#kernelNames.length;
  }

  /**
   * Checks a columnar batch at `nowMs` (integer ms, any monotonic origin):
   * one verdict per message, exactly as if the messages were checked one at a
   * time in index order. Updates the sandbox's state.
   */
  checkMessages(batch: MessageColumns, nowMs: number, options: CheckOptions = {}): CheckResult {
    const cols = columns(batch);
    if (!Number.isSafeInteger(nowMs) || nowMs < 0) {
      throw new RangeError(`Expected a non-negative integer for nowMs but received ${describe(nowMs)}`);
    }
    if (typeof options !== 'object' || options === null) throw new TypeError(`Expected an options object but received ${describe(options)}`);
    const n = cols.src.length;
    let verdicts: Uint8Array;
    if (options.out !== undefined) {
      if (!(options.out instanceof Uint8Array) || options.out.length < n) {
        throw new TypeError(`Expected a Uint8Array of at least ${n} bytes for out but received ${describe(options.out)}`);
      }
      verdicts = options.out.length === n ? options.out : options.out.subarray(0, n);
    } else {
      verdicts = new Uint8Array(n);
    }
    const ran = this.#run(backendOption(options.backend ?? this.#backend), cols, nowMs, verdicts);
    const counts = this.#counts;
    // A literal with fixed keys: V8 builds it far faster than keys added in a loop.
    const byVerdict: Record<SandboxVerdictName, number> = {
      allow: counts[V.allow],
      unauthorized_k2k: counts[V.unauthorized_k2k],
      topic_denied: counts[V.topic_denied],
      connection_limit: counts[V.connection_limit],
      rate_limited: counts[V.rate_limited],
      memory_exceeded: counts[V.memory_exceeded],
      write_denied: counts[V.write_denied],
      unknown_kernel: counts[V.unknown_kernel],
    };
    const total = n - counts[V.allow];
    if (total > 0 && this.#audit !== undefined) this.#auditNewViolations();
    return { verdicts, violations: { total, byVerdict }, backend: ran };
  }

  #run(backend: SandboxBackend, b: MessageColumns, nowMs: number, verdicts: Uint8Array): 'js' | 'native' | 'cuda' {
    const s = this.#state;
    if (backend === 'cuda' || (backend === 'auto' && b.src.length >= CUDA_MIN_BATCH)) {
      const gpu = gpuBackend();
      const addon = gpu.addon;
      if (gpu.kind === 'cuda' && addon !== null) {
        try {
          addon.sandboxCheck(s.params, s.kernelF64, s.kernelI32, s.violations, s.dstAllowed, s.topicAllowed, s.connBits, b.src, b.dst, b.topic, b.bytes, nowMs, verdicts, this.#counts);
          return 'cuda';
        } catch (err) {
          // A device failure leaves the state as it was. 'auto' then answers
          // on the CPU (the same answers); an explicit 'cuda' reports it.
          if ((err as { code?: unknown }).code !== ErrorCodes.GPU_UNAVAILABLE) throw err;
          if (backend === 'cuda') throw new GuardError(ErrorCodes.GPU_UNAVAILABLE, (err as Error).message, { cause: err });
        }
      }
      if (backend === 'cuda') throw new GuardError(ErrorCodes.GPU_UNAVAILABLE, `No CUDA backend: ${gpu.reason ?? 'unknown reason'}`);
    }
    if (backend === 'native' || (backend === 'auto' && b.src.length >= NATIVE_MIN_BATCH)) {
      const addon = coreAddon();
      if (addon !== null) {
        addon.sandboxCheck(s.params, s.kernelF64, s.kernelI32, s.violations, s.dstAllowed, s.topicAllowed, s.connBits, b.src, b.dst, b.topic, b.bytes, nowMs, verdicts, this.#counts);
        return 'native';
      }
      if (backend === 'native') throw new GuardError(ErrorCodes.NATIVE_UNAVAILABLE, 'The native addon is not loaded');
    }
    checkMessagesJs(s, b, nowMs, verdicts, this.#counts);
    return 'js';
  }

  /**
   * Records what a kernel uses now: its device memory (bytes, replacing the
   * previous figure) and the time it has been running (ms). Over a limit is a
   * violation (and an audit event).
   */
  recordUsage(kernel: string | number, usage: { memoryBytes?: number; executionMs?: number }): void {
    const id = this.#id(kernel);
    if (typeof usage !== 'object' || usage === null) throw new TypeError(`Expected a usage object but received ${describe(usage)}`);
    for (const key of ['memoryBytes', 'executionMs'] as const) {
      const v = usage[key];
      if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) {
        throw new RangeError(`Expected a non-negative integer for ${key} but received ${describe(v)}`);
      }
    }
    if (usage.memoryBytes !== undefined) this.#state.setF64(KF_MEMORY_USED, id, usage.memoryBytes);
    if (usage.executionMs !== undefined) this.#executionMs[id] = usage.executionMs;
    if (this.#audit !== undefined) {
      for (const v of this.#usageViolations(id)) this.#audit.append('sandbox_violation', SEVERITY_BY_TYPE[v.type], auditFields(v));
    }
  }

  /** A destination consumed `bytes` of `kernel`'s messages: they are no longer in flight. */
  release(kernel: string | number, bytes: number): void {
    const id = this.#id(kernel);
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError(`Expected a non-negative integer for bytes but received ${describe(bytes)}`);
    const inFlight = this.#state.f64(KF_IN_FLIGHT, id);
    this.#state.setF64(KF_IN_FLIGHT, id, Math.max(0, inFlight - bytes));
  }

  usage(kernel: string | number): KernelUsage {
    const id = this.#id(kernel);
    const s = this.#state;
    const rate = this.#limits.maxMessagesPerSecond;
    return {
      memoryBytes: s.f64(KF_MEMORY_USED, id),
      inFlightBytes: s.f64(KF_IN_FLIGHT, id),
      executionMs: this.#executionMs[id],
      connections: s.i32(KI_CONNECTIONS, id),
      tokens: rate === Infinity ? Infinity : s.f64(KF_LAST_MS, id) < 0 ? rate : Math.floor(s.f64(KF_TOKENS, id) / 1000),
    };
  }

  /**
   * The kernel's violations: message refusals since the previous call for
   * this kernel, and usage over a limit now.
   */
  checkViolations(kernel: string | number): SandboxViolation[] {
    const id = this.#id(kernel);
    this.#ensureTracking();
    const out: SandboxViolation[] = this.#messageViolations(id, this.#reported);
    const seenMemory = out.some((v) => v.type === 'MemoryExceeded');
    for (const v of this.#usageViolations(id)) {
      if (v.type === 'MemoryExceeded' && seenMemory) continue;
      out.push(v);
    }
    this.#state.setF64(KF_MEMORY_ATTEMPT, id, 0);
    return out;
  }

  #usageViolations(id: number): SandboxViolation[] {
    const s = this.#state;
    const kernel = this.#kernelNames[id];
    const out: SandboxViolation[] = [];
    const used = s.f64(KF_MEMORY_USED, id) + s.f64(KF_IN_FLIGHT, id);
    if (used > this.#limits.maxMemoryBytes) out.push({ type: 'MemoryExceeded', kernel, used, limit: this.#limits.maxMemoryBytes, count: 0 });
    const elapsed = this.#executionMs[id];
    if (elapsed > this.#limits.maxExecutionMs) out.push({ type: 'ExecutionTimeout', kernel, elapsed, limit: this.#limits.maxExecutionMs, count: 0 });
    return out;
  }

  /** Turns the growth of `id`'s violation totals since `seen` into typed violations, and marks them seen. */
  #messageViolations(id: number, seen: Float64Array): SandboxViolation[] {
    const s = this.#state;
    const kernel = this.#kernelNames[id];
    const out: SandboxViolation[] = [];
    for (let v = 1; v < VERDICT_COUNT; v++) {
      const at = id * VERDICT_COUNT + v;
      const count = s.violations[at] - seen[at];
      if (count <= 0) continue;
      seen[at] = s.violations[at];
      switch (v) {
        case V.unauthorized_k2k:
          out.push({ type: 'UnauthorizedK2K', kernel, target: this.#kernelNames[s.i32(KI_LAST_TARGET, id)] ?? '?', count });
          break;
        case V.topic_denied: {
          const t = s.i32(KI_LAST_TOPIC, id);
          out.push({ type: 'TopicDenied', kernel, topic: this.#topicNames[t] ?? `#${t >>> 0}`, count });
          break;
        }
        case V.connection_limit:
          out.push({ type: 'ConnectionLimitExceeded', kernel, limit: this.#limits.maxK2kConnections, count });
          break;
        case V.rate_limited:
          out.push({ type: 'RateLimitExceeded', kernel, rate: this.#limits.maxMessagesPerSecond, count });
          break;
        case V.memory_exceeded: {
          const used = Math.max(s.f64(KF_MEMORY_ATTEMPT, id), s.f64(KF_MEMORY_USED, id) + s.f64(KF_IN_FLIGHT, id));
          out.push({ type: 'MemoryExceeded', kernel, used, limit: this.#limits.maxMemoryBytes, count });
          break;
        }
        case V.write_denied:
          out.push({ type: 'WriteDenied', kernel, count });
          break;
        default:
          out.push({ type: 'UnknownKernel', kernel, count });
      }
    }
    return out;
  }

  /** One `sandbox_violation` audit record per (kernel, kind) refused since the last audit. */
  #auditNewViolations(): void {
    this.#ensureTracking();
    const audit = this.#audit as AuditLog;
    for (let id = 0; id < this.#kernelNames.length; id++) {
      for (const v of this.#messageViolations(id, this.#audited)) {
        audit.append('sandbox_violation', SEVERITY_BY_TYPE[v.type], auditFields(v));
      }
    }
  }

  #ensureTracking(): void {
    const need = this.#state.violations.length;
    if (this.#reported.length < need) {
      const r = new Float64Array(need);
      r.set(this.#reported);
      this.#reported = r;
      const a = new Float64Array(need);
      a.set(this.#audited);
      this.#audited = a;
    }
  }

  #id(kernel: string | number): number {
    if (typeof kernel === 'number') {
      if (Number.isInteger(kernel) && kernel >= 0 && kernel < this.#kernelNames.length) return kernel;
    } else if (typeof kernel === 'string') {
      const id = this.#kernelIds.get(kernel);
      if (id !== undefined) return id;
    }
    throw new GuardError(ErrorCodes.INVALID_ARGUMENT, `Unknown kernel ${typeof kernel === 'string' ? JSON.stringify(kernel) : describe(kernel)}`);
  }
}
