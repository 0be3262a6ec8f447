/**
 * MemoPause: the self-check of a memo table that pays only where its lookups
 * hit often. On traffic that seldom repeats, a table's kept entries outlive
 * young-generation collections and cost more to copy and promote than its
 * hits save; so the table counts its lookups in windows, and a window with
 * too few hits pauses it (its owner empties it) for a while before it tries
 * again. Only which lookups are answered from the table changes, never an
 * answer. Used by the tables of recent CAR hash strings
 * (lib/crypto/hash-texts.ts) and decision texts (lib/ipc/decision-json.ts).
 */
export class MemoPause {
  #left: number;
  #hits = 0;
  #paused = 0;

  /**
   * @param window lookups per window
   * @param minHits hits a window needs for the table to stay on
   * @param pause lookups a paused table lets pass before it tries again
   */
  constructor(
    readonly window: number,
    readonly minHits: number,
    readonly pause: number,
  ) {
    this.#left = window;
  }

  /** Lookups left before a paused table tries again (0: on). */
  get paused(): number {
    return this.#paused;
  }

  /** True while paused (the caller neither looks up nor keeps anything); counts this lookup off the pause. */
  skip(): boolean {
    if (this.#paused === 0) return false;
    this.#paused--;
    return true;
  }

  /** Counts one lookup; true when it ends a window with too few hits: the table is paused now, and its owner empties it. */
  note(hit: boolean): boolean {
    if (hit) this.#hits++;
    if (--this.#left > 0) return false;
    const pause = this.#hits < this.minHits;
    if (pause) this.#paused = this.pause;
    this.#left = this.window;
    this.#hits = 0;
    return pause;
  }
}
