// AuditLog retentionDays: rotated files older than the period are deleted
// when the log opens and after each rotation; each deletion is a chained
// `log_pruned` record; newer rotations, the live file and anything that is
// not one of our rotations are never touched.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { AuditLog } from '../lib/index';

const KEY = crypto.randomBytes(32);
const DAY = 86_400_000;

function setup(): { dir: string; file: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-audit-retention-'));
  return { dir, file: path.join(dir, 'audit.log') };
}

function aged(file: string, days: number): void {
  fs.writeFileSync(file, '{"old":true}\n');
  const t = (Date.now() - days * DAY) / 1000;
  fs.utimesSync(file, t, t);
}

const records = (file: string) => fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));

describe('AuditLog retentionDays', () => {
  test('on open: rotations past the period go, each recorded; newer ones, the live file and strangers stay', () => {
    const { dir, file } = setup();
    aged(`${file}.1`, 400);
    aged(`${file}.2`, 200);
    aged(`${file}.3`, 10);
    aged(`${file}.old`, 900); // not a rotation name
    aged(`${file}.01`, 900); // not a rotation name either
    aged(path.join(dir, 'other.log.1'), 900); // another log's rotation
    const log = new AuditLog({ file, key: KEY, retentionDays: 365 });
    expect(log.retentionDays).toBe(365);
    log.close();
    expect(fs.existsSync(`${file}.1`)).toBe(false);
    for (const kept of [`${file}.2`, `${file}.3`, `${file}.old`, `${file}.01`, path.join(dir, 'other.log.1')]) expect(fs.existsSync(kept)).toBe(true);
    const pruned = records(file).filter((r) => r.type === 'log_pruned');
    expect(pruned).toEqual([expect.objectContaining({ file: `${file}.1`, retention_days: 365 })]);
    expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: true });
  });

  test('after a rotation too', () => {
    const { file } = setup();
    const log = new AuditLog({ file, key: KEY, retentionDays: 30, rotateBytes: 2000 });
    aged(`${file}.7`, 31);
    for (let i = 0; i < 30; i++) log.append('gate_decision', 'info', { i, pad: 'x'.repeat(40) });
    log.flush();
    log.close();
    expect(fs.existsSync(`${file}.7`)).toBe(false);
    expect(records(file).some((r) => r.type === 'log_pruned' && r.file === `${file}.7`)).toBe(true);
    expect(fs.existsSync(`${file}.8`)).toBe(true); // the fresh rotation (numbered after .7) stays
  });

  test('a rotation after pruning takes the next number up, so numeric order stays chronological, and the chain verifies', () => {
    const { file } = setup();
    const log = new AuditLog({ file, key: KEY, rotateBytes: 600 });
    for (let i = 0; i < 12; i++) {
      log.append('gate_decision', 'info', { i, pad: 'x'.repeat(40) });
      log.flush();
    }
    log.close();
    expect(fs.existsSync(`${file}.2`)).toBe(true);
    const old = (Date.now() - 40 * DAY) / 1000;
    fs.utimesSync(`${file}.1`, old, old);
    const again = new AuditLog({ file, key: KEY, rotateBytes: 600, retentionDays: 30 });
    expect(fs.existsSync(`${file}.1`)).toBe(false);
    const before = fs.readdirSync(path.dirname(file)).filter((n) => /^audit\.log\.\d+$/.test(n)).map((n) => Number(n.split('.').pop()));
    for (let i = 0; i < 6; i++) {
      again.append('gate_decision', 'info', { i, pad: 'y'.repeat(40) });
      again.flush();
    }
    again.close();
    const after = fs.readdirSync(path.dirname(file)).filter((n) => /^audit\.log\.\d+$/.test(n)).map((n) => Number(n.split('.').pop()));
    expect(after).not.toContain(1); // the freed number is not reused
    expect(Math.min(...after.filter((n) => !before.includes(n)))).toBe(Math.max(...before) + 1);
    expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: true });
  });

  test('without retentionDays nothing is deleted, and retentionDays reads Infinity', () => {
    const { file } = setup();
    aged(`${file}.1`, 5000);
    const log = new AuditLog({ file, key: KEY });
    expect(log.retentionDays).toBe(Infinity);
    log.close();
    expect(fs.existsSync(`${file}.1`)).toBe(true);
  });

  test('a symlink named like a rotation is not followed or deleted', () => {
    const { dir, file } = setup();
    const target = path.join(dir, 'precious');
    aged(target, 900);
    fs.symlinkSync(target, `${file}.4`);
    new AuditLog({ file, key: KEY, retentionDays: 1 }).close();
    expect(fs.existsSync(`${file}.4`)).toBe(true);
    expect(fs.existsSync(target)).toBe(true);
  });

  test('rejects bad retentionDays', () => {
    for (const bad of [0, -1, 1.5, NaN, Infinity, '30']) {
      expect(() => new AuditLog({ file: setup().file, key: KEY, retentionDays: bad as number })).toThrow(RangeError);
    }
  });
});
