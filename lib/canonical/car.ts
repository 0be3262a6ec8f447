/**
 * Canonical action requests (CARs): RFC 8785 (JCS) canonical JSON and the CAR
 * hash `"sha256:" + hex(SHA-256(UTF-8(canonical form)))`.
 *
 * Nothing is ever silently altered: anything JCS cannot represent exactly, or
 * that would let two different requests share a hash, is rejected with
 * `GuardError` `ERR_CAR_INVALID` naming the offending path.
 */
import { ErrorCodes, GuardError, describe } from '../errors';
import { SCRATCH_FULL, appendCanonicalCar, canonicalScratch, sortKeys, writeCanonicalCar } from './bytes';
import { carHashOfBytes, carHashesOfBytes, prefixedSha256OfText } from '../crypto/hash';

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

// JCS string escaping is JSON.stringify's, and after the lone-surrogate check
// only '"', '\\' and controls below U+0020 need escaping. Testing for them is
// far cheaper than calling JSON.stringify on every string.
const NEEDS_ESCAPE = /["\\\u0000-\u001f]/;

// Object keys repeat from request to request (action_type, agent_id, ...), so
// their quoted form is memoized. Bounded: once full, new keys are quoted each
// time (deterministic either way; the cache only saves work).
const QUOTED_KEY_CACHE_LIMIT = 4096;
const QUOTED_KEY_MAX_LENGTH = 128;
const quotedKeys = new Map<string, string>();

function quote(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : '"' + s + '"';
}

function formatPath(root: string, segments: ReadonlyArray<string | number>): string {
  let out = root;
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else if (IDENTIFIER.test(s)) out += `.${s}`;
    else out += `[${JSON.stringify(s)}]`; // escapes lone surrogates as \uXXXX
  }
  return out;
}

/**
 * Walks a JSON value, validating and serializing it in one pass. The fast
 * pass keeps no path; when it finds a problem it stops, and a second pass
 * with `trackPath` locates it for the error message.
 *
 * A problem is reported by returning null up the walk, not by throwing
 * through it: this serializer runs only for input the canonical writer gave
 * up on, mostly invalid input, and V8 neither collects type feedback for nor
 * optimizes a function that never returns. Throwing from the bottom of a
 * deep value kept every level interpreted without feedback, and one
 * 40-deep CAR cost about 85 us (45 valid requests); now only the top throws.
 */
class Serializer {
  readonly path: Array<string | number> | null;
  /** Set by `fail`: what is wrong, and where (the path when tracked, else the root). */
  problem = '';
  where = '';

  constructor(
    private readonly root: string,
    private readonly maxDepth: number,
    /** CARs refuse integers beyond ±(2^53-1); plain JCS can carry them. */
    private readonly rejectUnsafeIntegers: boolean,
    trackPath: boolean,
  ) {
    this.path = trackPath ? [] : null;
  }

  /** Notes the problem and returns null, which every level passes up. */
  fail(what: string): null {
    this.problem = what;
    this.where = this.path === null ? this.root : formatPath(this.root, this.path);
    return null;
  }

  value(v: unknown, depth: number): string | null {
    switch (typeof v) {
      case 'string':
        if (!v.isWellFormed()) return this.fail('string contains a lone surrogate');
        return quote(v);
      case 'number':
        if (!Number.isFinite(v)) return this.fail(`${v} is not representable in JSON`);
        // Integers beyond 2^53-1 have neighbours that round to the same double,
        // so two different requests would share one hash.
        if (
          this.rejectUnsafeIntegers &&
          (v > Number.MAX_SAFE_INTEGER || v < -Number.MAX_SAFE_INTEGER) &&
          Number.isInteger(v)
        ) {
          return this.fail(`integer ${v} is outside ±(2^53-1); send it as a string`);
        }
        // ECMAScript Number-to-String is exactly the JCS number form (and -0 gives "0").
        return '' + v;
      case 'boolean':
        return v ? 'true' : 'false';
      case 'object':
        if (v === null) return 'null';
        if (depth >= this.maxDepth) return this.fail(`nesting deeper than ${this.maxDepth}`);
        if (Array.isArray(v)) return this.array(v, depth + 1);
        return this.object(v as Record<string, unknown>, depth + 1);
      default:
        return this.fail(`${describe(v)} is not a JSON value`);
    }
  }

  array(a: unknown[], depth: number): string | null {
    if (Object.getPrototypeOf(a) !== Array.prototype) return this.fail('array subclasses are not JSON');
    const n = a.length;
    if (n === 0) return '[]';
    const path = this.path;
    let out = '[';
    for (let i = 0; i < n; i++) {
      if (path !== null) path.push(i);
      const item = this.value(a[i], depth);
      if (item === null) return null;
      out += (i === 0 ? '' : ',') + item;
      if (path !== null) path.pop();
    }
    return out + ']';
  }

  object(o: Record<string, unknown>, depth: number): string | null {
    const proto = Object.getPrototypeOf(o);
    if (proto !== Object.prototype && proto !== null) return this.fail(`${describe(o)} is not a plain JSON object`);
    if (Object.getOwnPropertySymbols(o).length !== 0) return this.fail('symbol keys are not JSON');
    const keys = sortKeys(Object.keys(o));
    const n = keys.length;
    if (n === 0) return '{}';
    const path = this.path;
    let out = '{';
    for (let i = 0; i < n; i++) {
      const key = keys[i];
      if (path !== null) path.push(key);
      let quoted = quotedKeys.get(key);
      if (quoted === undefined) {
        if (!key.isWellFormed()) return this.fail('key contains a lone surrogate');
        quoted = quote(key);
        if (quotedKeys.size < QUOTED_KEY_CACHE_LIMIT && key.length <= QUOTED_KEY_MAX_LENGTH) quotedKeys.set(key, quoted);
      }
      const item = this.value(o[key], depth);
      if (item === null) return null;
      out += (i === 0 ? '' : ',') + quoted + ':' + item;
      if (path !== null) path.pop();
    }
    return out + '}';
  }
}

/**
 * Runs the fast pass; on a problem, re-runs with path tracking and returns
 * the precise error (the callers that turn it into a deny never throw it).
 */
function serializeOrError(
  root: string,
  value: unknown,
  maxDepth: number,
  rejectUnsafeIntegers: boolean,
  check?: (s: Serializer, value: unknown) => boolean,
  likelyInvalid = false,
): string | GuardError {
  // Where the canonical writer already gave up, the value is most likely
  // invalid: the pass that tracks the path is the only one (one walk, not two).
  if (!likelyInvalid) {
    const fast = new Serializer(root, maxDepth, rejectUnsafeIntegers, false);
    const text = check === undefined || check(fast, value) ? fast.value(value, 0) : null;
    if (text !== null) return text;
  }
  const s = new Serializer(root, maxDepth, rejectUnsafeIntegers, true);
  if (check === undefined || check(s, value)) {
    const text = s.value(value, 0);
    if (text !== null && likelyInvalid) return text;
  }
  // No problem the second time: the input changed between passes (a getter or Proxy).
  if (s.problem === '') return new GuardError(ErrorCodes.CAR_INVALID, `${root}: value changed while it was being read`, { path: root });
  return new GuardError(ErrorCodes.CAR_INVALID, `${s.where}: ${s.problem}`, { path: s.where });
}

/** `serializeOrError` for callers that throw the error. */
function serialize(root: string, value: unknown, maxDepth: number, rejectUnsafeIntegers: boolean, check?: (s: Serializer, value: unknown) => boolean): string {
  const out = serializeOrError(root, value, maxDepth, rejectUnsafeIntegers, check);
  if (typeof out !== 'string') throw out;
  return out;
}

/** False (the problem noted on `s`) when the CAR's shape is wrong; run before the walk. */
function checkCarShape(s: Serializer, car: unknown): boolean {
  if (typeof car !== 'object' || car === null || Array.isArray(car)) {
    s.fail(`expected a plain object but received ${describe(car)}`);
    return false;
  }
  const record = car as Record<string, unknown>;
  for (const field of REQUIRED_FIELDS) {
    if (!Object.prototype.propertyIsEnumerable.call(record, field)) {
      s.path?.push(field);
      // Inherited or non-enumerable: the gate would read it, the hash would not cover it.
      s.fail(`required: must be the object's own enumerable property${field in record ? ' (it is inherited or non-enumerable)' : ''}`);
      return false;
    }
    const v = record[field];
    if (typeof v !== 'string' || v.length === 0) {
      s.path?.push(field);
      s.fail(`required and must be a non-empty string (received ${describe(v)})`);
      return false;
    }
  }
  return true;
}

const REQUIRED_FIELDS = ['action_type', 'agent_id'] as const;

const DEFAULT_LIMITS = { maxDepth: DEFAULT_MAX_DEPTH, maxBytes: DEFAULT_MAX_BYTES } as const;

function limits(options: CanonicalizeOptions | undefined): { maxDepth: number; maxBytes: number } {
  if (options === undefined) return DEFAULT_LIMITS;
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

/** The error for a canonical form past `maxBytes`, or null. */
function sizeError(text: string, maxBytes: number, root: string): GuardError | null {
  // UTF-8 needs between 1 and 3 bytes per UTF-16 unit, so most sizes are
  // decided without measuring.
  if (text.length * 3 <= maxBytes) return null;
  const bytes = text.length > maxBytes ? text.length : Buffer.byteLength(text, 'utf8');
  if (bytes <= maxBytes) return null;
  return new GuardError(ErrorCodes.CAR_INVALID, `${root}: canonical form is larger than ${maxBytes} bytes`, { path: root });
}

function checkSize(text: string, maxBytes: number, root: string): void {
  const err = sizeError(text, maxBytes, root);
  if (err !== null) throw err;
}

/**
 * RFC 8785 canonical form of any JSON value (not only CARs). Rejects what JCS
 * cannot represent (NaN, Infinity, lone surrogates, non-JSON types) and the
 * depth and size limits; unlike `canonicalize` it accepts integers beyond
 * ±(2^53-1), serialized as ECMAScript prints them.
 */
export function canonicalizeJson(value: unknown, options?: CanonicalizeOptions): string {
  const { maxDepth, maxBytes } = limits(options);
  const text = serialize('value', value, maxDepth, false);
  checkSize(text, maxBytes, 'value');
  return text;
}

/**
 * RFC 8785 canonical form of a CAR. The CAR must be a plain object whose
 * `action_type` and `agent_id` are non-empty strings.
 */
export function canonicalize(car: Car | Record<string, unknown>, options?: CanonicalizeOptions): string {
  const out = canonicalOrError(car, limits(options));
  if (typeof out !== 'string') throw out;
  return out;
}

/**
 * `canonicalize` that returns its error instead of throwing it (other
 * errors, from a getter, propagate); `likelyInvalid` when the canonical
 * writer gave up on `car`.
 */
function canonicalOrError(car: unknown, { maxDepth, maxBytes }: { maxDepth: number; maxBytes: number }, likelyInvalid = false): string | GuardError {
  const text = serializeOrError('car', car, maxDepth, true, checkCarShape, likelyInvalid);
  if (typeof text !== 'string') return text;
  return sizeError(text, maxBytes, 'car') ?? text;
}

const CAR_HASH_FORM = /^sha256:[0-9a-f]{64}$/;

/** True for a CAR hash: "sha256:" + 64 lower-case hex digits. */
export function isCarHash(value: unknown): value is string {
  return typeof value === 'string' && value.length === 71 && CAR_HASH_FORM.test(value);
}

/** `"sha256:" + hex(SHA-256(UTF-8(canonicalize(car))))`. */
export function carHash(car: Car | Record<string, unknown>, options?: CanonicalizeOptions): string {
  const { maxDepth, maxBytes } = options === undefined ? DEFAULT_LIMITS : limits(options);
  // Fast path: canonical bytes written and hashed in place. Anything it does
  // not handle goes through the string serializer, which names the problem.
  const length = writeCanonicalCar(car, maxDepth, maxBytes);
  if (length >= 0) return carHashOfBytes(canonicalScratch(), length);
  return prefixedSha256OfText(canonicalize(car, options));
}

/**
 * @internal `carHash` for the gate, which turns an invalid CAR into a deny
 * reason and never shows the error's stack: the error is returned, not
 * thrown, and its stack is not captured (throwing and capturing cost most of
 * an invalid request's decision). It is the same `GuardError`, with the same
 * code, message and path; other errors (a getter that throws) propagate.
 */
export function carHashForDecision(car: Car | Record<string, unknown>): string | GuardError {
  const length = writeCanonicalCar(car, DEFAULT_MAX_DEPTH, DEFAULT_MAX_BYTES);
  if (length >= 0) return carHashOfBytes(canonicalScratch(), length);
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    // One path-tracking pass, no throw; a wrong shape (the commonest invalid
    // CAR) is named by its check before any walk.
    const text = canonicalOrError(car, DEFAULT_LIMITS, true);
    return typeof text === 'string' ? prefixedSha256OfText(text) : text;
  } catch (err) {
    // A getter's own GuardError: a validation deny, as carHash's would be.
    if (err instanceof GuardError) return err;
    throw err;
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/**
 * The CAR hashes of many CARs, each a hash or the GuardError `carHash` would
 * throw for it (other errors, e.g. from a getter, propagate). Forms are
 * written back to back and hashed in one native call per scratch buffer
 * (usually one per batch).
 */
export function carHashes(cars: ReadonlyArray<unknown>, options?: CanonicalizeOptions): Array<string | GuardError> {
  const { maxDepth, maxBytes } = options === undefined ? DEFAULT_LIMITS : limits(options);
  const n = cars.length;
  const out = new Array<string | GuardError>(n);
  let slow: number[] | null = null;
  // Form k of the scratch buffer belongs to cars[at[k]] and ends at ends[k].
  const size = Math.min(n, 4096);
  let ends = new Uint32Array(size);
  let at = new Uint32Array(size);
  let count = 0;
  let end = 0;
  for (let i = 0; i < n; i++) {
    let next = appendCanonicalCar(cars[i], end, maxDepth, maxBytes);
    if (next === SCRATCH_FULL) {
      carHashesOfBytes(canonicalScratch(), ends, count, out, at);
      count = 0;
      end = 0;
      next = appendCanonicalCar(cars[i], 0, maxDepth, maxBytes);
    }
    if (next < 0) {
      (slow ??= []).push(i);
      continue;
    }
    if (count === ends.length) {
      const e = new Uint32Array(count * 2);
      e.set(ends);
      ends = e;
      const a = new Uint32Array(count * 2);
      a.set(at);
      at = a;
    }
    ends[count] = next;
    at[count++] = i;
    end = next;
  }
  if (count !== 0) carHashesOfBytes(canonicalScratch(), ends, count, out, at);
  if (slow !== null) {
    for (const i of slow) {
      const text = canonicalOrError(cars[i], { maxDepth, maxBytes }, true);
      out[i] = typeof text === 'string' ? prefixedSha256OfText(text) : text;
    }
  }
  return out;
}
