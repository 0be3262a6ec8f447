/**
 * Canonical action requests (CARs): RFC 8785 (JCS) canonical JSON and the CAR
 * hash `"sha256:" + hex(SHA-256(UTF-8(canonical form)))`.
 *
 * Nothing is ever silently altered: anything JCS cannot represent exactly, or
 * that would let two different requests share a hash, is rejected with
 * `GuardError` `ERR_CAR_INVALID` naming the offending path.
 */
import { ErrorCodes, GuardError, describe } from './errors';
import { prefixedSha256OfText } from './hash';

/** Limits applied while canonicalizing. */
export interface CanonicalizeOptions {
  /** Deepest allowed nesting of objects and arrays; the root container is depth 1. Default 32. */
  maxDepth?: number;
  /** Largest allowed canonical form, in UTF-8 bytes. Default 65536 (64 KiB). */
  maxBytes?: number;
}

export const DEFAULT_MAX_DEPTH = 32;
export const DEFAULT_MAX_BYTES = 64 * 1024;

/** A canonical action request: a plain JSON object with at least these two fields. */
export interface Car {
  action_type: string;
  agent_id: string;
  resource?: unknown;
  args?: Record<string, unknown>;
  tool?: unknown;
  server_id?: unknown;
  [field: string]: unknown;
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function formatPath(root: string, segments: ReadonlyArray<string | number>): string {
  let out = root;
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else if (IDENTIFIER.test(s)) out += `.${s}`;
    else out += `[${JSON.stringify(s)}]`; // escapes lone surrogates as \uXXXX
  }
  return out;
}

/** Walks a JSON value, validating and serializing it in one pass. */
class Serializer {
  readonly path: Array<string | number> = [];

  constructor(
    private readonly root: string,
    private readonly maxDepth: number,
    /** CARs refuse integers beyond ±(2^53-1); plain JCS can carry them. */
    private readonly rejectUnsafeIntegers: boolean,
  ) {}

  fail(what: string): never {
    const where = formatPath(this.root, this.path);
    throw new GuardError(ErrorCodes.CAR_INVALID, `${where}: ${what}`, { path: where });
  }

  value(v: unknown, depth: number): string {
    switch (typeof v) {
      case 'string':
        if (!v.isWellFormed()) this.fail('string contains a lone surrogate');
        return JSON.stringify(v);
      case 'number':
        if (!Number.isFinite(v)) this.fail(`${v} is not representable in JSON`);
        // Integers beyond 2^53-1 have neighbours that round to the same double,
        // so two different requests would share one hash.
        if (
          this.rejectUnsafeIntegers &&
          (v > Number.MAX_SAFE_INTEGER || v < -Number.MAX_SAFE_INTEGER) &&
          Number.isInteger(v)
        ) {
          this.fail(`integer ${v} is outside ±(2^53-1); send it as a string`);
        }
        // ECMAScript Number-to-String is exactly the JCS number form (and -0 gives "0").
        return '' + v;
      case 'boolean':
        return v ? 'true' : 'false';
      case 'object':
        if (v === null) return 'null';
        if (depth >= this.maxDepth) this.fail(`nesting deeper than ${this.maxDepth}`);
        if (Array.isArray(v)) return this.array(v, depth + 1);
        return this.object(v as Record<string, unknown>, depth + 1);
      default:
        return this.fail(`${describe(v)} is not a JSON value`);
    }
  }

  array(a: unknown[], depth: number): string {
    if (Object.getPrototypeOf(a) !== Array.prototype) this.fail('array subclasses are not JSON');
    const n = a.length;
    if (n === 0) return '[]';
    let out = '[';
    for (let i = 0; i < n; i++) {
      this.path.push(i);
      out += (i === 0 ? '' : ',') + this.value(a[i], depth);
      this.path.pop();
    }
    return out + ']';
  }

  object(o: Record<string, unknown>, depth: number): string {
    const proto = Object.getPrototypeOf(o);
    if (proto !== Object.prototype && proto !== null) {
      this.fail(`${describe(o)} is not a plain JSON object`);
    }
    if (Object.getOwnPropertySymbols(o).length !== 0) this.fail('symbol keys are not JSON');
    // Default sort compares UTF-16 code units: exactly the JCS key order.
    const keys = Object.keys(o).sort();
    const n = keys.length;
    if (n === 0) return '{}';
    let out = '{';
    for (let i = 0; i < n; i++) {
      const key = keys[i];
      this.path.push(key);
      if (!key.isWellFormed()) this.fail('key contains a lone surrogate');
      out += (i === 0 ? '' : ',') + JSON.stringify(key) + ':' + this.value(o[key], depth);
      this.path.pop();
    }
    return out + '}';
  }
}

function limits(options: CanonicalizeOptions | undefined): { maxDepth: number; maxBytes: number } {
  if (options === undefined) return { maxDepth: DEFAULT_MAX_DEPTH, maxBytes: DEFAULT_MAX_BYTES };
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`Expected an options object but received ${describe(options)}`);
  }
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  if (!Number.isSafeInteger(maxDepth) || maxDepth < 1) {
    throw new RangeError(`Expected a positive integer for maxDepth but received ${describe(maxDepth)}`);
  }
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 2) {
    throw new RangeError(`Expected an integer >= 2 for maxBytes but received ${describe(maxBytes)}`);
  }
  return { maxDepth, maxBytes };
}

function checkSize(text: string, maxBytes: number, root: string): void {
  // UTF-8 needs between 1 and 3 bytes per UTF-16 unit, so most sizes are
  // decided without measuring.
  if (text.length * 3 <= maxBytes) return;
  const bytes = text.length > maxBytes ? text.length : Buffer.byteLength(text, 'utf8');
  if (bytes > maxBytes) {
    throw new GuardError(
      ErrorCodes.CAR_INVALID,
      `${root}: canonical form is larger than ${maxBytes} bytes`,
      { path: root },
    );
  }
}

/**
 * RFC 8785 canonical form of any JSON value (not only CARs). Rejects what JCS
 * cannot represent (NaN, Infinity, lone surrogates, non-JSON types) and the
 * depth and size limits; unlike `canonicalize` it accepts integers beyond
 * ±(2^53-1), serialized as ECMAScript prints them.
 */
export function canonicalizeJson(value: unknown, options?: CanonicalizeOptions): string {
  const { maxDepth, maxBytes } = limits(options);
  const text = new Serializer('value', maxDepth, false).value(value, 0);
  checkSize(text, maxBytes, 'value');
  return text;
}

/**
 * RFC 8785 canonical form of a CAR. The CAR must be a plain object whose
 * `action_type` and `agent_id` are non-empty strings.
 */
export function canonicalize(car: Car | Record<string, unknown>, options?: CanonicalizeOptions): string {
  const { maxDepth, maxBytes } = limits(options);
  const s = new Serializer('car', maxDepth, true);
  if (typeof car !== 'object' || car === null || Array.isArray(car)) {
    s.fail(`expected a plain object but received ${describe(car)}`);
  }
  for (const field of ['action_type', 'agent_id'] as const) {
    const v = (car as Record<string, unknown>)[field];
    if (typeof v !== 'string' || v.length === 0) {
      s.path.push(field);
      s.fail(`required and must be a non-empty string (received ${describe(v)})`);
    }
  }
  const text = s.value(car, 0);
  checkSize(text, maxBytes, 'car');
  return text;
}

/** `"sha256:" + hex(SHA-256(UTF-8(canonicalize(car))))`. */
export function carHash(car: Car | Record<string, unknown>, options?: CanonicalizeOptions): string {
  return prefixedSha256OfText(canonicalize(car, options));
}
