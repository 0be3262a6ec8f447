/** Input checks shared by every function that takes bytes. */
import { isSharedArrayBuffer } from 'node:util/types';
import { describe } from '../errors';

/** Bytes or text; text is hashed as its UTF-8 encoding. */
export type BinaryLike = string | Uint8Array;

/** Strings up to this many UTF-16 units go to the addon as strings; longer ones as Buffers. */
export const NATIVE_STRING_LIMIT = 65536;

function isDetached(view: Uint8Array): boolean {
  // A detached view reads as empty; only then is the (throwing) probe needed.
  if (view.byteLength !== 0) return false;
  try {
    new Uint8Array(view.buffer, 0, 0);
    return false;
  } catch {
    return true;
  }
}

/** Checks a Uint8Array argument: not detached, not shared memory. */
export function checkBytes(value: unknown, name: string): Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`Expected a Uint8Array for ${name} but received ${describe(value)}`);
  }
  const buffer = value.buffer;
  if (!(buffer instanceof ArrayBuffer) && isSharedArrayBuffer(buffer)) {
    // Another thread could change the bytes while they are hashed or compared.
    throw new TypeError(`Expected ${name} over an ArrayBuffer but received a view of a SharedArrayBuffer`);
  }
  if (isDetached(value)) {
    throw new TypeError(`Expected ${name} over a live ArrayBuffer but received a detached one`);
  }
  return value;
}

/** Checks a string: lone surrogates have no UTF-8 form and are refused, not replaced. */
export function checkText(value: string, name: string): string {
  if (!value.isWellFormed()) {
    throw new TypeError(`Expected well-formed UTF-16 for ${name} but received a string with a lone surrogate`);
  }
  return value;
}

/** Checks a string-or-bytes argument. */
export function checkBinary(value: unknown, name: string): BinaryLike {
  if (typeof value === 'string') return checkText(value, name);
  return checkBytes(value, name);
}

/** Like checkBinary, but long strings become Buffers so the addon never sees them. */
export function binaryForNative(value: unknown, name: string): BinaryLike {
  if (typeof value === 'string') {
    checkText(value, name);
    return value.length <= NATIVE_STRING_LIMIT ? value : Buffer.from(value, 'utf8');
  }
  return checkBytes(value, name);
}

/** Checks that `out` has `need` bytes from `offset`. */
export function checkOut(out: unknown, offset: unknown, need: number): Uint8Array {
  const view = checkBytes(out, 'out');
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) {
    throw new RangeError(`Expected a non-negative integer for offset but received ${describe(offset)}`);
  }
  if (view.byteLength - offset < need) {
    throw new RangeError(
      `Expected at least ${need} bytes in out from offset ${offset} but it has ${Math.max(0, view.byteLength - offset)}`,
    );
  }
  return view;
}
