// The process sandbox on macOS (sandbox-exec profile + ulimit) and Windows (a
// Job Object). These run in the prebuild workflow's macOS and Windows jobs;
// on Linux (the development machine) they are skipped: nothing here was run
// on the development machine.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCodes, GuardError } from '../lib/errors';
import { ProcessSandbox } from '../lib/sandbox';
import { core } from './helpers';
import { tempTree, text } from './process-sandbox-helpers';

const platform = process.platform;
const portable = core !== null && (platform === 'darwin' || platform === 'win32');
const node = process.execPath;

describe.runIf(portable)(`process sandbox on ${platform}`, () => {
  const sb = new ProcessSandbox();
  const weak = { allowWeaker: ['seccomp' as const] };

  it('capabilities: available, no system call filter', () => {
    const caps = ProcessSandbox.capabilities();
    expect(caps.available).toBe(true);
    expect(caps.enforcement.syscalls).toBeNull();
    if (platform === 'win32') expect(caps.enforcement.memory).toBe('job-object');
    if (platform === 'darwin') expect(caps.enforcement.filesystem).toBe('sandbox-exec');
  });

  it('refuses by default: there is no seccomp here (ERR_SANDBOX_UNSUPPORTED)', () => {
    let err: unknown;
    try {
      sb.spawn(node, ['-e', '0']);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GuardError);
    expect((err as GuardError).code).toBe(ErrorCodes.SANDBOX_UNSUPPORTED);
  });

  it('runs a command: exit status and stdout', async () => {
    const p = sb.spawn(node, ['-e', 'console.log("hi"); process.exit(3)'], weak);
    const [out, r] = await Promise.all([text(p.stdout), p.result]);
    expect(out.trim()).toBe('hi');
    expect(r).toMatchObject({ code: 3, reason: 'exit' });
  });

  it('stops at wallMs', async () => {
    const r = await sb.spawn(node, ['-e', 'setTimeout(() => {}, 30000)'], { ...weak, limits: { wallMs: 300 } }).result;
    expect(r.reason).toBe('wall');
  });

  it('kill() ends it', async () => {
    const p = sb.spawn(node, ['-e', 'setTimeout(() => {}, 30000)'], weak);
    await new Promise((r) => setTimeout(r, 200));
    expect(p.kill()).toBe(true);
    expect((await p.result).reason).toBe('killed');
  });

  it.runIf(platform === 'darwin')('macOS: cannot read outside read, nor connect under network none; memoryBytes is refused', async () => {
    const home = tempTree();
    fs.writeFileSync(path.join(home, 'secret'), 'TOP-SECRET');
    const work = tempTree();
    const p = sb.spawn(node, ['-e', `try { console.log(require("fs").readFileSync(${JSON.stringify(path.join(home, 'secret'))}, "utf8")) } catch (e) { console.log("DENIED", e.code) }`], { ...weak, filesystem: { read: [work] } });
    const [out] = await Promise.all([text(p.stdout), p.result]);
    expect(out).not.toContain('TOP-SECRET');
    const server = net.createServer((s) => s.end('OUTSIDE'));
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
    const port = (server.address() as net.AddressInfo).port;
    const q = sb.spawn(node, ['-e', `require("net").connect(${port}, "127.0.0.1").on("data", (d) => console.log(String(d))).on("error", (e) => console.log("REFUSED", e.code))`], { ...weak, network: 'none' });
    const [qout] = await Promise.all([text(q.stdout), q.result]);
    server.close();
    expect(qout).not.toContain('OUTSIDE');
    expect(() => sb.spawn(node, ['-e', '0'], { ...weak, limits: { memoryBytes: 1 << 28 } })).toThrow(/memoryBytes/);
  });

  it.runIf(platform === 'win32')('Windows: a CPU spin stops at cpuMs; a memory hog at memoryBytes; filesystem lists are refused', async () => {
    const cpu = await sb.spawn(node, ['-e', 'for (;;) {}'], { ...weak, limits: { cpuMs: 1000, wallMs: 30000 } }).result;
    expect(cpu.reason).toBe('cpu');
    const mem = await sb.spawn(node, ['-e', 'const a = []; for (;;) a.push(Buffer.alloc(1 << 20, 1))'], { ...weak, limits: { memoryBytes: 256 << 20, wallMs: 30000 } }).result;
    expect(mem.reason).toBe('memory');
    expect(() => sb.spawn(node, ['-e', '0'], { ...weak, filesystem: { read: [tempTree()] } })).toThrow(/filesystem/);
  });
});
