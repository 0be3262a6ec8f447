/**
 * Splits a byte stream into newline-terminated lines with a hard bound: once
 * the current line exceeds `maxLineBytes` the reader stops buffering it and
 * reports the overflow, so a peer that never sends a newline cannot grow the
 * server's memory beyond the bound.
 *
 * Decoding is strict: a line that is not valid UTF-8 (stray or truncated
 * sequences, overlong forms, encoded surrogates, code points past U+10FFFF)
 * is reported as invalid, never decoded with U+FFFD in place of its bad
 * bytes: two different byte strings must never become one string to hash or
 * match (`/srv/\xFF` and `/srv/\xFE` would share a CAR hash).
 */
import { isUtf8 } from 'node:buffer';

export interface LineReaderEvents {
  /** A complete line, without its newline (and without a trailing CR). */
  line(text: string): void;
  /** The current line passed the limit; nothing more is read. */
  overflow(bytesSeen: number): void;
  /** A complete line that is not valid UTF-8 (its bytes are not decoded). */
  invalid(): void;
}

export class LineReader {
  #parts: Buffer[] = [];
  #partBytes = 0;
  #overflowed = false;

  constructor(
    readonly maxLineBytes: number,
    private readonly events: LineReaderEvents,
  ) {
    if (!Number.isSafeInteger(maxLineBytes) || maxLineBytes < 1) throw new RangeError(`Expected a positive integer for maxLineBytes but received ${String(maxLineBytes)}`);
  }

  /** True once a line was too long; the reader then ignores further input. */
  get overflowed(): boolean {
    return this.#overflowed;
  }

  /** Bytes held for the unfinished line (never more than maxLineBytes). */
  get buffered(): number {
    return this.#partBytes;
  }

  push(chunk: Buffer): void {
    if (this.#overflowed) return;
    if (this.#partBytes === 0 && chunk.length <= this.maxLineBytes) {
      // No line of this chunk can pass the limit: decode its complete lines in
      // one call rather than one per line. ('\n' never occurs inside a UTF-8
      // sequence, so invalid bytes decode exactly as they would line by line.)
      const last = chunk.lastIndexOf(0x0a);
      // One validation for the whole run of lines (the common case); a run
      // with a bad byte goes line by line below, so only its bad lines fail.
      if (last >= 0 && isUtf8(chunk.subarray(0, last))) {
        const lines = chunk.toString('utf8', 0, last).split('\n');
        for (let i = 0; i < lines.length; i++) {
          const text = lines[i];
          this.events.line(text.endsWith('\r') ? text.slice(0, -1) : text);
        }
        if (last + 1 === chunk.length) return;
        chunk = chunk.subarray(last + 1); // an unfinished line
      }
    }
    let start = 0;
    while (!this.#overflowed && start < chunk.length) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl === -1 ? chunk.length : nl;
      const piece = chunk.subarray(start, end);
      if (this.#partBytes + piece.length > this.maxLineBytes) {
        this.#overflowed = true;
        const seen = this.#partBytes + piece.length;
        this.#parts = [];
        this.#partBytes = 0;
        this.events.overflow(seen);
        return;
      }
      if (nl === -1) {
        // Copy: the chunk's memory may be reused by the stream.
        this.#parts.push(Buffer.from(piece));
        this.#partBytes += piece.length;
        return;
      }
      const whole = this.#partBytes === 0 ? piece : Buffer.concat([...this.#parts, piece]);
      this.#parts = [];
      this.#partBytes = 0;
      start = nl + 1;
      if (!isUtf8(whole)) {
        this.events.invalid();
        continue;
      }
      let text = whole.toString('utf8');
      if (text.endsWith('\r')) text = text.slice(0, -1);
      this.events.line(text);
    }
  }
}
