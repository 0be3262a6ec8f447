/**
 * Recent CAR hash strings, found again by their raw digest.
 *
 * Requests repeat: an agent sends the same action again, a batch holds the
 * same CAR many times. Making the 71-character "sha256:<hex>" string for a
 * digest costs about as much as hashing a small CAR, while finding the string
 * made last time costs one integer Map lookup and eight 32-bit compares. A
 * reused string also makes the decision cache's `===` on its key a pointer
 * compare. Every candidate is compared on all 256 bits, so a digest only ever
 * gets its own text. Bounded: the table starts over when full (it only saves
 * work; the strings are the same either way).
 */
import { MemoPause } from '../memo-pause';

/** Strings kept; past this the table starts over. */
const CAPACITY = 4096;

interface Interned {
  w0: number;
  w1: number;
  w2: number;
  w3: number;
  w4: number;
  w5: number;
  w6: number;
  w7: number;
  text: string;
}

const table = new Map<number, Interned>();

/**
 * The table pays only where hashes repeat: on mixed traffic (serve ~7%
 * faster without it) a window of 1,024 lookups with fewer than 3 in 4 hits
 * pauses it, emptied, for 16,384 lookups (lib/memo-pause.ts).
 */
const pause = new MemoPause(1024, 768, 16 * 1024);

/** Length of the text form, "sha256:" + 64 hex digits. */
export const CAR_HASH_TEXT_BYTES = 71;

// Node's own latin1 decoder without toString's argument handling (about half
// of a slice's cost at this size); toString where a runtime lacks it.
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice?: (start: number, end: number) => string }).latin1Slice;

function sliceText(text: Buffer, at: number): string {
  return latin1Slice !== undefined ? latin1Slice.call(text, at, at + CAR_HASH_TEXT_BYTES) : text.toString('latin1', at, at + CAR_HASH_TEXT_BYTES);
}

/**
 * The hash string of digest `k`: `words` views the raw digests (eight 32-bit
 * words each), `text` holds the text forms (71 bytes each), both written by
 * the addon for the same `k`. Reuses a recent string when the digest matches.
 */
export function carHashText(words: Int32Array, text: Buffer, k: number): string {
  if (pause.skip()) return sliceText(text, k * CAR_HASH_TEXT_BYTES);
  const b = k * 8;
  const w0 = words[b];
  const slot = w0 & 0x3fffffff;
  const e = table.get(slot);
  if (
    e !== undefined &&
    e.w0 === w0 &&
    e.w1 === words[b + 1] &&
    e.w2 === words[b + 2] &&
    e.w3 === words[b + 3] &&
    e.w4 === words[b + 4] &&
    e.w5 === words[b + 5] &&
    e.w6 === words[b + 6] &&
    e.w7 === words[b + 7]
  ) {
    if (pause.note(true)) table.clear();
    return e.text;
  }
  if (pause.note(false)) {
    table.clear();
    return sliceText(text, k * CAR_HASH_TEXT_BYTES);
  }
  const s = sliceText(text, k * CAR_HASH_TEXT_BYTES);
  if (table.size >= CAPACITY) table.clear();
  table.set(slot, { w0, w1: words[b + 1], w2: words[b + 2], w3: words[b + 3], w4: words[b + 4], w5: words[b + 5], w6: words[b + 6], w7: words[b + 7], text: s });
  return s;
}

/** @internal For tests: lookups left before a paused table tries again. */
export function carHashTextPaused(): number {
  return pause.paused;
}

/** @internal For tests: how many strings are held. */
export function carHashTextCount(): number {
  return table.size;
}
