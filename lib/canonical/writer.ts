/**
 * CanonicalWriter: writes the RFC 8785 (JCS) form of a JSON value as UTF-8
 * into a growable scratch buffer, giving up (setting `stop`) on anything the
 * string serializer in car.ts must judge. lib/canonical/bytes.ts drives it
 * for CAR hashes; lib/audit/record.ts for the audit log's decision records.
 *
 * Giving up is a value, not a throw: every call returns normally and every
 * loop stops at the first `stop`. A throw unwinding through three frames per
 * level of a deep value cost about 60 µs for a CAR 70 objects deep (V8 never
 * optimizes frames that only ever leave by exception), so an attacker's
 * invalid CAR cost dozens of valid ones.
 */
import { hasCarFields, keyLayout, sortKeys } from './layouts';

/** `stop` values. ABORT: the string serializer must decide (invalid input, limits). */
export const ABORT = 1;
/** The scratch buffer is full: hash what it holds, then start it again. */
export const FULL = 2;

const INITIAL_BYTES = 4096;
/** Larger forms take the string path; this bounds the memory kept per thread. */
const MAX_SCRATCH_BYTES = 4 << 20;

// JSON.stringify's short escapes (JCS uses the same), indexed by code unit.
const SHORT_ESCAPE = new Uint8Array(0x60);
SHORT_ESCAPE[0x08] = 0x62; // \b
SHORT_ESCAPE[0x09] = 0x74; // \t
SHORT_ESCAPE[0x0a] = 0x6e; // \n
SHORT_ESCAPE[0x0c] = 0x66; // \f
SHORT_ESCAPE[0x0d] = 0x72; // \r
SHORT_ESCAPE[0x22] = 0x22; // \"
SHORT_ESCAPE[0x5c] = 0x5c; // \\
const HEX = [0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66];
/**
 * 1 for every UTF-16 unit a string cannot be copied with as one byte: controls,
 * '"', '\\' (escaped) and everything from U+0080 (UTF-8 sequences, surrogates).
 */
const NOT_PLAIN = new Uint8Array(0x10000).fill(1);
NOT_PLAIN.fill(0, 0x20, 0x80);
NOT_PLAIN[0x22] = 1;
NOT_PLAIN[0x5c] = 1;

/**
 * Writes JCS bytes into a growable scratch buffer. The CAR hash uses one per
 * module instance (so one per worker thread); the audit log's decision
 * records use their own (lib/audit/record.ts).
 */
export class CanonicalWriter {
  buf: Buffer = Buffer.allocUnsafeSlow(INITIAL_BYTES);
  /** `buf` as a DataView (replaced with it), for writing four bytes at a time. */
  view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
  pos = 0;
  /** Where the CAR being written starts (batches write several back to back). */
  start = 0;
  /** CARs refuse integers beyond ±(2^53-1); plain JSON (audit records) carries them. */
  rejectUnsafeIntegers = true;
  /** Set during a walk: a getter that hashes another CAR must not reuse the buffer. */
  busy = false;
  /**
   * 0 while a walk goes on; ABORT or FULL once it gave up. Whoever starts a
   * walk sets it to 0 and reads it at the end: after a give-up the bytes are
   * garbage (later writes may still land, always inside the buffer).
   */
  stop = 0;
  limit = 0;
  maxDepth = 0;
  /**
   * Set while writing the top-level object: whether `action_type` and
   * `agent_id` are among its own enumerable keys (the ones hashed). An
   * inherited or non-enumerable one would be read by the gate but left out
   * of the hash, so two different requests could share a cached decision.
   */
  topHasCarFields = false;

  /** Makes room for `n` more bytes: false (and `stop` set) when there is none to be had. */
  reserve(n: number): boolean {
    const need = this.pos + n;
    return need <= this.buf.length || this.grow(need);
  }

  private grow(need: number): boolean {
    // Worst cases are reserved (6 bytes per escaped unit), so the real form
    // may still fit the limit: allow that much slack for this CAR, then give up.
    if (need - this.start > this.limit * 6 + 64) {
      this.stop = ABORT;
      return false;
    }
    if (need > MAX_SCRATCH_BYTES) {
      this.stop = this.start > 0 ? FULL : ABORT;
      return false;
    }
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = Buffer.allocUnsafeSlow(Math.min(size, MAX_SCRATCH_BYTES));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer, next.byteOffset, next.length);
    return true;
  }

  byte(b: number): void {
    if (!this.reserve(1)) return;
    this.buf[this.pos++] = b;
  }

  ascii(s: string): void {
    const n = s.length;
    if (!this.reserve(n)) return;
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) b[p++] = s.charCodeAt(i);
    this.pos = p;
  }

  /**
   * A string the caller knows is printable ASCII without '"' or '\\' (hex
   * digests), quoted: copied by the runtime rather than a unit at a time.
   */
  quotedAscii(s: string): void {
    this.byte(0x22);
    this.latin1(s);
    this.byte(0x22);
  }

  /** Such a string's bytes, unquoted. */
  latin1(s: string): void {
    const n = s.length;
    if (!this.reserve(n)) return;
    this.pos += this.buf.write(s, this.pos, n, 'latin1');
  }

  /** A number as JCS writes it (ECMAScript Number-to-String); non-negative safe integers skip the generic conversion. */
  number(v: number): void {
    if (!(v >= 0 && v <= Number.MAX_SAFE_INTEGER && Math.floor(v) === v)) {
      this.value(v, 0); // fractions, negatives, non-finite (gives up), beyond 2^53
      return;
    }
    // Two halves below 2^31, so digits come from small-integer arithmetic.
    let high = Math.floor(v / 1e8);
    let low = v - high * 1e8; // exact: both are integers below 2^53
    if (low < 0) {
      high--;
      low += 1e8;
    } else if (low >= 1e8) {
      high++;
      low -= 1e8;
    }
    if (high === 0) {
      this.digits(low, 0);
      return;
    }
    this.digits(high, 0);
    this.digits(low, 8);
  }

  /** The decimal digits of an integer in [0, 2^31), left-padded with zeros to `width`. */
  private digits(n: number, width: number): void {
    let count = 1;
    for (let x = n; x >= 10; x = (x / 10) | 0) count++;
    if (count < width) count = width;
    if (!this.reserve(count)) return;
    const b = this.buf;
    let p = this.pos + count;
    this.pos = p;
    for (let i = 0; i < count; i++) {
      const q = (n / 10) | 0;
      b[--p] = 0x30 + n - q * 10;
      n = q;
    }
  }

  string(s: string): void {
    const n = s.length;
    if (!this.reserve(n * 6 + 2)) return;
    const b = this.buf;
    let p = this.pos;
    // Most strings are plain printable ASCII: copied four units per store,
    // their check folded into one flag. Any other unit: written again below.
    const v = this.view;
    let q = p + 1;
    let i = 0;
    let odd = 0;
    for (; i + 4 <= n; i += 4, q += 4) {
      const c0 = s.charCodeAt(i);
      const c1 = s.charCodeAt(i + 1);
      const c2 = s.charCodeAt(i + 2);
      const c3 = s.charCodeAt(i + 3);
      odd |= NOT_PLAIN[c0] | NOT_PLAIN[c1] | NOT_PLAIN[c2] | NOT_PLAIN[c3];
      v.setUint32(q, c0 | (c1 << 8) | (c2 << 16) | (c3 << 24), true);
    }
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      odd |= NOT_PLAIN[c];
      b[q++] = c;
    }
    if (odd === 0) {
      b[p] = 0x22;
      b[q] = 0x22;
      this.pos = q + 1;
      return;
    }
    this.escaped(s, p);
  }

  /** `string` for a string with units to escape or encode, written from `p`. */
  private escaped(s: string, p: number): void {
    const n = s.length;
    const b = this.buf;
    b[p++] = 0x22;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x80) {
        if (c >= 0x20 && c !== 0x22 && c !== 0x5c) {
          b[p++] = c;
          continue;
        }
        b[p++] = 0x5c;
        const short = SHORT_ESCAPE[c];
        if (short !== 0) {
          b[p++] = short;
        } else {
          b[p++] = 0x75; // u00XX, lower-case hex like JSON.stringify
          b[p++] = 0x30;
          b[p++] = 0x30;
          b[p++] = HEX[c >> 4];
          b[p++] = HEX[c & 15];
        }
      } else if (c < 0x800) {
        b[p++] = 0xc0 | (c >> 6);
        b[p++] = 0x80 | (c & 0x3f);
      } else if (c >= 0xd800 && c <= 0xdfff) {
        // A surrogate must be a high one followed by a low one.
        const d = i + 1 < n ? s.charCodeAt(i + 1) : 0;
        if (c > 0xdbff || d < 0xdc00 || d > 0xdfff) {
          this.stop = ABORT;
          return;
        }
        i++;
        const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        b[p++] = 0xf0 | (cp >> 18);
        b[p++] = 0x80 | ((cp >> 12) & 0x3f);
        b[p++] = 0x80 | ((cp >> 6) & 0x3f);
        b[p++] = 0x80 | (cp & 0x3f);
      } else {
        b[p++] = 0xe0 | (c >> 12);
        b[p++] = 0x80 | ((c >> 6) & 0x3f);
        b[p++] = 0x80 | (c & 0x3f);
      }
    }
    b[p++] = 0x22;
    this.pos = p;
  }

  value(v: unknown, depth: number): void {
    switch (typeof v) {
      case 'string':
        this.string(v);
        return;
      case 'number':
        // Non-finite numbers and integers beyond ±(2^53-1) are refused by
        // the string serializer, which names them.
        if (!Number.isFinite(v) || (this.rejectUnsafeIntegers && (v > Number.MAX_SAFE_INTEGER || v < -Number.MAX_SAFE_INTEGER))) {
          this.stop = ABORT;
          return;
        }
        // Counts and sizes: digits written straight in, no string made for them.
        if (v >= 0 && v <= Number.MAX_SAFE_INTEGER && Math.floor(v) === v) this.number(v);
        else this.ascii('' + v);
        return;
      case 'boolean':
        this.ascii(v ? 'true' : 'false');
        return;
      case 'object':
        if (v === null) {
          this.ascii('null');
          return;
        }
        if (depth >= this.maxDepth) {
          this.stop = ABORT;
          return;
        }
        if (Array.isArray(v)) this.array(v, depth + 1);
        else this.object(v as Record<string, unknown>, depth + 1);
        return;
      default:
        this.stop = ABORT;
    }
  }

  array(a: unknown[], depth: number): void {
    if (Object.getPrototypeOf(a) !== Array.prototype) {
      this.stop = ABORT;
      return;
    }
    this.byte(0x5b);
    const n = a.length;
    for (let i = 0; i < n; i++) {
      if (i !== 0) this.byte(0x2c);
      this.value(a[i], depth);
      if (this.stop !== 0) return;
    }
    this.byte(0x5d);
  }

  object(o: Record<string, unknown>, depth: number): void {
    const proto = Object.getPrototypeOf(o);
    if ((proto !== Object.prototype && proto !== null) || Object.getOwnPropertySymbols(o).length !== 0) {
      this.stop = ABORT;
      return;
    }
    const keys = Object.keys(o);
    const n = keys.length;
    if (n === 0) {
      this.byte(0x7b);
      this.byte(0x7d);
      return;
    }
    const layout = keyLayout(keys);
    if (depth === 1) this.topHasCarFields = layout !== null ? layout.hasCarFields : hasCarFields(keys);
    if (layout !== null) {
      // Keys seen before in this order: a writer compiled for them, or their
      // sorted order and encoded bytes.
      if (layout.write !== null) {
        layout.write(this, o, depth);
        return;
      }
      const sorted = layout.sorted!;
      const prefixes = layout.prefixes!;
      for (let i = 0; i < n; i++) {
        this.bytes(prefixes[i]);
        this.value(o[sorted[i]], depth);
        if (this.stop !== 0) return;
      }
      this.byte(0x7d);
      return;
    }
    sortKeys(keys);
    this.byte(0x7b);
    for (let i = 0; i < n; i++) {
      if (i !== 0) this.byte(0x2c);
      const key = keys[i];
      this.string(key);
      this.byte(0x3a);
      this.value(o[key], depth);
      if (this.stop !== 0) return;
    }
    this.byte(0x7d);
  }

  bytes(src: Uint8Array): void {
    const n = src.length;
    if (!this.reserve(n)) return;
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) b[p++] = src[i];
    this.pos = p;
  }

  /** Like `bytes`, for longer runs: a native copy beats the loop past a few dozen bytes. */
  block(src: Uint8Array): void {
    if (!this.reserve(src.length)) return;
    this.buf.set(src, this.pos);
    this.pos += src.length;
  }

  /** `src` as a quoted JSON string; the caller knows it is printable ASCII without '"' or '\\'. */
  quotedBytes(src: Uint8Array): void {
    this.byte(0x22);
    this.block(src);
    this.byte(0x22);
  }
}
