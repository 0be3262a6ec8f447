// Strict UTF-8 on the socket (issue 25 item 8): a request line that is not
// valid UTF-8 is a -32700 parse error in its place among the replies, never a
// request decoded with U+FFFD (which made `/srv/data/\xFF` and `/srv/data/\xFE`
// one resource: one CAR hash, one cache entry, one permit).
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { Gate, GuardServer } from '../lib/index';

const POLICY = { version: 1, mode: 'enforce', actions: { file_read: { constraints: { resource: { glob: '/srv/data/**' } } } } };
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function start(gateLineFastPath: boolean) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-utf8-'));
  const socketPath = path.join(dir, 'core.sock');
  const server = new GuardServer({ socketPath, context: { gate: new Gate({ policy: POLICY }), metrics: {} }, gateLineFastPath });
  await server.listen();
  cleanups.push(() => server.close());
  return socketPath;
}

/** Writes `payload` (split into `chunk`-byte writes) and collects `count` reply lines. */
function exchange(socketPath: string, payload: Buffer, count: number, chunk = payload.length): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socketPath);
    let buf = '';
    s.on('data', (d) => {
      buf += d;
      const lines = buf.split('\n').filter(Boolean);
      if (lines.length >= count) {
        s.destroy();
        resolve(lines.map((l) => JSON.parse(l)));
      }
    });
    s.on('error', reject);
    s.on('close', () => reject(new Error(`closed after: ${buf}`)));
    for (let at = 0; at < payload.length; at += chunk) s.write(payload.subarray(at, at + chunk));
  });
}

const gateLine = (id: number, resource: Buffer) =>
  Buffer.concat([Buffer.from(`{"jsonrpc":"2.0","id":${id},"method":"gate_check","params":{"car":{"action_type":"file_read","agent_id":"a","resource":"`), resource, Buffer.from('"}}}\n')]);

describe.each([true, false])('strict UTF-8 on the socket (gate_check fast path: %s)', (fast) => {
  test('lines with invalid bytes are parse errors in place; the valid lines around them are answered', async () => {
    const socketPath = await start(fast);
    const payload = Buffer.concat([
      gateLine(1, Buffer.from('/srv/data/x')),
      gateLine(2, Buffer.from([0x2f, 0x73, 0x72, 0x76, 0x2f, 0x64, 0x61, 0x74, 0x61, 0x2f, 0xff])), // /srv/data/\xFF
      gateLine(3, Buffer.from([0x2f, 0x73, 0x72, 0x76, 0x2f, 0x64, 0x61, 0x74, 0x61, 0x2f, 0xfe])), // /srv/data/\xFE
      gateLine(4, Buffer.concat([Buffer.from('/srv/data/'), Buffer.from([0xc0, 0xae, 0xc0, 0xae]), Buffer.from('/etc/passwd')])), // overlong ".."
      gateLine(5, Buffer.concat([Buffer.from('/srv/data/'), Buffer.from([0xed, 0xa0, 0x80])])), // an encoded lone surrogate
      Buffer.from('{"jsonrpc":"2.0","id":6,"method":"ping"}\n'),
    ]);
    for (const chunk of [payload.length, 7, 1]) {
      const replies = (await exchange(socketPath, payload, 6, chunk)) as Array<{ id: number | null; result?: { decision: string }; error?: { code: number } }>;
      expect(replies[0]).toMatchObject({ id: 1, result: { decision: 'allow' } });
      for (const r of replies.slice(1, 5)) expect(r).toEqual({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error: the line is not valid UTF-8' } });
      expect(replies[5]).toMatchObject({ id: 6, result: 'pong' });
    }
  });

  test('the same characters written as JSON escapes are judged on what they are', async () => {
    const socketPath = await start(fast);
    // "\u00ff" is the valid character U+00FF: a distinct resource, allowed by the glob.
    const [valid] = (await exchange(socketPath, gateLine(1, Buffer.from('/srv/data/\\u00ff')), 1)) as Array<{ result: { decision: string; car_hash: string } }>;
    const [other] = (await exchange(socketPath, gateLine(2, Buffer.from('/srv/data/\\u00fe')), 1)) as Array<{ result: { decision: string; car_hash: string } }>;
    expect(valid.result.decision).toBe('allow');
    expect(other.result.car_hash).not.toBe(valid.result.car_hash);
    // A lone surrogate escape is refused, as its raw bytes are.
    const [lone] = (await exchange(socketPath, gateLine(3, Buffer.from('/srv/data/\\ud800')), 1)) as Array<{ result?: { decision: string }; error?: unknown }>;
    expect(lone.result?.decision ?? 'error').not.toBe('allow');
  });
});
