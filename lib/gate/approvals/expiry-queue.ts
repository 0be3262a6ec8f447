/**
 * ExpiryQueue: approval request ids by expiry, earliest first (a binary
 * min-heap). The book pushes an entry whenever it stores an open request and
 * never removes one when the request changes: an entry whose request has
 * ended, or moved to another expiry, is stale, and the book skips it when it
 * comes to the top. Why: finding the next expiry by scanning every request
 * made each new approval request cost O(open requests), about 0.2 ms each
 * with 35,000 open, so a flood of pending calls slowed every check.
 *
 * Equal expiries come out in the order they were pushed.
 */
export class ExpiryQueue {
  #at: number[] = [];
  #seq: number[] = [];
  #ids: string[] = [];
  #pushed = 0;

  get size(): number {
    return this.#ids.length;
  }

  /** The earliest expiry, or Infinity when empty. */
  get firstAt(): number {
    return this.#ids.length === 0 ? Infinity : this.#at[0];
  }

  /** The id of the earliest entry (undefined when empty). */
  get firstId(): string | undefined {
    return this.#ids[0];
  }

  push(at: number, id: string): void {
    const seq = this.#pushed++;
    let i = this.#ids.length;
    this.#at.push(at);
    this.#seq.push(seq);
    this.#ids.push(id);
    // Sift up: parents that come after the new entry move down.
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#precedes(at, seq, parent)) break;
      this.#move(parent, i);
      i = parent;
    }
    this.#set(i, at, seq, id);
  }

  /** Removes the earliest entry. */
  pop(): void {
    const n = this.#ids.length - 1;
    if (n < 0) return;
    // The last entry goes to the top, then sifts down.
    const at = this.#at[n];
    const seq = this.#seq[n];
    const id = this.#ids[n];
    this.#at.length = n;
    this.#seq.length = n;
    this.#ids.length = n;
    if (n === 0) return;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && this.#precedes(this.#at[child + 1], this.#seq[child + 1], child)) child++;
      if (!this.#precedes(this.#at[child], this.#seq[child], -1, at, seq)) break;
      this.#move(child, i);
      i = child;
    }
    this.#set(i, at, seq, id);
  }

  /** Starts over with exactly these entries (dropping every stale one). */
  rebuild(entries: Iterable<readonly [number, string]>): void {
    this.#at = [];
    this.#seq = [];
    this.#ids = [];
    for (const [at, id] of entries) this.push(at, id);
  }

  /** True when (at, seq) comes before the entry at index j (or, for j < 0, before (otherAt, otherSeq)). */
  #precedes(at: number, seq: number, j: number, otherAt = 0, otherSeq = 0): boolean {
    const a = j < 0 ? otherAt : this.#at[j];
    const s = j < 0 ? otherSeq : this.#seq[j];
    return at < a || (at === a && seq < s);
  }

  #move(from: number, to: number): void {
    this.#at[to] = this.#at[from];
    this.#seq[to] = this.#seq[from];
    this.#ids[to] = this.#ids[from];
  }

  #set(i: number, at: number, seq: number, id: string): void {
    this.#at[i] = at;
    this.#seq[i] = seq;
    this.#ids[i] = id;
  }
}
