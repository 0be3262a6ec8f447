// `npm start` forwards signals (issue 30 item 6): npm runs the start script
// through `sh -c`, and a shell that waits on its child dies of SIGTERM
// without passing it on, which left `serve` running, orphaned, with its
// socket. The script execs serve, so npm's forwarded SIGTERM reaches it:
// serve shuts down as documented (finishes, flushes, removes its socket).
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { repoRoot } from './helpers';
import { runSync, startChild } from './child';

const npmCli = process.env.npm_execpath;
const npm = npmCli !== undefined && npmCli.endsWith('.js') ? { command: process.execPath, args: [npmCli] } : { command: 'npm', args: [] as string[] };
const hasNpm = runSync(npm.command, [...npm.args, '--version'], { encoding: 'utf8', timeout: 30_000 }).status === 0;

describe.skipIf(process.platform === 'win32' || !hasNpm)('npm start', () => {
  test('SIGTERM to npm stops serve: no orphan, the socket is removed', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-npm-start-'));
    const socket = path.join(dir, 'core.sock');
    const child = startChild(npm.command, [...npm.args, 'start', '--silent', '--', '--state-dir', path.join(dir, 'state'), '--socket', socket], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, XDG_RUNTIME_DIR: '', GUARD_HMAC_SECRET: '' } });
    let out = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    try {
      for (let i = 0; i < 300 && !out.includes('guardkernel: policy'); i++) await new Promise((r) => setTimeout(r, 50));
      expect(out).toContain('guardkernel: policy');
      expect(fs.existsSync(socket)).toBe(true);
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await exited;
      // serve's own shutdown removes the socket; an orphan would keep it and keep answering.
      for (let i = 0; i < 100 && fs.existsSync(socket); i++) await new Promise((r) => setTimeout(r, 50));
      expect(fs.existsSync(socket)).toBe(false);
      const answered = await new Promise<boolean>((resolve) => {
        const c = net.connect(socket, () => {
          c.destroy();
          resolve(true);
        });
        c.once('error', () => resolve(false));
      });
      expect(answered).toBe(false);
    } finally {
      child.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
