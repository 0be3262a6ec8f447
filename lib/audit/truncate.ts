/**
 * Cutting an oversized audit record down to the canonical size limit.
 *
 * Why: a record the canonical form cannot hold (larger than 64 KiB) used to
 * make `append` throw, so a deny with a huge `action_type` or a quarantine
 * change with a huge reason left no record at all. Instead, the largest
 * values are replaced, largest first and recursively, by a marker
 * `{ truncated: true, length, sha256, head }` until the record fits:
 * `length` is the UTF-8 byte length and `sha256` the hex SHA-256 of the whole
 * value (a string's UTF-8 bytes; an object's or array's canonical JSON),
 * `head` its first characters. The record keeps every field it can, and the
 * digest lets an investigator match the original value.
 *
 * Only the rare oversized path comes here; the gate's fast paths never do.
 */
import { canonicalizeJson } from '../canonical/car';
import { sha256Hex } from '../crypto/hash';

/** Characters of the original kept in a marker's `head`. */
export const TRUNCATED_HEAD_CHARS = 256;
/** No marker is larger than this (its head may need escapes of up to 6 bytes a character). */
const MARKER_MAX_BYTES = TRUNCATED_HEAD_CHARS * 6 + 160;
const UNLIMITED = { maxBytes: Number.MAX_SAFE_INTEGER };

export interface TruncatedValue {
  truncated: true;
  length: number;
  sha256: string;
  head: string;
}

// The markers this module made (a caller's own field named `truncated` is not one).
const markers = new WeakSet<object>();

const byteSize = (value: unknown): number => Buffer.byteLength(canonicalizeJson(value, UNLIMITED), 'utf8');

/** The first characters of `text`, never ending inside a surrogate pair (a lone surrogate cannot be canonicalized). */
function headOf(text: string): string {
  let end = Math.min(text.length, TRUNCATED_HEAD_CHARS);
  const last = text.charCodeAt(end - 1);
  if (end < text.length && last >= 0xd800 && last <= 0xdbff) end--;
  return text.slice(0, end);
}

/** The marker that stands in for `value`. */
export function truncatedMarker(value: unknown): TruncatedValue {
  const text = typeof value === 'string' ? value : canonicalizeJson(value, UNLIMITED);
  const bytes = Buffer.from(text, 'utf8');
  const marker: TruncatedValue = { truncated: true, length: bytes.length, sha256: sha256Hex(bytes), head: headOf(text) };
  markers.add(marker);
  return marker;
}

/**
 * `value` cut to at most `budget` canonical bytes: unchanged if it fits,
 * else its largest members cut first (recursively), else a marker.
 */
export function cutToFit(value: unknown, budget: number): unknown {
  const size = byteSize(value);
  if (size <= budget) return value;
  if (typeof value !== 'object' || value === null) return truncatedMarker(value);
  const isArray = Array.isArray(value);
  const entries: Array<[string | number, unknown, number]> = isArray
    ? (value as unknown[]).map((v, i) => [i, v, byteSize(v)])
    : Object.keys(value).map((k) => [k, (value as Record<string, unknown>)[k], byteSize((value as Record<string, unknown>)[k])]);
  const order = entries.map((_, i) => i).sort((a, b) => entries[b][2] - entries[a][2]);
  let total = size;
  for (const i of order) {
    if (total <= budget) break;
    const [, v, s] = entries[i];
    if (s <= MARKER_MAX_BYTES) break; // only small members left: cutting them cannot save enough
    const cut = cutToFit(v, Math.max(MARKER_MAX_BYTES, s - (total - budget)));
    const cutSize = byteSize(cut);
    entries[i][1] = cut;
    total += cutSize - s;
  }
  if (total > budget) return truncatedMarker(value); // many small members, or huge keys
  if (isArray) return entries.map((e) => e[1]);
  const out: Record<string, unknown> = {};
  for (const [k, v] of entries) out[k as string] = v;
  return out;
}

/**
 * Fields of a record cut so that the whole record (fields plus the log's
 * own `overheadBytes`) fits in `maxBytes`. Returns the fields unchanged when
 * they fit; when even a cut cannot fit them, one marker replaces them all
 * under `truncated_fields`.
 */
export function fitFields(fields: Record<string, unknown>, overheadBytes: number, maxBytes: number): Record<string, unknown> {
  const cut = cutToFit(fields, maxBytes - overheadBytes) as Record<string, unknown>;
  return markers.has(cut) ? { truncated_fields: cut } : cut;
}
