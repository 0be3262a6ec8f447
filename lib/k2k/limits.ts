/**
 * ResourceLimits: what one sandboxed kernel may use. Every field is enforced:
 *   maxMemoryBytes       memory recorded by `recordUsage` plus the bytes of
 *                        its K2K messages still in flight (checkMessages
 *                        refuses a message that would pass it)
 *   maxExecutionMs       execution time recorded by `recordUsage`
 *   maxMessagesPerSecond per-source token bucket (1 s of burst), checked per
 *                        message in integer milli-tokens
 *   maxK2kConnections    distinct destinations a source may talk to
 * `Infinity` means unlimited; otherwise a non-negative integer.
 */
import { describe } from '../errors';

export interface ResourceLimitsInit {
  maxMemoryBytes?: number;
  maxExecutionMs?: number;
  maxMessagesPerSecond?: number;
  maxK2kConnections?: number;
}

/** Largest finite value of each limit (keeps the milli-token and byte arithmetic exact in a double). */
export const LIMIT_MAXIMA: Readonly<Required<ResourceLimitsInit>> = Object.freeze({
  maxMemoryBytes: 2 ** 52,
  maxExecutionMs: 2 ** 52,
  maxMessagesPerSecond: 1e9,
  maxK2kConnections: 16384,
});

const DEFAULTS: Required<ResourceLimitsInit> = {
  maxMemoryBytes: 1024 ** 3, // 1 GiB
  maxExecutionMs: 60_000,
  maxMessagesPerSecond: 10_000,
  maxK2kConnections: 10,
};

const CONSERVATIVE: Required<ResourceLimitsInit> = {
  maxMemoryBytes: 256 * 1024 ** 2,
  maxExecutionMs: 10_000,
  maxMessagesPerSecond: 1_000,
  maxK2kConnections: 4,
};

function limitValue(name: keyof ResourceLimitsInit, value: unknown): number {
  if (value === Infinity) return Infinity;
  const max = LIMIT_MAXIMA[name];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`Expected an integer in [0, ${max}] or Infinity for ${name} but received ${describe(value)}`);
  }
  return value;
}

export class ResourceLimits {
  #values: Required<ResourceLimitsInit>;

  /** The defaults (1 GiB, 60 s, 10,000 msg/s, 10 connections), overridden by `init`. */
  constructor(init: ResourceLimitsInit = {}) {
    this.#values = { ...DEFAULTS };
    ResourceLimits.#apply(this, init);
  }

  /** Tighter limits for untrusted kernels: 256 MiB, 10 s, 1,000 msg/s, 4 connections. */
  static conservative(): ResourceLimits {
    return new ResourceLimits(CONSERVATIVE);
  }

  /** Accepts a ResourceLimits or its plain-object form. */
  static from(value: ResourceLimits | ResourceLimitsInit | undefined): ResourceLimits {
    if (value instanceof ResourceLimits) return value.clone();
    return new ResourceLimits(value ?? {});
  }

  static #apply(target: ResourceLimits, init: ResourceLimitsInit): void {
    if (typeof init !== 'object' || init === null || Array.isArray(init)) {
      throw new TypeError(`Expected a limits object but received ${describe(init)}`);
    }
    for (const key of Object.keys(init)) {
      if (!(key in DEFAULTS)) throw new TypeError(`Unknown resource limit "${key}"`);
      const name = key as keyof ResourceLimitsInit;
      if (init[name] !== undefined) target.#values[name] = limitValue(name, init[name]);
    }
  }

  maxMemoryBytes(n: number): this {
    this.#values.maxMemoryBytes = limitValue('maxMemoryBytes', n);
    return this;
  }

  /** The longest a kernel may run, in ms. */
  maxExecutionTime(ms: number): this {
    this.#values.maxExecutionMs = limitValue('maxExecutionMs', ms);
    return this;
  }

  maxMessagesPerSecond(n: number): this {
    this.#values.maxMessagesPerSecond = limitValue('maxMessagesPerSecond', n);
    return this;
  }

  maxK2kConnections(n: number): this {
    this.#values.maxK2kConnections = limitValue('maxK2kConnections', n);
    return this;
  }

  clone(): ResourceLimits {
    return new ResourceLimits(this.#values);
  }

  /** The plain-object form (a copy). */
  toJSON(): Required<ResourceLimitsInit> {
    return { ...this.#values };
  }
}
