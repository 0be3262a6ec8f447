// Human approvals from the client side: `guardkernel approvals` (its flags,
// its output, its exit codes), GuardClient's approval methods and
// waitForApproval (against a scripted socket server: dropped connections,
// re-authentication, time limits), and the whole lifecycle over a real
// `guardkernel serve`: pending -> listed -> approved by the CLI -> the agent's
// retry allowed once -> pending again; the deny path; a waiting agent woken.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { GuardClient, RpcCallError } from '../lib/ipc/client';
import { APPROVALS_USAGE, formatApproval, formatApprovalTable, formatDuration, formatOutcome, parseApprovalsArgs, safeJson, safeText } from '../lib/cli/approvals';
import type { ApprovalRequest } from '../lib/ipc/client';
import { runSync, startChild } from './child';
import { cli, startServe } from './serve-process';

const env = { ...process.env, XDG_RUNTIME_DIR: '', GUARD_HMAC_SECRET: '' };
const ID = 'apr_' + 'Ab0_-'.repeat(4) + 'xy'; // 22 characters after the prefix
const OTHER_ID = 'apr_' + 'Z'.repeat(22);

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function approvalsSync(args: string[]) {
  return runSync(process.execPath, [cli, 'approvals', ...args], { encoding: 'utf8', env, timeout: 30_000 });
}

/** The CLI as a child the event loop does not block on (the test's own clients keep running meanwhile). */
function approvals(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = startChild(process.execPath, [cli, 'approvals', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] }, 60_000);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.once('close', (status) => resolve({ status, stdout, stderr })));
}

function record(overrides: Partial<ApprovalRequest> = {}): ApprovalRequest {
  return {
    id: ID,
    status: 'pending',
    car_hash: 'sha256:' + 'ab'.repeat(32),
    car: { action_type: 'shell_exec', agent_id: 'agent-ops-1', args: { cmd: 'ls /srv', token: 'sha256:' + 'cd'.repeat(32) } },
    agent_id: 'agent-ops-1',
    action_type: 'shell_exec',
    session_id: null,
    rule: 'shell_exec',
    policy_version: 3,
    requested_at: 1_700_000_000_000,
    expires_at: 1_700_000_900_000,
    requester: 'token:agent',
    approvers: null,
    min_approvals: 1,
    approvals: [],
    decided_by: null,
    decided_at: null,
    reason: null,
    used_at: null,
    ...overrides,
  };
}

describe('guardkernel approvals: arguments', () => {
  test('each command parses to what it asks for', () => {
    expect(parseApprovalsArgs(['list'])).toEqual({ command: 'list', json: false });
    expect(parseApprovalsArgs(['list', '--status', 'pending', '--json', '--socket', '/s', '--auth-token-file', '/t'])).toEqual({ command: 'list', json: true, status: 'pending', socket: '/s', authTokenFile: '/t' });
    expect(parseApprovalsArgs(['show', ID, '--json'])).toEqual({ command: 'show', id: ID, json: true });
    expect(parseApprovalsArgs(['approve', '--reason', 'change 42', ID])).toEqual({ command: 'approve', id: ID, json: false, reason: 'change 42' });
    expect(parseApprovalsArgs(['deny', ID])).toEqual({ command: 'deny', id: ID, json: false });
    for (const help of [['--help'], ['-h'], ['help'], ['approve', '--help'], ['list', '--nope', '--help']]) expect(parseApprovalsArgs(help)).toBe('help');
  });

  test('bad usage is refused, naming the problem', () => {
    const cases: Array<[string[], RegExp]> = [
      [[], /missing command/],
      [['lst'], /unknown command "lst"/],
      [['list', '--nope'], /unknown option "--nope"/],
      [['list', '--reason', 'x'], /--reason is not an option of list/],
      [['show', ID, '--status', 'pending'], /--status is not an option of show/],
      [['approve', ID, '--json'], /--json is not an option of approve/],
      [['list', '--status', 'open'], /--status must be one of pending, granted, denied, expired, used, not "open"/],
      [['list', '--status'], /--status needs a value/],
      [['list', '--json', '--json'], /--json given twice/],
      [['list', ID], /list takes no arguments/],
      [['show'], /show needs the request's ID/],
      [['approve', '--reason', 'ok'], /approve needs the request's ID/],
      [['deny', ID, OTHER_ID], /deny takes one ID, got 2/],
      [['approve', ID, '--reason', '  '], /--reason needs some text/],
      [['approve', ID, '--reason'], /--reason needs a value/],
      [['approve', ID, '--socket'], /--socket needs a value/],
    ];
    for (const [args, message] of cases) expect(() => parseApprovalsArgs(args), args.join(' ')).toThrow(message);
  });

  test('an ID must be apr_ and exactly 22 base64url characters', () => {
    for (const bad of ['apr_' + 'A'.repeat(21), 'apr_' + 'A'.repeat(23), 'APR_' + 'A'.repeat(22), 'apx_' + 'A'.repeat(22), 'apr_' + 'A'.repeat(21) + '=', 'apr_' + 'A'.repeat(21) + '/', 'apr_' + 'A'.repeat(21) + '.', 'apr_' + 'A'.repeat(21) + 'é', ' ' + ID, ID + '\n', 'sha256:' + 'a'.repeat(64)]) {
      expect(() => parseApprovalsArgs(['approve', bad]), JSON.stringify(bad)).toThrow(/is not an approval id/);
    }
    expect(parseApprovalsArgs(['approve', 'apr_' + '-_'.repeat(11)])).toMatchObject({ id: 'apr_' + '-_'.repeat(11) });
  });
});

describe('guardkernel approvals: output', () => {
  const now = 1_700_000_000_000 + 60_000;

  test('list prints one aligned row per request, with the time left and a short CAR hash', () => {
    const text = formatApprovalTable([record(), record({ id: OTHER_ID, status: 'used', agent_id: 'agent-b', used_at: now })], now);
    const lines = text.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^ID\s+STATUS\s+AGENT\s+ACTION\s+RULE\s+EXPIRES IN\s+CAR HASH$/);
    expect(lines[1]).toMatch(new RegExp(`^${ID}\\s+pending\\s+agent-ops-1\\s+shell_exec\\s+shell_exec\\s+14m00s\\s+sha256:abababababab$`));
    expect(lines[2]).toMatch(new RegExp(`^${OTHER_ID}\\s+used\\s+agent-b\\s+.*\\s-\\s+sha256:`));
    // Columns line up: every row's status starts where the header's does.
    expect(new Set(lines.map((l) => l.search(/STATUS|pending|used/))).size).toBe(1);
    expect(formatApprovalTable([], now)).toBe('no approval requests\n');
    expect(formatApprovalTable([], now, 'denied')).toBe('no denied approval requests\n');
  });

  test('what an agent chose cannot drive the operator terminal: control, bidi and format characters are shown escaped', () => {
    const evil = record({ agent_id: 'agent\u001b[2J\u001b]0;x\u0007-1', action_type: 'shell\u202eexe', rule: 'r\u009b31m', car: { action_type: 'shell_exec', agent_id: 'a', args: { cmd: 'rm -rf /\u001b[8m hidden \u2066\u200b' } } });
    for (const text of [formatApprovalTable([evil], now), formatApproval(evil, now), formatOutcome(evil), safeJson(evil)]) {
      expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u200b\u202e\u2066]/);
    }
    expect(formatApproval(evil, now)).toContain('agent\\u001b[2J\\u001b]0;x\\u0007-1');
    expect(formatApproval(evil, now)).toContain('shell\\u202eexe');
    // The JSON stays JSON, of the same value.
    expect(JSON.parse(safeJson(evil))).toEqual(evil);
    expect(safeText('plain ascii, ünïcödé and 日本語')).toBe('plain ascii, ünïcödé and 日本語');
    expect(safeText('\ud800x')).toBe('\\ud800x');
  });

  test('show prints every field and the CAR as indented JSON; approve/deny print the status after', () => {
    const r = record({ approvals: [{ approver: 'token:operator', at: now - 1000, reason: 'ok' }], min_approvals: 2, approvers: ['token:operator', 'uid:1*'] });
    const text = formatApproval(r, now);
    for (const want of [ID, 'pending', 'agent-ops-1', 'token:agent', 'token:operator, uid:1*', '1 of 2 needed', 'token:operator at 2023-11-14T22:14:19.000Z (1s ago): ok', `expires         2023-11-14T22:28:20.000Z (in 14m00s)`, 'sha256:' + 'ab'.repeat(32), '"cmd": "ls /srv"', `"token": "sha256:${'cd'.repeat(32)}"`]) {
      expect(text).toContain(want);
    }
    expect(formatOutcome(r)).toBe(`${ID}: pending (1 of 2 approvals)\n`);
    expect(formatOutcome(record({ status: 'granted', decided_by: 'token:operator' }))).toBe(`${ID}: granted by token:operator\n`);
    expect(formatOutcome(record({ status: 'denied', decided_by: 'uid:1000' }))).toBe(`${ID}: denied by uid:1000\n`);
    expect([0, 999, 59_999, 60_000, 3_599_999, 3_600_000, 86_399_999, 90_000_000].map(formatDuration)).toEqual(['0s', '0s', '59s', '1m00s', '59m59s', '1h00m', '23h59m', '1d01h']);
  });
});

describe('guardkernel approvals: the command', () => {
  test('--help shows the usage (exit 0); guardkernel help lists the command', () => {
    for (const args of [['--help'], ['help'], ['deny', '--help']]) {
      const r = approvalsSync(args);
      expect(r.status).toBe(0);
      expect(r.stdout).toBe(APPROVALS_USAGE);
    }
    for (const flag of ['list', 'show ID', 'approve ID', 'deny ID', '--status', '--json', '--reason', '--socket', '--auth-token-file']) expect(APPROVALS_USAGE).toContain(flag);
    expect(runSync(process.execPath, [cli, 'help'], { encoding: 'utf8' }).stdout).toContain('approvals list|show ID|approve ID|deny ID');
  });

  test('bad usage exits 2 with the problem and the usage on stderr', () => {
    for (const args of [[], ['list', '--nope'], ['approve'], ['approve', 'apr_short'], ['show', ID, ID], ['list', '--status', 'open']]) {
      const r = approvalsSync(args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^guardkernel approvals: /);
      expect(r.stderr).toContain('Usage: guardkernel approvals');
      expect(r.stdout).toBe('');
    }
  });

  test('no server at the socket: exit 2 saying so, for every command', () => {
    const socket = path.join(os.tmpdir(), `gk-no-server-${process.pid}.sock`);
    for (const args of [['list'], ['show', ID], ['approve', ID], ['deny', ID, '--reason', 'no']]) {
      const r = approvalsSync([...args, '--socket', socket]);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toBe(`guardkernel approvals: no server at ${socket}: start one with "guardkernel serve --socket ${socket}" (npm start in a clone), or pass --socket PATH naming the running server's socket\n`);
    }
    // A stale socket file (nobody listening) reads the same.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-apr-stale-'));
    const stale = path.join(dir, 'core.sock');
    const srv = net.createServer().listen(stale);
    return new Promise<void>((resolve) => srv.once('listening', resolve)).then(() => {
      // Closing a listening server removes its file; a copy made by a hard link stays, stale.
      fs.linkSync(stale, path.join(dir, 'stale.sock'));
      srv.close();
      const r = approvalsSync(['list', '--socket', path.join(dir, 'stale.sock')]);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/no server at .*stale\.sock: start one with "guardkernel serve --socket .*stale\.sock"/);
    });
  });

  test('an unreadable or empty token file exits 2 before connecting', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-apr-tok-'));
    fs.writeFileSync(path.join(dir, 'empty'), '\n');
    const missing = approvalsSync(['list', '--socket', path.join(dir, 'none.sock'), '--auth-token-file', path.join(dir, 'nope')]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/cannot read --auth-token-file .*nope: ENOENT/);
    const empty = approvalsSync(['list', '--socket', path.join(dir, 'none.sock'), '--auth-token-file', path.join(dir, 'empty')]);
    expect(empty.status).toBe(2);
    expect(empty.stderr).toMatch(/--auth-token-file .*empty is empty/);
  });
});

// A socket server that answers from a script: each request line is recorded
// (connection number, method, params) and answered with what `answer` returns:
// a reply body ({result} or {error}), 'drop' (close the connection), or null
// (no reply). A delay may be returned as a promise.
type Answer = { result: unknown } | { error: { code: number; message: string; data?: unknown } } | 'drop' | null;
interface Seen {
  conn: number;
  method: string;
  params?: Record<string, unknown>;
}
async function scripted(answer: (req: { method: string; params?: Record<string, unknown> }, conn: { n: number; authed: boolean }) => Answer | Promise<Answer>, socketPath?: string) {
  const file = socketPath ?? path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gk-apr-fake-')), 'core.sock');
  const seen: Seen[] = [];
  const sockets = new Set<net.Socket>();
  let conns = 0;
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    const conn = { n: ++conns, authed: false };
    let buf = '';
    s.on('data', (d) => {
      buf += d;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const req = JSON.parse(buf.slice(0, i));
        buf = buf.slice(i + 1);
        seen.push({ conn: conn.n, method: req.method, params: req.params });
        void Promise.resolve(answer(req, conn)).then((a) => {
          if (a === 'drop') s.destroy();
          else if (a !== null && !s.destroyed) s.write(JSON.stringify({ jsonrpc: '2.0', id: req.id, ...a }) + '\n');
        });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(file, resolve));
  const close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  cleanups.push(close);
  return { file, seen, close, methods: () => seen.map((s) => `${s.conn}:${s.method}`) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const unauthorized = { error: { code: -32001, message: 'Unauthorized: call auth first', data: { code: 'ERR_UNAUTHORIZED' } } };

async function connect(file: string, options?: { timeoutMs?: number }) {
  const c = await GuardClient.connect(file, options);
  cleanups.push(() => c.close());
  return c;
}

describe('GuardClient approval methods (scripted server)', () => {
  test('each method sends its params by name, as the contract names them', async () => {
    const fake = await scripted((req) => ({ result: req.method === 'approval_list' ? { approvals: [] } : record() }));
    const c = await connect(fake.file);
    await c.approvalList();
    await c.approvalList('granted');
    await c.approvalGet(ID);
    await c.approvalApprove(ID);
    await c.approvalApprove(ID, 'change 42');
    await c.approvalDeny(ID, 'no');
    await c.approvalWait(ID);
    await c.approvalWait(ID, 0);
    expect(fake.seen.map(({ method, params }) => [method, params])).toEqual([
      ['approval_list', {}],
      ['approval_list', { status: 'granted' }],
      ['approval_get', { id: ID }],
      ['approval_approve', { id: ID }],
      ['approval_approve', { id: ID, reason: 'change 42' }],
      ['approval_deny', { id: ID, reason: 'no' }],
      ['approval_wait', { id: ID }],
      ['approval_wait', { id: ID, timeout_ms: 0 }],
    ]);
  });

  test('bad arguments are refused before anything is sent', async () => {
    const fake = await scripted(() => ({ result: record() }));
    const c = await connect(fake.file);
    for (const bad of ['apr_short', ID + 'x', 42, undefined]) {
      await expect(c.approvalGet(bad as string)).rejects.toThrow(TypeError);
      await expect(c.approvalApprove(bad as string)).rejects.toThrow(/Expected an approval id/);
    }
    await expect(c.approvalDeny(ID, 7 as unknown as string)).rejects.toThrow(/Expected a string for reason/);
    for (const t of [-1, 1.5, 3_600_001, Number.NaN]) await expect(c.approvalWait(ID, t)).rejects.toThrow(RangeError);
    for (const t of [0, -5, 2.5, undefined]) await expect(c.waitForApproval(ID, { timeoutMs: t as number })).rejects.toThrow(RangeError);
    await expect(c.waitForApproval('apr_x', { timeoutMs: 1000 })).rejects.toThrow(TypeError);
    expect(fake.seen).toEqual([]);
  });

  test("approvalWait is not cut off by the client's own per-call timeout", async () => {
    const fake = await scripted(async (req) => {
      await sleep(400);
      return { result: req.method === 'approval_wait' ? record({ status: 'granted' }) : 'pong' };
    });
    const c = await connect(fake.file, { timeoutMs: 100 });
    // An ordinary call that slow is cut off...
    await expect(c.call('ping')).rejects.toThrow(/no reply within 100 ms/);
    // ...a wait of up to 5 s (plus the client's 100 ms) is not.
    await expect(c.approvalWait(ID, 5000)).resolves.toMatchObject({ status: 'granted' });
  });

  test('waitForApproval: waits in slices, reconnects after a drop, authenticates again, and returns the final request', async () => {
    let waits = 0;
    const fake = await scripted((req, conn) => {
      if (req.method === 'auth') {
        conn.authed = req.params?.token === 'the-token';
        return conn.authed ? { result: { session_id: 'x', expires_at: 0, role: 'agent' } } : { error: { code: -32001, message: 'Authentication failed', data: { code: 'ERR_AUTH_FAILED' } } };
      }
      waits++;
      if (waits === 1) return { result: { ...record(), timed_out: true } };
      if (waits === 2) return 'drop';
      if (conn.n >= 2 && !conn.authed) return unauthorized;
      return { result: record({ status: 'granted', decided_by: 'token:operator' }) };
    });
    const c = await connect(fake.file);
    const r = await c.waitForApproval(ID, { timeoutMs: 120_000, authToken: 'the-token' });
    expect(r).toMatchObject({ id: ID, status: 'granted', decided_by: 'token:operator' });
    expect(r.timed_out).toBeUndefined();
    expect(fake.methods()).toEqual(['1:approval_wait', '1:approval_wait', '2:approval_wait', '2:auth', '2:approval_wait']);
    for (const s of fake.seen.filter((x) => x.method === 'approval_wait')) {
      expect(s.params?.id).toBe(ID);
      expect(s.params?.timeout_ms).toBeGreaterThan(0);
      expect(s.params?.timeout_ms).toBeLessThanOrEqual(30_000); // slices, never the whole two minutes
    }
  });

  test('waitForApproval: without a token, a reconnect that needs one fails with the server refusal', async () => {
    let waits = 0;
    const fake = await scripted((_req, conn) => (++waits === 1 ? 'drop' : conn.authed ? { result: record() } : unauthorized));
    const c = await connect(fake.file);
    await expect(c.waitForApproval(ID, { timeoutMs: 60_000 })).rejects.toMatchObject({ rpcCode: -32001 });
    expect(fake.methods()).toEqual(['1:approval_wait', '2:approval_wait']);
  });

  test('waitForApproval: a token the server refuses is not retried', async () => {
    const fake = await scripted((req, conn) => (conn.n === 1 && req.method === 'approval_wait' ? 'drop' : req.method === 'auth' ? { error: { code: -32001, message: 'Authentication failed', data: { code: 'ERR_AUTH_FAILED' } } } : unauthorized));
    const c = await connect(fake.file);
    await expect(c.waitForApproval(ID, { timeoutMs: 60_000, authToken: 'wrong' })).rejects.toMatchObject({ rpcCode: -32001, data: { code: 'ERR_AUTH_FAILED' } });
    expect(fake.methods()).toEqual(['1:approval_wait', '2:approval_wait', '2:auth']);
  });

  test('waitForApproval: the server refusing (unknown id, forbidden) ends the wait at once', async () => {
    for (const code of ['ERR_APPROVAL_NOT_FOUND', 'ERR_FORBIDDEN']) {
      const fake = await scripted(() => ({ error: { code: -32000, message: `${code} here`, data: { code } } }));
      const c = await connect(fake.file);
      const err = await c.waitForApproval(ID, { timeoutMs: 60_000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RpcCallError);
      expect(err).toMatchObject({ rpcCode: -32000, data: { code } });
      expect(fake.seen).toHaveLength(1);
    }
  });

  test('waitForApproval: past its time it returns the still-pending request, marked timed_out', async () => {
    const fake = await scripted(async (req) => {
      await sleep(Math.min(Number(req.params?.timeout_ms ?? 30_000), 2000));
      return { result: { ...record(), timed_out: true } };
    });
    const c = await connect(fake.file);
    const r = await c.waitForApproval(ID, { timeoutMs: 300 });
    expect(r).toMatchObject({ id: ID, status: 'pending', timed_out: true });
    for (const s of fake.seen) expect(s.params?.timeout_ms).toBeLessThanOrEqual(300);
  });

  test('waitForApproval: with no server at all it fails, saying why, when its time is up', async () => {
    const fake = await scripted(() => ({ result: record() }));
    const c = await connect(fake.file);
    await fake.close();
    await expect(c.waitForApproval(ID, { timeoutMs: 300 })).rejects.toThrow(/waitForApproval apr_.*: no answer from .*core\.sock within 300 ms: .*(ENOENT|ECONNREFUSED)/);
  });

  test('waitForApproval: a server that restarts on the same socket is waited for', async () => {
    const first = await scripted(() => 'drop');
    const c = await connect(first.file);
    const wait = c.waitForApproval(ID, { timeoutMs: 60_000 });
    while (first.seen.length === 0) await sleep(10);
    await first.close();
    await sleep(200); // a few refused reconnects
    const second = await scripted(() => ({ result: record({ status: 'denied', decided_by: 'uid:0', reason: 'no' }) }), first.file);
    await expect(wait).resolves.toMatchObject({ status: 'denied', reason: 'no' });
    expect(second.seen.length).toBeGreaterThanOrEqual(1);
  });

  test('waitForApproval: an abort ends the wait with its reason, and the client stays usable', async () => {
    const fake = await scripted((req) => (req.method === 'ping' ? { result: 'pong' } : null));
    const c = await connect(fake.file);
    const ac = new AbortController();
    const wait = c.waitForApproval(ID, { timeoutMs: 60_000, signal: ac.signal });
    while (fake.seen.length === 0) await sleep(10);
    ac.abort(new Error('operator went home'));
    await expect(wait).rejects.toThrow('operator went home');
    await expect(c.ping()).resolves.toBe('pong');
    const aborted = AbortSignal.abort(new Error('before'));
    await expect(c.waitForApproval(ID, { timeoutMs: 60_000, signal: aborted })).rejects.toThrow('before');
    expect(fake.methods()).toEqual(['1:approval_wait', '1:ping']);
  });
});

// ---- Over a real `guardkernel serve` ----------------------------------------

const OPERATOR_TOKEN = 'operator-token-approvals-0123456789';
const AGENT_TOKEN = 'agent-token-approvals-0123456789';
const POLICY = {
  version: 1,
  mode: 'enforce',
  default: 'deny',
  actions: {
    shell_exec: { allow_identities: ['agent-*'], require_approval: true, redact: ['args.secret'] },
  },
};

/** A serve child with an approval rule and separate agent and operator tokens. */
async function serveWithApprovals() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-apr-serve-'));
  const files = { policy: path.join(dir, 'policy.json'), operator: path.join(dir, 'operator.token'), agent: path.join(dir, 'agent.token') };
  fs.writeFileSync(files.policy, JSON.stringify(POLICY));
  fs.writeFileSync(files.operator, OPERATOR_TOKEN + '\n', { mode: 0o600 });
  fs.writeFileSync(files.agent, AGENT_TOKEN + '\n', { mode: 0o600 });
  const s = startServe(['--state-dir', dir, '--policy', files.policy, '--operator-token-file', files.operator, '--agent-token-file', files.agent]);
  cleanups.push(async () => {
    s.child.kill('SIGTERM');
    await s.exited;
  });
  await s.ready;
  const socket = path.join(dir, 'core.sock');
  const agent = await connect(socket);
  await agent.auth(AGENT_TOKEN);
  const operatorArgs = ['--socket', socket, '--auth-token-file', files.operator];
  return { dir, socket, files, agent, operatorArgs, serve: s };
}

const car = (cmd: string) => ({ action_type: 'shell_exec', agent_id: 'agent-ops-1', args: { cmd, secret: 'hunter2' } });
type Decision = Awaited<ReturnType<GuardClient['gateCheck']>> & { approval_id?: string; approval_expires_at?: number };

describe('approvals over a running server', () => {
  test('pending -> listed -> approved by the CLI -> allowed once by approval -> pending again', async () => {
    const { agent, socket, files, operatorArgs } = await serveWithApprovals();
    const first = (await agent.gateCheck({ car: car('ls /srv') })) as Decision;
    expect(first).toMatchObject({ decision: 'pending', approval_id: expect.stringMatching(/^apr_[A-Za-z0-9_-]{22}$/), approval_expires_at: expect.any(Number) });
    const id = first.approval_id!;
    // Asking again while it is open gives the same request.
    expect(((await agent.gateCheck({ car: car('ls /srv') })) as Decision).approval_id).toBe(id);

    const table = await approvals(['list', ...operatorArgs]);
    expect(table.stderr).toBe('');
    expect(table.status).toBe(0);
    expect(table.stdout).toMatch(new RegExp(`^${id}\\s+pending\\s+agent-ops-1\\s+shell_exec\\s+shell_exec\\s+\\d+m\\d\\ds\\s+sha256:[0-9a-f]{12}$`, 'm'));
    const json = await approvals(['list', '--json', '--status', 'pending', ...operatorArgs]);
    expect(json.status).toBe(0);
    expect((JSON.parse(json.stdout) as { approvals: ApprovalRequest[] }).approvals.map((r) => r.id)).toEqual([id]);
    expect(JSON.parse((await approvals(['list', '--json', '--status', 'granted', ...operatorArgs])).stdout)).toEqual({ approvals: [] });

    // The operator reads the CAR with the redacted field as a digest.
    const shown = await approvals(['show', id, ...operatorArgs]);
    expect(shown.status).toBe(0);
    expect(shown.stdout).toContain('"cmd": "ls /srv"');
    expect(shown.stdout).toMatch(/"secret": "sha256:[0-9a-f]{64}"/);
    expect(shown.stdout).not.toContain('hunter2');
    expect(JSON.parse((await approvals(['show', id, '--json', ...operatorArgs])).stdout)).toMatchObject({ id, status: 'pending', requester: 'token:agent' });

    // Without a token, and with the agent's own token, the vote is refused (exit 1, the server's word).
    const anonymous = await approvals(['approve', id, '--socket', socket]);
    expect(anonymous.status).toBe(1);
    expect(anonymous.stderr).toMatch(/^guardkernel approvals: approve apr_\S+: Unauthorized.*\(ERR_UNAUTHORIZED\); pass --auth-token-file/);
    const self = await approvals(['approve', id, '--socket', socket, '--auth-token-file', files.agent]);
    expect(self.status).toBe(1);
    expect(self.stderr).toMatch(/\(ERR_FORBIDDEN\)/);
    expect(((await agent.gateCheck({ car: car('ls /srv') })) as Decision).decision).toBe('pending');

    const approved = await approvals(['approve', id, '--reason', 'change 42', ...operatorArgs]);
    expect(approved.stderr).toBe('');
    expect(approved.status).toBe(0);
    expect(approved.stdout).toBe(`${id}: granted by token:operator\n`);

    // The same CAR by the same agent: allowed once, by the approval...
    expect(await agent.gateCheck({ car: car('ls /srv') })).toMatchObject({ decision: 'allow', source: 'approval', approval_id: id });
    // ...then pending again, under a new request.
    const again = (await agent.gateCheck({ car: car('ls /srv') })) as Decision;
    expect(again.decision).toBe('pending');
    expect(again.approval_id).not.toBe(id);
    expect(JSON.parse((await approvals(['show', id, '--json', ...operatorArgs])).stdout)).toMatchObject({ status: 'used', decided_by: 'token:operator', reason: 'change 42' });

    // Deciding a request that is no longer pending: exit 1, ERR_APPROVAL_CLOSED.
    const closed = await approvals(['deny', id, ...operatorArgs]);
    expect(closed.status).toBe(1);
    expect(closed.stderr).toMatch(/\(ERR_APPROVAL_CLOSED\)/);
    const unknown = await approvals(['show', OTHER_ID, ...operatorArgs]);
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toMatch(/\(ERR_APPROVAL_NOT_FOUND\)/);
  });

  test('deny: the agent is denied by the approval until the request expires', async () => {
    const { agent, operatorArgs } = await serveWithApprovals();
    const id = ((await agent.gateCheck({ car: car('rm -rf /srv/tmp') })) as Decision).approval_id!;
    const denied = await approvals(['deny', id, '--reason', 'not today', ...operatorArgs]);
    expect(denied.status).toBe(0);
    expect(denied.stdout).toBe(`${id}: denied by token:operator\n`);
    for (let i = 0; i < 2; i++) {
      const d = (await agent.gateCheck({ car: car('rm -rf /srv/tmp') })) as Decision;
      expect(d).toMatchObject({ decision: 'deny', source: 'approval', approval_id: id });
      expect(d.reason).toContain('not today');
    }
    // Another CAR is a request of its own.
    expect(((await agent.gateCheck({ car: car('ls') })) as Decision).decision).toBe('pending');
  });

  test('an agent waiting with waitForApproval wakes when the CLI approves; it may read its own request, not list all', async () => {
    const { agent, socket, operatorArgs } = await serveWithApprovals();
    const id = ((await agent.gateCheck({ car: car('uptime') })) as Decision).approval_id!;
    expect(await agent.approvalGet(id)).toMatchObject({ id, status: 'pending', agent_id: 'agent-ops-1' });
    expect(await agent.approvalWait(id, 0)).toMatchObject({ id, status: 'pending', timed_out: true });
    await expect(agent.approvalList()).rejects.toMatchObject({ data: { code: 'ERR_FORBIDDEN' } });
    await expect(agent.approvalApprove(id)).rejects.toMatchObject({ data: { code: 'ERR_FORBIDDEN' } });

    // The waiter has a client of its own; the agent's gate client stays free.
    const waiter = await connect(socket);
    await waiter.auth(AGENT_TOKEN);
    const woken = waiter.waitForApproval(id, { timeoutMs: 120_000, authToken: AGENT_TOKEN });
    const approved = await approvals(['approve', id, ...operatorArgs]);
    expect(approved.status).toBe(0);
    await expect(woken).resolves.toMatchObject({ id, status: 'granted', decided_by: 'token:operator' });
    expect(await agent.gateCheck({ car: car('uptime') })).toMatchObject({ decision: 'allow', source: 'approval' });
    // A finished request answers a wait at once.
    expect(await waiter.approvalWait(id, 60_000)).toMatchObject({ id, status: 'used' });
  });
});
