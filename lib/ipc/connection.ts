/**
 * One client connection of the server, and which connection a newcomer may
 * take the slot of when every slot is taken.
 *
 * Slots are what a slow or unauthenticated client would hold to lock others
 * out: when the server is full, a new connection displaces the oldest one
 * that has not authenticated (where tokens are required) or, failing that,
 * the oldest one in the middle of a request line (trickling bytes); never an
 * authenticated or idle-between-requests one. With none to displace, the
 * newcomer is refused.
 */
import type net from 'node:net';
import type { PeerCredentials, Role } from './access';

export interface Connection {
  id: number;
  socket: net.Socket;
  /** Lines to answer, in order; null: a line that was not valid UTF-8. */
  queue: Array<string | null>;
  busy: boolean;
  session: { id: string; expiresAt: number } | null;
  /** Who connected, as the kernel reports it; null where the platform does not say. */
  peer: PeerCredentials | null;
  /** The key of its auth-failure history (AccessControl.clientKey). */
  client: string;
  /** From its peer, raised by a token. */
  role: Role;
  /** Bytes of an unfinished request line held (the line reader's count). */
  pendingBytes: () => number;
  /** Runs when the current unfinished line must be finished by (null: none pending). */
  lineTimer: NodeJS.Timeout | null;
  /** The credential it speaks with: `token:<role>` once a token authenticated it, else AccessControl.identityOf. */
  identity: string;
  /** approval_wait calls whose replies will come later (out of order). */
  waits: number;
  /** Set by a handler while the current line runs: its reply is written when it comes, not in order. */
  detachNext: boolean;
}

/** The connection a newcomer may displace, oldest first (a Set iterates in insertion order); null: none. */
export function displaceable(connections: Iterable<Connection>, tokensRequired: boolean, now: number): Connection | null {
  let midLine: Connection | null = null;
  for (const c of connections) {
    if (tokensRequired && (c.session === null || c.session.expiresAt <= now)) return c;
    if (midLine === null && c.pendingBytes() > 0) midLine = c;
  }
  return midLine;
}
