// Bounded work per line (issue 25 item 4): a JSON-RPC batch array is capped,
// and so is the number of decisions one line asks for, however it is packed
// (one gate_check_batch, several in a batch array, or plain requests). Over
// a cap: one error reply, and no work at all (no decision, no audit record).
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { AuditLog, Gate, GuardServer } from '../lib/index';

const POLICY = { version: 1, mode: 'enforce', actions: { file_read: { constraints: { resource: { glob: '/srv/**' } } } } };
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function start(opts: Partial<ConstructorParameters<typeof GuardServer>[0]> = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-limits-'));
  const socketPath = path.join(dir, 'core.sock');
  const auditFile = path.join(dir, 'audit.log');
  const audit = new AuditLog({ file: auditFile, key: crypto.randomBytes(32) });
  const gate = new Gate({ policy: POLICY, audit });
  const metrics: Record<string, number> = {};
  const server = new GuardServer({ socketPath, context: { gate, metrics }, ...opts });
  await server.listen();
  cleanups.push(async () => {
    await server.close();
    audit.close();
  });
  const records = () => {
    audit.flush();
    return fs.readFileSync(auditFile, 'utf8').split('\n').filter(Boolean).length;
  };
  return { socketPath, metrics, records };
}

/** Sends one line and reads the first reply line. */
function ask(socketPath: string, line: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socketPath);
    let buf = '';
    s.on('data', (d) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        s.destroy();
        resolve(buf.slice(0, nl));
      }
    });
    s.on('error', reject);
    s.on('close', () => reject(new Error(`closed without a reply: ${buf.slice(0, 200)}`)));
    s.write(line);
    s.write('\n');
  });
}

const check = (i: number) => ({ car: { action_type: 'file_read', agent_id: `a${i}`, resource: `/srv/${i}` } });
const request = (id: number, method: string, params?: unknown) => ({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) });

describe('bounded work per line', () => {
  test('a 1 MB line of [0,0,...] is one small error, not half a million replies', async () => {
    const { socketPath } = await start();
    const line = '[' + Array(500_000).fill('0').join(',') + ']';
    const reply = await ask(socketPath, line);
    expect(reply.length).toBeLessThan(300);
    expect(JSON.parse(reply)).toMatchObject({ id: null, error: { code: -32600, data: { code: 'ERR_LIMIT', limit: 1000 } } });
  });

  test('the batch cap: 1,000 requests are answered, 1,001 are one error and run nothing', async () => {
    const { socketPath, metrics, records } = await start();
    const ok = JSON.parse(await ask(socketPath, JSON.stringify(Array.from({ length: 1000 }, (_, i) => request(i, 'gate_check', check(i))))));
    expect(ok).toHaveLength(1000);
    expect(metrics.gate_checks).toBe(1000);
    const before = records();
    const over = JSON.parse(await ask(socketPath, JSON.stringify(Array.from({ length: 1001 }, (_, i) => request(i, 'gate_check', check(i))))));
    expect(over).toMatchObject({ id: null, error: { code: -32600, data: { code: 'ERR_LIMIT' } } });
    expect(metrics.gate_checks).toBe(1000); // nothing of the refused line ran
    expect(records()).toBe(before);
  });

  test('several gate_check_batch in one line count together against the per-line cap', async () => {
    const { socketPath, metrics, records } = await start();
    const batch = (id: number, n: number) => request(id, 'gate_check_batch', { requests: Array.from({ length: n }, (_, i) => check(i)) });
    const fits = JSON.parse(await ask(socketPath, JSON.stringify([batch(1, 5000), batch(2, 5000)])));
    expect(fits.map((r: { result: { decisions: unknown[] } }) => r.result.decisions.length)).toEqual([5000, 5000]);
    expect(metrics.gate_checks).toBe(10_000);
    const before = records();
    for (const line of [[batch(1, 6000), batch(2, 6000)], [batch(1, 9999), request(2, 'gate_check', check(1)), request(3, 'gate_check', check(2))], Array.from({ length: 11 }, (_, i) => batch(i, 1000))]) {
      const reply = JSON.parse(await ask(socketPath, JSON.stringify(line)));
      expect(reply).toMatchObject({ id: null, error: { code: -32600, message: expect.stringMatching(/at most 10000 decisions/), data: { code: 'ERR_LIMIT', limit: 10_000 } } });
    }
    expect(metrics.gate_checks).toBe(10_000);
    expect(records()).toBe(before);
    // A single gate_check_batch keeps its own cap.
    const single = JSON.parse(await ask(socketPath, JSON.stringify(batch(9, 10_001))));
    expect(single.error).toMatchObject({ code: -32602 });
  });

  test('the caps are options, and bad values are refused', async () => {
    const { socketPath } = await start({ maxBatch: 3, maxLineWork: 5 });
    expect(JSON.parse(await ask(socketPath, JSON.stringify([request(1, 'ping'), request(2, 'ping'), request(3, 'ping')])))).toHaveLength(3);
    expect(JSON.parse(await ask(socketPath, JSON.stringify(Array.from({ length: 4 }, (_, i) => request(i, 'ping')))))).toMatchObject({ error: { data: { limit: 3 } } });
    const b = request(1, 'gate_check_batch', { requests: Array.from({ length: 6 }, (_, i) => check(i)) });
    expect(JSON.parse(await ask(socketPath, JSON.stringify([b])))).toMatchObject({ error: { data: { limit: 5 } } });
    for (const bad of [0, -1, 1.5, Number.NaN, '10']) {
      expect(() => new GuardServer({ socketPath: '/tmp/x.sock', context: { gate: new Gate({ policy: POLICY }), metrics: {} }, maxBatch: bad as number })).toThrow(RangeError);
      expect(() => new GuardServer({ socketPath: '/tmp/x.sock', context: { gate: new Gate({ policy: POLICY }), metrics: {} }, maxLineWork: bad as number })).toThrow(RangeError);
    }
  });
});
