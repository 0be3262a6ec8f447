/**
 * What an agent-side caller of the gate needs, whether the gate is in this
 * process or a running `guardkernel serve` behind a GuardClient: the MCP
 * proxy (lib/mcp/decider.ts) and the SDK adapters (lib/adapters/guard.ts)
 * both build on these, so they re-authenticate and wait alike.
 */
import { ErrorCodes, GuardError } from '../errors';
import type { Gate } from '../gate/gate';
import type { ApprovalWaitResult } from '../gate/approvals/types';
import { RpcCallError, type GuardClient } from './client';

/** True for the server's refusal of a call that needs a session (a reconnect loses it). */
export function isSessionLost(err: unknown): boolean {
  return err instanceof RpcCallError && err.code === ErrorCodes.UNAUTHORIZED;
}

/**
 * Runs calls through `client` with the agent's session: authenticated with
 * `authToken` (when there is one) before the first call, and again, once,
 * when a call is refused because a reconnect lost the session.
 */
export function sessionCalls(client: GuardClient, authToken: string | undefined): <T>(call: () => Promise<T>) => Promise<T> {
  let authed = false;
  const ensureAuth = async (): Promise<void> => {
    if (authToken !== undefined && !authed) {
      await client.auth(authToken);
      authed = true;
    }
  };
  return async <T>(call: () => Promise<T>): Promise<T> => {
    await ensureAuth();
    try {
      return await call();
    } catch (err) {
      if (authToken === undefined || !isSessionLost(err)) throw err;
      authed = false;
      await ensureAuth();
      return call();
    }
  };
}

/** One in-process approval wait is capped at an hour; longer waits are chained. */
const MAX_WAIT_SLICE_MS = 3_600_000;

/** Waits in `gate`'s approval book until request `id` is decided, or `timeoutMs` passes (then `timed_out: true`). */
export async function waitInGate(gate: Gate, id: string, timeoutMs: number, signal?: AbortSignal): Promise<ApprovalWaitResult> {
  const book = gate.approvals;
  if (book === null) throw new GuardError(ErrorCodes.INVALID_ARGUMENT, 'this gate has no approvals stage');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = Math.max(0, deadline - Date.now());
    const r = await book.wait(id, { timeoutMs: Math.min(left, MAX_WAIT_SLICE_MS), signal });
    if (r.status !== 'pending' || left <= MAX_WAIT_SLICE_MS) return r;
  }
}
