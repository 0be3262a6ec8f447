// Slow clients (issue 25 item 5): a request line has a deadline from its
// first byte (trickling bytes no longer keeps a half-line open forever), an
// unauthenticated connection has a deadline to authenticate, and when every
// slot is taken a newcomer displaces a trickling or unauthenticated
// connection, never an authenticated one. Waits are on events (a close, a
// reply), never on the clock.
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { AuditLog, Gate, GuardClient, GuardServer } from '../lib/index';

const POLICY = { version: 1, mode: 'enforce', actions: {} };
const TOKEN = 'operator-token-0123456789';
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function start(opts: Partial<ConstructorParameters<typeof GuardServer>[0]> = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-slow-'));
  const socketPath = path.join(dir, 'core.sock');
  const audit = new AuditLog({ file: path.join(dir, 'audit.log'), key: crypto.randomBytes(32) });
  const metrics: Record<string, number> = {};
  const server = new GuardServer({ socketPath, context: { gate: new Gate({ policy: POLICY, audit }), metrics }, ...opts });
  await server.listen();
  cleanups.push(async () => {
    await server.close();
    audit.close();
  });
  return { socketPath, metrics, server };
}

interface Raw {
  socket: net.Socket;
  /** Everything the server sent, once it closed the connection. */
  closed: Promise<string>;
}

function raw(socketPath: string): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    let got = '';
    socket.on('data', (d) => (got += d));
    socket.on('error', () => {});
    const closed = new Promise<string>((r) => socket.once('close', () => r(got)));
    socket.once('connect', () => resolve({ socket, closed }));
    socket.once('error', reject);
    cleanups.push(() => void socket.destroy());
  });
}

async function authed(socketPath: string): Promise<GuardClient> {
  const c = await GuardClient.connect(socketPath, { timeoutMs: 5000 });
  await c.auth(TOKEN);
  cleanups.push(() => c.close());
  return c;
}

describe('slow clients', () => {
  test('a line trickled a byte at a time is cut off at its deadline, though the idle timer never fires', async () => {
    const { socketPath, metrics } = await start({ lineDeadlineMs: 300, idleTimeoutMs: 60_000 });
    const t = await raw(socketPath);
    const line = '{"jsonrpc":"2.0","id":1,"method":"ping"}'; // never finished: no newline
    let at = 0;
    const trickle = setInterval(() => {
      if (!t.socket.destroyed) t.socket.write(line[at++ % line.length]);
    }, 20);
    const got = await t.closed;
    clearInterval(trickle);
    expect(JSON.parse(got.trim())).toMatchObject({ id: null, error: { code: -32600, data: { code: 'ERR_DEADLINE' } } });
    expect(metrics.line_deadlines).toBe(1);
  });

  test('whole lines, however many, never meet the line deadline', async () => {
    const { socketPath } = await start({ lineDeadlineMs: 300 });
    const c = await GuardClient.connect(socketPath, { timeoutMs: 5000 });
    cleanups.push(() => c.close());
    const trickler = await raw(socketPath);
    trickler.socket.write('{"jsonrpc":');
    // While the trickler's deadline runs out, this client keeps asking.
    let answered = 0;
    let done = false;
    void trickler.closed.then(() => (done = true));
    while (!done) {
      expect(await c.ping()).toBe('pong');
      answered++;
    }
    expect(answered).toBeGreaterThan(0);
    expect(await c.ping()).toBe('pong');
  });

  test('a connection that does not authenticate in time is closed; one that did stays', async () => {
    const { socketPath, metrics } = await start({ operatorToken: Buffer.from(TOKEN), authDeadlineMs: 300 });
    const good = await authed(socketPath);
    const idle = await raw(socketPath);
    const got = await idle.closed; // opened after `good`: its deadline passed later than good's would have
    expect(JSON.parse(got.trim())).toMatchObject({ error: { data: { code: 'ERR_DEADLINE' }, message: expect.stringMatching(/no auth within 300 ms/) } });
    expect(metrics.auth_deadlines).toBe(1);
    expect(await good.ping()).toBe('pong');
    expect(await good.call('cache_stats')).toMatchObject({ capacity: expect.any(Number) });
  });

  test('a full server: a newcomer displaces the oldest unauthenticated connection, never an authenticated one', async () => {
    const { socketPath, metrics } = await start({ operatorToken: Buffer.from(TOKEN), maxConnections: 4 });
    const attackers = await Promise.all(Array.from({ length: 4 }, () => raw(socketPath)));
    const honest = await authed(socketPath); // took the oldest attacker's slot
    expect(await attackers[0].closed).toBe('');
    // Three more attackers: each displaces an unauthenticated one, never `honest`.
    const more = await Promise.all(Array.from({ length: 3 }, () => raw(socketPath)));
    for (const a of attackers.slice(1)) await a.closed;
    expect(await honest.ping()).toBe('pong');
    expect(await honest.call('cache_stats')).toMatchObject({ capacity: expect.any(Number) });
    expect(metrics.connections_displaced).toBe(4);
    for (const m of more) expect(m.socket.destroyed).toBe(false);
  });

  test('without tokens, a trickling connection gives up its slot; idle ones keep theirs and a newcomer is refused', async () => {
    const { socketPath, metrics } = await start({ maxConnections: 2 });
    const idle = await GuardClient.connect(socketPath, { timeoutMs: 5000 });
    cleanups.push(() => idle.close());
    expect(await idle.ping()).toBe('pong');
    const trickler = await raw(socketPath);
    trickler.socket.write('{"jsonrpc":"2.0"');
    // Wait until the server holds the half line (a ping round trip on the idle connection orders it).
    await idle.ping();
    const newcomer = await GuardClient.connect(socketPath, { timeoutMs: 5000 });
    cleanups.push(() => newcomer.close());
    expect(await newcomer.ping()).toBe('pong');
    expect(await trickler.closed).toBe('');
    // Now both slots hold connections between requests: a third is refused.
    const third = await raw(socketPath);
    expect(await third.closed).toBe('');
    expect(metrics.connections_refused).toBe(1);
    expect(await idle.ping()).toBe('pong');
  });

  test('bad deadline options are refused', () => {
    const context = { gate: new Gate({ policy: POLICY }), metrics: {} };
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      expect(() => new GuardServer({ socketPath: '/tmp/x.sock', context, lineDeadlineMs: bad })).toThrow(RangeError);
      expect(() => new GuardServer({ socketPath: '/tmp/x.sock', context, authDeadlineMs: bad })).toThrow(RangeError);
    }
  });
});
