// AuditLog seals records from canonical bytes written into a scratch buffer
// (lib/canonical/bytes.ts) and keeps sealed lines as bytes; the signed head
// checkpoint is refreshed at most every checkpointEveryMs by background
// writes. These tests hold the byte path to the verifier (which recomputes
// every MAC through the string serializer) and pin the checkpoint rules.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test, vi } from 'vitest';
import { AuditLog, GuardError, canonicalizeJson } from '../lib/index';
import { randomInt, rng } from './helpers';

const KEY = crypto.randomBytes(32);
const tmpFile = () => path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gk-audit-fast-')), 'audit.log');
const readHead = (file: string) => JSON.parse(fs.readFileSync(file + '.head', 'utf8')) as { seq: number };
const nextTurn = () => new Promise((r) => setImmediate(r));

const PIECES = ['a', 'é', '€', '😀', '\u0000', '\u001f', '"', '\\', '\n', '\u2028', '中', '\u007f'];

function randomField(next: () => number, depth = 0): unknown {
  const r = next();
  if (depth > 3 || r < 0.5) {
    switch (randomInt(next, 0, 5)) {
      case 0: return randomInt(next, -1e9, 1e9);
      case 1: return [2 ** 60, -(2 ** 55), 1e21, 0.1, -0, 5e-324][randomInt(next, 0, 5)]; // JSON, unlike CARs, carries unsafe integers
      case 2: return next() < 0.5;
      case 3: return null;
      default: {
        let s = '';
        for (let i = randomInt(next, 0, 6); i > 0; i--) s += PIECES[randomInt(next, 0, PIECES.length - 1)];
        return s;
      }
    }
  }
  if (r < 0.7) return Array.from({ length: randomInt(next, 0, 3) }, () => randomField(next, depth + 1));
  const o: Record<string, unknown> = {};
  for (let i = randomInt(next, 0, 3); i > 0; i--) o[PIECES[randomInt(next, 0, PIECES.length - 1)] + i] = randomField(next, depth + 1);
  return o;
}

describe('records sealed from canonical bytes', () => {
  test('2,000 records with escapes, astral characters and unsafe integers verify, and each line is the canonical record', () => {
    const file = tmpFile();
    const log = new AuditLog({ file, key: KEY });
    const next = rng(0xa0d17);
    const written: Array<Record<string, unknown>> = [];
    for (let i = 0; i < 2000; i++) {
      const fields = { f: randomField(next), [PIECES[i % PIECES.length] + 'k']: randomField(next) };
      written.push(fields);
      log.append('gate_decision', 'info', fields);
    }
    log.close();
    expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: true, records: 2000 });
    const lines = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
    lines.forEach((line, i) => {
      const record = JSON.parse(line);
      const { mac, ...rest } = record;
      // The line is the JCS form with the mac appended: nothing reordered or re-escaped.
      expect(line).toBe(canonicalizeJson(rest).slice(0, -1) + `,"mac":"${mac}"}`);
      expect(canonicalizeJson({ f: record.f })).toBe(canonicalizeJson({ f: written[i].f }));
    });
  });

  test('records the byte path leaves to the string path: too large, too deep, not JSON', () => {
    const file = tmpFile();
    const log = new AuditLog({ file, key: KEY });
    expect(() => log.append('gate_decision', 'info', { n: NaN })).toThrow(GuardError);
    // Too large is cut to fit (test/audit-verify-tamper.test.ts), never refused.
    log.append('gate_decision', 'info', { big: 'x'.repeat(70_000) });
    let deep: unknown = 1;
    for (let i = 0; i < 40; i++) deep = [deep];
    expect(() => log.append('gate_decision', 'info', { deep })).toThrow(/deeper/);
    // A large record within the limit takes whichever path fits and still verifies.
    log.append('gate_decision', 'info', { big: '€'.repeat(20_000) });
    log.append('gate_decision', 'info', { ok: true });
    log.close();
    expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: true, records: 3 });
  });

  test('a burst larger than the initial line buffer', () => {
    const file = tmpFile();
    const log = new AuditLog({ file, key: KEY, maxBuffered: 100_000 });
    for (let i = 0; i < 3000; i++) log.append('gate_decision', 'info', { i, pad: 'p'.repeat(100) });
    log.close();
    expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: true, records: 3000 });
  });
});

describe('head checkpoint refresh', () => {
  test('background writes refresh the head at most every checkpointEveryMs; a timer catches up', async () => {
    // Fake time (Date and timers; setImmediate stays real for the background writes).
    vi.useFakeTimers({ toFake: ['Date', 'setTimeout', 'clearTimeout'] });
    try {
      const file = tmpFile();
      const log = new AuditLog({ file, key: KEY, checkpointEveryMs: 300 });
      log.append('gate_decision', 'info', { i: 1 });
      await nextTurn();
      expect(readHead(file).seq).toBe(1); // the first write checkpoints at once
      vi.advanceTimersByTime(100);
      log.append('gate_decision', 'info', { i: 2 });
      await nextTurn();
      expect(fs.readFileSync(file, 'utf8').split('\n').filter(Boolean)).toHaveLength(2); // the record is written...
      expect(readHead(file).seq).toBe(1); // ...but the head waits
      vi.advanceTimersByTime(199);
      expect(readHead(file).seq).toBe(1); // 299 ms after the last refresh: still waiting
      vi.advanceTimersByTime(1);
      expect(readHead(file).seq).toBe(2); // 300 ms: the timer caught up
      log.close();
    } finally {
      vi.useRealTimers();
    }
  });

  test('flush() and close() always refresh the head, so a cut tail is detected', async () => {
    const file = tmpFile();
    const log = new AuditLog({ file, key: KEY, checkpointEveryMs: 60_000 });
    for (let i = 1; i <= 3; i++) log.append('gate_decision', 'info', { i });
    await nextTurn();
    log.append('gate_decision', 'info', { i: 4 });
    log.flush();
    expect(readHead(file).seq).toBe(4);
    log.append('gate_decision', 'info', { i: 5 });
    log.close();
    expect(readHead(file).seq).toBe(5);
    const lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
    fs.writeFileSync(file, lines.slice(0, 4).map((l) => l + '\n').join(''));
    expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: false, lastGoodSeq: 4 });
  });

  test('the documented window: a cut of records newer than the head goes unnoticed until the next refresh', async () => {
    const file = tmpFile();
    const log = new AuditLog({ file, key: KEY, checkpointEveryMs: 60_000 });
    log.append('gate_decision', 'info', { i: 1 });
    await nextTurn();
    log.append('gate_decision', 'info', { i: 2 });
    await nextTurn();
    const lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
    fs.writeFileSync(file, lines[0] + '\n');
    expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: true, records: 1 });
    log.close(); // the checkpoint now names seq 2, which the file lacks
    expect(AuditLog.verify(file, KEY).ok).toBe(false);
  });

  test('checkpointEveryMs: 0 refreshes on every background write', async () => {
    const file = tmpFile();
    const log = new AuditLog({ file, key: KEY, checkpointEveryMs: 0 });
    for (let i = 1; i <= 3; i++) {
      log.append('gate_decision', 'info', { i });
      await nextTurn();
      expect(readHead(file).seq).toBe(i);
    }
    log.close();
  });

  test('rejects bad checkpointEveryMs', () => {
    for (const bad of [-1, 1.5, NaN, '100', Infinity]) {
      expect(() => new AuditLog({ file: tmpFile(), key: KEY, checkpointEveryMs: bad as number })).toThrow(RangeError);
    }
  });
});
