/**
 * The CAR hash fast path: writes the RFC 8785 form of a CAR as UTF-8 straight
 * into a reusable buffer, which is hashed without ever becoming a string.
 *
 * Why: building the canonical text by concatenation leaves V8 a rope of a few
 * dozen pieces, and flattening and re-encoding it for the hash cost about as
 * much as producing it. Bytes written here are hashed in place.
 *
 * This pass only handles the well-formed common case. On anything unusual (a
 * value JCS cannot carry, a limit reached, a buffer too small) it gives up and
 * returns -1; the caller then runs the string serializer in car.ts, which
 * either produces the same text or throws the precise error. Both walk the
 * value the same way, so they accept exactly the same inputs; the tests hold
 * them to byte equality on random values.
 */

import { CanonicalWriter, FULL } from './writer';

export { sortKeys } from './layouts';

const GIVE_UP = -1;
/** `appendCanonicalCar`'s answer when the buffer must be emptied first. */
export const SCRATCH_FULL = -2;

const writer = new CanonicalWriter();

function shapeOk(car: unknown): boolean {
  if (typeof car !== 'object' || car === null || Array.isArray(car)) return false;
  const type = (car as Record<string, unknown>).action_type;
  const agent = (car as Record<string, unknown>).agent_id;
  return typeof type === 'string' && type.length !== 0 && typeof agent === 'string' && agent.length !== 0;
}

function write(car: unknown, at: number, maxDepth: number, maxBytes: number, isCar = true): number {
  if (isCar && !shapeOk(car)) return GIVE_UP;
  if (writer.busy) return GIVE_UP;
  writer.busy = true;
  writer.rejectUnsafeIntegers = isCar;
  writer.pos = at;
  writer.start = at;
  writer.limit = maxBytes;
  writer.maxDepth = maxDepth;
  writer.topHasCarFields = false;
  writer.stop = 0;
  try {
    writer.value(car, 0); // gives up by setting writer.stop; only a getter's own error throws
  } finally {
    writer.busy = false;
  }
  if (writer.stop !== 0 || writer.pos - at > maxBytes || (isCar && !writer.topHasCarFields)) {
    writer.pos = at;
    return writer.stop === FULL ? SCRATCH_FULL : GIVE_UP;
  }
  return writer.pos;
}

/**
 * Writes the canonical UTF-8 form of `car` at the start of the scratch buffer
 * and returns its length, or -1 when the string serializer must decide
 * (invalid input, limits). The bytes stay valid until the next call on this
 * thread.
 */
export function writeCanonicalCar(car: unknown, maxDepth: number, maxBytes: number): number {
  return write(car, 0, maxDepth, maxBytes);
}

/**
 * Batches: appends the form of `car` after `at` (the previous end) and
 * returns the new end; -1 when the string serializer must decide;
 * SCRATCH_FULL when the buffer must be hashed and restarted from 0 first.
 */
export function appendCanonicalCar(car: unknown, at: number, maxDepth: number, maxBytes: number): number {
  return write(car, at, maxDepth, maxBytes);
}

/**
 * Any JSON value (not only a CAR), as `canonicalizeJson` would write it,
 * after the ASCII `prefix` (which the caller wants hashed with it). Returns
 * the end offset, or -1 when `canonicalizeJson` must decide.
 */
export function writePrefixedCanonicalJson(prefix: string, value: unknown, maxDepth: number, maxBytes: number): number {
  if (writer.busy) return GIVE_UP;
  writer.pos = 0;
  writer.start = 0;
  writer.limit = maxBytes;
  writer.stop = 0;
  writer.ascii(prefix);
  if (writer.stop !== 0) return GIVE_UP;
  const end = write(value, writer.pos, maxDepth, maxBytes, false);
  return end === SCRATCH_FULL ? GIVE_UP : end;
}

/** The scratch buffer the writers wrote into (it may be replaced when it grows). */
export function canonicalScratch(): Uint8Array {
  return writer.buf;
}
