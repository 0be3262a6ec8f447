/**
 * Who may call what on the socket: two roles, the credentials that grant
 * them, and the failed-auth lockout per client.
 *
 * *agent*: the methods an agent needs to ask (AGENT_METHODS). *operator*:
 * everything else: minting permits, reloading policy, writing the cache,
 * quarantine, audit. A role comes from a token (`auth`) or from the peer's
 * uid, which the kernel reports for a Unix socket (SO_PEERCRED,
 * getpeereid; lib/native's peerCredentials). Without tokens, the server's
 * own uid (and any operator uid configured) is operator and every other uid
 * an agent; where the platform names no peer, the socket's file mode
 * decides: a socket only its owner can open (no group/other bits) can only
 * have been opened by that owner, so the peer is taken as the owner.
 *
 * The lockout is per client: by uid where the peer is known (reconnecting
 * does not reset it), else per connection.
 */
import crypto from 'node:crypto';
import net from 'node:net';
import { coreAddon } from '../native/loader';

export type Role = 'agent' | 'operator';

/** Methods the agent role may call; every other method needs the operator role. */
export const AGENT_METHODS: ReadonlySet<string> = new Set(['gate_check', 'gate_check_batch', 'hash_car', 'verify_permit', 'check_replay', 'ping', 'version', 'auth', 'approval_get', 'approval_wait', 'mcp_tool_actions', 'sandbox_profile']);

/** Agent methods that act on a request the agent made: the method itself refuses another credential's (lib/ipc/methods.ts). */
export const OWN_REQUEST_METHODS: ReadonlySet<string> = new Set(['approval_get', 'approval_wait']);

/** Methods callable before authenticating (when tokens are required). */
export const OPEN_METHODS: ReadonlySet<string> = new Set(['ping', 'version', 'auth']);

export const MAX_FAILURES = 5;
export const FAILURE_WINDOW_MS = 60_000;
export const BLOCK_MS = 30_000;
/** Clients whose failure history is kept; past it, the idle ones are forgotten first. */
const MAX_TRACKED_CLIENTS = 10_000;

export interface PeerCredentials {
  uid: number;
  gid: number;
  pid: number;
}

/** The peer of a connected Unix socket, or null where the addon or the platform gives nothing. */
export function peerOf(socket: net.Socket): PeerCredentials | null {
  const addon = coreAddon();
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (addon === null || typeof fd !== 'number' || fd < 0) return null;
  try {
    return addon.peerCredentials(fd);
  } catch {
    return null;
  }
}

export interface AccessOptions {
  /** Token that authenticates the agent role. */
  agentToken?: Uint8Array;
  /** Token that authenticates the operator role. */
  operatorToken?: Uint8Array;
  /** Peer uids that are operator (besides the server's own when no token is configured). */
  operatorUids?: readonly number[];
  /** The socket's file mode: decides the role of a peer the platform does not name. */
  socketMode: number;
  /** New connections one client (a peer uid) may open per second, sustained; twice that in a burst. */
  connectionsPerSecond?: number;
}

interface FailureRecord {
  failures: number[];
  blockedUntil: number;
}

export type AuthOutcome =
  | { ok: true; role: Role }
  | { ok: false; blockedForMs: number }
  | { ok: false; failures: number; nowBlocked: boolean };

export class AccessControl {
  readonly #agentDigest: Buffer | null;
  readonly #operatorDigest: Buffer | null;
  readonly #operatorUids: ReadonlySet<number>;
  readonly #socketMode: number;
  readonly #ownUid: number | null;
  readonly #clients = new Map<string, FailureRecord>();
  /** Per peer uid: tokens for new connections (milli-tokens, refilled by the ms). */
  readonly #connectBuckets = new Map<string, { milli: number; at: number }>();
  readonly #connectRate: number;

  constructor(options: AccessOptions) {
    this.#agentDigest = options.agentToken === undefined ? null : digest(options.agentToken);
    this.#operatorDigest = options.operatorToken === undefined ? null : digest(options.operatorToken);
    this.#operatorUids = new Set(options.operatorUids ?? []);
    this.#socketMode = options.socketMode;
    this.#ownUid = typeof process.getuid === 'function' ? process.getuid() : null;
    this.#connectRate = options.connectionsPerSecond ?? 100;
  }

  /**
   * True when `client` may open another connection now. Only clients the
   * kernel names (a uid) are limited: without a peer identity there is no
   * client to count against, and the connection slots bound the rest.
   */
  admitConnection(peer: PeerCredentials | null, now: number): boolean {
    if (peer === null) return true;
    const key = `uid:${peer.uid}`;
    const capacity = this.#connectRate * 2 * 1000;
    let b = this.#connectBuckets.get(key);
    if (b === undefined) {
      if (this.#connectBuckets.size >= MAX_TRACKED_CLIENTS) this.#connectBuckets.clear(); // bounded: a full bucket is what a new one is
      b = { milli: capacity, at: now };
      this.#connectBuckets.set(key, b);
    }
    // Exact refill: rate tokens per 1000 ms is rate milli-tokens per ms.
    b.milli = Math.min(capacity, b.milli + Math.max(0, now - b.at) * this.#connectRate);
    b.at = now;
    if (b.milli < 1000) return false;
    b.milli -= 1000;
    return true;
  }

  /** True when clients must authenticate with a token before calling non-open methods. */
  get tokensRequired(): boolean {
    return this.#agentDigest !== null || this.#operatorDigest !== null;
  }

  /** The role a connection has from its peer alone (before any token). */
  roleOfPeer(peer: PeerCredentials | null): Role {
    if (peer !== null) {
      if (this.#operatorUids.has(peer.uid)) return 'operator';
      return !this.tokensRequired && peer.uid === this.#ownUid ? 'operator' : 'agent';
    }
    // No peer identity: only a socket nobody else can open makes the peer the owner.
    return !this.tokensRequired && (this.#socketMode & 0o077) === 0 ? 'operator' : 'agent';
  }

  /**
   * The credential a connection speaks with before any token (an approval's
   * requester or approver): the peer's uid; where the platform names no peer,
   * a socket only its owner can open makes the peer the owner (as for the
   * role), else the connection is all there is.
   */
  identityOf(peer: PeerCredentials | null, connectionId: number): string {
    if (peer !== null) return `uid:${peer.uid}`;
    if ((this.#socketMode & 0o077) === 0 && this.#ownUid !== null) return `uid:${this.#ownUid}`;
    return `connection:${connectionId}`;
  }

  /** The key the lockout is kept under: the peer's uid where known, else the connection. */
  clientKey(peer: PeerCredentials | null, connectionId: number): string {
    return peer !== null ? `uid:${peer.uid}` : `connection:${connectionId}`;
  }

  /**
   * Checks a token for `client`. Constant-time over equal-length digests: a
   * short or odd token is only wrong, never a crash. While the client is
   * blocked, no token is even compared.
   */
  authenticate(token: string, client: string, now: number): AuthOutcome {
    const record = this.#clients.get(client);
    if (record !== undefined && record.blockedUntil > now) return { ok: false, blockedForMs: record.blockedUntil - now };
    const given = crypto.createHash('sha256').update(token, 'utf8').digest();
    // Both compared every time: which role a token matched leaks nothing through timing.
    const isOperator = this.#operatorDigest !== null && crypto.timingSafeEqual(given, this.#operatorDigest);
    const isAgent = this.#agentDigest !== null && crypto.timingSafeEqual(given, this.#agentDigest);
    if (isOperator || isAgent) return { ok: true, role: isOperator ? 'operator' : 'agent' };
    const r = record ?? this.#track(client);
    r.failures = r.failures.filter((t) => now - t < FAILURE_WINDOW_MS);
    r.failures.push(now);
    const failures = r.failures.length;
    const nowBlocked = failures >= MAX_FAILURES;
    if (nowBlocked) {
      r.blockedUntil = now + BLOCK_MS;
      r.failures = [];
    }
    return { ok: false, failures, nowBlocked };
  }

  /** Drops the history of a per-connection client when its connection ends (uid clients keep theirs). */
  forgetConnection(client: string): void {
    if (client.startsWith('connection:')) this.#clients.delete(client);
  }

  #track(client: string): FailureRecord {
    if (this.#clients.size >= MAX_TRACKED_CLIENTS) {
      // Forget the oldest entry (Map keeps insertion order): bounded memory.
      const oldest = this.#clients.keys().next().value;
      if (oldest !== undefined) this.#clients.delete(oldest);
    }
    const r: FailureRecord = { failures: [], blockedUntil: 0 };
    this.#clients.set(client, r);
    return r;
  }
}

function digest(token: Uint8Array): Buffer {
  return crypto.createHash('sha256').update(token).digest();
}
