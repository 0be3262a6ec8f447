// GuardServer + GuardClient over a real Unix socket.
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { AuditLog, Gate, GuardClient, GuardServer, Keyring, RpcCallError, backends, carHash } from '../lib/index';
import { runSync } from './child';

const POLICY = { version: 1, mode: 'enforce', actions: { file_read: { constraints: { resource: { glob: '/srv/**' } } }, shell_exec: { require_approval: true } } };
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function start(opts: Partial<ConstructorParameters<typeof GuardServer>[0]> = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-ipc-'));
  const socketPath = path.join(dir, 'core.sock');
  const auditKey = crypto.randomBytes(32);
  const auditFile = path.join(dir, 'audit.log');
  const audit = new AuditLog({ file: auditFile, key: auditKey });
  const keyring = new Keyring({ keys: { k1: crypto.randomBytes(32) }, active: 'k1' });
  const gate = new Gate({ policy: POLICY, audit, keyring });
  const server = new GuardServer({ socketPath, context: { gate, metrics: {}, auditFile, auditKey }, ...opts });
  await server.listen();
  cleanups.push(async () => {
    await server.close();
    audit.close();
  });
  return { server, socketPath, dir, gate, audit, auditFile, auditKey };
}

async function client(socketPath: string) {
  const c = await GuardClient.connect(socketPath, { timeoutMs: 3000 });
  cleanups.push(() => c.close());
  return c;
}

/** Sends raw lines and collects reply lines until the socket closes or `count` arrive. */
function raw(socketPath: string, payload: string, count: number, waitMs = 1500): Promise<{ lines: string[]; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(socketPath);
    let buf = '';
    let closed = false;
    const done = () => {
      s.destroy();
      resolve({ lines: buf.split('\n').filter((l) => l !== ''), closed });
    };
    const t = setTimeout(done, waitMs);
    s.on('data', (d) => {
      buf += d.toString();
      if (buf.split('\n').filter((l) => l !== '').length >= count) {
        clearTimeout(t);
        done();
      }
    });
    s.on('close', () => {
      closed = true;
      clearTimeout(t);
      done();
    });
    s.on('error', () => {});
    s.write(payload);
  });
}

const car = { action_type: 'file_read', agent_id: 'agent-1', resource: '/srv/a' };

describe('GuardServer', () => {
  test('socket file is 0600; a live socket is refused; a stale one replaced', async () => {
    const { socketPath } = await start();
    expect(fs.statSync(socketPath).mode & 0o777).toBe(0o600);
    const second = new GuardServer({ socketPath, context: { gate: new Gate({ policy: POLICY }), metrics: {} } });
    await expect(second.listen()).rejects.toThrow(/Another server is listening/);
    // A stale socket: its server was killed, so the file stays and nobody answers.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-ipc-stale-'));
    const stale = path.join(dir, 'core.sock');
    const killed = runSync(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`], { timeout: 30_000 });
    expect(killed.signal).toBe('SIGKILL');
    expect(fs.lstatSync(stale).isSocket()).toBe(true);
    const third = new GuardServer({ socketPath: stale, context: { gate: new Gate({ policy: POLICY }), metrics: {} } });
    await third.listen();
    cleanups.push(() => third.close());
    const c = await client(stale);
    expect(await c.ping()).toBe('pong');
  });

  test('a path that is not a socket (file, directory, symlink) is refused and left as it was', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-ipc-notsock-'));
    const file = path.join(dir, 'precious.txt');
    fs.writeFileSync(file, 'do not delete');
    const directory = path.join(dir, 'a-dir');
    fs.mkdirSync(directory);
    const link = path.join(dir, 'link.sock');
    fs.symlinkSync(file, link);
    for (const target of [file, directory, link]) {
      const server = new GuardServer({ socketPath: target, context: { gate: new Gate({ policy: POLICY }), metrics: {} } });
      await expect(server.listen()).rejects.toThrow(/exists and is not a socket; refusing to start/);
    }
    expect(fs.readFileSync(file, 'utf8')).toBe('do not delete');
    expect(fs.statSync(directory).isDirectory()).toBe(true);
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
  });

  test('the contract methods work over the socket', async () => {
    const { socketPath } = await start();
    const c = await client(socketPath);
    const h = carHash(car);
    expect(await c.call('version')).toMatchObject({ protocol: '2.0', backends: { core: { kind: expect.any(String) } } });
    expect(await c.call('hash_car', { car })).toEqual({ car_hash: h });
    expect(await c.gateCheck({ car })).toMatchObject({ decision: 'allow', source: 'policy', car_hash: h, policy_version: 1, confidence: 1 });
    expect(await c.gateCheck({ car })).toMatchObject({ decision: 'allow', source: 'cache' });
    expect(await c.call('cache_get', { car_hash: h })).toMatchObject({ hit: true, decision: 'allow', policy_version: 1 });
    expect(await c.call('cache_stats')).toMatchObject({ entries: 1 });
    expect(await c.call('cache_invalidate', { car_hash: h })).toEqual({ removed: 1 });
    expect(await c.call('cache_put', { car_hash: h, decision: 'deny', ttl_ms: 1000 })).toEqual({ ok: true });
    expect(await c.call('cache_invalidate')).toEqual({ removed: 1 });
    const shell = { action_type: 'shell_exec', agent_id: 'agent-1' };
    const p = await c.call<{ permit: string; jti: string; expires_at: number }>('create_permit', { car: shell, agent_id: 'agent-1', ttl_ms: 60_000 });
    expect(await c.call('verify_permit', { permit: p.permit, car: shell })).toMatchObject({ valid: true, claims: { jti: p.jti } });
    expect(await c.call('verify_permit', { permit: p.permit, car: shell })).toMatchObject({ valid: true }); // does not consume
    expect(await c.gateCheck({ car: shell, permit: p.permit })).toMatchObject({ decision: 'allow', source: 'permit' });
    expect(await c.gateCheck({ car: shell, permit: p.permit })).toMatchObject({ decision: 'deny', source: 'permit' });
    expect(await c.call('check_replay', { nonce: 'n1', ttl_ms: 1000 })).toEqual({ status: 'fresh' });
    expect(await c.call('check_replay', { nonce: 'n1', ttl_ms: 1000 })).toEqual({ status: 'replay' });
    expect(await c.call('replay_stats')).toMatchObject({ replays: expect.any(Number), capacity: expect.any(Number) });
    expect(await c.call('gate_check_batch', { requests: [{ car }, { car: shell }, { car: {} }] })).toMatchObject({ decisions: [{ decision: 'allow' }, { decision: 'pending' }, { decision: 'deny', source: 'validation' }] });
    expect(await c.call('policy_get')).toMatchObject({ version: 1, mode: 'enforce' });
    expect(await c.call('policy_reload', { policy: { ...POLICY, version: 2 } })).toEqual({ version: 2 });
    await expect(c.call('policy_reload', { policy: { ...POLICY, version: 2 } })).rejects.toMatchObject({ rpcCode: -32000, data: { code: 'ERR_POLICY_INVALID' } });
    expect(await c.call('quarantine', { agent_id: 'bad', reason: 'test' })).toMatchObject({ status: 'active' });
    expect(await c.call('quarantine_list')).toMatchObject({ agents: [{ agentId: 'bad' }] });
    expect(await c.gateCheck({ car: { ...car, agent_id: 'bad' } })).toMatchObject({ decision: 'deny', source: 'quarantine' });
    expect(await c.call('quarantine_recover', { agent_id: 'bad' })).toMatchObject({ status: 'recovered' });
    expect(await c.call('audit_verify')).toMatchObject({ ok: true, records: expect.any(Number) });
    expect(await c.call('metrics')).toMatchObject({ gate_checks: expect.any(Number), policy_version: 2 });
  });

  test('JSON-RPC errors over the wire; the connection stays usable after a parse error', async () => {
    const { socketPath } = await start();
    const r = await raw(socketPath, '{oops\n{"jsonrpc":"2.0","id":1,"method":"ping"}\n[]\n{"jsonrpc":"2.0","id":2,"method":"nope"}\n{"jsonrpc":"2.0","id":3,"method":"gate_check","params":{}}\n{"jsonrpc":"2.0","method":"ping"}\n', 5);
    const replies = r.lines.map((l) => JSON.parse(l));
    expect(replies[0].error.code).toBe(-32700);
    expect(replies[1]).toEqual({ jsonrpc: '2.0', id: 1, result: 'pong' });
    expect(replies[2].error.code).toBe(-32600);
    expect(replies[3].error.code).toBe(-32601);
    expect(replies[4].error).toMatchObject({ code: -32602, data: { field: 'car' } });
    expect(replies).toHaveLength(5); // the notification got no reply
  });

  test('an oversized line gets an error reply and the connection closes', async () => {
    const { socketPath, server } = await start({ maxLineBytes: 4096 });
    const r = await raw(socketPath, 'x'.repeat(100_000), 1);
    expect(JSON.parse(r.lines[0]).error.code).toBe(-32600);
    expect(JSON.parse(r.lines[0]).error.message).toMatch(/longer than 4096/);
    expect(server.connections).toBeLessThanOrEqual(1);
  });

  test('pipelining many requests on one connection', async () => {
    const { socketPath } = await start({ maxInFlight: 4 });
    const c = await client(socketPath);
    const results = await Promise.all(Array.from({ length: 500 }, (_, i) => c.call('hash_car', { car: { ...car, resource: `/srv/${i}` } })));
    expect(new Set(results.map((r) => (r as { car_hash: string }).car_hash)).size).toBe(500);
  });

  test('connection limit and idle timeout', async () => {
    const { socketPath, server } = await start({ maxConnections: 2, idleTimeoutMs: 300 });
    const a = await client(socketPath);
    const b = await client(socketPath);
    expect(await a.ping()).toBe('pong');
    expect(await b.ping()).toBe('pong');
    // The third is closed by the server unanswered (raw() returns on the close;
    // its 30 s window only bounds a hang).
    const third = await raw(socketPath, '{"jsonrpc":"2.0","id":1,"method":"ping"}\n', 1, 30_000);
    expect(third).toEqual({ lines: [], closed: true });
    // Idle connections are closed by the server: wait for that condition (an
    // ignored idleTimeoutMs would leave them open past the test's timeout).
    while (server.connections > 0) await new Promise((r) => setTimeout(r, 20));
    expect(server.connections).toBe(0);
    expect(await a.ping()).toBe('pong'); // and the client reconnects
  });

  test('graceful close: the socket file is removed and the audit log verifies', async () => {
    const { socketPath, server, audit, auditFile, auditKey } = await start();
    const c = await client(socketPath);
    await c.gateCheck({ car });
    await server.close();
    expect(fs.existsSync(socketPath)).toBe(false);
    audit.close();
    expect(AuditLog.verify(auditFile, auditKey)).toMatchObject({ ok: true });
  });
});

test('the typed client methods cover every RPC', async () => {
  const { socketPath } = await start();
  const c = await client(socketPath);
  const h = (await c.hashCar(car)).car_hash;
  expect((await c.version()).protocol).toBe('2.0');
  expect((await c.gateCheckBatch([{ car }])).decisions[0].decision).toBe('allow');
  expect(await c.cachePut({ car_hash: h, decision: 'deny' })).toEqual({ ok: true });
  expect(await c.cacheGet(h)).toMatchObject({ hit: true, decision: 'deny' });
  expect((await c.cacheStats()).entries).toBe(1);
  expect(await c.cacheInvalidate()).toEqual({ removed: 1 });
  const p = await c.createPermit({ car_hash: h, agent_id: 'agent-1', ttl_ms: 5000, use: 'multi' });
  expect((await c.verifyPermit({ permit: p.permit, car_hash: h })).valid).toBe(true);
  expect(await c.checkReplay('typed-1', 1000)).toEqual({ status: 'fresh' });
  expect((await c.replayStats()).capacity).toBeGreaterThan(0);
  expect((await c.policyGet()).version).toBe(1);
  expect(await c.policyReload({ ...POLICY, version: 5 })).toEqual({ version: 5 });
  await expect(c.policyReload()).rejects.toMatchObject({ rpcCode: -32602, data: { field: 'policy' } });
  expect(await c.quarantine({ agent_id: 'q', reason: 'r', isolation: 'network' })).toMatchObject({ status: 'active', isolation: 'network' });
  expect((await c.quarantineList()).agents).toHaveLength(1);
  expect(await c.quarantineTerminate('q', 'done')).toMatchObject({ status: 'terminated' });
  await expect(c.quarantineRecover('q')).rejects.toMatchObject({ rpcCode: -32602 });
  expect((await c.auditVerify()).ok).toBe(true);
  expect((await c.metrics()).policy_version).toBe(5);
});

describe('GuardServer authentication', () => {
  const TOKEN = crypto.randomBytes(24).toString('hex');

  test('methods need a session; ping, version and auth do not', async () => {
    const { socketPath } = await start({ authToken: Buffer.from(TOKEN) });
    const c = await client(socketPath);
    expect(await c.ping()).toBe('pong');
    await expect(c.gateCheck({ car })).rejects.toMatchObject({ rpcCode: -32001 });
    const s = await c.auth(TOKEN);
    expect(s.session_id).toMatch(/^[0-9a-f]{64}$/);
    expect(await c.gateCheck({ car })).toMatchObject({ decision: 'allow' });
  });

  test('short, malformed and wrong tokens are error replies, never crashes', async () => {
    const { socketPath } = await start({ authToken: Buffer.from(TOKEN) });
    const c = await client(socketPath);
    for (const t of ['', 'x', '\u0000', 'é'.repeat(1000)]) await expect(c.auth(t)).rejects.toBeInstanceOf(RpcCallError);
    await expect(c.call('auth', { token: 5 })).rejects.toMatchObject({ rpcCode: -32602 });
    await expect(c.call('auth', {})).rejects.toMatchObject({ rpcCode: -32602 });
    expect(await c.ping()).toBe('pong');
  });

  test('5 failures block that client for a while: its uid where the kernel names it, else its connection', async () => {
    const { socketPath, auditFile, audit } = await start({ authToken: Buffer.from(TOKEN) });
    const attacker = await client(socketPath);
    for (let i = 0; i < 5; i++) await expect(attacker.auth('wrong')).rejects.toMatchObject({ data: { code: 'ERR_AUTH_FAILED' } });
    await expect(attacker.auth(TOKEN)).rejects.toMatchObject({ rpcCode: -32002, data: { code: 'ERR_AUTH_BLOCKED' } });
    const next = await client(socketPath);
    if (backends().core.kind === 'native') {
      // Same uid, same client: a new connection does not shed the block
      // (test/ipc-roles.test.ts shows another uid is not blocked).
      await expect(next.auth(TOKEN)).rejects.toMatchObject({ data: { code: 'ERR_AUTH_BLOCKED' } });
    } else {
      expect((await next.auth(TOKEN)).session_id).toMatch(/^[0-9a-f]{64}$/);
    }
    audit.flush();
    const types = fs.readFileSync(auditFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l).type);
    expect(types.filter((t) => t === 'auth_failure')).toHaveLength(1); // the other 4 are counted, written when the interval ends (ipc-audit-floods)
    if (backends().core.kind !== 'native') {
      expect(types).toContain('auth_success');
      expect(types).toContain('session_created');
    }
  });
});

describe('GuardServer rejects bad options', () => {
  test('constructor', () => {
    const context = { gate: new Gate({ policy: POLICY }), metrics: {} };
    expect(() => new GuardServer(undefined as never)).toThrow(TypeError);
    expect(() => new GuardServer({ socketPath: '', context })).toThrow(TypeError);
    expect(() => new GuardServer({ socketPath: '/tmp/x.sock', context, maxLineBytes: 1 })).toThrow(RangeError);
    expect(() => new GuardServer({ socketPath: '/tmp/x.sock', context, authToken: Buffer.from('short') })).toThrow(/16 bytes/);
    expect(() => new GuardServer({ socketPath: '/tmp/x.sock', context, socketMode: 0o1777 })).toThrow(RangeError);
  });
});
