// `guardkernel report` as a CI gate on `serve` (issue 30 item 4): started
// with the flags the README recommends, every SOC 2 check is compliant or not
// applicable and report exits 0; the permit lifetime follows the nonce window
// (--nonce-ttl, --permit-max-ttl), and a permit that could outlive it is
// reported (and warned about at start).
import { runSync } from './child';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { GuardClient, RpcCallError } from '../lib/index';
import { cli, startServe } from './serve-process';

const env = { ...process.env, XDG_RUNTIME_DIR: '', GUARD_HMAC_SECRET: '' };
const TOKEN = 'operator-token-0123456789';

/** The flags the README recommends for serve (its "Production" line). */
const RECOMMENDED = ['--max-per-agent', '600', '--audit-retention-days', '365'];

async function served(extra: string[]) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-serve-report-'));
  fs.writeFileSync(path.join(dir, 'op.token'), TOKEN, { mode: 0o600 });
  const socket = path.join(dir, 'core.sock');
  const s = startServe(['--state-dir', path.join(dir, 'state'), '--socket', socket, '--operator-token-file', path.join(dir, 'op.token'), ...extra]);
  await s.ready;
  const report = () => {
    const r = runSync(process.execPath, [cli, 'report', '--standard', 'soc2', '--socket', socket, '--auth-token-file', path.join(dir, 'op.token')], { encoding: 'utf8', env, timeout: 30_000 });
    return { status: r.status, stderr: r.stderr, checks: Object.fromEntries((JSON.parse(r.stdout).checks as Array<{ id: string; status: string; finding?: string }>).map((c) => [c.id, c])) };
  };
  const stop = async () => {
    s.child.kill('SIGTERM');
    await s.exited;
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return { s, socket, report, stop };
}

describe('report --standard soc2 on serve', () => {
  test('with the recommended flags: exit 0; replay-window compliant (5 min permits, 5 min nonces); memory encryption not applicable to serve', async () => {
    const { report, stop, socket } = await served(RECOMMENDED);
    try {
      const r = report();
      const failing = Object.values(r.checks).filter((c) => c.status === 'non_compliant');
      expect(failing).toEqual([]);
      expect(r.status).toBe(0);
      expect(r.checks['replay-window']).toMatchObject({ status: 'compliant' });
      expect(r.checks['memory-encryption']).toMatchObject({ status: 'not_applicable' });
      // The default permit lifetime is the nonce window: a longer permit is refused.
      const c = await GuardClient.connect(socket, { timeoutMs: 5000 });
      await c.auth(TOKEN);
      const car = { action_type: 'file_read', agent_id: 'agent-1' };
      await expect(c.call('create_permit', { car, agent_id: 'agent-1', ttl_ms: 300_000 })).resolves.toBeDefined();
      const err = await c.call('create_permit', { car, agent_id: 'agent-1', ttl_ms: 300_001 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RpcCallError);
      expect(err).toMatchObject({ code: 'ERR_INVALID_PARAMS' });
      await c.close();
    } finally {
      await stop();
    }
  });

  test('--nonce-ttl raises both windows together; a --permit-max-ttl beyond it is warned about at start and reported non-compliant (exit 1)', async () => {
    const longer = await served([...RECOMMENDED, '--nonce-ttl', '3600000']);
    try {
      expect(longer.report().checks['replay-window']).toMatchObject({ status: 'compliant' });
      expect(longer.s.output()).not.toContain('WARNING --permit-max-ttl');
    } finally {
      await longer.stop();
    }
    const wrong = await served([...RECOMMENDED, '--permit-max-ttl', '600000']);
    try {
      expect(wrong.s.output()).toContain('WARNING --permit-max-ttl 600000 ms is longer than --nonce-ttl 300000 ms');
      const r = wrong.report();
      expect(r.status).toBe(1);
      expect(r.checks['replay-window']).toMatchObject({ status: 'non_compliant' });
    } finally {
      await wrong.stop();
    }
  });

  test('rejects bad input: --nonce-ttl and --permit-max-ttl take whole milliseconds from 1000 to 7 days', () => {
    for (const [flag, v] of [['--nonce-ttl', '0'], ['--nonce-ttl', '999'], ['--nonce-ttl', '5m'], ['--permit-max-ttl', '-1'], ['--permit-max-ttl', '604800001'], ['--nonce-ttl', '']]) {
      const r = runSync(process.execPath, [cli, 'serve', flag, v], { encoding: 'utf8', env, timeout: 20_000 });
      expect(r.status, `${flag} ${v}`).toBe(2);
      expect(r.stderr).toContain(flag);
    }
  });
});
