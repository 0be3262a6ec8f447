// Audit anchors (issue 25 item 2): a rollback of log and head together to an
// older copy verifies on its own (the documented limit), and is caught only
// against an anchor kept elsewhere: a file (FileAuditAnchor) or Redis
// (RedisAuditAnchor, on a real redis-server; skipped without one unless
// GUARDKERNEL_REQUIRE_REDIS=1). Anchors move only forward, and a log opened
// behind its anchor leaves the anchor as evidence.
import { runSync } from './child';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AuditLog, FileAuditAnchor, FleetStore, RedisAuditAnchor, type AuditAnchor } from '../lib/index';
import { repoRoot } from './helpers';
import { redisAvailable, startRedis, type RedisProcess } from './redis-server';

const KEY = crypto.randomBytes(32);
const cli = path.join(repoRoot, 'dist', 'cli', 'main.js');
const tmpDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'gk-audit-anchor-'));

/** Appends `n` records and closes (the head and the anchor then name the last one). */
function appendClosed(file: string, n: number, anchor?: AuditAnchor): AuditLog {
  const log = new AuditLog({ file, key: KEY, anchor });
  for (let i = 0; i < n; i++) log.append('gate_decision', 'info', { i, at: log.seq + 1 });
  log.close();
  return log;
}

function snapshot(file: string, to: string): void {
  fs.copyFileSync(file, to);
  fs.copyFileSync(`${file}.head`, `${to}.head`);
}

function restore(from: string, file: string): void {
  fs.copyFileSync(from, file);
  fs.copyFileSync(`${from}.head`, `${file}.head`);
}

describe('FileAuditAnchor', () => {
  test('a rollback of log and head together: verifies without an anchor (the limit), fails against it (library and CLI)', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'audit.log');
    const anchor = new FileAuditAnchor(path.join(tmpDir(), 'anchor.json'));
    appendClosed(file, 5, anchor);
    snapshot(file, path.join(dir, 'old'));
    appendClosed(file, 5, anchor);
    expect(anchor.read()).toMatchObject({ seq: 10, key_id: AuditLog.keyId(KEY) });
    restore(path.join(dir, 'old'), file);

    expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: true, records: 5 }); // nothing in the directory shows it
    expect(AuditLog.verify(file, KEY, { anchor: anchor.read() })).toMatchObject({ ok: false, reason: 'behind_anchor', records: 5, lastGoodSeq: 5, firstBad: { seq: 6 } });

    const keyFile = path.join(tmpDir(), 'key');
    fs.writeFileSync(keyFile, KEY);
    const r = runSync(process.execPath, [cli, 'audit', 'verify', file, '--key-file', keyFile, '--anchor-file', anchor.file], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, reason: 'behind_anchor' });
    expect(r.stderr).toMatch(/rolled back/);
    const intact = runSync(process.execPath, [cli, 'audit', 'verify', file, '--key-file', keyFile], { encoding: 'utf8' });
    expect(intact.status).toBe(0);
  });

  test('an intact log verifies against its anchor; the anchor follows every checkpoint', () => {
    const file = path.join(tmpDir(), 'audit.log');
    const anchor = new FileAuditAnchor(path.join(tmpDir(), 'anchor.json'));
    const log = new AuditLog({ file, key: KEY, anchor });
    expect(anchor.read()).toMatchObject({ seq: 0 }); // a new log's head, anchored at once
    log.append('gate_decision', 'info', { i: 1 });
    log.flush();
    expect(anchor.read()).toMatchObject({ seq: 1 });
    log.append('gate_decision', 'info', { i: 2 });
    log.close();
    expect(anchor.read()).toMatchObject({ seq: 2 });
    expect(log.anchorError).toBeNull();
    expect(AuditLog.verify(file, KEY, { anchor: anchor.read() })).toMatchObject({ ok: true, records: 2 });
  });

  test('another log of the same key put in place, as long as the anchored one or longer: the anchored record differs', () => {
    const file = path.join(tmpDir(), 'audit.log');
    const other = path.join(tmpDir(), 'audit.log');
    const anchor = new FileAuditAnchor(path.join(tmpDir(), 'anchor.json'));
    appendClosed(file, 6, anchor);
    appendClosed(other, 9);
    restore(other, file);
    expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: true });
    expect(AuditLog.verify(file, KEY, { anchor: anchor.read() })).toMatchObject({ ok: false, reason: 'anchor_mismatch', firstBad: { line: 6, seq: 6 } });
  });

  test('only forward: a lower seq is ignored', () => {
    const anchor = new FileAuditAnchor(path.join(tmpDir(), 'anchor.json'));
    const mac = (c: string) => c.repeat(64);
    anchor.write({ seq: 7, mac: mac('a') });
    anchor.write({ seq: 3, mac: mac('b') });
    anchor.write({ seq: 7, mac: mac('c') });
    expect(anchor.read()).toEqual({ seq: 7, mac: mac('a') });
    anchor.write({ seq: 8, mac: mac('d') });
    expect(anchor.read()).toEqual({ seq: 8, mac: mac('d') });
    expect(() => anchor.write({ seq: -1, mac: mac('e') })).toThrow(TypeError);
  });

  test('a log reopened behind its anchor leaves the anchor as it is and records the conflict; verify keeps failing even once the log is longer', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'audit.log');
    const anchor = new FileAuditAnchor(path.join(tmpDir(), 'anchor.json'));
    appendClosed(file, 4, anchor);
    snapshot(file, path.join(dir, 'old'));
    appendClosed(file, 4, anchor);
    restore(path.join(dir, 'old'), file);
    const before = anchor.read();
    const log = appendClosed(file, 10, anchor); // the service restarts on the rolled-back copy
    expect(log.anchorConflict).toBe(true);
    expect(log.anchorError?.message).toMatch(/behind its anchor/);
    expect(anchor.read()).toEqual(before);
    const records = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(records[4]).toMatchObject({ seq: 5, type: 'log_anchor_conflict', severity: 'critical', anchor_seq: 8, log_seq: 4 });
    expect(AuditLog.verify(file, KEY, { anchor: anchor.read() })).toMatchObject({ ok: false, reason: 'anchor_mismatch', firstBad: { seq: 8 } });
  });

  test('an anchor of another key is a conflict, and verify names it', () => {
    const file = path.join(tmpDir(), 'audit.log');
    const anchorFile = path.join(tmpDir(), 'anchor.json');
    const anchor = new FileAuditAnchor(anchorFile);
    const otherLog = new AuditLog({ file: path.join(tmpDir(), 'x.log'), key: crypto.randomBytes(32), anchor });
    otherLog.close();
    const log = appendClosed(file, 2, anchor);
    expect(log.anchorConflict).toBe(true);
    expect(AuditLog.verify(file, KEY, { anchor: anchor.read() })).toMatchObject({ ok: false, reason: 'anchor_mismatch' });
  });

  test('a damaged anchor is an error, not "no anchor"', () => {
    const anchorFile = path.join(tmpDir(), 'anchor.json');
    fs.writeFileSync(anchorFile, '{"seq":"x"}');
    expect(() => new FileAuditAnchor(anchorFile).read()).toThrow(/not a valid anchor/);
    const file = path.join(tmpDir(), 'audit.log');
    const log = appendClosed(file, 1, new FileAuditAnchor(anchorFile));
    expect(log.anchorError?.message).toMatch(/not a valid anchor/);
    expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: true }); // the log itself is unaffected
    expect(() => new AuditLog({ file, key: KEY, anchor: {} as AuditAnchor })).toThrow(TypeError);
  });
});

describe.skipIf(!redisAvailable)('RedisAuditAnchor on a real redis-server', () => {
  let redis: RedisProcess;
  let store: FleetStore;
  beforeAll(async () => {
    redis = await startRedis();
    store = FleetStore.redis({ redis: redis.url, prefix: 'anchor-test:' });
    await store.ready();
  });
  afterAll(async () => {
    await store?.close();
    await redis?.stop();
  });

  test('the anchor follows the log; a rollback of log and head fails against it', async () => {
    const dir = tmpDir();
    const file = path.join(dir, 'audit.log');
    const anchor = new RedisAuditAnchor(store, 'host-a:audit.log');
    expect(anchor.key).toBe('anchor-test:audit-anchor:host-a:audit.log');
    expect(await anchor.read()).toBeNull();
    let log = appendClosed(file, 3, anchor);
    await log.syncAnchor();
    expect(await anchor.read()).toMatchObject({ seq: 3, key_id: AuditLog.keyId(KEY) });
    snapshot(file, path.join(dir, 'old'));
    log = appendClosed(file, 3, anchor);
    await log.syncAnchor();
    expect(await anchor.read()).toMatchObject({ seq: 6 });
    expect(AuditLog.verify(file, KEY, { anchor: await anchor.read() })).toMatchObject({ ok: true, records: 6 });

    restore(path.join(dir, 'old'), file);
    expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: true, records: 3 });
    expect(AuditLog.verify(file, KEY, { anchor: await anchor.read() })).toMatchObject({ ok: false, reason: 'behind_anchor', lastGoodSeq: 3 });
  });

  test('only forward, whatever order the writes arrive in', async () => {
    const anchor = new RedisAuditAnchor(store, 'forward');
    const mac = (c: string) => c.repeat(64);
    await Promise.all([anchor.write({ seq: 9, mac: mac('9') }), anchor.write({ seq: 4, mac: mac('4') }), anchor.write({ seq: 9, mac: mac('a') })]);
    expect(await anchor.read()).toEqual({ seq: 9, mac: mac('9') });
    await anchor.write({ seq: 10, mac: mac('b'), key_id: 'k' });
    expect(await anchor.read()).toEqual({ seq: 10, mac: mac('b'), key_id: 'k' });
  });

  test('a log reopened behind its Redis anchor finds out once the anchor is read, and leaves it alone', async () => {
    const dir = tmpDir();
    const file = path.join(dir, 'audit.log');
    const anchor = new RedisAuditAnchor(store, 'rollback');
    let log = appendClosed(file, 2, anchor);
    await log.syncAnchor();
    snapshot(file, path.join(dir, 'old'));
    log = appendClosed(file, 3, anchor);
    await log.syncAnchor();
    restore(path.join(dir, 'old'), file);
    log = new AuditLog({ file, key: KEY, anchor });
    for (let i = 0; i < 6; i++) log.append('gate_decision', 'info', { i });
    log.flush();
    await expect(log.syncAnchor()).rejects.toThrow(/behind its anchor/);
    expect(log.anchorConflict).toBe(true);
    log.close();
    expect(await anchor.read()).toMatchObject({ seq: 5 });
    expect(AuditLog.verify(file, KEY, { anchor: await anchor.read() })).toMatchObject({ ok: false, reason: 'anchor_mismatch', firstBad: { seq: 5 } });
  });

  test('bad arguments', () => {
    expect(() => new RedisAuditAnchor({} as FleetStore, 'x')).toThrow(TypeError);
    expect(() => new RedisAuditAnchor(store, '')).toThrow(TypeError);
  });
});
