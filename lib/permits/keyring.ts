/**
 * Permits: JWS compact tokens (RFC 7515/7519), HS256 only, so any JWT library
 * can verify them. A `Keyring` holds several keys by `kid`: the active one
 * signs, the others verify until retired.
 *
 * Verification order (the contract): parse -> alg must be HS256 -> known kid
 * -> constant-time MAC check (native HMAC) -> exp / nbf -> car equals the
 * request's CAR hash -> for single-use permits, consume the jti atomically in
 * the replay store. A forged or expired permit never touches the replay store,
 * so it cannot burn a real permit's nonce.
 */
import crypto from 'node:crypto';
import { carHash as computeCarHash, isCarHash, type Car } from '../canonical/car';
import { describe } from '../errors';
import { HmacKey } from '../crypto/hash';
import { ReplayDetector } from './replay';

export type PermitUse = 'once' | 'multi';

/** Why `verify` refused a permit. */
export type PermitRejection =
  | 'malformed'
  | 'bad_alg'
  | 'unknown_kid'
  | 'bad_signature'
  | 'expired'
  | 'not_yet_valid'
  | 'car_mismatch'
  | 'replayed'
  /** The replay store could not record a single-use nonce (full or failing): fail closed. */
  | 'replay_unavailable';

export interface PermitClaims {
  iss: string;
  /** The agent id. */
  sub: string;
  /** The CAR hash the permit is bound to. */
  car: string;
  dec: 'allow';
  /** Issued at, seconds since the epoch. */
  iat: number;
  /** Expiry, seconds since the epoch. */
  exp: number;
  /** Not before, seconds since the epoch (tokens we issue carry none). */
  nbf?: number;
  /** 128-bit random nonce, base64url. */
  jti: string;
  use: PermitUse;
}

export type PermitVerification =
  | { valid: true; claims: Readonly<PermitClaims> }
  | { valid: false; reason: PermitRejection };

/** Anything with the ReplayDetector's check: where single-use permits are consumed. */
export interface ReplayStore {
  check(nonce: string, expiresAtMs: number): 'fresh' | 'replay' | 'saturated';
}

export interface KeyringOptions {
  /** Secrets by key id: bytes, or a string used as its UTF-8 bytes; each at least 32 bytes. */
  keys: Record<string, string | Uint8Array>;
  /** The kid that signs new permits. */
  active: string;
  /** `iss` of issued permits. Default 'guardkernel'. */
  issuer?: string;
  /** Where single-use permits are consumed. Default: a private ReplayDetector. */
  replay?: ReplayStore;
  /** Allowed clock skew for exp/nbf, in ms. Default 0. */
  clockToleranceMs?: number;
  /** Longest lifetime `issue` grants, in ms (1 s to 7 days). Default 7 days. */
  maxTtlMs?: number;
  /** Milliseconds since the epoch; default `Date.now`. */
  clock?: () => number;
}

export type IssueRequest = ({ car: Car | Record<string, unknown>; carHash?: undefined } | { carHash: string; car?: undefined }) & {
  agentId: string;
  /** Lifetime in ms, 1 s to 7 days; exp is rounded down to whole seconds. */
  ttlMs: number;
  /** Default 'once'. */
  use?: PermitUse;
};

export interface IssuedPermit {
  permit: string;
  jti: string;
  /** exp * 1000. */
  expiresAt: number;
}

export const MIN_SECRET_BYTES = 32;
export const MAX_PERMIT_LENGTH = 8192;
export const MAX_PERMIT_TTL_MS = 7 * 24 * 3600 * 1000;

const HEADER_CACHE_LIMIT = 256;

interface Header {
  alg: string;
  kid: string | undefined;
}

function secretBytes(kid: string, secret: unknown): Uint8Array {
  let bytes: Uint8Array;
  if (typeof secret === 'string') bytes = Buffer.from(secret, 'utf8');
  else if (secret instanceof Uint8Array) bytes = Buffer.from(secret);
  else throw new TypeError(`Expected a string or Uint8Array for the secret of key "${kid}" but received ${describe(secret)}`);
  if (bytes.byteLength < MIN_SECRET_BYTES) {
    throw new RangeError(`Expected at least ${MIN_SECRET_BYTES} bytes for the secret of key "${kid}" but received ${bytes.byteLength}`);
  }
  return bytes;
}

function checkKid(kid: unknown): string {
  if (typeof kid !== 'string' || kid.length === 0 || kid.length > 128 || !kid.isWellFormed()) {
    throw new TypeError(`Expected a non-empty string of at most 128 characters for kid but received ${describe(kid)}`);
  }
  return kid;
}

/** Strict base64url: the unpadded alphabet only, and the canonical encoding of what it decodes to. */
function decodeSegment(segment: string): Buffer | null {
  if (segment.length === 0) return null;
  const bytes = Buffer.from(segment, 'base64url');
  // Node's decoder skips characters outside the alphabet and accepts padding;
  // re-encoding exposes both (and non-canonical trailing bits).
  return bytes.toString('base64url') === segment ? bytes : null;
}

function parseJsonObject(bytes: Buffer): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(bytes.toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v);
}

/** Claims of a MAC-verified payload, or null when a claim is missing or ill-typed. */
function readClaims(payload: Record<string, unknown>): PermitClaims | null {
  const { iss, sub, car, dec, iat, exp, nbf, jti, use } = payload;
  if (typeof iss !== 'string' || typeof sub !== 'string' || sub.length === 0) return null;
  if (typeof car !== 'string' || dec !== 'allow' || !isInt(iat) || !isInt(exp)) return null;
  if (nbf !== undefined && !isInt(nbf)) return null;
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > 256) return null;
  if (use !== 'once' && use !== 'multi') return null;
  const claims: PermitClaims = { iss, sub, car, dec, iat, exp, jti, use };
  if (nbf !== undefined) claims.nbf = nbf;
  return claims;
}

export class Keyring {
  readonly #keys = new Map<string, HmacKey>();
  #active: string;
  readonly #issuer: string;
  #replay: ReplayStore | null;
  readonly #tolerance: number;
  readonly #maxTtlMs: number;
  readonly #clock: () => number;
  /** Decoded headers by their base64url text: the common case skips decode + parse. */
  readonly #headers = new Map<string, Header | null>();
  /** Encoded header of each kid, for issuing. */
  readonly #encodedHeaders = new Map<string, string>();
  readonly #mac = Buffer.alloc(32);

  constructor(options: KeyringOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`Expected an options object for Keyring but received ${describe(options)}`);
    }
    const { keys, active, issuer = 'guardkernel', replay, clockToleranceMs = 0, maxTtlMs = MAX_PERMIT_TTL_MS, clock = Date.now } = options;
    if (typeof keys !== 'object' || keys === null || Object.keys(keys).length === 0) {
      throw new TypeError(`Expected an object of kid -> secret for keys but received ${describe(keys)}`);
    }
    if (typeof issuer !== 'string' || issuer.length === 0) throw new TypeError(`Expected a non-empty string for issuer but received ${describe(issuer)}`);
    if (!isInt(clockToleranceMs) || clockToleranceMs < 0 || clockToleranceMs > 300_000) {
      throw new RangeError(`Expected an integer in [0, 300000] for clockToleranceMs but received ${describe(clockToleranceMs)}`);
    }
    if (!isInt(maxTtlMs) || maxTtlMs < 1000 || maxTtlMs > MAX_PERMIT_TTL_MS) {
      throw new RangeError(`Expected an integer in [1000, ${MAX_PERMIT_TTL_MS}] for maxTtlMs but received ${describe(maxTtlMs)}`);
    }
    if (typeof clock !== 'function') throw new TypeError(`Expected a function for clock but received ${describe(clock)}`);
    if (replay !== undefined && (typeof replay !== 'object' || replay === null || typeof replay.check !== 'function')) {
      throw new TypeError(`Expected an object with check(nonce, expiresAtMs) for replay but received ${describe(replay)}`);
    }
    for (const [kid, secret] of Object.entries(keys)) this.add(kid, secret);
    if (typeof active !== 'string' || !this.#keys.has(active)) {
      throw new RangeError(`Expected active to name one of the keys (${[...this.#keys.keys()].join(', ')}) but received ${describe(active)}`);
    }
    this.#active = active;
    this.#issuer = issuer;
    this.#replay = replay ?? null;
    this.#tolerance = clockToleranceMs;
    this.#maxTtlMs = maxTtlMs;
    this.#clock = clock;
  }

  /** Longest lifetime a permit from `issue` can have, in ms. */
  get maxTtlMs(): number {
    return this.#maxTtlMs;
  }

  /** Clock skew accepted on exp/nbf, in ms: a permit is accepted up to this long past its exp. */
  get clockToleranceMs(): number {
    return this.#tolerance;
  }

  /** Key ids that currently verify. */
  kids(): string[] {
    return [...this.#keys.keys()];
  }

  /** The kid that signs new permits. */
  get active(): string {
    return this.#active;
  }

  /** Adds a verification key (or replaces its secret). */
  add(kid: string, secret: string | Uint8Array): void {
    checkKid(kid);
    const key = new HmacKey(secretBytes(kid, secret));
    this.#keys.get(kid)?.destroy();
    this.#keys.set(kid, key);
    const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid })).toString('base64url');
    this.#encodedHeaders.set(kid, header);
  }

  /** Makes `kid` (already added) the signing key. */
  setActive(kid: string): void {
    if (!this.#keys.has(checkKid(kid))) throw new RangeError(`Unknown kid "${kid}"`);
    this.#active = kid;
  }

  /** Stops `kid` verifying; its permits become unknown_kid. The active key cannot be retired. */
  retire(kid: string): void {
    checkKid(kid);
    if (kid === this.#active) throw new RangeError(`Cannot retire the active key "${kid}": make another key active first`);
    const key = this.#keys.get(kid);
    if (key === undefined) throw new RangeError(`Unknown kid "${kid}"`);
    key.destroy();
    this.#keys.delete(kid);
    this.#encodedHeaders.delete(kid);
    this.#headers.clear();
  }

  /** Signs a permit for one CAR, one agent, one lifetime. */
  issue(request: IssueRequest): IssuedPermit {
    if (typeof request !== 'object' || request === null) {
      throw new TypeError(`Expected a request object but received ${describe(request)}`);
    }
    const { car, carHash, agentId, ttlMs, use = 'once' } = request;
    if ((car === undefined) === (carHash === undefined)) throw new TypeError('Expected exactly one of car or carHash');
    const boundHash = car !== undefined ? computeCarHash(car) : carHash;
    if (!isCarHash(boundHash)) {
      throw new TypeError(`Expected a CAR hash ("sha256:" + 64 lower-case hex digits) for carHash but received ${describe(boundHash)}`);
    }
    if (typeof agentId !== 'string' || agentId.length === 0 || agentId.length > 256 || !agentId.isWellFormed()) {
      throw new TypeError(`Expected a non-empty string of at most 256 characters for agentId but received ${describe(agentId)}`);
    }
    if (!isInt(ttlMs) || ttlMs < 1000 || ttlMs > this.#maxTtlMs) {
      throw new RangeError(`Expected an integer in [1000, ${this.#maxTtlMs}] for ttlMs but received ${describe(ttlMs)}`);
    }
    if (use !== 'once' && use !== 'multi') throw new TypeError(`Expected 'once' or 'multi' for use but received ${describe(use)}`);
    const now = this.#clock();
    const iat = Math.floor(now / 1000);
    // Rounded down: a permit never lives longer than asked.
    const exp = Math.floor((now + ttlMs) / 1000);
    const jti = crypto.randomBytes(16).toString('base64url');
    const claims: PermitClaims = { iss: this.#issuer, sub: agentId, car: boundHash, dec: 'allow', iat, exp, jti, use };
    const signingInput = this.#encodedHeaders.get(this.#active)! + '.' + Buffer.from(JSON.stringify(claims)).toString('base64url');
    const mac = this.#keys.get(this.#active)!.signInto(signingInput, this.#mac, 0);
    return { permit: signingInput + '.' + mac.toString('base64url'), jti, expiresAt: exp * 1000 };
  }

  #header(segment: string): Header | null {
    let header = this.#headers.get(segment);
    if (header !== undefined) return header;
    header = null;
    const bytes = decodeSegment(segment);
    const json = bytes && parseJsonObject(bytes);
    // RFC 7515: a "crit" we do not understand must be rejected; we understand none.
    if (json && typeof json.alg === 'string' && (json.kid === undefined || typeof json.kid === 'string') && json.crit === undefined) {
      header = { alg: json.alg, kid: json.kid as string | undefined };
    }
    if (this.#headers.size >= HEADER_CACHE_LIMIT) this.#headers.clear();
    this.#headers.set(segment, header);
    return header;
  }

  /**
   * Verifies `permit` for the request whose CAR hash is `carHash`. Never
   * throws for a string permit, whatever it contains. A single-use permit is
   * consumed unless `consume: false`, which checks everything but the replay
   * store (so it cannot tell whether the permit was already spent).
   */
  verify(permit: string, options: { carHash: string; now?: number; consume?: boolean }): PermitVerification {
    if (typeof permit !== 'string') throw new TypeError(`Expected a string for permit but received ${describe(permit)}`);
    if (typeof options !== 'object' || options === null || typeof options.carHash !== 'string') {
      throw new TypeError(`Expected { carHash } options but received ${describe(options)}`);
    }
    const now = options.now ?? this.#clock();
    if (typeof now !== 'number' || !Number.isFinite(now)) throw new TypeError(`Expected a finite number for now but received ${describe(now)}`);

    if (permit.length > MAX_PERMIT_LENGTH) return { valid: false, reason: 'malformed' };
    const dot1 = permit.indexOf('.');
    const dot2 = dot1 < 0 ? -1 : permit.indexOf('.', dot1 + 1);
    if (dot2 < 0 || permit.indexOf('.', dot2 + 1) >= 0) return { valid: false, reason: 'malformed' };
    const header = this.#header(permit.slice(0, dot1));
    if (header === null) return { valid: false, reason: 'malformed' };
    if (header.alg !== 'HS256') return { valid: false, reason: 'bad_alg' };
    const key = header.kid === undefined ? undefined : this.#keys.get(header.kid);
    if (key === undefined) return { valid: false, reason: 'unknown_kid' };
    const payloadBytes = decodeSegment(permit.slice(dot1 + 1, dot2));
    const signature = decodeSegment(permit.slice(dot2 + 1));
    if (payloadBytes === null || signature === null) return { valid: false, reason: 'malformed' };
    if (signature.byteLength !== 32 || !key.verify(permit.slice(0, dot2), signature)) {
      return { valid: false, reason: 'bad_signature' };
    }
    // Authenticated from here on: only our own keys could have made these bytes.
    const payload = parseJsonObject(payloadBytes);
    const claims = payload && readClaims(payload);
    if (!claims) return { valid: false, reason: 'malformed' };
    if (now >= claims.exp * 1000 + this.#tolerance) return { valid: false, reason: 'expired' };
    if (claims.nbf !== undefined && now + this.#tolerance < claims.nbf * 1000) return { valid: false, reason: 'not_yet_valid' };
    if (claims.car !== options.carHash) return { valid: false, reason: 'car_mismatch' };
    // consume: false checks a single-use permit without spending it (verify_permit over IPC).
    if (claims.use === 'once' && options.consume !== false) {
      let status: string;
      try {
        // Remembered as long as the permit could still be accepted.
        this.#replay ??= new ReplayDetector({ clock: this.#clock }); // the keyring's clock: expiry is computed from it
        status = this.#replay.check(claims.jti, claims.exp * 1000 + this.#tolerance);
      } catch {
        status = 'error';
      }
      if (status === 'replay') return { valid: false, reason: 'replayed' };
      if (status !== 'fresh') return { valid: false, reason: 'replay_unavailable' };
    }
    return { valid: true, claims: Object.freeze(claims) };
  }
}
