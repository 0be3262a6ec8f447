// The server's native gate_check fast path (lib/ipc/gate-line.ts) must not
// change a single byte the server sends or records. Two servers, one with
// the fast path and one without, get the same request lines; their replies
// and their audit records (bar time and MACs) must be identical, including
// cache misses (the policy reads the whole CAR), velocity, quarantine,
// sessions, and the lines the fast path leaves to the general path.
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { AuditLog, Gate, GuardServer, Keyring } from '../lib/index';
import { GateLineReader } from '../lib/ipc/gate-line';
import { core, randomInt, rng } from './helpers';

const pick = <T>(next: () => number, xs: readonly T[]): T => xs[randomInt(next, 0, xs.length - 1)];

const POLICY = fs.readFileSync(path.join(__dirname, '..', 'examples', 'policy.yaml'), 'utf8');
const TOKEN = Buffer.from(crypto.randomBytes(24).toString('hex'));
const PERMIT_KEY = crypto.randomBytes(32);
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function start(fast: boolean, auth: boolean) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-fastline-'));
  const auditFile = path.join(dir, 'audit.log');
  const auditKey = crypto.randomBytes(32);
  const audit = new AuditLog({ file: auditFile, key: auditKey });
  // A fixed clock: trust recovers with time, and both servers must see the same time.
  // No approval stage: the two servers would open requests with different random ids (approvals-ipc covers the stage on both paths).
  // The same permit key on both; a small nonce share per client, so that the client's quota (which the fast path must pass on) denies.
  const keyring = new Keyring({ keys: { k1: PERMIT_KEY }, active: 'k1' });
  const gate = new Gate({ policy: POLICY, audit, keyring, velocity: { maxPerAgent: 500, maxPerSession: 4, windowMs: 60_000 }, clock: () => 1_700_000_000_000, approvals: false, nonceQuota: { perAgent: 1000, perClient: 40 } });
  const metrics: Record<string, number> = {};
  const server = new GuardServer({ socketPath: path.join(dir, 'core.sock'), context: { gate, metrics, auditFile, auditKey }, gateLineFastPath: fast, authToken: auth ? TOKEN : undefined });
  await server.listen();
  cleanups.push(async () => {
    await server.close();
    audit.close();
  });
  return { server, audit, auditFile, auditKey, metrics };
}

/** Writes `lines` in pipelined chunks and collects `expect` reply lines. */
function exchange(socketPath: string, lines: string[], want: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socketPath);
    let buf = '';
    const got: string[] = [];
    const timer = setTimeout(() => reject(new Error(`only ${got.length} of ${want} replies`)), 10_000);
    s.on('data', (d) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        got.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
      if (got.length >= want) {
        clearTimeout(timer);
        s.end();
        resolve(got);
      }
    });
    s.on('error', reject);
    s.on('connect', async () => {
      for (let i = 0; i < lines.length; i += 25) {
        s.write(lines.slice(i, i + 25).join('\n') + '\n');
        await new Promise((r) => setTimeout(r, 1));
      }
    });
  });
}

/** Audit records without what differs between two runs (time, and the MACs over it). */
function records(file: string): unknown[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const { ts: _t, prev: _p, mac: _m, connection: _c, expires_at: _e, ...rest } = JSON.parse(l);
      return rest;
    });
}

const AGENTS = ['agent-1', 'agent-prod-7', 'agent-untrusted-3', 'robot-9'];
const RESOURCES = ['/srv/data/a.csv', '/srv/data/out/x', '/etc/passwd', '/srv/data/../etc', 'https://api.example.com/v1/q'];
const ACTIONS = ['file_read', 'file_read', 'file_read', 'http_get', 'shell_exec', 'unknown_act'];

/** A permit for `car` (used once or many times), for another CAR, or not a permit at all. */
function permitFor(next: () => number, keyring: Keyring, car: Record<string, unknown>): string {
  const r = next();
  if (r < 0.1) return 'not.a.permit';
  const target = r < 0.25 ? { ...car, resource: '/elsewhere' } : car;
  return keyring.issue({ car: target, agentId: car.agent_id as string, ttlMs: 3_600_000, use: next() < 0.5 ? 'once' : 'multi' }).permit;
}

/** Request lines: mostly gate_checks for the fast path (many repeats: cache hits; nonces, permits), some for the general path, some broken. */
function workload(seed: number, n: number): { lines: string[]; replies: number } {
  const keyring = new Keyring({ keys: { k1: PERMIT_KEY }, active: 'k1' });
  const next = rng(seed);
  const lines: string[] = [];
  let replies = 0;
  for (let i = 1; i <= n; i++) {
    const agent = AGENTS[randomInt(next, 0, 3)];
    // file_write violations quarantine the agent: only robot-9 tries them, so the others keep hitting the cache.
    const action = agent === 'robot-9' && next() < 0.2 ? 'file_write' : ACTIONS[randomInt(next, 0, ACTIONS.length - 1)];
    const car: Record<string, unknown> = { action_type: action, agent_id: agent, resource: RESOURCES[randomInt(next, 0, 4)] };
    if (next() < 0.8) car.args = next() < 0.7 ? { mode: 'r', bytes: randomInt(next, 0, 3) * 1000 } : { mode: 'w' };
    const r = next();
    const base = { jsonrpc: '2.0', id: next() < 0.5 ? i : `req-${i}`, method: 'gate_check', params: { car } as Record<string, unknown> };
    if (r < 0.65) lines.push(JSON.stringify(base)); // the fast path's
    else if (r < 0.7) lines.push(JSON.stringify({ ...base, params: { car, permit: permitFor(next, keyring, car) } })); // the fast path's too
    else if (r < 0.75) lines.push(JSON.stringify({ ...base, params: { nonce: `n-${randomInt(next, 0, 120)}`, car, ...(next() < 0.3 ? { permit: permitFor(next, keyring, car) } : {}) } })); // and these
    else if (r < 0.8) lines.push(JSON.stringify({ ...base, params: { car, nonce: `n-\u00e9${randomInt(next, 0, 20)}` } })); // the general path's
    // Sessions: velocity per session (the fast path's when printable ASCII), an empty id (an error deny on both paths), one beyond ASCII (the general path's).
    else if (r < 0.84) lines.push(JSON.stringify({ ...base, params: { car, session_id: pick(next, ['s-1', 's-1', 's-2', 's 3', '', 's-\u00e9']), ...(next() < 0.2 ? { nonce: `n-${randomInt(next, 0, 120)}` } : {}) } }));
    else if (r < 0.87) lines.push(JSON.stringify({ ...base, params: { car: { ...car, n: 1.5 } } }));
    else if (r < 0.9) lines.push(JSON.stringify({ ...base, params: { car: { action_type: 'file_read' } } })); // invalid CAR
    else if (r < 0.92) lines.push(JSON.stringify({ ...base, id: undefined })); // a notification: no reply, the work is done
    else if (r < 0.94) lines.push('{"jsonrpc":"2.0","id":' + i + ',"method":"gate_check","params":{"car":' + JSON.stringify(car).replace('"agent_id"', '"agent_id":"x","agent_id"') + '}}');
    else if (r < 0.96) lines.push(`[${JSON.stringify(base)},${JSON.stringify({ ...base, id: -i })}]`);
    else if (r < 0.98) lines.push('{"jsonrpc":"2.0","id":' + i + ',"method":"gate_check","params":{"car":' + JSON.stringify(car) + '}'); // cut short
    else lines.push(JSON.stringify({ jsonrpc: '2.0', id: i, method: 'hash_car', params: { car } }));
    replies += r >= 0.9 && r < 0.92 ? 0 : 1;
  }
  return { lines, replies };
}

test('gateLineFastPath must be a boolean', () => {
  const gate = new Gate({ policy: POLICY });
  for (const bad of ['false', 0, null]) {
    expect(() => new GuardServer({ socketPath: '/tmp/unused.sock', context: { gate, metrics: {} }, gateLineFastPath: bad as unknown as boolean })).toThrow(/gateLineFastPath/);
  }
});

describe.skipIf(core === null)('gate_check fast path in the server', () => {
  test('replies and audit records equal the general path on 3,000 mixed lines', async () => {
    const { lines, replies } = workload(0x5e7e, 3000);
    // The fast path takes the lines with a nonce or a permit too.
    const reader = GateLineReader.create()!;
    const taken = lines.map((l) => reader.read(l)).filter((g) => g !== null);
    expect(taken.filter((g) => g.nonce !== undefined).length).toBeGreaterThan(100);
    expect(taken.filter((g) => g.permit !== undefined).length).toBeGreaterThan(150);
    expect(taken.filter((g) => g.sessionId !== undefined).length).toBeGreaterThan(80);
    const fast = await start(true, false);
    const slow = await start(false, false);
    const [a, b] = await Promise.all([exchange(fast.server.socketPath, lines, replies), exchange(slow.server.socketPath, lines, replies)]);
    expect(a.length).toBe(replies);
    expect(a).toEqual(b);
    // The run held cache hits, policy decisions of every kind, velocity and quarantine denies.
    const sources = new Set(a.flatMap((l) => [...l.matchAll(/"source":"(\w+)"/g)].map((m) => m[1])));
    expect([...sources].sort()).toEqual(expect.arrayContaining(['cache', 'permit', 'policy', 'quarantine', 'replay', 'validation', 'velocity']));
    // Permits accepted and refused (wrong CAR, used up, malformed); nonces replayed and over the client's share.
    for (const reason of ['permit rejected: car_mismatch', 'permit rejected: malformed', 'request nonce was already used', "this client holds its share of the nonce store", 'rate limit exceeded (session)', 'sessionId']) {
      expect(a.some((l) => l.includes(reason)), reason).toBe(true);
    }
    expect(new Set(a.flatMap((l) => [...l.matchAll(/"decision":"(\w+)"/g)].map((m) => m[1])))).toEqual(new Set(['allow', 'deny', 'pending']));
    expect(fast.metrics.gate_checks).toBe(slow.metrics.gate_checks);
    fast.audit.flush();
    slow.audit.flush();
    expect(records(fast.auditFile)).toEqual(records(slow.auditFile));
    expect(AuditLog.verify(fast.auditFile, fast.auditKey).ok).toBe(true);
  });

  test('with authentication: refused before auth as the general path refuses, then equal decisions', async () => {
    const plain = (id: number) => JSON.stringify({ jsonrpc: '2.0', id, method: 'gate_check', params: { car: { action_type: 'file_read', agent_id: 'agent-1', resource: '/srv/data/a.csv', args: { mode: 'r' } } } });
    const lines = [plain(1), plain(2), JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'auth', params: { token: TOKEN.toString('latin1') } }), plain(4), plain(5)];
    const fast = await start(true, true);
    const slow = await start(false, true);
    const [a, b] = await Promise.all([exchange(fast.server.socketPath, lines, 5), exchange(slow.server.socketPath, lines, 5)]);
    expect(a[0]).toMatch(/"code":-32001/);
    expect(a[1]).toBe(b[1]);
    expect(a[4]).toMatch(/"decision":"allow"/);
    expect(a[4]).toBe(b[4]);
    fast.audit.flush();
    slow.audit.flush();
    expect(records(fast.auditFile)).toEqual(records(slow.auditFile));
    // Two refusals of one client within the interval: one record now (the count follows when the interval ends).
    expect(records(fast.auditFile).filter((r) => (r as { type: string }).type === 'invalid_session')).toHaveLength(1);
  });
});
