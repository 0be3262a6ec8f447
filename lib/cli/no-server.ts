/**
 * What a socket command says when it cannot reach a server: which socket it
 * tried and how to start one or name the right one, instead of a bare
 * `connect ENOENT`. Shared by every command that talks to `serve`.
 */

/** The one-line explanation of a failed connect to `socket`; `err` is what GuardClient.connect threw. */
export function connectFailure(socket: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (code === 'ENOENT' || code === 'ECONNREFUSED') {
    return `no server at ${socket}: start one with "guardkernel serve --socket ${socket}" (npm start in a clone), or pass --socket PATH naming the running server's socket`;
  }
  if (code === 'EACCES' || code === 'EPERM') return `cannot connect to ${socket}: permission denied (run as the server's user, or one it lets in)`;
  if (code === 'ENOTSOCK') return `${socket} is not a socket: pass --socket PATH naming the running server's socket`;
  return `cannot connect to ${socket}: ${err instanceof Error ? err.message : String(err)}`;
}

/** True for the errors connectFailure explains (the connect itself failed, not a call). */
export function isConnectError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'EACCES' || code === 'EPERM' || code === 'ENOTSOCK';
}
