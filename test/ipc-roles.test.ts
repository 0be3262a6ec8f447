// Roles on the socket (issue 25 items 11 and 12): an agent may ask, only an
// operator may change state. Credentials: tokens per role, or the peer's uid
// as the kernel reports it (SO_PEERCRED). Refusals are -32000 ERR_FORBIDDEN
// and audited; the failed-auth lockout follows the client, not the connection.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { AuditLog, Gate, GuardClient, GuardServer, Keyring, RpcCallError, SERVICE_METHODS, backends, carHash } from '../lib/index';
import { AGENT_METHODS } from '../lib/ipc/access';
import { repoRoot } from './helpers';
import { runSync, startChild } from './child';

const POLICY = { version: 1, mode: 'enforce', actions: { file_read: { constraints: { resource: { glob: '/srv/**' } } }, shell_exec: { require_approval: true } } };
const car = { action_type: 'shell_exec', agent_id: 'agent-1' };
const OPERATOR_TOKEN = 'operator-token-0123456789';
const AGENT_TOKEN = 'agent-token-0123456789abc';
const native = backends().core.kind === 'native';
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function start(opts: Partial<ConstructorParameters<typeof GuardServer>[0]> = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-roles-'));
  fs.chmodSync(dir, 0o755); // another uid may reach the socket where a test opens its mode
  const socketPath = path.join(dir, 'core.sock');
  const auditFile = path.join(dir, 'audit.log');
  const audit = new AuditLog({ file: auditFile, key: crypto.randomBytes(32) });
  const keyring = new Keyring({ keys: { k1: crypto.randomBytes(32) }, active: 'k1' });
  const gate = new Gate({ policy: POLICY, audit, keyring });
  const server = new GuardServer({ socketPath, context: { gate, metrics: {} }, ...opts });
  await server.listen();
  cleanups.push(async () => {
    await server.close();
    audit.close();
  });
  const records = () => {
    audit.flush();
    return fs.readFileSync(auditFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  };
  return { socketPath, records, gate };
}

async function connect(socketPath: string) {
  const c = await GuardClient.connect(socketPath, { timeoutMs: 5000 });
  cleanups.push(() => c.close());
  return c;
}

/** Params that pass each method's own checks, so only the role decides. */
const PARAMS: Record<string, Record<string, unknown>> = {
  hash_car: { car },
  cache_get: { car_hash: carHash(car) },
  cache_put: { car_hash: carHash(car), decision: 'allow' },
  cache_invalidate: {},
  create_permit: { car, agent_id: 'agent-1', ttl_ms: 60_000 },
  verify_permit: { permit: 'x.y.z', car },
  check_replay: { nonce: 'n-1', ttl_ms: 1000 },
  gate_check: { car },
  gate_check_batch: { requests: [{ car }] },
  policy_reload: { policy: { ...POLICY, version: 2 } },
  quarantine: { agent_id: 'agent-2', reason: 'test' },
  quarantine_recover: { agent_id: 'agent-2', reason: 'test' },
  quarantine_terminate: { agent_id: 'agent-2', reason: 'test' },
};

async function codeOf(c: GuardClient, method: string): Promise<string | null> {
  try {
    await c.call(method, PARAMS[method] ?? {});
    return null;
  } catch (err) {
    return err instanceof RpcCallError ? ((err.data as { code?: string } | undefined)?.code ?? String(err.rpcCode)) : String(err);
  }
}

describe('roles', () => {
  test('the agent role: every agent method runs; every other method is ERR_FORBIDDEN (-32000), audited', async () => {
    const { socketPath, records } = await start({ operatorToken: Buffer.from(OPERATOR_TOKEN), agentToken: Buffer.from(AGENT_TOKEN) });
    const c = await connect(socketPath);
    expect(await c.auth(AGENT_TOKEN)).toMatchObject({ role: 'agent' });
    expect(c.role).toBe('agent');
    const methods = Object.keys(SERVICE_METHODS);
    expect(methods.length).toBeGreaterThan(15);
    for (const m of methods) {
      const code = await codeOf(c, m);
      if (AGENT_METHODS.has(m)) expect({ m, code }).not.toEqual({ m, code: 'ERR_FORBIDDEN' });
      else expect({ m, code }).toEqual({ m, code: 'ERR_FORBIDDEN' });
    }
    // The wire form of a refusal.
    await expect(c.call('create_permit', PARAMS.create_permit)).rejects.toMatchObject({ rpcCode: -32000, data: { code: 'ERR_FORBIDDEN' } });
    // Audited, once per client and interval (then as a count: ipc-audit-floods).
    const denied = records().filter((r) => r.type === 'access_denied');
    expect(denied).toHaveLength(1);
    expect(denied[0]).toMatchObject({ role: 'agent', method: expect.any(String) });
  });

  test('an agent cannot mint a permit for itself and use it to pass a pending rule', async () => {
    const { socketPath } = await start({ operatorToken: Buffer.from(OPERATOR_TOKEN), agentToken: Buffer.from(AGENT_TOKEN) });
    const agent = await connect(socketPath);
    await agent.auth(AGENT_TOKEN);
    await expect(agent.call('create_permit', PARAMS.create_permit)).rejects.toMatchObject({ data: { code: 'ERR_FORBIDDEN' } });
    expect(await agent.call('gate_check', { car })).toMatchObject({ decision: 'pending' });
    // The operator can, and its permit is what moves the call on.
    const operator = await connect(socketPath);
    expect(await operator.auth(OPERATOR_TOKEN)).toMatchObject({ role: 'operator' });
    const { permit } = (await operator.call('create_permit', PARAMS.create_permit)) as { permit: string };
    expect(await agent.call('gate_check', { car, permit })).toMatchObject({ decision: 'allow', source: 'permit' });
  });

  test('authToken (the name before roles) is the operator token', async () => {
    const { socketPath } = await start({ authToken: Buffer.from(OPERATOR_TOKEN) });
    const c = await connect(socketPath);
    await expect(c.call('cache_stats')).rejects.toMatchObject({ data: { code: 'ERR_UNAUTHORIZED' } });
    expect(await c.auth(OPERATOR_TOKEN)).toMatchObject({ role: 'operator' });
    expect(await codeOf(c, 'cache_put')).toBeNull();
  });

  test('without tokens the peer decides: the server\'s own uid is operator (or, with no peer identity, a socket only its owner can open)', async () => {
    const { socketPath } = await start();
    const c = await connect(socketPath);
    expect(await c.version()).toMatchObject({ role: 'operator' });
    expect(c.role).toBe('operator');
    expect(await codeOf(c, 'create_permit')).toBeNull();
  });

  test.skipIf(native)('with no peer identity (no addon), a socket others may open makes every client an agent', async () => {
    const { socketPath } = await start({ socketMode: 0o666 });
    const c = await connect(socketPath);
    expect(await c.version()).toMatchObject({ role: 'agent' });
    expect(await codeOf(c, 'policy_reload')).toBe('ERR_FORBIDDEN');
  });

  test('bad role options are refused', () => {
    const context = { gate: new Gate({ policy: POLICY }), metrics: {} };
    expect(() => new GuardServer({ socketPath: '/tmp/x.sock', context, agentToken: Buffer.from('short') })).toThrow(/16 bytes/);
    expect(() => new GuardServer({ socketPath: '/tmp/x.sock', context, agentToken: Buffer.from(AGENT_TOKEN) })).toThrow(/without an operator/);
    expect(() => new GuardServer({ socketPath: '/tmp/x.sock', context, authToken: Buffer.from(OPERATOR_TOKEN), operatorToken: Buffer.from(OPERATOR_TOKEN) })).toThrow(TypeError);
    for (const bad of [[-1], [1.5], ['0'], 'x']) {
      expect(() => new GuardServer({ socketPath: '/tmp/x.sock', context, operatorUids: bad as number[] })).toThrow(TypeError);
    }
  });
});

const root = typeof process.getuid === 'function' && process.getuid() === 0;
const NOBODY = 65534;
/** Why a client cannot run as another uid here (null: it can): root is needed, and that uid must be able to read this checkout. */
function otherUidMissing(): string | null {
  if (!native) return 'no addon: no peer identity';
  if (!root) return 'not root: cannot run a client as another uid';
  const r = runSync(process.execPath, ['-e', `require(${JSON.stringify(path.join(repoRoot, 'dist', 'index.js'))})`], { uid: NOBODY, gid: NOBODY, stdio: 'ignore', timeout: 30_000 });
  return r.status === 0 ? null : `uid ${NOBODY} cannot load ${repoRoot}/dist (a parent directory it may not enter?)`;
}
const otherUid = otherUidMissing();

describe.skipIf(otherUid !== null)(`roles by peer uid (SO_PEERCRED; a client run as uid ${NOBODY})${otherUid === null ? '' : ` — skipped: ${otherUid}`}`, () => {
  /** Runs a GuardClient as uid `uid` in a child process (async: the server is in this process); returns what each call gave. */
  async function asUser(uid: number, socketPath: string): Promise<Record<string, unknown>> {
    const script = `
      const { GuardClient } = require(${JSON.stringify(path.join(repoRoot, 'dist', 'index.js'))});
      (async () => {
        const c = await GuardClient.connect(process.argv[1], { timeoutMs: 5000 });
        const out = { version: (await c.version()).role };
        for (const [m, p] of [['gate_check', { car: ${JSON.stringify(car)} }], ['create_permit', ${JSON.stringify(PARAMS.create_permit)}], ['policy_reload', ${JSON.stringify(PARAMS.policy_reload)}]]) {
          try { await c.call(m, p); out[m] = 'ok'; } catch (e) { out[m] = (e.data && e.data.code) || String(e); }
        }
        c.close();
        console.log(JSON.stringify(out));
      })();`;
    const child = startChild(process.execPath, ['-e', script, socketPath], { uid, gid: uid, stdio: ['ignore', 'pipe', 'pipe'] }, 30_000);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    await new Promise((r) => child.once('close', r));
    expect(stderr).toBe('');
    return JSON.parse(stdout);
  }

  test('another uid is an agent; the same uid listed in operatorUids is an operator', async () => {
    const plain = await start({ socketMode: 0o666 });
    expect(await asUser(NOBODY, plain.socketPath)).toEqual({ version: 'agent', gate_check: 'ok', create_permit: 'ERR_FORBIDDEN', policy_reload: 'ERR_FORBIDDEN' });
    const listed = await start({ socketMode: 0o666, operatorUids: [NOBODY] });
    expect(await asUser(NOBODY, listed.socketPath)).toEqual({ version: 'operator', gate_check: 'ok', create_permit: 'ok', policy_reload: 'ok' });
  });

  test('the auth lockout follows the uid across reconnects', async () => {
    const { socketPath } = await start({ operatorToken: Buffer.from(OPERATOR_TOKEN), socketMode: 0o666 });
    for (let i = 0; i < 5; i++) {
      const c = await connect(socketPath); // a new connection each time
      await expect(c.auth('wrong-token-0123456789')).rejects.toMatchObject({ data: { code: 'ERR_AUTH_FAILED' } });
      c.close();
    }
    const fresh = await connect(socketPath);
    await expect(fresh.auth(OPERATOR_TOKEN)).rejects.toMatchObject({ data: { code: 'ERR_AUTH_BLOCKED' } });
    // Another uid is another client: not blocked.
    const script = `
      const { GuardClient } = require(${JSON.stringify(path.join(repoRoot, 'dist', 'index.js'))});
      GuardClient.connect(process.argv[1], { timeoutMs: 5000 }).then((c) => c.auth(${JSON.stringify(OPERATOR_TOKEN)}).then((r) => { console.log(r.role); c.close(); }, (e) => { console.log(e.data.code); c.close(); }));`;
    const child = startChild(process.execPath, ['-e', script, socketPath], { uid: NOBODY, gid: NOBODY, stdio: ['ignore', 'pipe', 'inherit'] }, 30_000);
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    await new Promise((r) => child.once('close', r));
    expect(out.trim()).toBe('operator');
  });
});

describe.skipIf(!native)('new connections per client (peer uid)', () => {
  test('past its rate (and burst) a client\'s new connections are closed at once; its open ones keep working', async () => {
    const { socketPath } = await start({ connectionsPerSecond: 1 }); // bursts of 2
    const first = await connect(socketPath);
    const second = await connect(socketPath);
    expect(await first.ping()).toBe('pong');
    expect(await second.ping()).toBe('pong');
    // The third, right away, is refused before anything is read.
    const third = await GuardClient.connect(socketPath, { timeoutMs: 5000 });
    cleanups.push(() => third.close());
    await expect(third.ping()).rejects.toThrow(/connection closed|ECONNRESET|EPIPE/);
    expect(await first.ping()).toBe('pong');
    expect(((await first.call('metrics')) as Record<string, number>).connections_rate_limited).toBe(1);
  });

  test('bad values are refused', () => {
    const context = { gate: new Gate({ policy: POLICY }), metrics: {} };
    for (const bad of [0, -1, 1.5]) expect(() => new GuardServer({ socketPath: '/tmp/x.sock', context, connectionsPerSecond: bad })).toThrow(RangeError);
  });
});

describe.skipIf(native)('auth lockout without peer identity (no addon)', () => {
  test('is per connection: another connection is not blocked by this one', async () => {
    const { socketPath } = await start({ operatorToken: Buffer.from(OPERATOR_TOKEN) });
    const bad = await connect(socketPath);
    for (let i = 0; i < 5; i++) await expect(bad.auth('wrong-token-0123456789')).rejects.toMatchObject({ data: { code: 'ERR_AUTH_FAILED' } });
    await expect(bad.auth(OPERATOR_TOKEN)).rejects.toMatchObject({ data: { code: 'ERR_AUTH_BLOCKED' } });
    const other = await connect(socketPath);
    expect(await other.auth(OPERATOR_TOKEN)).toMatchObject({ role: 'operator' });
  });
});
