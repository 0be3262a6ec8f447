import crypto from 'node:crypto';
import path from 'node:path';
import { coreAddon } from '../lib/native/loader';

export const repoRoot = path.resolve(__dirname, '..');
/** The core addon when this run uses it (null in the GUARDKERNEL_NATIVE=0 pass). */
export const core = coreAddon();

/** Deterministic PRNG so a failing random case can be replayed from its seed. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}

export function randomInt(next: () => number, lo: number, hi: number): number {
  return lo + Math.floor(next() * (hi - lo + 1));
}

/** Random bytes placed at an odd offset inside a larger buffer (views must be honoured). */
export function bytesAtOddOffset(next: () => number, len: number): Uint8Array {
  const offset = randomInt(next, 0, 15) | 1;
  const backing = crypto.randomBytes(len + offset + randomInt(next, 0, 9));
  return backing.subarray(offset, offset + len);
}

export function detachedView(): Uint8Array {
  const view = new Uint8Array(16);
  structuredClone(view.buffer, { transfer: [view.buffer] });
  return view;
}

export function sharedView(): Uint8Array {
  return new Uint8Array(new SharedArrayBuffer(16));
}

/** The self-test kernel's mix (cuda/hd.cuh Mix32), written independently in JS. */
export function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A settable clock for TTL tests. */
export function fakeClock(start = 1_000_000): { now: number; fn: () => number } {
  const clock = { now: start, fn: () => clock.now };
  return clock;
}

/** Polls `what` every few ms until it holds; throws after `ms` (for state that travels between processes). */
export async function until(what: () => boolean | Promise<boolean>, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await what())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Gate decisions with their approval ids replaced by their order of first
 * appearance (`apr#1`, ...) and no expiry instant: two gates fed the same
 * requests open requests with different random ids at different instants,
 * and compare equal this way while "the same request again" still shows.
 */
export function sameApprovals<T>(decisions: T[]): T[] {
  const seen = new Map<string, string>();
  return decisions.map((d) => {
    const o = d as Record<string, unknown>;
    if (typeof o !== 'object' || o === null || typeof o.approval_id !== 'string') return d;
    const { approval_id: id, approval_expires_at: _at, ...rest } = o;
    if (!seen.has(id as string)) seen.set(id as string, `apr#${seen.size + 1}`);
    return { ...rest, approval_id: seen.get(id as string) } as T;
  });
}
