/**
 * Each agent's (and each client's) share of the nonce store. The replay
 * store fails closed when full, which is right for the store and wrong for
 * everyone else: one agent sending fresh nonces as fast as it can would fill
 * it and have every other agent's nonce requests denied. So each key (an
 * agent id, a client of the socket) may hold at most `limit` live nonces;
 * past that its own requests are denied until some expire, and nobody
 * else's are.
 *
 * A key's live nonces are their expiry times in arrival order. The gate uses
 * one TTL, so expiries arrive in increasing order and the expired ones are
 * always at the front. Memory: at most one entry per nonce the store took,
 * plus what expired since the last sweep (every `limit` records).
 */
export class NonceQuota {
  readonly #live = new Map<string, { expiries: number[]; head: number }>();
  #recordsSinceSweep = 0;

  constructor(readonly limit: number) {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`Expected a positive integer nonce quota but received ${String(limit)}`);
  }

  /** True when `key` may take one more nonce at `now`. */
  admits(key: string, now: number): boolean {
    const q = this.#live.get(key);
    if (q === undefined) return true;
    this.#prune(key, q, now);
    return q.expiries.length - q.head < this.limit;
  }

  /** Counts a nonce the store took for `key`, live until `expiresAt`. */
  record(key: string, expiresAt: number, now: number): void {
    let q = this.#live.get(key);
    if (q === undefined) {
      q = { expiries: [], head: 0 };
      this.#live.set(key, q);
    }
    q.expiries.push(expiresAt);
    if (++this.#recordsSinceSweep >= this.limit) {
      this.#recordsSinceSweep = 0;
      for (const [k, v] of this.#live) this.#prune(k, v, now);
    }
  }

  /** Live nonces held by `key` (for tests and metrics). */
  held(key: string, now: number): number {
    const q = this.#live.get(key);
    if (q === undefined) return 0;
    this.#prune(key, q, now);
    return q.expiries.length - q.head;
  }

  /** Keys tracked (bounded by the live nonces). */
  get keys(): number {
    return this.#live.size;
  }

  #prune(key: string, q: { expiries: number[]; head: number }, now: number): void {
    const e = q.expiries;
    while (q.head < e.length && e[q.head] <= now) q.head++;
    if (q.head === e.length) {
      this.#live.delete(key);
      return;
    }
    // Compact once the dead prefix is half the array: amortized O(1) per nonce.
    if (q.head > 32 && q.head * 2 > e.length) {
      q.expiries = e.slice(q.head);
      q.head = 0;
    }
  }
}
