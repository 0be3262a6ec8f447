/**
 * ApprovalWebhook: announces approval events to one HTTP(S) endpoint.
 *
 * Each event is POSTed as JSON, signed Stripe-style
 * (`guardkernel-signature: t=<unix s>,v1=<hex HMAC-SHA256(secret, t.body)>`),
 * and retried with jittered exponential backoff. The gate must never wait on
 * a receiver: `send` only queues, deliveries run in the background with a
 * bounded number in flight and a bounded queue, and every failure is counted
 * and audited instead of thrown. Receivers check requests with
 * `verifyWebhookSignature`.
 */
import crypto from 'node:crypto';
import type { AuditLog } from '../../audit/log';
import { describe } from '../../errors';
import type { ApprovalEvent } from './types';

/** Deliveries in flight at once: one slow receiver holds at most this many sockets. */
const CONCURRENCY = 4;
/** A receiver parses no longer header than this (bounded work per request). */
const MAX_HEADER_CHARS = 1024;
/** setTimeout fires at once past 2^31-1 ms; retries wait at most an hour anyway. */
const MAX_BACKOFF_MS = 3_600_000;
const MAX_ERROR_CHARS = 200;

export interface ApprovalWebhookOptions {
  /** http: or https: endpoint. Credentials in it are sent as Basic auth; they never reach the audit log. */
  url: string;
  /** HMAC key, at least 32 bytes (a string is taken as UTF-8). */
  secret: Uint8Array | string;
  /** Where failed and dropped deliveries are recorded (`webhook_failed`, `webhook_dropped`). */
  audit?: AuditLog;
  /** Tries per delivery, the first included. Default 5. */
  attempts?: number;
  /** Delay before the first retry (ms), doubled for each further one, ±20% jitter. Default 500. */
  backoffMs?: number;
  /** Limit for one attempt (ms). Default 5000. */
  timeoutMs?: number;
  /** Deliveries waiting (queued or for a retry) beyond which new events are dropped. Default 1000. */
  maxQueue?: number;
  /** ms since the epoch for `created_at` and signature timestamps. Default `Date.now`. */
  clock?: () => number;
}

/** Counts since construction; `queued` (waiting for a slot or a retry) and `inFlight` are now. */
export interface ApprovalWebhookStats { sent: number; failed: number; retried: number; dropped: number; queued: number; inFlight: number; auditFailures: number }

export type WebhookVerification = { ok: true; timestamp: number } | { ok: false; reason: 'missing' | 'malformed' | 'stale' | 'mismatch' };

/** One event's delivery: the body (and its id) stay the same across attempts; the signature does not. */
interface Delivery { id: string; event: string; approvalId: string | null; body: string; attempts: number; error: string; timer: NodeJS.Timeout | null; abort: AbortController | null }

function secretBytes(secret: unknown): Buffer {
  // A copy: the caller may reuse or wipe its buffer.
  const bytes = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret instanceof Uint8Array ? Buffer.from(secret) : null;
  if (bytes === null) throw new TypeError(`Expected a string or Uint8Array for secret but received ${describe(secret)}`);
  if (bytes.length < 32) throw new RangeError(`Expected at least 32 bytes for secret but received ${bytes.length} bytes`);
  return bytes;
}

function integer(value: unknown, name: string, min: number, max: number): number {
  if (!Number.isSafeInteger(value) || (value as number) < min || (value as number) > max) {
    throw new RangeError(`Expected an integer from ${min} to ${max} for ${name} but received ${describe(value)}`);
  }
  return value as number;
}

function mac(secret: Buffer, t: number, body: string | Buffer): Buffer {
  return crypto.createHmac('sha256', secret).update(`${t}.`).update(body).digest();
}

/** The `guardkernel-signature` header value for `body` sent at `timestampSec`. */
export function signWebhook(secret: Uint8Array | string, body: string, timestampSec: number): string {
  const key = secretBytes(secret);
  if (typeof body !== 'string') throw new TypeError(`Expected a string for body but received ${describe(body)}`);
  const t = integer(timestampSec, 'timestampSec', 0, Number.MAX_SAFE_INTEGER);
  return `t=${t},v1=${mac(key, t, body).toString('hex')}`;
}

/**
 * What a receiver runs on each request: a strict parse of the header (bounded
 * length, exactly one `t=`, one or more `v1=`, other schemes ignored), a
 * constant-time comparison, then the timestamp within `toleranceSec` of `now`
 * either way (a replayed delivery is `stale`). Pass the raw body bytes.
 */
export function verifyWebhookSignature(
  secret: Uint8Array | string,
  header: string | undefined,
  body: string | Buffer,
  options: { toleranceSec?: number; now?: number } = {},
): WebhookVerification {
  const key = secretBytes(secret);
  if (typeof body !== 'string' && !Buffer.isBuffer(body)) throw new TypeError(`Expected a string or Buffer for body but received ${describe(body)}`);
  const toleranceSec = integer(options.toleranceSec ?? 300, 'toleranceSec', 0, 86_400);
  const now = options.now ?? Date.now();
  if (!Number.isFinite(now)) throw new RangeError(`Expected a number of ms for now but received ${describe(now)}`);
  if (header === undefined || header === null || header === '') return { ok: false, reason: 'missing' };
  if (typeof header !== 'string' || header.length > MAX_HEADER_CHARS) return { ok: false, reason: 'malformed' };
  let t: number | null = null;
  const sigs: Buffer[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) return { ok: false, reason: 'malformed' };
    const k = part.slice(0, eq);
    const v = part.slice(eq + 1);
    if (k === 't') {
      if (t !== null || !/^[0-9]{1,12}$/.test(v)) return { ok: false, reason: 'malformed' };
      t = Number(v);
    } else if (k === 'v1') {
      if (!/^[0-9a-f]{64}$/.test(v)) return { ok: false, reason: 'malformed' };
      sigs.push(Buffer.from(v, 'hex'));
    } else if (!/^[a-z][a-z0-9]{0,15}$/.test(k) || !/^[!-~]*$/.test(v)) {
      return { ok: false, reason: 'malformed' };
    }
  }
  if (t === null || sigs.length === 0) return { ok: false, reason: 'malformed' };
  const expected = mac(key, t, body);
  let match = false;
  for (const sig of sigs) match = crypto.timingSafeEqual(sig, expected) || match; // both 32 bytes
  if (!match) return { ok: false, reason: 'mismatch' };
  if (Math.abs(now / 1000 - t) > toleranceSec) return { ok: false, reason: 'stale' };
  return { ok: true, timestamp: t };
}

function errorText(err: unknown, signal: AbortSignal, timeoutMs: number): string {
  if (signal.aborted) return signal.reason === 'closed' ? 'closed' : `timeout after ${timeoutMs} ms`;
  const cause = (err as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  const text = typeof cause?.code === 'string' ? cause.code : typeof cause?.message === 'string' ? cause.message : String((err as Error)?.message ?? err);
  return text.slice(0, MAX_ERROR_CHARS);
}

export class ApprovalWebhook {
  readonly #url: string;
  /** origin + pathname: what the audit log names (never query or credentials). */
  readonly #auditUrl: string;
  readonly #authorization: string | null;
  readonly #secret: Buffer;
  readonly #audit: AuditLog | null;
  readonly #attempts: number;
  readonly #backoffMs: number;
  readonly #timeoutMs: number;
  readonly #maxQueue: number;
  readonly #clock: () => number;
  readonly #ready: Delivery[] = [];
  readonly #waiting = new Set<Delivery>();
  readonly #active = new Set<Delivery>();
  readonly #counts = { sent: 0, failed: 0, retried: 0, dropped: 0, auditFailures: 0 };
  #closed = false;
  #closing: Promise<void> | null = null;
  #onIdle: (() => void) | null = null;

  constructor(options: ApprovalWebhookOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError(`Expected options for ApprovalWebhook but received ${describe(options)}`);
    const { url, secret, audit, attempts = 5, backoffMs = 500, timeoutMs = 5000, maxQueue = 1000, clock = Date.now } = options;
    let parsed: URL;
    try {
      if (typeof url !== 'string') throw new TypeError();
      parsed = new URL(url);
    } catch {
      throw new TypeError(`Expected an http: or https: URL for url but received ${describe(url)}`); // the URL itself may hold secrets
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new TypeError(`Expected an http: or https: URL for url but received a ${parsed.protocol} URL`);
    this.#secret = secretBytes(secret);
    if (audit !== undefined && (typeof audit !== 'object' || audit === null || typeof audit.append !== 'function')) {
      throw new TypeError(`Expected an AuditLog for audit but received ${describe(audit)}`);
    }
    this.#attempts = integer(attempts, 'attempts', 1, 20);
    this.#backoffMs = integer(backoffMs, 'backoffMs', 1, 600_000);
    this.#timeoutMs = integer(timeoutMs, 'timeoutMs', 1, 600_000);
    this.#maxQueue = integer(maxQueue, 'maxQueue', 1, 1_000_000);
    if (typeof clock !== 'function') throw new TypeError(`Expected a function for clock but received ${describe(clock)}`);
    // fetch refuses URLs with credentials: they travel as a Basic header instead.
    this.#authorization = null;
    if (parsed.username !== '' || parsed.password !== '') {
      let userinfo: string;
      try {
        userinfo = `${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`;
      } catch {
        throw new TypeError('Expected percent-encoded UTF-8 credentials for url but received malformed ones');
      }
      this.#authorization = `Basic ${Buffer.from(userinfo, 'utf8').toString('base64')}`;
      parsed.username = '';
      parsed.password = '';
    }
    parsed.hash = '';
    this.#url = parsed.href;
    this.#auditUrl = parsed.origin + parsed.pathname;
    this.#audit = audit ?? null;
    this.#clock = clock;
  }

  /** Queues `event` for delivery and returns at once; never throws (a refused event is counted in `dropped` and audited). */
  send(event: ApprovalEvent): void {
    let type = 'unknown';
    let approvalId: string | null = null;
    try {
      type = typeof event?.type === 'string' ? event.type.slice(0, 64) : type;
      approvalId = typeof event?.request?.id === 'string' ? event.request.id.slice(0, 64) : null;
      if (this.#closed) return this.#drop(type, approvalId, 'closed');
      if (typeof event?.type !== 'string' || typeof event.request !== 'object' || event.request === null) return this.#drop(type, approvalId, 'invalid_event');
      if (this.#ready.length + this.#waiting.size >= this.#maxQueue) return this.#drop(type, approvalId, 'queue_full');
      const id = `whd_${crypto.randomBytes(16).toString('base64url')}`;
      const body = JSON.stringify({ type: `approval.${type}`, id, created_at: this.#clock(), request: event.request });
      this.#ready.push({ id, event: type, approvalId, body, attempts: 0, error: '', timer: null, abort: null });
      this.#pump();
    } catch {
      this.#drop(type, approvalId, 'invalid_event'); // a request JSON cannot carry, or a throwing clock
    }
  }

  stats(): ApprovalWebhookStats {
    return { ...this.#counts, queued: this.#ready.length + this.#waiting.size, inFlight: this.#active.size };
  }

  /**
   * Stops taking events, lets deliveries in flight (and those queued) finish
   * for up to `timeoutMs`, then aborts what is left. Retries not yet due are
   * cancelled at once. Everything not delivered counts as failed.
   */
  close(timeoutMs = 2000): Promise<void> {
    if (this.#closing !== null) return this.#closing;
    integer(timeoutMs, 'timeoutMs', 0, 600_000);
    this.#closed = true;
    for (const d of this.#waiting) {
      if (d.timer !== null) clearTimeout(d.timer);
      this.#fail(d, `${d.error}; retry cancelled at close`);
    }
    this.#waiting.clear();
    this.#closing = new Promise<void>((resolve) => {
      const grace = setTimeout(() => {
        for (const d of this.#ready.splice(0)) this.#fail(d, 'closed before delivery');
        for (const d of this.#active) d.abort?.abort('closed'); // each settles as failed, then idle resolves
        this.#checkIdle();
      }, timeoutMs);
      grace.unref();
      this.#onIdle = () => {
        this.#onIdle = null;
        clearTimeout(grace);
        resolve();
      };
      this.#checkIdle();
    });
    return this.#closing;
  }

  #pump(): void {
    while (this.#active.size < CONCURRENCY && this.#ready.length > 0) this.#start(this.#ready.shift()!);
  }

  #start(d: Delivery): void {
    d.attempts++;
    const abort = new AbortController();
    d.abort = abort;
    this.#active.add(d);
    const timer = setTimeout(() => abort.abort('timeout'), this.#timeoutMs);
    timer.unref();
    const t = Math.floor(this.#clock() / 1000); // a retry is signed afresh
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'guardkernel-webhook',
      'guardkernel-delivery': d.id,
      'guardkernel-signature': `t=${t},v1=${mac(this.#secret, t, d.body).toString('hex')}`,
    };
    if (this.#authorization !== null) headers.authorization = this.#authorization;
    // redirect 'manual': a signed body never follows a redirect elsewhere (a 3xx is a failed attempt).
    Promise.resolve()
      .then(() => fetch(this.#url, { method: 'POST', headers, body: d.body, signal: abort.signal, redirect: 'manual' }))
      .then(
        (res) => {
          res.body?.cancel().catch(() => {}); // the answer's body is not read
          return res.status >= 200 && res.status < 300 ? null : `HTTP ${res.status}`;
        },
        (err: unknown) => errorText(err, abort.signal, this.#timeoutMs),
      )
      .then((error) => {
        clearTimeout(timer);
        this.#settle(d, error);
      })
      .catch(() => {}); // #settle does not throw; no rejection is ever left unhandled
  }

  #settle(d: Delivery, error: string | null): void {
    this.#active.delete(d);
    d.abort = null;
    if (error === null) this.#counts.sent++;
    else if (d.attempts < this.#attempts && !this.#closed) this.#retry(d, error);
    else this.#fail(d, error);
    this.#pump();
    this.#checkIdle();
  }

  #retry(d: Delivery, error: string): void {
    this.#counts.retried++;
    d.error = error;
    const delay = Math.round(Math.min(this.#backoffMs * 2 ** (d.attempts - 1), MAX_BACKOFF_MS) * (0.8 + 0.4 * Math.random()));
    d.timer = setTimeout(() => {
      d.timer = null;
      this.#waiting.delete(d);
      this.#ready.push(d);
      this.#pump();
    }, delay);
    d.timer.unref(); // a pending retry never keeps the process alive
    this.#waiting.add(d);
  }

  #fail(d: Delivery, error: string): void {
    this.#counts.failed++;
    this.#record('webhook_failed', { url: this.#auditUrl, event: d.event, approval_id: d.approvalId, attempts: d.attempts, error: error.slice(0, MAX_ERROR_CHARS) });
  }

  #drop(event: string, approvalId: string | null, reason: string): void {
    this.#counts.dropped++;
    this.#record('webhook_dropped', { url: this.#auditUrl, event, approval_id: approvalId, reason });
  }

  #record(type: string, fields: Record<string, unknown>): void {
    if (this.#audit === null) return;
    try {
      this.#audit.append(type, 'warning', fields);
    } catch {
      this.#counts.auditFailures++; // a closed or failing log: counted, never thrown out of a timer
    }
  }

  #checkIdle(): void {
    if (this.#closed && this.#active.size === 0 && this.#ready.length === 0 && this.#onIdle !== null) this.#onIdle();
  }
}
