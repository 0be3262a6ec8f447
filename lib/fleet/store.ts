/**
 * FleetStore: the Redis connection that the fleet-backed ReplayDetector,
 * VelocityGuard, Quarantine and Gate share, so that many processes on many
 * hosts keep one replay set, one rate budget, one quarantine list and one
 * policy version.
 *
 * Two connections of its own: commands (offline queue off, so a request made
 * while Redis is away fails at once and the caller fails closed instead of
 * waiting) and a subscriber for the events channel. ioredis reconnects both
 * by itself; each time the subscriber is ready again the store "resyncs"
 * (listeners re-read what they mirror, since events sent meanwhile are lost).
 * Every failure is counted, and the first failure after a success is a
 * `store_unavailable` security event (its recovery a `store_recovered` one),
 * so an outage is visible in `metrics`, `doctor` and the audit log.
 */
import { EventEmitter } from 'node:events';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Redis, RedisOptions } from 'ioredis';
import type { AuditLog } from '../audit/log';
import { ErrorCodes, GuardError, describe } from '../errors';
import { sha256Hex } from '../crypto/hash';
import { APPROVAL_CREATE_LUA, APPROVAL_REPLACE_LUA, GATE_STEPS_LUA, POLICY_PUBLISH_LUA, QUARANTINE_SET_LUA } from './scripts';

/** Where a component keeps its shared state. */
export type StoreOption = 'memory' | FleetStore | RedisStoreSpec;

export interface RedisStoreSpec {
  /** A `redis://` URL, or an ioredis client (duplicated: its own settings and connection stay untouched). */
  redis: string | Redis;
  /** Namespace for every key and the events channel. Default `guardkernel:`. */
  prefix?: string;
  /** A command that takes longer fails (and the check fails closed). Default 1000 ms. */
  commandTimeoutMs?: number;
  /**
   * Shared by every process of the fleet (at least 32 bytes): policy
   * documents and quarantine records in Redis are HMAC-signed with it, and
   * records that do not verify are refused, so write access to Redis alone
   * cannot hand out a permissive policy or release a quarantined agent.
   * Without it, policy documents from Redis are never adopted (a process
   * that hears of a newer version denies until it loads one itself).
   */
  signingKey?: Uint8Array | string;
}

/** What a fleet-backed component does when Redis cannot answer. */
export type OnStoreError = 'deny' | 'local';

export interface FleetStoreStatus {
  kind: 'redis';
  prefix: string;
  /** ioredis connection state of the command connection (`ready` when usable), `closed` after close(). */
  connection: string;
  subscribed: boolean;
  /** True from a failed command until the next one succeeds. */
  degraded: boolean;
  commands: number;
  errors: number;
  /** Answers given by the in-process stores because Redis could not (onStoreError 'local'). */
  fallbacks: number;
  reconnects: number;
  lastError: string | null;
  lastErrorAt: number | null;
  /** Store and fleet events (unavailable, recovered, refused, remote quarantine changes and policy loads) the audit log could not take, e.g. because it was closed first. */
  auditFailures: number;
}

/** A message on the events channel. `o` is the sender's origin id. */
export interface FleetEvent {
  o: string;
  t: 'quarantine' | 'policy' | 'cache' | 'approval';
  [field: string]: unknown;
}

interface ScriptClient extends Redis {
  gkGateSteps(steps: string): Promise<number[]>;
  gkQuarantineSet(key: string, agent: string, record: string, channel: string, message: string): Promise<string | null>;
  gkPolicyPublish(key: string, version: number, doc: string, channel: string, message: string, mac: string): Promise<number>;
  gkApprovalCreate(carKey: string, recordKey: string, indexKey: string, expiryKey: string, expected: string, id: string, record: string, ttlMs: number, requestedAt: number, expiryScore: number, now: number, channel: string, message: string): Promise<number>;
  gkApprovalReplace(recordKey: string, carKey: string, indexKey: string, expiryKey: string, expected: string, record: string, ttlMs: number, id: string, requestedAt: number, expiryScore: number, channel: string, message: string): Promise<number>;
}

const DEFAULT_PREFIX = 'guardkernel:';

/** ioredis, loaded on first use: processes without a Redis store never pay for loading it. */
function ioredis(): typeof import('ioredis') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('ioredis') as typeof import('ioredis');
}

function checkPrefix(prefix: unknown): string {
  if (typeof prefix !== 'string' || prefix.length === 0 || prefix.length > 128) {
    throw new TypeError(`Expected a string of 1 to 128 characters for prefix but received ${describe(prefix)}`);
  }
  return prefix;
}

/** Is `value` a usable store option? Returns the FleetStore to use (created when given a spec), or null for memory. */
export function resolveStore(value: unknown, what: string): { store: FleetStore | null; owned: boolean } {
  if (value === undefined || value === 'memory') return { store: null, owned: false };
  if (value instanceof FleetStore) return { store: value, owned: false };
  if (typeof value === 'object' && value !== null && 'redis' in value) {
    return { store: FleetStore.redis(value as RedisStoreSpec), owned: true };
  }
  throw new TypeError(`Expected 'memory', a FleetStore or { redis: url | client, prefix? } for ${what} store but received ${describe(value)}`);
}

export function checkOnStoreError(value: unknown): OnStoreError {
  if (value === undefined) return 'deny';
  if (value !== 'deny' && value !== 'local') throw new TypeError(`Expected 'deny' or 'local' for onStoreError but received ${describe(value)}`);
  return value;
}

/** Short fixed-length key part for user text (nonces, agent ids): bounds key size and keeps it binary-clean. */
export function keyDigest(text: string): string {
  return sha256Hex(text).slice(0, 32); // 128 bits; the native SHA-256 where the addon is loaded
}

export class FleetStore extends EventEmitter {
  readonly prefix: string;
  /** Random id of this store: events it sent itself are ignored when they come back. */
  readonly originId = randomBytes(8).toString('hex');
  readonly channel: string;
  readonly #cmd: ScriptClient;
  readonly #sub: Redis;
  readonly #signingKey: Buffer | null;
  #audit: AuditLog | undefined;
  #closed = false;
  #degraded = false;
  #subscribed = false;
  #commands = 0;
  #errors = 0;
  #fallbacks = 0;
  #reconnects = 0;
  #auditFailures = 0;
  #lastError: string | null = null;
  #lastErrorAt: number | null = null;

  /** A store on a Redis URL or client. */
  static redis(spec: RedisStoreSpec | string): FleetStore {
    return new FleetStore(typeof spec === 'string' ? { redis: spec } : spec);
  }

  constructor(spec: RedisStoreSpec) {
    super();
    this.setMaxListeners(0); // every gate and component on this store listens; they detach on close
    if (typeof spec !== 'object' || spec === null) throw new TypeError(`Expected { redis: url | client } but received ${describe(spec)}`);
    this.prefix = checkPrefix(spec.prefix ?? DEFAULT_PREFIX);
    const timeout = spec.commandTimeoutMs ?? 1000;
    if (!Number.isSafeInteger(timeout) || timeout < 1 || timeout > 60_000) {
      throw new RangeError(`Expected an integer in [1, 60000] for commandTimeoutMs but received ${describe(timeout)}`);
    }
    this.channel = `${this.prefix}events`;
    if (spec.signingKey === undefined) {
      this.#signingKey = null;
    } else {
      const key = typeof spec.signingKey === 'string' ? Buffer.from(spec.signingKey, 'utf8') : spec.signingKey instanceof Uint8Array ? Buffer.from(spec.signingKey) : null;
      if (key === null || key.length < 32) throw new RangeError(`Expected a signingKey of at least 32 bytes but received ${describe(spec.signingKey)}`);
      this.#signingKey = key;
    }
    const options: RedisOptions = {
      enableOfflineQueue: false, // fail now, never replay a stale check later
      maxRetriesPerRequest: 0,
      commandTimeout: timeout,
      retryStrategy: (times) => Math.min(50 * times, 1000),
      lazyConnect: false,
    };
    const { Redis } = ioredis();
    let cmd: Redis;
    if (typeof spec.redis === 'string') {
      if (!/^rediss?:\/\//.test(spec.redis)) throw new TypeError(`Expected a redis:// or rediss:// URL but received ${describe(spec.redis)}`);
      cmd = new Redis(spec.redis, options);
    } else if (spec.redis instanceof Redis) {
      cmd = spec.redis.duplicate(options);
    } else {
      throw new TypeError(`Expected a redis:// URL or an ioredis client for redis but received ${describe(spec.redis)}`);
    }
    cmd.defineCommand('gkGateSteps', { numberOfKeys: 0, lua: GATE_STEPS_LUA });
    cmd.defineCommand('gkQuarantineSet', { numberOfKeys: 1, lua: QUARANTINE_SET_LUA });
    cmd.defineCommand('gkPolicyPublish', { numberOfKeys: 1, lua: POLICY_PUBLISH_LUA });
    cmd.defineCommand('gkApprovalCreate', { numberOfKeys: 4, lua: APPROVAL_CREATE_LUA });
    cmd.defineCommand('gkApprovalReplace', { numberOfKeys: 4, lua: APPROVAL_REPLACE_LUA });
    this.#cmd = cmd as ScriptClient;
    // The subscriber may queue its SUBSCRIBE until connected; it sends no checks.
    // It subscribes itself on every 'ready' (below, failures caught): ioredis's
    // own resubscribe on reconnect leaves its promise unhandled, and a
    // connection lost again mid-SUBSCRIBE then crashed a run with an unhandled
    // MaxRetriesPerRequestError.
    this.#sub = cmd.duplicate({ ...options, enableOfflineQueue: true, commandTimeout: undefined, autoResubscribe: false });
    cmd.on('error', (err: Error) => this.#noteError(err));
    cmd.on('reconnecting', () => this.#reconnects++);
    this.#sub.on('error', () => {}); // counted through the command connection; must not be unhandled
    this.#sub.on('ready', () => {
      this.#subscribed = false;
      this.#sub.subscribe(this.channel).then(
        () => {
          this.#subscribed = true;
          this.emit('resync');
        },
        () => {},
      );
    });
    this.#sub.on('close', () => {
      this.#subscribed = false;
    });
    this.#sub.on('messageBuffer', (channel: Buffer, message: Buffer) => this.#dispatch(channel, message));
  }

  /** True when records are signed and verified (a signingKey was given). */
  get signed(): boolean {
    return this.#signingKey !== null;
  }

  /** HMAC-SHA256 (hex) of `text` under the signing key, bound to `kind`; null without a key. */
  mac(kind: string, text: string): string | null {
    if (this.#signingKey === null) return null;
    return createHmac('sha256', this.#signingKey).update(`guardkernel fleet ${kind}\u0000`).update(text).digest('hex');
  }

  /** Does `mac` sign `text`? Without a signing key everything passes (Redis is then trusted). */
  verifyMac(kind: string, text: string, mac: unknown): boolean {
    const want = this.mac(kind, text);
    if (want === null) return true;
    if (typeof mac !== 'string' || mac.length !== want.length) return false;
    return timingSafeEqual(Buffer.from(mac), Buffer.from(want));
  }

  /** `text` wrapped with its MAC, as stored in Redis: `{"r": text, "m": mac}`. */
  seal(kind: string, text: string): string {
    return JSON.stringify({ r: text, m: this.mac(kind, text) });
  }

  /** The text of a sealed value, or null when it is malformed or does not verify. */
  open(kind: string, sealed: string): string | null {
    try {
      const v = JSON.parse(sealed) as { r?: unknown; m?: unknown };
      if (typeof v !== 'object' || v === null || typeof v.r !== 'string') return null;
      return this.verifyMac(kind, v.r, v.m) ? v.r : null;
    } catch {
      return null;
    }
  }

  /** Key `prefix + kind + ':' + id`. */
  key(kind: string, id: string): string {
    return `${this.prefix}${kind}:${id}`;
  }

  /** Security events about the connection go here (the gate attaches its log). */
  attachAudit(audit: AuditLog | undefined): void {
    if (audit !== undefined) this.#audit ??= audit;
  }

  /** True while events are being received: a mirror or cache is trustworthy only then. */
  get subscribed(): boolean {
    return this.#subscribed;
  }

  get connected(): boolean {
    return this.#cmd.status === 'ready';
  }

  /** Resolves once both connections are up and subscribed; rejects after `timeoutMs`. */
  async ready(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(this.connected && this.#subscribed)) {
      if (this.#closed) throw new GuardError(ErrorCodes.CLOSED, 'FleetStore has been closed');
      if (Date.now() >= deadline) throw new GuardError(ErrorCodes.STORE_UNAVAILABLE, `Redis not ready after ${timeoutMs} ms (${this.#lastError ?? this.#cmd.status})`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /**
   * Runs `op` on the command connection. Any failure becomes a GuardError
   * ERR_STORE_UNAVAILABLE (the caller fails closed or falls back).
   * Used by the fleet components.
   * @internal
   */
  async run<T>(op: (redis: ScriptClient) => Promise<T>): Promise<T> {
    if (this.#closed) throw new GuardError(ErrorCodes.CLOSED, 'FleetStore has been closed');
    this.#commands++;
    let result: T;
    try {
      result = await op(this.#cmd);
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      this.#noteError(e);
      throw new GuardError(ErrorCodes.STORE_UNAVAILABLE, `Redis store unavailable: ${e.message}`, { cause: e });
    }
    if (this.#degraded) {
      this.#degraded = false;
      this.#record('store_recovered', 'info', { store: 'redis', prefix: this.prefix });
      this.emit('recovered');
    }
    return result;
  }

  /** Records that something read from Redis was refused (it did not verify): a security event. */
  refuse(what: string): void {
    this.#record('input_validation_failure', 'error', { source: 'fleet_store', prefix: this.prefix, refused: what });
    this.emit('refused', what);
  }

  /** Counts an answer given locally because Redis could not (onStoreError 'local'). */
  noteFallback(): void {
    this.#fallbacks++;
  }

  /**
   * Sends an event to every other process on this prefix.
   * Used by the fleet components.
   * @internal
   */
  publish(event: Omit<FleetEvent, 'o'>): Promise<number> {
    const message = JSON.stringify({ ...event, o: this.originId });
    return this.run((r) => r.publish(this.channel, message));
  }

  /**
   * Builds the message for a script that publishes by itself.
   * Used by the fleet scripts.
   * @internal
   */
  message(event: Omit<FleetEvent, 'o'>): string {
    return JSON.stringify({ ...event, o: this.originId });
  }

  #dispatch(channel: Buffer, message: Buffer): void {
    if (channel.toString() !== this.channel) return;
    let event: FleetEvent;
    try {
      event = JSON.parse(message.toString('utf8')) as FleetEvent;
    } catch {
      return; // not ours: ignore, never crash on what another writer put on the channel
    }
    if (typeof event !== 'object' || event === null || event.o === this.originId || typeof event.t !== 'string') return;
    this.emit(`event:${event.t}`, event);
  }

  /**
   * A store event for the audit log. These arrive from Redis connection
   * events too, where a throw would be an uncaught exception that ends the
   * process: a log that cannot take the record (closed, or required and
   * failing) is counted in `status().auditFailures` instead.
   */
  #record(type: string, severity: 'info' | 'error', fields: Record<string, unknown>): void {
    try {
      this.#audit?.append(type, severity, fields);
    } catch {
      this.#auditFailures++;
    }
  }

  /**
   * Counts a fleet event (a remote quarantine change or policy
   * @internal
   * load) that the audit log could not take: those arrive from Redis
   * messages, where a throw would end the process.
   */
  noteAuditFailure(): void {
    this.#auditFailures++;
  }

  #noteError(err: Error): void {
    this.#errors++;
    this.#lastError = err.message;
    this.#lastErrorAt = Date.now();
    if (!this.#degraded && !this.#closed) {
      this.#degraded = true;
      this.#record('store_unavailable', 'error', { store: 'redis', prefix: this.prefix, error: err.message });
      this.emit('degraded', err);
    }
  }

  status(): FleetStoreStatus {
    return {
      kind: 'redis',
      prefix: this.prefix,
      connection: this.#closed ? 'closed' : this.#cmd.status,
      subscribed: this.#subscribed,
      degraded: this.#degraded,
      commands: this.#commands,
      errors: this.#errors,
      fallbacks: this.#fallbacks,
      reconnects: this.#reconnects,
      lastError: this.#lastError,
      lastErrorAt: this.#lastErrorAt,
      auditFailures: this.#auditFailures,
    };
  }

  /** Quits both connections now. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#subscribed = false;
    await Promise.allSettled([this.#cmd.quit(), this.#sub.quit()]);
    this.#cmd.disconnect();
    this.#sub.disconnect();
  }

  get closed(): boolean {
    return this.#closed;
  }
}
