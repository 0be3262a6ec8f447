/**
 * The server's fast path for plain `gate_check` lines: the addon reads the
 * request line straight to its CAR hash (native/ipc/gate_line.h), so the
 * commonest request needs no JSON.parse and no JS canonical writer. Only
 * lines it can answer exactly as the general path would are taken (params of
 * a CAR and, optionally, a nonce, a permit and a session_id of printable ASCII; no
 * duplicate keys, plain ids and numbers, ...); for every other
 * line `read` returns null and the JSON-RPC dispatcher answers it. Without
 * the addon there is no fast path (`create` returns null).
 */
import type { Car } from '../canonical/car';
import { CAR_HASH_TEXT_BYTES, carHashText } from '../crypto/hash-texts';
import { DIGEST_BYTES } from '../crypto/hash';
import { coreAddon } from '../native/loader';
import type { CoreAddon } from '../native/addon-types';

/** What the fast path takes from a line. */
export interface GateLine {
  /** The id's JSON text, as the reply repeats it. */
  id: string;
  carHash: string;
  agentId: string;
  actionType: string;
  /** params.nonce, or undefined where the line has none. */
  nonce: string | undefined;
  /** params.permit, or undefined where the line has none. */
  permit: string | undefined;
  /** params.session_id, or undefined where the line has none. */
  sessionId: string | undefined;
  /** Where params.car's JSON text lies in the line (UTF-16 offsets): what carOfLine parses. */
  carStart: number;
  carEnd: number;
}

export class GateLineReader {
  readonly #addon: CoreAddon;
  readonly #fields = new Int32Array(14);
  // The addon writes the raw digest, then its text form: the digest finds
  // the hash string made for it last time (car-hash-texts).
  readonly #out = Buffer.allocUnsafeSlow(DIGEST_BYTES + CAR_HASH_TEXT_BYTES);
  readonly #words = new Int32Array(this.#out.buffer, this.#out.byteOffset, DIGEST_BYTES / 4);
  readonly #text = this.#out.subarray(DIGEST_BYTES);

  private constructor(addon: CoreAddon) {
    this.#addon = addon;
  }

  /** A reader, or null when the native addon is not loaded. */
  static create(): GateLineReader | null {
    const addon = coreAddon();
    return addon === null ? null : new GateLineReader(addon);
  }

  /** The parts of a plain gate_check line, or null: the general path answers it. */
  read(line: string): GateLine | null {
    if (!this.#addon.parseGateLine(line, this.#fields, this.#out)) return null;
    const f = this.#fields;
    return {
      id: line.slice(f[0], f[1]),
      carHash: carHashText(this.#words, this.#text, 0),
      agentId: line.slice(f[2], f[3]),
      actionType: line.slice(f[4], f[5]),
      nonce: f[6] < 0 ? undefined : line.slice(f[6], f[7]),
      permit: f[8] < 0 ? undefined : line.slice(f[8], f[9]),
      sessionId: f[10] < 0 ? undefined : line.slice(f[10], f[11]),
      carStart: f[12],
      carEnd: f[13],
    };
  }
}

/**
 * The whole CAR of a line `read` took: what the policy reads on a cache
 * miss. Only the CAR's own text is parsed, not the envelope, nonce or permit
 * around it (the line is valid JSON without duplicate keys, so it is the
 * same value as JSON.parse(line).params.car).
 */
export function carOfLine(line: string, g: GateLine): Car {
  return JSON.parse(line.slice(g.carStart, g.carEnd)) as Car;
}
