// The agent-side helpers the MCP proxy and the SDK adapters share
// (lib/ipc/agent-calls.ts): the session is made once and made again once
// after the server says it was lost, and only then; the in-process wait.
import { describe, expect, test } from 'vitest';
import { ErrorCodes, Gate, RpcCallError, type GuardClient } from '../lib/index';
import { isSessionLost, sessionCalls, waitInGate } from '../lib/ipc/agent-calls';

/** A client whose auth() is counted; the calls under test are plain functions. */
function countingClient(): { client: GuardClient; auths: string[] } {
  const auths: string[] = [];
  const client = { auth: async (token: string) => void auths.push(token) } as unknown as GuardClient;
  return { client, auths };
}

const lost = () => new RpcCallError(-32001, 'Unauthorized: call auth first', { code: 'ERR_UNAUTHORIZED' });

describe('sessionCalls', () => {
  test('authenticates before the first call only; a lost session is made again once, then the call is retried once', async () => {
    const { client, auths } = countingClient();
    const calls = sessionCalls(client, 'agent-token');
    expect(await calls(async () => 1)).toBe(1);
    expect(await calls(async () => 2)).toBe(2);
    expect(auths).toEqual(['agent-token']);
    let tries = 0;
    expect(await calls(async () => (++tries === 1 ? Promise.reject(lost()) : 'after reconnect'))).toBe('after reconnect');
    expect(auths).toEqual(['agent-token', 'agent-token']);
    // Lost again on the retry: the error is the caller's (no loop).
    await expect(calls(async () => Promise.reject(lost()))).rejects.toMatchObject({ code: ErrorCodes.UNAUTHORIZED });
    expect(auths).toHaveLength(3);
  });

  test('other refusals are not retried: auth disabled, forbidden, a limit, a transport error', async () => {
    const { client, auths } = countingClient();
    const calls = sessionCalls(client, 'agent-token');
    for (const err of [
      new RpcCallError(-32001, 'Authentication is not enabled on this server', { code: 'ERR_AUTH_DISABLED' }),
      new RpcCallError(-32000, 'forbidden', { code: 'ERR_FORBIDDEN' }),
      new RpcCallError(-32600, 'too many', { code: 'ERR_LIMIT' }),
      new Error('socket closed'),
    ]) {
      let tries = 0;
      await expect(calls(async () => {
        tries++;
        throw err;
      })).rejects.toBe(err);
      expect(tries).toBe(1);
    }
    expect(auths).toEqual(['agent-token']);
  });

  test('without a token nothing authenticates and a lost session is the caller\'s', async () => {
    const { client, auths } = countingClient();
    const calls = sessionCalls(client, undefined);
    await expect(calls(async () => Promise.reject(lost()))).rejects.toMatchObject({ code: 'ERR_UNAUTHORIZED' });
    expect(auths).toEqual([]);
    expect(isSessionLost(lost())).toBe(true);
    expect(isSessionLost(new RpcCallError(-32001, 'x'))).toBe(true); // an older server: the number alone
    expect(isSessionLost({ code: 'ERR_UNAUTHORIZED' })).toBe(false); // not an RpcCallError
  });
});

describe('waitInGate', () => {
  const policy = { version: 1, mode: 'enforce', default: 'deny', actions: { shell_exec: { require_approval: true } } } as const;

  test('answers when the request is decided; times out with timed_out; refuses a gate without approvals', async () => {
    const gate = new Gate({ policy });
    const id = gate.check({ car: { action_type: 'shell_exec', agent_id: 'a', args: { cmd: 'ls' } } }).approval_id!;
    expect(await waitInGate(gate, id, 20)).toMatchObject({ id, status: 'pending', timed_out: true });
    const waiting = waitInGate(gate, id, 10_000);
    (gate.approvals as { approve(id: string, v: { approver: string }): unknown }).approve(id, { approver: 'alice' });
    await expect(waiting).resolves.toMatchObject({ id, status: 'granted' });
    const none = new Gate({ policy, approvals: false });
    await expect(waitInGate(none, id, 10)).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT });
    await gate.close();
    await none.close();
  });
});
