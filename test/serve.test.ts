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
    for (const flag of ['--socket', '--policy', '--state-dir', '--audit', '--auth-token-file', '--operator-token-file', '--agent-token-file', '--operator-uid', '--socket-mode']) expect(help.stdout).toContain(flag);
    for (const bad of [['--nope'], ['--socket'], ['--socket-mode', '999'], ['--socket-mode', 'rw'], ['--operator-uid', '-1'], ['--operator-uid', 'root'], ['--operator-uid', '1.5'], ['--operator-uid', '99999999999'], ['--agent-token-file']]) {
      const r = runSync(process.execPath, [cli, 'serve', ...bad], { encoding: 'utf8' });
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/guardkernel serve: /);
    }
  });
});

describe('serve with role credentials', () => {
  test('refuses an agent token without an operator credential, equal tokens, short tokens, and both operator flags', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-serve-roles-'));
    const tok = (name: string, text: string) => {
      fs.writeFileSync(path.join(dir, name), text + '\n');
      return path.join(dir, name);
    };
    const agent = tok('agent', 'agent-token-0123456789');
    const operator = tok('operator', 'operator-token-0123456789');
    const same = tok('same', 'agent-token-0123456789');
    const short = tok('short', 'short');
    for (const [args, message] of [
      [['--agent-token-file', agent], /without an operator/],
      [['--agent-token-file', agent, '--operator-token-file', same], /must differ/],
      [['--operator-token-file', short], /at least 16 bytes/],
      [['--operator-token-file', operator, '--auth-token-file', operator], /give one/],
    ] as Array<[string[], RegExp]>) {
      const s = startServe(['--state-dir', fs.mkdtempSync(path.join(dir, 's-')), ...args]);
      await expect(s.ready).rejects.toThrow(message);
      expect(await s.exited).toBe(1);
    }
  });

  test('an agent token authenticates the agent role, the operator token the operator role', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-serve-roles-'));
    fs.writeFileSync(path.join(dir, 'agent'), 'agent-token-0123456789\n');
    fs.writeFileSync(path.join(dir, 'operator'), 'operator-token-0123456789\n');
    const s = startServe(['--state-dir', dir, '--agent-token-file', path.join(dir, 'agent'), '--operator-token-file', path.join(dir, 'operator')]);
    await s.ready;
    try {
      const agent = await GuardClient.connect(path.join(dir, 'core.sock'));
      expect(await agent.auth('agent-token-0123456789')).toMatchObject({ role: 'agent' });
      await expect(agent.call('create_permit', { car: { action_type: 'shell_exec', agent_id: 'a' }, agent_id: 'a', ttl_ms: 1000 })).rejects.toMatchObject({ data: { code: 'ERR_FORBIDDEN' } });
      const operator = await GuardClient.connect(path.join(dir, 'core.sock'));
      expect(await operator.auth('operator-token-0123456789')).toMatchObject({ role: 'operator' });
      expect(await operator.call('create_permit', { car: { action_type: 'shell_exec', agent_id: 'a' }, agent_id: 'a', ttl_ms: 1000 })).toMatchObject({ permit: expect.any(String) });
      agent.close();
      operator.close();
    } finally {
      s.child.kill('SIGTERM');
      await s.exited;
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
      expect(first.role).toBe('operator'); // the server's own uid, no token files
      expect(first.allow).toMatchObject({ decision: 'allow', source: 'policy' });
      expect(first.deny).toMatchObject({ decision: 'deny' });
      expect(first.pipelined).toBe(100);
      expect(second).toEqual({ error: 'ERR_METHOD_NOT_FOUND' });
    } finally {
      s.child.kill('SIGTERM');
      await s.exited;
    }
  });
});

describe('serve --audit-anchor', () => {
  test('the head is also kept in the anchor file: audit_verify passes, and a rollback of log and head together is caught by audit verify --anchor-file', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-serve-anchor-'));
    const state = path.join(dir, 'state');
    const anchorFile = path.join(dir, 'elsewhere', 'audit.anchor');
    fs.mkdirSync(path.dirname(anchorFile));
    const car = { action_type: 'file_read', agent_id: 'agent-prod-1', resource: '/srv/data/a.csv', args: { mode: 'r' } };
    const run = async (checks: number) => {
      const s = startServe(['--state-dir', state, '--audit-anchor', anchorFile]);
      await s.ready;
      try {
        const c = await GuardClient.connect(path.join(state, 'core.sock'));
        for (let i = 0; i < checks; i++) await c.gateCheck({ car: { ...car, resource: `/srv/data/${i}` } });
        expect(await c.call('audit_verify')).toMatchObject({ ok: true });
        c.close();
      } finally {
        s.child.kill('SIGTERM');
        expect(await s.exited).toBe(0);
      }
    };
    await run(3);
    const log = path.join(state, 'audit.log');
    const older = { log: fs.readFileSync(log), head: fs.readFileSync(`${log}.head`) };
    await run(3);
    expect(JSON.parse(fs.readFileSync(anchorFile, 'utf8')).seq).toBeGreaterThan(0);
    // Roll back log and head together: on its own it verifies (the documented limit without an anchor)...
    fs.writeFileSync(log, older.log);
    fs.writeFileSync(`${log}.head`, older.head);
    const keyFile = path.join(state, 'audit.key');
    const alone = runSync(process.execPath, [cli, 'audit', 'verify', log, '--key-file', keyFile], { encoding: 'utf8' });
    expect(alone.status).toBe(0);
    // ...the anchor, kept elsewhere, catches it.
    const anchored = runSync(process.execPath, [cli, 'audit', 'verify', log, '--key-file', keyFile, '--anchor-file', anchorFile], { encoding: 'utf8' });
    expect(anchored.status).toBe(1);
    expect(anchored.stdout + anchored.stderr).toMatch(/rolled back|behind/i);
  });
});
