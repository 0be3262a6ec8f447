// The OS process sandbox: every test is an escape attempt that must fail, with
// the right reason. In the GUARDKERNEL_NATIVE=0 pass (and off Linux) spawn
// must refuse: it never runs a command unconfined.
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../lib/audit/log';
import { ErrorCodes, GuardError } from '../lib/errors';
import { ProcessSandbox } from '../lib/sandbox';
import { reasonOf } from '../lib/sandbox/process';
import { alive, allGone, canSandbox, python, sandboxCaps, tempTree, text } from './process-sandbox-helpers';
import { core, randomInt, rng } from './helpers';

const linuxNative = process.platform === 'linux' && core !== null;

describe('process sandbox: availability', () => {
  it('capabilities() says what this platform can enforce', () => {
    const caps = ProcessSandbox.capabilities();
    expect(caps.platform).toBe(process.platform);
    if (linuxNative) {
      expect(caps.available).toBe(true);
      expect(caps.seccomp).toBe(true);
      expect(caps.noNewPrivs).toBe(true);
      expect(caps.rlimits).toBe(true);
      expect(caps.landlock.abi).toBeGreaterThanOrEqual(1);
      expect(caps.enforcement.cpu).toBe('rlimit-cpu');
      // This host has no delegated cgroup v2 leaf: memory is address space, and says so.
      if (caps.cgroup.v2 === null) expect(caps.enforcement.memory).toBe('rlimit-as');
    } else if (core === null) {
      expect(caps.available).toBe(false);
      expect(caps.reason).toMatch(/not loaded/);
    } else if (process.platform !== 'darwin' && process.platform !== 'win32') {
      expect(caps.available).toBe(false);
    }
  });

  it.runIf(core === null)('refuses to spawn without the native addon (never runs unconfined)', () => {
    const sb = new ProcessSandbox();
    const marker = path.join(tempTree(), 'ran');
    let err: unknown;
    try {
      sb.spawn('/bin/sh', ['-c', `touch ${marker}`]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GuardError);
    expect((err as GuardError).code).toBe(ErrorCodes.SANDBOX_UNSUPPORTED);
    expect(fs.existsSync(marker)).toBe(false);
  });
});

describe.runIf(canSandbox)('process sandbox (native, Linux)', () => {
  const sb = new ProcessSandbox();
  let home: string;
  let work: string;
  let out: string;
  let secret: string;
  const pyRead = python === null ? [] : [python.prefix, path.dirname(python.exe)];

  beforeAll(() => {
    home = tempTree('gk-home-');
    work = tempTree('gk-work-');
    out = tempTree('gk-out-');
    secret = path.join(home, '.secret');
    fs.writeFileSync(secret, 'TOP-SECRET-VALUE\n');
    fs.writeFileSync(path.join(work, 'readme.txt'), 'public\n');
  });
  afterAll(() => {
    sb.close();
    for (const d of [home, work, out]) fs.rmSync(d, { recursive: true, force: true });
  });

  it('runs a command: exit status, stdout, no_new_privs and seccomp in place', async () => {
    const p = sb.spawn('/bin/sh', ['-c', 'echo hello; grep -E "^(NoNewPrivs|Seccomp):" /proc/self/status; exit 7']);
    const [stdout, r] = await Promise.all([text(p.stdout), p.result]);
    expect(r.code).toBe(7);
    expect(r.reason).toBe('exit');
    expect(stdout).toContain('hello');
    expect(stdout).toMatch(/NoNewPrivs:\s+1/);
    expect(stdout).toMatch(/Seccomp:\s+2/);
    expect(r.usage.maxRssBytes).toBeGreaterThan(0);
    expect(r.enforcement.syscalls).toBe('seccomp');
  });

  it('stdin is a writable stream, stdout a readable one (usable as a stdio transport)', async () => {
    const p = sb.spawn('/bin/cat');
    p.stdin!.end('through the sandbox\n');
    const [stdout, r] = await Promise.all([text(p.stdout), p.result]);
    expect(stdout).toBe('through the sandbox\n');
    expect(r.code).toBe(0);
  });

  it('scrubs the environment to the allow list plus what the caller passes', async () => {
    process.env.GK_TEST_SECRET_TOKEN = 'leak-me';
    try {
      const p = sb.spawn('/usr/bin/env', [], { env: { GIVEN: 'yes' } });
      const [stdout] = await Promise.all([text(p.stdout), p.result]);
      expect(stdout).not.toContain('GK_TEST_SECRET_TOKEN');
      expect(stdout).toContain('GIVEN=yes');
      expect(stdout).toMatch(/^PATH=/m);
    } finally {
      delete process.env.GK_TEST_SECRET_TOKEN;
    }
  });

  describe('filesystem (Landlock)', () => {
    const run = async (script: string, fsOpt = () => ({ read: [work], write: [out] })) => {
      const p = sb.spawn('/bin/sh', ['-c', script], { filesystem: fsOpt(), cwd: work });
      const [stdout, stderr, r] = await Promise.all([text(p.stdout), text(p.stderr), p.result]);
      return { stdout, stderr, r };
    };

    it('reads inside read, cannot read a secret outside it', async () => {
      const { stdout, stderr, r } = await run(`cat readme.txt; cat ${secret}`);
      expect(stdout).toContain('public');
      expect(stdout).not.toContain('TOP-SECRET');
      expect(stderr).toMatch(/Permission denied/);
      expect(r.reason).toBe('exit');
      expect(r.code).not.toBe(0);
      expect(r.enforcement.filesystem).toBe('landlock');
    });

    it('cannot reach the secret through a symlink inside an allowed tree, nor through /proc/self/root', async () => {
      const link = path.join(work, 'link-to-secret');
      fs.symlinkSync(secret, link);
      try {
        const { stdout } = await run(`cat ${link}; cat /proc/self/root${secret}; echo done`);
        expect(stdout).not.toContain('TOP-SECRET');
        expect(stdout).toContain('done');
      } finally {
        fs.unlinkSync(link);
      }
    });

    it('writes inside write, not outside it (nor into a read-only tree)', async () => {
      const { r } = await run(`echo a > ${out}/ok.txt && (echo b > ${home}/evil.txt; echo c > ${work}/evil.txt; true)`);
      expect(r.code).toBe(0);
      expect(fs.readFileSync(path.join(out, 'ok.txt'), 'utf8')).toBe('a\n');
      expect(fs.existsSync(path.join(home, 'evil.txt'))).toBe(false);
      expect(fs.existsSync(path.join(work, 'evil.txt'))).toBe(false);
    });

    it('cannot rename or link a file from outside (or from a read-only tree) into an allowed directory', async () => {
      const { stdout } = await run(`mv ${secret} ${out}/stolen; ln ${secret} ${out}/hard; mv ${work}/readme.txt ${out}/moved; cat ${out}/stolen ${out}/hard; echo done`);
      expect(stdout).not.toContain('TOP-SECRET');
      expect(fs.existsSync(secret)).toBe(true);
      expect(fs.existsSync(path.join(work, 'readme.txt'))).toBe(true);
      expect(fs.existsSync(path.join(out, 'stolen'))).toBe(false);
      expect(fs.existsSync(path.join(out, 'moved'))).toBe(false);
    });

    it('an allow list path that does not exist is refused before anything runs', () => {
      expect(() => sb.spawn('/bin/true', [], { filesystem: { read: [path.join(home, 'nope')] } })).toThrow(/does not exist/);
    });
  });

  it.runIf(!sandboxCaps.networkNamespaces)("without user namespaces, network 'none' is refused (ERR_SANDBOX_UNSUPPORTED)", () => {
    expect(() => sb.spawn('/bin/true', [], { network: 'none' })).toThrow(expect.objectContaining({ code: ErrorCodes.SANDBOX_UNSUPPORTED }));
  });

  describe.runIf(python !== null && sandboxCaps.networkNamespaces)('network', () => {
    let server: net.Server;
    let port = 0;
    beforeAll(async () => {
      server = net.createServer((s) => s.end('OUTSIDE-SERVICE\n'));
      await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
      port = (server.address() as net.AddressInfo).port;
    });
    afterAll(() => server.close());

    const py = async (code: string, network: 'none' | 'loopback' | 'host') => {
      const p = sb.spawn(python!.exe, ['-c', code], { network });
      const [stdout, stderr, r] = await Promise.all([text(p.stdout), text(p.stderr), p.result]);
      return { stdout, stderr, r };
    };
    const connect = (p: number) => `
import socket
try:
    s = socket.create_connection(("127.0.0.1", ${p}), timeout=3)
    print("CONNECTED", s.recv(100))
except OSError as e:
    print("REFUSED", e.errno)
`;

    it("'host' reaches the listener on 127.0.0.1 (the control)", async () => {
      const { stdout } = await py(connect(port), 'host');
      expect(stdout).toContain('OUTSIDE-SERVICE');
    });

    it("'none' cannot connect to a TCP listener on 127.0.0.1", async () => {
      const { stdout, r } = await py(connect(port), 'none');
      expect(stdout).toContain('REFUSED');
      expect(stdout).not.toContain('OUTSIDE');
      expect(r.enforcement.network).toMatch(/^netns/);
    });

    it("'none' cannot resolve a name", async () => {
      const { stdout } = await py(`
import socket
try:
    print("RESOLVED", socket.getaddrinfo("registry.npmjs.org", 443))
except OSError as e:
    print("NORESOLVE", e)
`, 'none');
      expect(stdout).toContain('NORESOLVE');
    });

    it("'loopback' connects to a listener inside the sandbox only", async () => {
      const { stdout } = await py(`
import socket, threading
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
p = srv.getsockname()[1]
threading.Thread(target=lambda: srv.accept()[0].sendall(b"INSIDE"), daemon=True).start()
c = socket.create_connection(("127.0.0.1", p), timeout=3); print("GOT", c.recv(10))
${connect(port)}`, 'loopback');
      expect(stdout).toContain("GOT b'INSIDE'");
      expect(stdout).toContain('REFUSED');
      expect(stdout).not.toContain('OUTSIDE');
    });
  });

  describe('limits', () => {
    it('a fork bomb stops at processes', async () => {
      const caps = ProcessSandbox.capabilities();
      if (caps.enforcement.processes === null) {
        expect(() => sb.spawn('/bin/true', [], { limits: { processes: 8 } })).toThrow(/processes/);
        return;
      }
      const p = sb.spawn('/bin/sh', ['-c', 'i=0; while [ $i -lt 64 ]; do sleep 5 & i=$((i+1)); done; wait'], { limits: { processes: 8, wallMs: 20_000 } });
      const r = await p.result;
      expect(r.reason).toBe('processes');
      expect(r.violations[0]).toMatchObject({ type: 'limit', limit: 'processes' });
    });

    it.runIf(python !== null)('a memory hog stops at memoryBytes', async () => {
      const p = sb.spawn(python!.exe, ['-c', 'a = []\nwhile True: a.append(bytearray(1 << 20))'], { limits: { memoryBytes: 256 << 20, wallMs: 20_000 } });
      const r = await p.result;
      expect(r.reason).toBe('memory');
      expect(r.code).not.toBe(0);
      expect(r.enforcement.memory).toBe(sandboxCaps.cgroup.v2 === null ? 'rlimit-as' : 'cgroup-v2');
      expect(r.usage.maxRssBytes).toBeLessThanOrEqual(256 << 20);
    });

    it('a CPU spin stops at cpuMs', async () => {
      const p = sb.spawn('/bin/sh', ['-c', 'while :; do :; done'], { limits: { cpuMs: 1000, wallMs: 20_000 } });
      const r = await p.result;
      expect(r.reason).toBe('cpu');
      expect(r.signal).toMatch(/SIGXCPU|SIGKILL/);
      expect(r.usage.cpuMs).toBeGreaterThanOrEqual(800);
      expect(r.usage.cpuMs).toBeLessThan(4000);
    });

    it('sleep stops at wallMs', async () => {
      const t0 = Date.now();
      const p = sb.spawn('/bin/sleep', ['30'], { limits: { wallMs: 300 } });
      const r = await p.result;
      expect(r.reason).toBe('wall');
      expect(r.signal).toBe('SIGKILL');
      expect(Date.now() - t0).toBeLessThan(5000);
    });

    it('a huge file stops at fileSizeBytes', async () => {
      const out = tempTree();
      const p = sb.spawn('/bin/sh', ['-c', `exec head -c 50000000 /dev/zero > ${out}/big`], { limits: { fileSizeBytes: 1 << 20 } });
      const r = await p.result;
      expect(r.reason).toBe('violation');
      expect(r.violations[0]).toMatchObject({ type: 'limit', limit: 'fileSizeBytes' });
      expect(fs.statSync(path.join(out, 'big')).size).toBeLessThanOrEqual(1 << 20);
      fs.rmSync(out, { recursive: true, force: true });
    });

    it('limits are exactly those asked: random sets read back inside the child', async () => {
      const next = rng(29);
      for (let i = 0; i < 6; i++) {
        const limits = {
          memoryBytes: randomInt(next, 256, 2048) << 20,
          cpuMs: randomInt(next, 1, 30_000),
          openFiles: randomInt(next, 16, 4096),
          fileSizeBytes: randomInt(next, 1, 1 << 20) * 512,
        };
        const p = sb.spawn('/bin/cat', ['/proc/self/limits'], { limits });
        const [stdout, r] = await Promise.all([text(p.stdout), p.result]);
        expect(r.code).toBe(0);
        const row = (name: string) => stdout.split('\n').find((l) => l.startsWith(name))!.slice(26).trim().split(/\s+/);
        const seconds = Math.ceil(limits.cpuMs / 1000);
        expect(row('Max cpu time').slice(0, 2)).toEqual([String(seconds), String(seconds + 1)]);
        expect(row('Max address space').slice(0, 2)).toEqual([String(limits.memoryBytes), String(limits.memoryBytes)]);
        expect(row('Max open files').slice(0, 2)).toEqual([String(limits.openFiles), String(limits.openFiles)]);
        expect(row('Max file size').slice(0, 2)).toEqual([String(limits.fileSizeBytes), String(limits.fileSizeBytes)]);
        expect(row('Max core file size').slice(0, 2)).toEqual(['0', '0']);
      }
    });
  });

  describe('system calls (seccomp) and privileges', () => {
    it('unshare is refused (EPERM)', async () => {
      const p = sb.spawn('/bin/sh', ['-c', 'unshare -U true; echo rc=$?']);
      const [stdout, stderr] = await Promise.all([text(p.stdout), text(p.stderr), p.result]);
      expect(stdout).toMatch(/rc=[1-9]/);
      expect(stderr).toMatch(/Operation not permitted/);
    });

    it.runIf(python !== null)('ptrace of the parent kills the process: reason violation', async () => {
      const p = sb.spawn(python!.exe, ['-c', `import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\nprint(libc.ptrace(16, os.getppid(), 0, 0), flush=True)`]);
      const r = await p.result;
      expect(r.reason).toBe('violation');
      expect(r.signal).toBe('SIGSYS');
      expect(r.violations[0].type).toBe('seccomp');
    });

    it.runIf(python !== null)('mount, TIOCSTI and a namespace clone answer EPERM', async () => {
      const p = sb.spawn(python!.exe, ['-c', `
import ctypes, fcntl, os, termios
libc = ctypes.CDLL(None, use_errno=True)
print("mount", libc.mount(b"none", b"/tmp", b"tmpfs", 0, None), ctypes.get_errno())
try:
    fcntl.ioctl(0, termios.TIOCSTI, b"x"); print("tiocsti ok")
except OSError as e:
    print("tiocsti", e.errno)
print("clone", libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0), ctypes.get_errno())
`]);
      const [stdout, r] = await Promise.all([text(p.stdout), p.result]);
      expect(r.code).toBe(0);
      expect(stdout).toContain('mount -1 1');
      expect(stdout).toContain('tiocsti 1');
      if (process.arch === 'x64') expect(stdout).toContain('clone -1 1');
    });

    it('cannot leave its process group (setsid is refused)', async () => {
      const p = sb.spawn('/bin/sh', ['-c', 'setsid true; echo rc=$?']);
      const [stdout] = await Promise.all([text(p.stdout), p.result]);
      expect(stdout).toMatch(/rc=[1-9]/);
    });
  });

  describe('the process tree', () => {
    it('is gone after kill()', async () => {
      const p = sb.spawn('/bin/sh', ['-c', 'sleep 100 & echo $!; sleep 100 & echo $!; wait']);
      let seen = '';
      await new Promise<void>((res) => p.stdout!.on('data', (d) => { seen += String(d); if (seen.split('\n').length > 2) res(); }));
      const pids = seen.trim().split('\n').map(Number);
      expect(pids.every(alive)).toBe(true);
      expect(p.kill()).toBe(true);
      const r = await p.result;
      expect(r.reason).toBe('killed');
      expect(p.kill()).toBe(false);
      expect(await allGone(pids)).toBe(true);
    });

    it('leaves no orphan when the leader exits, nor after close()', async () => {
      const p = sb.spawn('/bin/sh', ['-c', 'sleep 100 & echo $!']);
      const [stdout, r] = await Promise.all([text(p.stdout), p.result]);
      expect(r.code).toBe(0);
      const orphan = Number(stdout.trim());
      expect(await allGone([orphan])).toBe(true);
      const other = new ProcessSandbox();
      const q = other.spawn('/bin/sleep', ['100']);
      expect(other.running).toBe(1);
      other.close();
      expect((await q.result).reason).toBe('killed');
      expect(other.running).toBe(0);
    });

    it('runs several spawns in parallel', async () => {
      const runs = Array.from({ length: 8 }, (_, i) => sb.spawn('/bin/sh', ['-c', `sleep 0.$((${i} % 3)); echo run-${i}`], { network: i % 2 === 0 && sandboxCaps.networkNamespaces ? 'none' : 'host' }));
      const outs = await Promise.all(runs.map(async (p) => (await Promise.all([text(p.stdout), p.result]))[0]));
      outs.forEach((o, i) => expect(o.trim()).toBe(`run-${i}`));
    });
  });

  describe('refusals', () => {
    it('ERR_SANDBOX_UNSUPPORTED when a requirement cannot be met here (require: cgroup without a delegated v2 leaf)', () => {
      if (sandboxCaps.cgroup.v2 !== null) return;
      let err: unknown;
      try {
        sb.spawn('/bin/true', [], { limits: { memoryBytes: 1 << 28 }, require: ['cgroup'] });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(GuardError);
      expect((err as GuardError).code).toBe(ErrorCodes.SANDBOX_UNSUPPORTED);
      expect((err as GuardError).message).toMatch(/cgroup/);
    });

    it('bad options are ERR_INVALID_ARGUMENT; a missing command is ENOENT', () => {
      expect(() => sb.spawn('/bin/true', [], { limits: { cpuMs: -1 } })).toThrow(/positive integer/);
      expect(() => sb.spawn('/bin/true', [], { network: 'internet' as never })).toThrow(/network/);
      expect(() => sb.spawn('/bin/true', [], { allowWeaker: ['everything' as never] })).toThrow(/allowWeaker/);
      expect(() => sb.spawn('no-such-command-gk', [])).toThrow(/ENOENT/);
    });
  });

  describe('audit', () => {
    it('writes resource_limit_exceeded and sandbox_violation records with command, limit and usage', async () => {
      const dir = tempTree();
      const file = path.join(dir, 'audit.jsonl');
      const audit = new AuditLog({ file, key: crypto.randomBytes(32) });
      const asb = new ProcessSandbox({ audit });
      await asb.spawn('/bin/sleep', ['10'], { limits: { wallMs: 200 }, agentId: 'agent-7' }).result;
      await asb.spawn('/bin/sh', ['-c', `exec head -c 3000000 /dev/zero > ${dir}/big`], { limits: { fileSizeBytes: 4096 } }).result;
      await asb.spawn('/bin/true').result;
      audit.close();
      const records = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      const limit = records.find((r) => r.type === 'resource_limit_exceeded');
      expect(limit).toMatchObject({ command: '/bin/sleep', limit: 'wallMs', limit_value: 200, agent_id: 'agent-7', reason: 'wall' });
      expect(limit.usage.wall_ms).toBeGreaterThanOrEqual(150);
      const violation = records.find((r) => r.type === 'sandbox_violation');
      expect(violation).toMatchObject({ limit: 'fileSizeBytes', limit_value: 4096, reason: 'violation' });
      expect(records.filter((r) => r.type === 'resource_limit_exceeded' || r.type === 'sandbox_violation')).toHaveLength(2);
      fs.rmSync(dir, { recursive: true, force: true });
    });
  });
});

describe('reason mapping (pure)', () => {
  const en = { memory: 'rlimit-as', processes: null, cpu: 'rlimit-cpu', wall: 'timer', openFiles: null, fileSize: 'rlimit-fsize', filesystem: null, network: null, syscalls: 'seccomp', signals: null, processTree: 'process-group' } as const;
  const base = { exited: false, code: 0, signal: 0, cpuMs: 0, maxRssBytes: 0, killed: 0 };
  const none = { oomKills: 0, pidsMaxHits: 0 };
  it('maps signals, kills and limits', () => {
    expect(reasonOf({ ...base, exited: true }, {}, { ...en }, none).reason).toBe('exit');
    expect(reasonOf({ ...base, signal: 9, killed: 2 }, {}, { ...en }, none).reason).toBe('killed');
    expect(reasonOf({ ...base, signal: 9, killed: 1 }, { wallMs: 5 }, { ...en }, none).reason).toBe('wall');
    expect(reasonOf({ ...base, signal: 31 }, {}, { ...en }, none).reason).toBe('violation');
    expect(reasonOf({ ...base, signal: 24 }, { cpuMs: 1000 }, { ...en }, none).reason).toBe('cpu');
    expect(reasonOf({ ...base, signal: 9, cpuMs: 2000 }, { cpuMs: 1500 }, { ...en }, none).reason).toBe('cpu');
    expect(reasonOf({ ...base, signal: 9, cpuMs: 10 }, { cpuMs: 1500 }, { ...en }, none).reason).toBe('exit');
    expect(reasonOf({ ...base, signal: 25 }, { fileSizeBytes: 10 }, { ...en }, none).reason).toBe('violation');
    expect(reasonOf({ ...base, exited: true, code: 1, maxRssBytes: 90 }, { memoryBytes: 100 }, { ...en }, none).reason).toBe('memory');
    expect(reasonOf({ ...base, exited: true, code: 1, maxRssBytes: 10 }, { memoryBytes: 100 }, { ...en }, none).reason).toBe('exit');
    expect(reasonOf({ ...base, exited: true, code: 0, maxRssBytes: 90 }, { memoryBytes: 100 }, { ...en }, none).reason).toBe('exit');
    expect(reasonOf({ ...base, signal: 9 }, { memoryBytes: 100 }, { ...en, memory: 'cgroup-v2' }, { oomKills: 1, pidsMaxHits: 0 }).reason).toBe('memory');
    expect(reasonOf({ ...base, exited: true, code: 2 }, { processes: 4 }, { ...en }, { oomKills: 0, pidsMaxHits: 3 }).reason).toBe('processes');
  });
});
