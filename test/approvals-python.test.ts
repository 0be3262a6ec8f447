// The Python client's approval methods (clients/python/guardkernel_client.py):
// against a scripted asyncio server in the same Python process (params on the
// wire, argument checks, the per-call limit of approval_wait, and
// wait_for_approval's slices, reconnects and time limit), then the lifecycle
// over a real `guardkernel serve` driven from Python: an agent waiting with
// wait_for_approval wakes when the CLI or a TS client approves, its retry is
// allowed once, the next is pending again; an operator lists, reads, denies.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { GuardClient } from '../lib/ipc/client';
import { runSync, startChild } from './child';
import { repoRoot } from './helpers';
import { skipWithout, toolMissing } from './prerequisites';
import { cli, startServe } from './serve-process';

const python = skipWithout('python3', toolMissing('python3')) ? null : 'python3';
const env = { ...process.env, XDG_RUNTIME_DIR: '', GUARD_HMAC_SECRET: '' };
const clientDir = path.join(repoRoot, 'clients', 'python');

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function scriptFile(name: string, text: string): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gk-apr-py-')), name);
  fs.writeFileSync(file, `import sys\nsys.path.insert(0, ${JSON.stringify(clientDir)})\n${text}`);
  return file;
}

/** Runs a Python script that prints one JSON document; returns it. */
function runPython(file: string, args: string[] = []): Record<string, unknown> {
  const r = runSync(python!, [file, ...args], { encoding: 'utf8', timeout: 60_000 });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout);
}

/** A Python child that prints JSON lines: `next()` resolves with each in turn. */
function pythonLines(file: string, args: string[]) {
  const child = startChild(python!, [file, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }, 120_000);
  cleanups.push(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let buf = '';
  let err = '';
  const lines: unknown[] = [];
  const waiting: Array<(v: unknown) => void> = [];
  child.stdout!.on('data', (d) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const v = JSON.parse(buf.slice(0, i));
      buf = buf.slice(i + 1);
      const w = waiting.shift();
      if (w) w(v);
      else lines.push(v);
    }
  });
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    next: <T = Record<string, unknown>>(): Promise<T> =>
      lines.length > 0
        ? Promise.resolve(lines.shift() as T)
        : Promise.race([new Promise<T>((resolve) => waiting.push(resolve as (v: unknown) => void)), exited.then((code) => Promise.reject(new Error(`python exited ${code}: ${err}`)))]),
    exited,
    stderr: () => err,
  };
}

function approvals(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = startChild(process.execPath, [cli, 'approvals', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] }, 60_000);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.once('close', (status) => resolve({ status, stdout, stderr })));
}

// The scripted server and the cases, all in one Python process.
const SCRIPTED = `
import asyncio, faulthandler, json, os, tempfile, traceback
from guardkernel_client import GuardClient, RpcError

faulthandler.dump_traceback_later(50, exit=True)  # a hang says where, before the test's limit

ID = "apr_" + "Ab0_-" * 4 + "xy"

def record(status="pending", **extra):
    r = dict(id=ID, status=status, car_hash="sha256:" + "ab" * 32, car={}, agent_id="agent-1", action_type="shell_exec",
             session_id=None, rule="shell_exec", policy_version=1, requested_at=0, expires_at=1, requester="token:agent",
             approvers=None, min_approvals=1, approvals=[], decided_by=None, decided_at=None, reason=None, used_at=None)
    r.update(extra)
    return r

UNAUTHORIZED = {"error": {"code": -32001, "message": "Unauthorized: call auth first", "data": {"code": "ERR_UNAUTHORIZED"}}}

async def scripted(path, answer):
    seen = []
    count = [0]
    async def handle(reader, writer):
        count[0] += 1
        conn = {"n": count[0], "authed": False}
        while True:
            line = await reader.readline()
            if not line:
                break
            req = json.loads(line)
            seen.append([conn["n"], req["method"], req.get("params")])
            try:
                reply = await answer(req, conn)
            except Exception:
                traceback.print_exc()
                os._exit(3)  # a broken script fails at once instead of leaving the client waiting
            if reply == "drop":
                writer.close()
                return
            if reply is not None:
                writer.write((json.dumps(dict(jsonrpc="2.0", id=req["id"], **reply)) + chr(10)).encode())
                await writer.drain()
        writer.close()
    server = await asyncio.start_unix_server(handle, path)
    return server, seen

def methods(seen):
    return [f"{n}:{m}" for n, m, _ in seen]

async def main():
    out = {}
    base = tempfile.mkdtemp(prefix="gk-apr-pyfake-")
    sock = lambda name: os.path.join(base, name + ".sock")

    # 1. Params by name, as the contract names them.
    async def record_answer(req, conn):
        return {"result": {"approvals": []} if req["method"] == "approval_list" else record()}
    server, seen = await scripted(sock("params"), record_answer)
    c = await GuardClient.connect(sock("params"))
    await c.approval_list()
    await c.approval_list("granted")
    await c.approval_get(ID)
    await c.approval_approve(ID)
    await c.approval_approve(ID, reason="change 42")
    await c.approval_deny(ID, "no")
    await c.approval_wait(ID)
    await c.approval_wait(ID, timeout_ms=0)
    out["params"] = [[m, p] for _, m, p in seen]
    # 2. Bad arguments never reach the server.
    refused = []
    for call in (lambda: c.approval_get("apr_short"), lambda: c.approval_approve(ID + "x"), lambda: c.approval_deny(42),
                 lambda: c.approval_deny(ID, reason=7), lambda: c.approval_wait(ID, -1), lambda: c.approval_wait(ID, 3_600_001),
                 lambda: c.approval_wait(ID, True), lambda: c.approval_wait(ID, 1.5), lambda: c.wait_for_approval(ID, timeout=0),
                 lambda: c.wait_for_approval("apr_x", timeout=1)):
        try:
            await call()
            refused.append(None)
        except ValueError as err:
            refused.append(str(err))
    out["refused"] = refused
    out["sent_after_refusals"] = len(seen)
    await c.close()
    server.close()

    # 3. approval_wait is not cut off by the client's own timeout.
    async def slow(req, conn):
        await asyncio.sleep(0.4)
        return {"result": record("granted") if req["method"] == "approval_wait" else "pong"}
    server, seen = await scripted(sock("slow"), slow)
    c = await GuardClient.connect(sock("slow"), timeout=0.1)
    try:
        await c.ping()
        out["slow_ping"] = "answered"
    except asyncio.TimeoutError:
        out["slow_ping"] = "timed out"
    out["slow_wait"] = (await c.approval_wait(ID, timeout_ms=5000))["status"]
    await c.close()
    server.close()

    # 4. wait_for_approval: a timed-out slice, a dropped connection, a reconnect that authenticates again.
    waits = [0]
    async def flaky(req, conn):
        if req["method"] == "auth":
            conn["authed"] = req["params"]["token"] == "the-token"
            return {"result": {"session_id": "x", "expires_at": 0, "role": "agent"}}
        waits[0] += 1
        if waits[0] == 1:
            return {"result": dict(record(), timed_out=True)}
        if waits[0] == 2:
            return "drop"
        if not conn["authed"]:
            return UNAUTHORIZED
        return {"result": record("granted", decided_by="token:operator")}
    server, seen = await scripted(sock("flaky"), flaky)
    c = await GuardClient.connect(sock("flaky"))
    r = await c.wait_for_approval(ID, timeout=120, token="the-token")
    out["flaky"] = {"status": r["status"], "timed_out": r.get("timed_out"), "methods": methods(seen),
                    "slices": [p["timeout_ms"] for _, m, p in seen if m == "approval_wait"]}
    # The client keeps working on its new connection.
    out["flaky_after"] = (await c.approval_get(ID))["status"]
    await c.close()
    server.close()

    # 5. Past its time: the still-pending request, marked timed_out.
    async def pending(req, conn):
        await asyncio.sleep(min(req["params"].get("timeout_ms", 30000), 2000) / 1000)
        return {"result": dict(record(), timed_out=True)}
    server, seen = await scripted(sock("pending"), pending)
    c = await GuardClient.connect(sock("pending"))
    r = await c.wait_for_approval(ID, timeout=0.3)
    out["pending"] = {"status": r["status"], "timed_out": r.get("timed_out"), "max_slice": max(p["timeout_ms"] for _, _, p in seen)}
    await c.close()
    server.close()

    # 6. The server's refusal ends the wait at once.
    async def missing(req, conn):
        return {"error": {"code": -32000, "message": "no such request", "data": {"code": "ERR_APPROVAL_NOT_FOUND"}}}
    server, seen = await scripted(sock("missing"), missing)
    c = await GuardClient.connect(sock("missing"))
    try:
        await c.wait_for_approval(ID, timeout=60)
        out["missing"] = None
    except RpcError as err:
        out["missing"] = {"code": err.code, "rpc_code": err.rpc_code, "data": err.data, "calls": len(seen)}
    await c.close()
    server.close()

    # 7. No server any more: a TimeoutError saying why, when the time is up.
    holder = {}
    async def vanish(req, conn):
        holder["server"].close()
        return "drop"
    server, seen = await scripted(sock("vanish"), vanish)
    holder["server"] = server
    c = await GuardClient.connect(sock("vanish"))
    try:
        await c.wait_for_approval(ID, timeout=0.3)
        out["vanish"] = None
    except TimeoutError as err:
        out["vanish"] = str(err)
    await c.close()

    # 8. A server that restarts on the same socket is waited for.
    async def gone(req, conn):
        holder["server"].close()
        async def later():
            await asyncio.sleep(0.2)
            async def denied(req, conn):
                return {"result": record("denied", decided_by="uid:0", reason="no")}
            holder["second"] = await scripted(sock("restart"), denied)
        holder["task"] = asyncio.get_running_loop().create_task(later())
        return "drop"
    server, seen = await scripted(sock("restart"), gone)
    holder["server"] = server
    c = await GuardClient.connect(sock("restart"))
    r = await c.wait_for_approval(ID, timeout=60)
    out["restart"] = {"status": r["status"], "reason": r["reason"], "second_calls": len(holder["second"][1])}
    await c.close()
    holder["second"][0].close()
    print(json.dumps(out))

asyncio.run(main())
`;

describe('the Python client: approvals against a scripted server', () => {
  test.runIf(python !== null)('params by name, argument checks, approval_wait past the client timeout, wait_for_approval retries and limits', () => {
    const out = runPython(scriptFile('scripted.py', SCRIPTED)) as Record<string, any>;
    const ID = 'apr_' + 'Ab0_-'.repeat(4) + 'xy';
    expect(out.params).toEqual([
      ['approval_list', null],
      ['approval_list', { status: 'granted' }],
      ['approval_get', { id: ID }],
      ['approval_approve', { id: ID }],
      ['approval_approve', { id: ID, reason: 'change 42' }],
      ['approval_deny', { id: ID, reason: 'no' }],
      ['approval_wait', { id: ID }],
      ['approval_wait', { id: ID, timeout_ms: 0 }],
    ]);
    expect(out.refused).toHaveLength(10);
    for (const message of out.refused) expect(message).toMatch(/approval id|reason must be|timeout_ms must be|timeout must be/);
    expect(out.sent_after_refusals).toBe(8);
    expect(out.slow_ping).toBe('timed out');
    expect(out.slow_wait).toBe('granted');
    expect(out.flaky).toMatchObject({ status: 'granted', timed_out: null, methods: ['1:approval_wait', '1:approval_wait', '2:auth', '2:approval_wait'] });
    for (const slice of out.flaky.slices) expect(slice).toBeLessThanOrEqual(30_000);
    expect(out.flaky_after).toBe('granted');
    expect(out.pending).toMatchObject({ status: 'pending', timed_out: true });
    expect(out.pending.max_slice).toBeLessThanOrEqual(300);
    expect(out.missing).toEqual({ code: 'ERR_APPROVAL_NOT_FOUND', rpc_code: -32000, data: { code: 'ERR_APPROVAL_NOT_FOUND' }, calls: 1 });
    expect(out.vanish).toMatch(/wait_for_approval apr_\S+: no answer within 0\.3 s: (ConnectionRefusedError|FileNotFoundError)/);
    expect(out.restart).toMatchObject({ status: 'denied', reason: 'no' });
    expect(out.restart.second_calls).toBeGreaterThanOrEqual(1);
  });
});

// ---- Over a real `guardkernel serve` ----------------------------------------

const OPERATOR_TOKEN = 'operator-token-python-0123456789';
const AGENT_TOKEN = 'agent-token-python-0123456789';
const POLICY = { version: 1, mode: 'enforce', default: 'deny', actions: { shell_exec: { allow_identities: ['agent-*'], require_approval: true } } };

async function serveWithApprovals(dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-apr-pyserve-'))) {
  const files = { policy: path.join(dir, 'policy.json'), operator: path.join(dir, 'operator.token'), agent: path.join(dir, 'agent.token') };
  fs.writeFileSync(files.policy, JSON.stringify(POLICY));
  fs.writeFileSync(files.operator, OPERATOR_TOKEN + '\n', { mode: 0o600 });
  fs.writeFileSync(files.agent, AGENT_TOKEN + '\n', { mode: 0o600 });
  const s = startServe(['--state-dir', dir, '--policy', files.policy, '--operator-token-file', files.operator, '--agent-token-file', files.agent]);
  cleanups.push(async () => {
    if (s.child.exitCode === null) s.child.kill('SIGTERM');
    await s.exited;
  });
  await s.ready;
  return { dir, socket: path.join(dir, 'core.sock'), files, serve: s, operatorArgs: ['--socket', path.join(dir, 'core.sock'), '--auth-token-file', files.operator] };
}

// An agent in Python: asks, says what it got, waits for the approval, then
// asks again twice, saying what it got each time.
const AGENT = `
import asyncio, json
from guardkernel_client import GuardClient

async def main(socket, token, cmd):
    c = await GuardClient.connect(socket)
    await c.auth(token)
    car = {"action_type": "shell_exec", "agent_id": "agent-py-1", "args": {"cmd": cmd}}
    first = await c.gate_check(car)
    print(json.dumps(first), flush=True)
    mine = await c.approval_get(first["approval_id"])
    print(json.dumps({"own": mine["status"], "requester": mine["requester"]}), flush=True)
    woken = await c.wait_for_approval(first["approval_id"], timeout=120, token=token)
    print(json.dumps(woken), flush=True)
    print(json.dumps(await c.gate_check(car)), flush=True)
    print(json.dumps(await c.gate_check(car)), flush=True)
    await c.close()

asyncio.run(main(*sys.argv[1:4]))
`;

// An operator in Python: lists, reads, denies; and what the server refuses.
const OPERATOR = `
import asyncio, json
from guardkernel_client import GuardClient, RpcError

async def main(socket, token, agent_token, id):
    out = {}
    c = await GuardClient.connect(socket)
    await c.auth(token)
    out["pending"] = [r["id"] for r in (await c.approval_list("pending"))["approvals"]]
    out["all"] = [r["id"] for r in (await c.approval_list())["approvals"]]
    got = await c.approval_get(id)
    out["got"] = {k: got[k] for k in ("id", "status", "agent_id", "rule", "requester")}
    out["wait0"] = {k: v for k, v in (await c.approval_wait(id, timeout_ms=0)).items() if k in ("status", "timed_out")}
    denied = await c.approval_deny(id, reason="not from python")
    out["denied"] = {k: denied[k] for k in ("status", "decided_by", "reason")}
    out["wait_denied"] = (await c.approval_wait(id, timeout_ms=60000))["status"]
    out["errors"] = {}
    for name, call in (("approve_closed", lambda: c.approval_approve(id)),
                       ("unknown", lambda: c.approval_get("apr_" + "Z" * 22))):
        try:
            await call()
            out["errors"][name] = None
        except RpcError as err:
            out["errors"][name] = [err.rpc_code, err.code]
    await c.close()
    agent = await GuardClient.connect(socket)
    await agent.auth(agent_token)
    try:
        await agent.approval_list()
        out["agent_list"] = None
    except RpcError as err:
        out["agent_list"] = [err.rpc_code, err.code]
    await agent.close()
    print(json.dumps(out))

asyncio.run(main(*sys.argv[1:5]))
`;

describe('the Python client: approvals over a running server', () => {
  test.runIf(python !== null)('an agent waiting with wait_for_approval wakes when the CLI approves; allowed once, then pending again', async () => {
    const { socket, operatorArgs } = await serveWithApprovals();
    const agent = pythonLines(scriptFile('agent.py', AGENT), [socket, AGENT_TOKEN, 'ls /srv']);
    const first = await agent.next<{ decision: string; approval_id: string }>();
    expect(first).toMatchObject({ decision: 'pending', approval_id: expect.stringMatching(/^apr_[A-Za-z0-9_-]{22}$/) });
    expect(await agent.next()).toEqual({ own: 'pending', requester: 'token:agent' });
    const approved = await approvals(['approve', first.approval_id, ...operatorArgs]);
    expect(approved.stderr).toBe('');
    expect(approved.stdout).toBe(`${first.approval_id}: granted by token:operator\n`);
    expect(await agent.next()).toMatchObject({ id: first.approval_id, status: 'granted', decided_by: 'token:operator' });
    expect(await agent.next()).toMatchObject({ decision: 'allow', source: 'approval', approval_id: first.approval_id });
    const again = await agent.next<{ decision: string; approval_id: string }>();
    expect(again.decision).toBe('pending');
    expect(again.approval_id).not.toBe(first.approval_id);
    expect(await agent.exited).toBe(0);
    expect(agent.stderr()).toBe('');
  });

  test.runIf(python !== null)('wait_for_approval wakes when a TS client approves, across a server restart (reconnect, authenticate again)', async () => {
    const first = await serveWithApprovals();
    const agent = pythonLines(scriptFile('agent.py', AGENT), [first.socket, AGENT_TOKEN, 'uptime']);
    const pending = await agent.next<{ approval_id: string }>();
    await agent.next(); // its own request, read back
    // The server goes away while the agent waits, and comes back on the same state directory.
    first.serve.child.kill('SIGTERM');
    expect(await first.serve.exited).toBe(0);
    const second = await serveWithApprovals(first.dir);
    const operator = await GuardClient.connect(second.socket);
    cleanups.push(() => operator.close());
    await operator.auth(OPERATOR_TOKEN);
    expect(await operator.approvalApprove(pending.approval_id, 'after the restart')).toMatchObject({ status: 'granted', decided_by: 'token:operator' });
    expect(await agent.next()).toMatchObject({ id: pending.approval_id, status: 'granted', reason: 'after the restart' });
    expect(await agent.next()).toMatchObject({ decision: 'allow', source: 'approval' });
    expect(await agent.next()).toMatchObject({ decision: 'pending' });
    expect(await agent.exited).toBe(0);
  });

  test.runIf(python !== null)('an operator in Python lists, reads and denies; the server refusals arrive as RpcError', async () => {
    const { socket } = await serveWithApprovals();
    const agent = await GuardClient.connect(socket);
    cleanups.push(() => agent.close());
    await agent.auth(AGENT_TOKEN);
    const d = (await agent.gateCheck({ car: { action_type: 'shell_exec', agent_id: 'agent-py-2', args: { cmd: 'reboot' } } })) as { decision: string; approval_id?: string };
    expect(d.decision).toBe('pending');
    const id = d.approval_id!;
    const out = runPython(scriptFile('operator.py', OPERATOR), [socket, OPERATOR_TOKEN, AGENT_TOKEN, id]);
    expect(out).toEqual({
      pending: [id],
      all: [id],
      got: { id, status: 'pending', agent_id: 'agent-py-2', rule: 'shell_exec', requester: 'token:agent' },
      wait0: { status: 'pending', timed_out: true },
      denied: { status: 'denied', decided_by: 'token:operator', reason: 'not from python' },
      wait_denied: 'denied',
      errors: { approve_closed: [-32000, 'ERR_APPROVAL_CLOSED'], unknown: [-32000, 'ERR_APPROVAL_NOT_FOUND'] },
      agent_list: [-32000, 'ERR_FORBIDDEN'],
    });
    expect(await agent.gateCheck({ car: { action_type: 'shell_exec', agent_id: 'agent-py-2', args: { cmd: 'reboot' } } })).toMatchObject({ decision: 'deny', source: 'approval' });
  });
});
