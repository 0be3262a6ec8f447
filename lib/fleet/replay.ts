/**
 * The Redis tier of a fleet-backed ReplayDetector.
 *
 * Two tiers: the in-process native store answers `replay` for any nonce this
 * process has already seen, with no round trip; anything else is one atomic
 * `SET key 1 NX PXAT expiry` on Redis, which decides across the fleet. A
 * nonce enters the local tier only after Redis has answered for it, so the
 * local tier never holds a nonce the fleet has not recorded.
 *
 * Expiries are absolute (epoch ms), so hosts must keep their clocks in sync
 * (NTP); a host running fast lets its nonces expire early elsewhere by the skew.
 */
import { GuardError, ErrorCodes } from '../errors';
import type { FleetStore, OnStoreError } from './store';
import { keyDigest } from './store';

/** The local tier: what the detector's in-process store offers. */
export interface LocalReplayTier {
  seen(nonce: string): boolean;
  checkLocal(nonce: string, expiresAtMs: number): 'fresh' | 'replay' | 'saturated';
}

/** Key namespaces: request nonces and permit ids never share a key (one cannot burn the other). */
export type ReplayNamespace = 'n' | 'p';

export class FleetReplay {
  constructor(
    readonly store: FleetStore,
    readonly onStoreError: OnStoreError,
    private readonly local: LocalReplayTier,
  ) {}

  key(ns: ReplayNamespace, nonce: string): string {
    return this.store.key(`replay:${ns}`, keyDigest(nonce));
  }

  /** True when the local tier already answers `replay` (no round trip needed). */
  seenLocally(nonce: string): boolean {
    return this.local.seen(nonce);
  }

  /** Records what Redis answered in the local tier (a full local tier only costs round trips later). */
  remember(nonce: string, expiresAtMs: number): void {
    this.local.checkLocal(nonce, expiresAtMs);
  }

  /** The in-process check-and-insert (the gate's 'local' fallback). */
  checkLocal(nonce: string, expiresAtMs: number): 'fresh' | 'replay' | 'saturated' {
    return this.local.checkLocal(nonce, expiresAtMs);
  }

  /** The in-process answer when Redis cannot give one and onStoreError is 'local'. */
  fallback(nonce: string, expiresAtMs: number, cause: GuardError): 'fresh' | 'replay' | 'saturated' {
    if (this.onStoreError !== 'local') throw cause;
    this.store.noteFallback();
    return this.local.checkLocal(nonce, expiresAtMs);
  }

  async check(nonce: string, expiresAtMs: number, ns: ReplayNamespace = 'n'): Promise<'fresh' | 'replay' | 'saturated'> {
    if (this.local.seen(nonce)) return 'replay';
    let set: string | null;
    try {
      const key = this.key(ns, nonce);
      set = await this.store.run((r) => r.set(key, '1', 'PXAT', Math.ceil(expiresAtMs), 'NX'));
    } catch (err) {
      if (err instanceof GuardError && err.code === ErrorCodes.STORE_UNAVAILABLE) return this.fallback(nonce, expiresAtMs, err);
      throw err;
    }
    this.remember(nonce, expiresAtMs);
    return set === 'OK' ? 'fresh' : 'replay';
  }
}
