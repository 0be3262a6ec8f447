// No audit floods (issue 25 item 6): refusals a client can repeat at will are
// written once per client, type and interval, then as one record with a
// count. Before, one line of unauthenticated calls wrote one record each.
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { AuditLog, Gate, GuardClient, GuardServer } from '../lib/index';
import { AuditThrottle } from '../lib/ipc/audit-throttle';

const POLICY = { version: 1, mode: 'enforce', actions: {} };
const OPERATOR = 'operator-token-0123456789';
const AGENT = 'agent-token-0123456789abc';

async function start() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-flood-'));
  const socketPath = path.join(dir, 'core.sock');
  const auditFile = path.join(dir, 'audit.log');
  const audit = new AuditLog({ file: auditFile, key: crypto.randomBytes(32) });
  const server = new GuardServer({ socketPath, context: { gate: new Gate({ policy: POLICY, audit }), metrics: {} }, operatorToken: Buffer.from(OPERATOR), agentToken: Buffer.from(AGENT) });
  await server.listen();
  /** Closes the server (which writes the pending counts) and returns the records. */
  const finish = async () => {
    await server.close();
    audit.close();
    return fs.readFileSync(auditFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  };
  return { socketPath, finish };
}

function sendLine(socketPath: string, line: string, replies: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socketPath);
    let n = 0;
    s.on('data', (d) => {
      n += String(d).split('\n').length - 1;
      if (n >= replies) {
        s.destroy();
        resolve();
      }
    });
    s.on('error', reject);
    s.write(line + '\n');
  });
}

describe('audit floods', () => {
  test('a line of 1,000 calls without a session: one invalid_session record now, one with the count later', async () => {
    const { socketPath, finish } = await start();
    const batch = Array.from({ length: 1000 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'cache_stats' }));
    await sendLine(socketPath, JSON.stringify(batch), 1);
    const records = (await finish()).filter((r) => r.type === 'invalid_session');
    expect(records).toHaveLength(2);
    expect(records[0].repeated).toBeUndefined();
    expect(records[1]).toMatchObject({ repeated: 999, window_ms: 10_000, method: 'cache_stats' });
    expect(typeof records[1].client).toBe('string');
  });

  test('200 bad auth calls: a few auth_failure and rate_limited records with counts, not 200', async () => {
    const { socketPath, finish } = await start();
    const c = await GuardClient.connect(socketPath, { timeoutMs: 5000 });
    let blocked = 0;
    for (let i = 0; i < 200; i++) {
      await c.auth('wrong-token-0123456789').catch((e) => {
        if (e.data?.code === 'ERR_AUTH_BLOCKED') blocked++;
      });
    }
    c.close();
    expect(blocked).toBe(195);
    const records = await finish();
    const failures = records.filter((r) => r.type === 'auth_failure');
    const limited = records.filter((r) => r.type === 'rate_limited');
    expect(failures).toHaveLength(2);
    expect(failures[1]).toMatchObject({ repeated: 4 });
    expect(limited).toHaveLength(2);
    expect(limited[1]).toMatchObject({ repeated: 194 });
  });

  test('an agent calling operator methods 500 times: access_denied twice, with the count', async () => {
    const { socketPath, finish } = await start();
    const c = await GuardClient.connect(socketPath, { timeoutMs: 5000 });
    await c.auth(AGENT);
    const results = await Promise.all(Array.from({ length: 500 }, () => c.call('cache_stats').then(() => 'ok', (e) => e.data?.code)));
    expect(new Set(results)).toEqual(new Set(['ERR_FORBIDDEN']));
    c.close();
    const denied = (await finish()).filter((r) => r.type === 'access_denied');
    expect(denied).toHaveLength(2);
    expect(denied[1]).toMatchObject({ repeated: 499, role: 'agent' });
  });
});

describe('AuditThrottle', () => {
  function throttle() {
    const written: Array<{ type: string; fields: Record<string, unknown> }> = [];
    const clock = { now: 1_000_000 };
    const audit = { append: (type: string, _s: string, fields: Record<string, unknown>) => written.push({ type, fields }) } as unknown as AuditLog;
    const t = new AuditThrottle(() => audit, 1000, () => clock.now);
    return { t, written, clock };
  }

  test('first at once, the rest of the interval as one count; clients and types apart', () => {
    const { t, written, clock } = throttle();
    for (let i = 0; i < 50; i++) t.note('invalid_session', 'warning', 'uid:1', { i });
    t.note('invalid_session', 'warning', 'uid:2', { i: 0 });
    t.note('access_denied', 'warning', 'uid:1', { i: 0 });
    expect(written.map((w) => [w.type, w.fields.client])).toEqual([
      ['invalid_session', 'uid:1'],
      ['invalid_session', 'uid:2'],
      ['access_denied', 'uid:1'],
    ]);
    clock.now += 999;
    t.flush();
    expect(written).toHaveLength(3); // the interval has not ended
    clock.now += 1;
    t.flush();
    expect(written[3]).toEqual({ type: 'invalid_session', fields: { i: 49, client: 'uid:1', repeated: 49, window_ms: 1000 } });
    expect(written).toHaveLength(4); // the others had nothing more to say
    // A new interval starts with a record at once again.
    t.note('invalid_session', 'warning', 'uid:1', { i: 50 });
    expect(written[4]).toEqual({ type: 'invalid_session', fields: { i: 50, client: 'uid:1' } });
    t.close();
  });

  test('memory is bounded: many clients close the oldest windows first', () => {
    const { t, written } = throttle();
    for (let c = 0; c < 5000; c++) {
      t.note('invalid_session', 'warning', `connection:${c}`, {});
      t.note('invalid_session', 'warning', `connection:${c}`, {});
    }
    // 5000 first records; the 904 oldest windows were closed early, each with its count.
    expect(written.filter((w) => w.fields.repeated === undefined)).toHaveLength(5000);
    expect(written.filter((w) => w.fields.repeated === 1)).toHaveLength(5000 - 4096);
    t.close();
    expect(written.filter((w) => w.fields.repeated === 1)).toHaveLength(5000);
  });
});
