// Abuse against a real `guardkernel serve` process: the server keeps serving
// others and its memory stays bounded.
import { startChild } from './child';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { GuardClient, carHash } from '../lib/index';
import { repoRoot } from './helpers';

const cli = path.join(repoRoot, 'dist', 'cli', 'main.js');
const linux = process.platform === 'linux';
let child: ReturnType<typeof startChild>;
let socketPath: string;
let witness: GuardClient;

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) / 1024;
}

function rawSocket(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socketPath);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

function firstReply(s: net.Socket, timeoutMs = 3000): Promise<string | null> {
  return new Promise((resolve) => {
    let buf = '';
    const t = setTimeout(() => resolve(null), timeoutMs);
    s.on('data', (d) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(t);
        resolve(buf.slice(0, nl));
      }
    });
    s.on('close', () => {
      clearTimeout(t);
      resolve(buf.length ? buf.split('\n')[0] : null);
    });
  });
}

beforeAll(async () => {
  const state = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-abuse-'));
  socketPath = path.join(state, 'core.sock');
  child = startChild(process.execPath, [cli, 'serve', '--state-dir', state], { env: { ...process.env, XDG_RUNTIME_DIR: '', GUARD_HMAC_SECRET: '' }, stdio: ['ignore', 'pipe', 'inherit'] }, 600_000);
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('guardkernel: policy')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`serve exited ${code}`)));
  });
  witness = await GuardClient.connect(socketPath, { timeoutMs: 5000 });
});

afterAll(async () => {
  witness?.close();
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
});

describe.runIf(linux)('abuse', () => {
  test('a 100 MiB line without a newline: an error reply, the connection closes, memory stays bounded', async () => {
    const before = rssMiB(child.pid!);
    const s = await rawSocket();
    s.on('error', () => {});
    const reply = firstReply(s, 10_000);
    const chunk = Buffer.alloc(1 << 20, 0x7b);
    for (let i = 0; i < 100 && !s.destroyed && s.writable; i++) {
      if (!s.write(chunk)) await new Promise((r) => { s.once('drain', r); s.once('close', r); });
    }
    const text = await reply;
    expect(JSON.parse(text!).error.code).toBe(-32600);
    s.destroy();
    expect(rssMiB(child.pid!) - before).toBeLessThan(64);
    expect(await witness.ping()).toBe('pong');
  });

  test('after the oversized-line reply the server drains briefly, then closes the connection itself', async () => {
    const s = await rawSocket();
    s.on('error', () => {});
    const reply = firstReply(s, 10_000);
    const closed = new Promise<boolean>((resolve) => s.once('close', () => resolve(true)));
    s.write(Buffer.alloc(2 << 20, 0x61)); // 2 MiB, no newline, and the client then just waits
    expect(JSON.parse((await reply)!).error.code).toBe(-32600);
    s.resume();
    // The server closes it: the client never does (the test's own timeout bounds the wait).
    expect(await closed).toBe(true);
    expect(s.destroyed).toBe(true);
    expect(await witness.ping()).toBe('pong');
  });

  test('invalid UTF-8 and 10,000 levels of nesting are answered, not fatal', async () => {
    const s = await rawSocket();
    const reply = firstReply(s);
    s.write(Buffer.concat([Buffer.from([0xff, 0xfe, 0xfd]), Buffer.from('\n')]));
    expect(JSON.parse((await reply)!).error.code).toBe(-32700);
    s.destroy();
    const deep = '{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000);
    const s1 = await rawSocket();
    const r1 = firstReply(s1);
    s1.write(`{"jsonrpc":"2.0","id":1,"method":"gate_check","params":{"car":{"action_type":"x","agent_id":"a","args":${deep}}}}\n`);
    const answer = JSON.parse((await r1)!);
    // Either the JSON parser refuses the depth, or the CAR's depth limit denies it.
    if (answer.error) expect(answer.error.code).toBe(-32700);
    else expect(answer.result).toMatchObject({ decision: 'deny', source: 'validation' });
    s1.destroy();
    const s2 = await rawSocket();
    const r2 = firstReply(s2);
    s2.write(`{"jsonrpc":"2.0","id":1,"method":"hash_car","params":{"car":${'['.repeat(10_000)}${']'.repeat(10_000)}}}\n`);
    expect(JSON.parse((await r2)!).error.code).toBe(-32602);
    s2.destroy();
  });

  test('2,000 concurrent connections: the limit holds and the server keeps serving', async () => {
    const sockets: net.Socket[] = [];
    await Promise.all(
      Array.from({ length: 2000 }, () =>
        new Promise<void>((resolve) => {
          const s = net.connect(socketPath);
          s.on('error', () => resolve());
          s.on('connect', () => resolve());
          s.on('close', () => resolve());
          sockets.push(s);
        }),
      ),
    );
    // Each socket either answers a ping (it holds one of the server's slots) or
    // is closed by the server: no sleep, every socket settles by an event.
    const served = await Promise.all(
      sockets.map(
        (s) =>
          new Promise<boolean>((resolve) => {
            if (s.destroyed || s.readyState !== 'open') return resolve(false);
            let buf = '';
            s.on('data', (d) => {
              buf += d;
              if (buf.includes('"pong"')) resolve(true);
            });
            s.once('close', () => resolve(buf.includes('"pong"')));
            s.write('{"jsonrpc":"2.0","id":1,"method":"ping"}\n');
          }),
      ),
    );
    const open = served.filter(Boolean).length;
    expect(await witness.ping()).toBe('pong');
    const metrics = (await witness.metrics()) as { connections_total: number };
    expect(metrics.connections_total).toBeGreaterThan(1);
    expect(open).toBeGreaterThan(0);
    expect(open).toBeLessThanOrEqual(64); // the default connection limit (the witness holds one); the rest were closed
    await Promise.all(sockets.map((s) => new Promise((r) => (s.destroyed ? r(null) : (s.once('close', r), s.destroy())))));
    expect(await witness.ping()).toBe('pong');
  });

  test('a client that pipelines 100,000 requests and never reads cannot grow the server', async () => {
    const before = rssMiB(child.pid!);
    const s = await rawSocket();
    s.on('error', () => {});
    s.pause(); // never read the replies
    const line = Buffer.from('{"jsonrpc":"2.0","id":1,"method":"hash_car","params":{"car":{"action_type":"a","agent_id":"b","pad":"' + 'x'.repeat(200) + '"}}}\n');
    // Write until the socket pushes back, then give the server 50 round trips
    // of the witness (events, not a clock) to drain it. A server that kept
    // reading would drain it well within that and we would write on, all
    // 100,000 lines; one that applies backpressure stops reading for good.
    let written = 0;
    let stalled = false;
    while (written < 100_000 && !stalled) {
      written++;
      if (s.write(line)) continue;
      let drained = false;
      const onDrain = () => (drained = true);
      s.once('drain', onDrain);
      for (let i = 0; i < 50 && !drained; i++) await witness.ping();
      s.off('drain', onDrain);
      stalled = !drained;
    }
    expect(stalled).toBe(true);
    expect(written).toBeLessThan(100_000); // backpressure reached us before all were accepted
    expect(s.writableLength).toBeGreaterThan(0); // and our side still holds what the server would not take
    expect(rssMiB(child.pid!) - before).toBeLessThan(64);
    expect(await witness.ping()).toBe('pong');
    s.destroy();
  });

  test('half-closed sockets are handled cleanly', async () => {
    for (let i = 0; i < 20; i++) {
      const s = await rawSocket();
      s.on('error', () => {});
      let buf = '';
      const answered = new Promise<boolean>((resolve) => {
        s.on('data', (d) => {
          buf += d;
          if (buf.includes('\n')) resolve(true);
        });
        s.once('close', () => resolve(buf.includes('\n')));
      });
      s.end('{"jsonrpc":"2.0","id":1,"method":"ping"}\n');
      expect(await answered).toBe(true); // the server still answers what it got before the half-close
      expect(JSON.parse(buf.split('\n')[0]).result).toBe('pong');
      s.destroy();
    }
    expect(await witness.ping()).toBe('pong');
  });
});

describe.runIf(linux)('SIGTERM while requests are in flight', () => {
  test('everything is answered or cleanly failed, and the process exits 0', async () => {
    const state = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-term-'));
    const sock = path.join(state, 'core.sock');
    const p = startChild(process.execPath, [cli, 'serve', '--state-dir', state], { env: { ...process.env, XDG_RUNTIME_DIR: '', GUARD_HMAC_SECRET: '' }, stdio: ['ignore', 'pipe', 'inherit'] }, 600_000);
    await new Promise<void>((resolve) => {
      let out = '';
      p.stdout!.on('data', (d) => {
        out += d;
        if (out.includes('guardkernel: policy')) resolve();
      });
    });
    const c = await GuardClient.connect(sock, { timeoutMs: 5000 });
    const exited = new Promise((r) => p.once('exit', r)); // before the kill: it may exit at once
    const cars = Array.from({ length: 2000 }, (_, i) => ({ action_type: 'a', agent_id: `b${i}` }));
    const calls = cars.map((car) =>
      c.call('hash_car', { car }).then(
        (result) => ({ result, error: null }),
        (error: Error) => ({ result: null, error }),
      ),
    );
    p.kill('SIGTERM');
    const outcomes = await Promise.all(calls);
    const code = await exited;
    expect(code).toBe(0);
    // Requests run in order on one connection: the answered ones are a prefix,
    // each answer is the right one, and every later request failed because the
    // connection closed (not a timeout, not a garbled reply).
    const firstFailed = outcomes.findIndex((o) => o.error !== null);
    const answered = firstFailed === -1 ? outcomes.length : firstFailed;
    for (let i = 0; i < answered; i++) expect(outcomes[i].result).toEqual({ car_hash: carHash(cars[i]) });
    for (let i = answered; i < outcomes.length; i++) expect(outcomes[i].error?.message).toBe('connection closed');
    expect(fs.existsSync(sock)).toBe(false);
    c.close();
  });
});
