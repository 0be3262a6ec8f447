// `guardkernel serve` as a whole process: defaults, secrets, signals.
import { runSync } from './child';
import { skipWithout, toolMissing } from './prerequisites';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { AuditLog, GuardClient } from '../lib/index';
import { repoRoot } from './helpers';
import { cli, startServe } from './serve-process';



describe('guardkernel serve', () => {
  test('starts with defaults, serves, and shuts down cleanly on SIGTERM', async () => {
    const state = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-serve-'));
    const s = startServe(['--state-dir', state]);
    await s.ready;
    const socket = path.join(state, 'core.sock');
    expect(s.output()).toContain(`listening on ${socket}`);
    expect(s.output()).toMatch(/permit secret from .*hmac\.key \(generated now\)/);
    expect(fs.statSync(path.join(state, 'hmac.key')).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.join(state, 'audit.key')).mode & 0o777).toBe(0o600);
    expect(fs.statSync(socket).mode & 0o777).toBe(0o600);
    const c = await GuardClient.connect(socket);
    const d = await c.gateCheck({ car: { action_type: 'file_read', agent_id: 'agent-prod-1', resource: '/srv/data/x.csv', args: { mode: 'r' } } });
    expect(d).toMatchObject({ decision: 'allow', source: 'policy' });
    c.close();
    s.child.kill('SIGTERM');
    expect(await s.exited).toBe(0);
    expect(fs.existsSync(socket)).toBe(false);
    const v = AuditLog.verify(path.join(state, 'audit.log'), fs.readFileSync(path.join(state, 'audit.key')));
    expect(v).toMatchObject({ ok: true });
    expect(v.records).toBeGreaterThanOrEqual(1);
    // A second start reuses the secrets instead of generating new ones.
    const again = startServe(['--state-dir', state]);
    await again.ready;
    expect(again.output()).not.toContain('generated now');
    again.child.kill('SIGINT');
    expect(await again.exited).toBe(0);
  });

  test('refuses a secret file others can read, and a second server on a live socket', async () => {
    const state = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-serve-'));
    fs.writeFileSync(path.join(state, 'hmac.key'), Buffer.alloc(32, 7), { mode: 0o644 });
    fs.chmodSync(path.join(state, 'hmac.key'), 0o644);
    const r = runSync(process.execPath, [cli, 'serve', '--state-dir', state], { encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: '', GUARD_HMAC_SECRET: '' }, timeout: 10_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/readable by others.*chmod 600/);
    fs.chmodSync(path.join(state, 'hmac.key'), 0o600);
    const first = startServe(['--state-dir', state]);
    await first.ready;
    const second = runSync(process.execPath, [cli, 'serve', '--state-dir', state], { encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: '', GUARD_HMAC_SECRET: '' }, timeout: 10_000 });
    expect(second.status).toBe(1);
    expect(second.stderr).toMatch(/Another server is listening/);
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
  });

  test('--help documents every flag; bad flags exit 2', () => {
    const help = runSync(process.execPath, [cli, 'serve', '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    for (const flag of ['--socket', '--policy', '--state-dir', '--audit', '--auth-token-file', '--socket-mode']) expect(help.stdout).toContain(flag);
    for (const bad of [['--nope'], ['--socket'], ['--socket-mode', '999'], ['--socket-mode', 'rw']]) {
      const r = runSync(process.execPath, [cli, 'serve', ...bad], { encoding: 'utf8' });
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/guardkernel serve: /);
    }
  });
});

describe('the Python client', () => {
  const python = skipWithout('python3', toolMissing('python3')) ? null : 'python3';

  test.runIf(python !== null)('runs its example against a live server', async () => {
    const state = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-py-'));
    const s = startServe(['--state-dir', state]);
    await s.ready;
    try {
      const r = runSync(python!, [path.join(repoRoot, 'clients', 'python', 'guardkernel_client.py'), path.join(state, 'core.sock')], { encoding: 'utf8', timeout: 20_000 });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const [first, second] = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
      expect(first.ping).toBe('pong');
      expect(first.allow).toMatchObject({ decision: 'allow', source: 'policy' });
      expect(first.deny).toMatchObject({ decision: 'deny' });
      expect(first.pipelined).toBe(100);
      expect(second).toEqual({ error: -32601 });
    } finally {
      s.child.kill('SIGTERM');
      await s.exited;
    }
  });
});
