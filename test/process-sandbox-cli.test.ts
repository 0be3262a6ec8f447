// `guardkernel exec` (exit codes: the command's, 125 + a reason), the
// quarantine mapping (gate.sandboxFor, applySandboxProfile) and
// `exec --agent ID` against a real `guardkernel serve`.
import { startChild } from './child';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { ErrorCodes, Gate, GuardClient, GuardError, PolicyEngine } from '../lib/index';
import { applySandboxProfile } from '../lib/sandbox';
import { canSandbox, python, sandboxCaps, tempTree } from './process-sandbox-helpers';
import { cli, startServe } from './serve-process';

function exec(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = startChild(process.execPath, [cli, 'exec', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d));
    child.stderr!.on('data', (d: Buffer) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const POLICY = { version: 1, mode: 'enforce', default: 'deny', actions: {} };

describe('gate.sandboxFor: quarantine isolation -> sandbox profile', () => {
  test('free, network, filesystem, full, a pattern list, terminated, recovered', () => {
    const gate = new Gate({ policy: new PolicyEngine(POLICY) });
    try {
      expect(gate.sandboxFor('free')).toEqual({ allowed: true });
      gate.quarantine.quarantine('net', 'exfiltration suspected', { isolation: 'network' });
      expect(gate.sandboxFor('net')).toMatchObject({ allowed: true, network: 'none' });
      expect(gate.sandboxFor('net').readOnly).toBeUndefined();
      gate.quarantine.quarantine('fs', 'wrote to /etc', { isolation: 'filesystem' });
      expect(gate.sandboxFor('fs')).toMatchObject({ allowed: true, readOnly: true });
      expect(gate.sandboxFor('fs').network).toBeUndefined();
      gate.quarantine.quarantine('full', 'compromised', { isolation: 'full' });
      expect(gate.sandboxFor('full')).toMatchObject({ allowed: false, reason: expect.stringContaining('compromised') });
      gate.quarantine.quarantine('list', 'odd', { isolation: ['shell_*'] });
      expect(gate.sandboxFor('list')).toMatchObject({ allowed: true, network: 'none', readOnly: true });
      gate.quarantine.terminate('list', 'done');
      expect(gate.sandboxFor('list').allowed).toBe(false);
      gate.quarantine.recover('net', 'cleared');
      expect(gate.sandboxFor('net')).toEqual({ allowed: true });
    } finally {
      gate.close();
    }
  });

  test('applySandboxProfile: the stricter setting wins; full refuses; a quarantine cannot be lowered by allowWeaker', () => {
    expect(applySandboxProfile({ network: 'host' }, { allowed: true, network: 'none' }).network).toBe('none');
    expect(applySandboxProfile({}, { allowed: true, readOnly: true }).filesystem).toEqual({ read: ['/'] });
    expect(applySandboxProfile({ filesystem: { read: ['/a'], write: ['/b'] } }, { allowed: true, readOnly: true }).filesystem).toEqual({ read: ['/a', '/b'], write: [], system: undefined });
    expect(applySandboxProfile({ allowWeaker: ['network', 'seccomp'] }, { allowed: true, network: 'none' }).allowWeaker).toEqual(['seccomp']);
    let err: unknown;
    try {
      applySandboxProfile({}, { allowed: false, reason: 'quarantined (full)' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GuardError);
    expect((err as GuardError).code).toBe(ErrorCodes.FORBIDDEN);
  });
});

describe('guardkernel exec', () => {
  test.runIf(!canSandbox)('refuses with 125 where the sandbox cannot run (never runs the command)', async () => {
    const dir = tempTree();
    const r = await exec(['--', '/bin/sh', '-c', `touch ${dir}/ran`]);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/^guardkernel exec: .*cannot be enforced here/);
    expect(fs.existsSync(path.join(dir, 'ran'))).toBe(false);
  });

  test('bad usage is 125 with a reason; --help is 0', async () => {
    expect((await exec(['--network', 'internet', '--', 'true'])).code).toBe(125);
    expect((await exec(['--memory', 'lots', '--', 'true'])).stderr).toMatch(/--memory needs a positive integer/);
    expect((await exec([])).code).toBe(125);
    const help = await exec(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: guardkernel exec');
  });

  describe.runIf(canSandbox)('native', () => {
    test("the command's exit status and output pass through", async () => {
      const r = await exec(['--', '/bin/sh', '-c', 'echo out; echo err >&2; exit 3']);
      expect(r).toMatchObject({ code: 3, stdout: 'out\n', stderr: 'err\n' });
    });

    test('125 and a one-line reason when the sandbox stopped it; --json adds the result', async () => {
      const r = await exec(['--wall-ms', '200', '--json', '--', 'sleep', '10']);
      expect(r.code).toBe(125);
      const lines = r.stderr.trim().split('\n');
      expect(JSON.parse(lines[0])).toMatchObject({ reason: 'wall', signal: 'SIGKILL' });
      expect(lines[1]).toMatch(/^guardkernel exec: stopped: wall: /);
      const cpu = await exec(['--cpu-ms', '500', '--', '/bin/sh', '-c', 'while :; do :; done']);
      expect(cpu.code).toBe(125);
      expect(cpu.stderr).toMatch(/stopped: cpu/);
    });

    test('125 when a requirement cannot be met; 127 for a missing command', async () => {
      const caps = (await import('../lib/sandbox')).ProcessSandbox.capabilities();
      if (caps.cgroup.v2 === null) {
        const r = await exec(['--require', 'cgroup', '--memory', '256M', '--', 'true']);
        expect(r.code).toBe(125);
        expect(r.stderr).toMatch(/cgroup/);
      }
      expect((await exec(['--', 'no-such-command-gk'])).code).toBe(127);
    });

    test('--read/--write confine the filesystem', async () => {
      const dir = tempTree();
      const secret = tempTree();
      fs.writeFileSync(path.join(secret, 'key'), 'SECRET');
      const r = await exec(['--read', dir, '--write', dir, '--', '/bin/sh', '-c', `echo ok > ${dir}/f; cat ${secret}/key; echo x > ${secret}/evil; exit 0`]);
      expect(r.code).toBe(0);
      expect(r.stdout).not.toContain('SECRET');
      expect(fs.readFileSync(path.join(dir, 'f'), 'utf8')).toBe('ok\n');
      expect(fs.existsSync(path.join(secret, 'evil'))).toBe(false);
    });
  });
});

describe.runIf(canSandbox && sandboxCaps.networkNamespaces)('guardkernel exec --agent against a running serve', () => {
  const OPERATOR_TOKEN = 'operator-token-0123456789';
  const AGENT_TOKEN = 'agent-token-0123456789abc';
  let dir: string;
  let socket: string;
  let s: ReturnType<typeof startServe>;
  let listener: net.Server;
  let port = 0;
  const cleanups: Array<() => void> = [];

  beforeAll(async () => {
    dir = tempTree('gk-exec-agent-');
    fs.writeFileSync(path.join(dir, 'policy.yaml'), 'version: 1\nmode: enforce\ndefault: deny\nactions: {}\n');
    fs.writeFileSync(path.join(dir, 'operator.token'), OPERATOR_TOKEN, { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'agent.token'), AGENT_TOKEN, { mode: 0o600 });
    socket = path.join(dir, 'core.sock');
    s = startServe(['--state-dir', path.join(dir, 'state'), '--socket', socket, '--policy', path.join(dir, 'policy.yaml'), '--operator-token-file', path.join(dir, 'operator.token'), '--agent-token-file', path.join(dir, 'agent.token')]);
    await s.ready;
    const op = await GuardClient.connect(socket, { timeoutMs: 5000 });
    await op.auth(OPERATOR_TOKEN);
    await op.quarantine({ agent_id: 'agent-net', reason: 'exfiltration suspected', isolation: 'network' });
    await op.quarantine({ agent_id: 'agent-fs', reason: 'wrote to /etc', isolation: 'filesystem' });
    await op.quarantine({ agent_id: 'agent-full', reason: 'compromised', isolation: 'full' });
    op.close();
    listener = net.createServer((c) => c.end('OUTSIDE\n'));
    await new Promise<void>((res) => listener.listen(0, '127.0.0.1', () => res()));
    port = (listener.address() as net.AddressInfo).port;
  });
  afterAll(async () => {
    listener?.close();
    s?.child.kill('SIGTERM');
    await s?.exited;
    for (const c of cleanups) c();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  afterEach(() => {});

  const agentArgs = (id: string) => ['--agent', id, '--socket', socket, '--auth-token-file', path.join(dir, 'agent.token')];

  test('a free agent runs unchanged (the control)', async () => {
    const out = tempTree();
    const r = await exec([...agentArgs('agent-free'), '--', '/bin/sh', '-c', `echo w > ${out}/f`]);
    expect(r.code).toBe(0);
    expect(fs.existsSync(path.join(out, 'f'))).toBe(true);
  });

  test.runIf(python !== null)('isolation network: no network', async () => {
    const code = `import socket\ntry:\n    print(socket.create_connection(("127.0.0.1", ${port}), timeout=3).recv(20))\nexcept OSError as e:\n    print("REFUSED", e.errno)`;
    const free = await exec([...agentArgs('agent-free'), '--', python!.exe, '-c', code]);
    expect(free.stdout).toContain('OUTSIDE');
    const r = await exec([...agentArgs('agent-net'), '--', python!.exe, '-c', code]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('REFUSED');
  });

  test('isolation filesystem: read-only', async () => {
    const out = tempTree();
    fs.writeFileSync(path.join(out, 'in'), 'readable');
    const r = await exec([...agentArgs('agent-fs'), '--write', out, '--', '/bin/sh', '-c', `cat ${out}/in; echo w > ${out}/f`]);
    expect(r.stdout).toContain('readable');
    expect(r.code).not.toBe(0);
    expect(fs.existsSync(path.join(out, 'f'))).toBe(false);
  });

  test('isolation full: refused with 125, nothing runs', async () => {
    const out = tempTree();
    const r = await exec([...agentArgs('agent-full'), '--', '/bin/sh', '-c', `touch ${out}/ran`]);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/refused/);
    expect(fs.existsSync(path.join(out, 'ran'))).toBe(false);
  });

  test('no server: 125 (fail closed)', async () => {
    const r = await exec(['--agent', 'agent-free', '--socket', path.join(dir, 'nope.sock'), '--', 'true']);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/needs a running guardkernel serve/);
  });
});
