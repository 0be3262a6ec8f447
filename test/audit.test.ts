// AuditLog: chain + MACs + head checkpoint; every tampering named; torn
// writes from a killed writer; required mode; rotation; the CLI.
import { runSync, startChild } from './child';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { AuditLog, GuardError, SECURITY_EVENT_TYPES } from '../lib/index';
import { repoRoot } from './helpers';

const KEY = crypto.randomBytes(32);

function tmpFile(name = 'audit.log'): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gk-audit-')), name);
}

function writeLog(n: number, file = tmpFile()): string {
  const log = new AuditLog({ file, key: KEY });
  // A per-log id: two logs written in the same millisecond must still differ.
  const run = crypto.randomUUID();
  for (let i = 1; i <= n; i++) log.append('gate_decision', 'info', { i, run, decision: i % 2 ? 'allow' : 'deny', agent: `agent-${i}` });
  log.close();
  return file;
}

const readLines = (file: string) => fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
const writeLines = (file: string, lines: string[]) => fs.writeFileSync(file, lines.map((l) => l + '\n').join(''));

describe('a clean log', () => {
  test('verifies, with every record chained and sealed', () => {
    const file = writeLog(20);
    expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: true, records: 20, lastGoodSeq: 20 });
    const lines = readLines(file).map((l) => JSON.parse(l));
    // The chain starts at the key's genesis: the key id, then a MAC over it.
    expect(lines[0].prev).toMatch(/^[0-9a-f]{64}$/);
    expect(lines[0].prev.slice(0, 16)).toBe(AuditLog.keyId(KEY));
    for (let i = 1; i < lines.length; i++) expect(lines[i].prev).toBe(lines[i - 1].mac);
    expect(lines[3]).toMatchObject({ seq: 4, type: 'gate_decision', severity: 'info', i: 4 });
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.existsSync(file + '.head')).toBe(true);
  });

  test('the wrong key is reported as the wrong key, naming the log\'s key id, with or without the head', () => {
    const file = writeLog(3);
    const keyId = AuditLog.keyId(KEY);
    expect(AuditLog.verify(file, crypto.randomBytes(32))).toMatchObject({ ok: false, records: 0, reason: 'wrong_key', keyId, firstBad: { reason: expect.stringContaining(keyId) } });
    fs.rmSync(file + '.head');
    expect(AuditLog.verify(file, crypto.randomBytes(32), { allowMissingHead: true })).toMatchObject({ ok: false, records: 0, reason: 'wrong_key', keyId, firstBad: { line: 1, seq: 1 } });
    // The right key on a changed first record is tampering, not a key problem.
    const lines = readLines(file);
    writeLines(file, [lines[0].replace('"agent":"agent-1"', '"agent":"agent-X"'), ...lines.slice(1)]);
    expect(AuditLog.verify(file, KEY, { allowMissingHead: true })).toMatchObject({ ok: false, reason: 'mac_mismatch', firstBad: { line: 1, seq: 1, reason: expect.stringMatching(/MAC/) } });
  });

  test('a reopened log continues the chain', () => {
    const file = writeLog(5);
    const log = new AuditLog({ file, key: KEY });
    expect(log.append('policy_reloaded', 'warning', { version: 4 })).toBe(6);
    log.close();
    expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: true, records: 6 });
  });

  test('records are written at the next turn of the event loop without an explicit flush', async () => {
    const file = tmpFile();
    const log = new AuditLog({ file, key: KEY });
    log.append('auth_success', 'info', { client: 1 });
    expect(fs.readFileSync(file, 'utf8')).toBe('');
    await new Promise((r) => setImmediate(r));
    expect(readLines(file)).toHaveLength(1);
    log.close();
  });

  test('every listed security event type is accepted', () => {
    const file = tmpFile();
    const log = new AuditLog({ file, key: KEY });
    for (const t of SECURITY_EVENT_TYPES) log.append(t, 'warning', {});
    log.close();
    expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: true, records: SECURITY_EVENT_TYPES.length });
  });
});

describe('tampering is detected and the right record named', () => {
  test('a modified record', () => {
    const file = writeLog(10);
    const lines = readLines(file);
    lines[4] = lines[4].replace('"decision":"allow"', '"decision":"deny"');
    writeLines(file, lines);
    expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: false, records: 4, lastGoodSeq: 4, firstBad: { line: 5, seq: 5, reason: expect.stringMatching(/MAC/) } });
  });

  test('a deleted record', () => {
    const file = writeLog(10);
    const lines = readLines(file);
    lines.splice(6, 1);
    writeLines(file, lines);
    expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: false, records: 6, firstBad: { line: 7, seq: 8, reason: 'seq 7 is missing' } });
  });

  test('an inserted record (renumbering does not help without the key)', () => {
    const file = writeLog(10);
    const lines = readLines(file).map((l) => JSON.parse(l));
    const forged = { ...lines[2], i: 99 };
    const renumbered = [...lines.slice(0, 3), forged, ...lines.slice(3)].map((r, k) => ({ ...r, seq: k + 1 }));
    writeLines(file, renumbered.map((r) => JSON.stringify(r)));
    expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: false, records: 3, firstBad: { line: 4, seq: 4 } });
  });

  test('reordered records', () => {
    const file = writeLog(10);
    const lines = readLines(file);
    [lines[2], lines[3]] = [lines[3], lines[2]];
    writeLines(file, lines);
    expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: false, records: 2, firstBad: { line: 3, seq: 4 } });
  });

  test('a truncated tail (caught by the signed head checkpoint)', () => {
    const file = writeLog(10);
    writeLines(file, readLines(file).slice(0, 7));
    expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: false, records: 7, firstBad: { seq: 8, reason: expect.stringMatching(/truncated/) } });
  });

  test('a forged head checkpoint', () => {
    const file = writeLog(10);
    writeLines(file, readLines(file).slice(0, 7));
    const head = JSON.parse(fs.readFileSync(file + '.head', 'utf8'));
    fs.writeFileSync(file + '.head', JSON.stringify({ ...head, seq: 7 }));
    expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: false, firstBad: { reason: expect.stringMatching(/signature/) } });
  });

  test('two logs swapped (same key)', () => {
    const a = writeLog(10);
    const b = writeLog(12);
    fs.copyFileSync(b, a); // a's head checkpoint stays
    expect(AuditLog.verify(a, KEY).ok).toBe(false);
    const c = writeLog(10);
    const d = writeLog(10);
    fs.copyFileSync(d, c); // same length, different chain
    expect(AuditLog.verify(c, KEY)).toMatchObject({ ok: false, firstBad: { line: 10, seq: 10, reason: expect.stringMatching(/head checkpoint does not match/) } });
    expect(AuditLog.verify(a, KEY)).toMatchObject({ ok: false, firstBad: { seq: 10, reason: expect.stringMatching(/head checkpoint does not match/) } });
  });
});

describe('rotation', () => {
  test('rotates by size and keeps one chain across files; swapped files are detected', () => {
    const file = tmpFile();
    const log = new AuditLog({ file, key: KEY, rotateBytes: 2000 });
    for (let i = 0; i < 60; i++) {
      log.append('gate_decision', 'info', { i, pad: 'x'.repeat(40) });
      if (i % 5 === 4) log.flush();
    }
    log.close();
    const rotated = fs.readdirSync(path.dirname(file)).filter((f) => /^audit\.log\.\d+$/.test(f)).sort((x, y) => Number(x.split('.').pop()) - Number(y.split('.').pop()));
    expect(rotated.length).toBeGreaterThanOrEqual(2);
    const files = [...rotated.map((f) => path.join(path.dirname(file), f)), file];
    const total = 60 + rotated.length; // one log_rotated record per new file
    expect(AuditLog.verifyChain(files, KEY)).toMatchObject({ ok: true, records: total, lastGoodSeq: total });
    expect(JSON.parse(readLines(file)[0])).toMatchObject({ type: 'log_rotated' });
    const swapped = [files[1], files[0], ...files.slice(2)];
    expect(AuditLog.verifyChain(swapped, KEY).ok).toBe(false);
    // A suffix lost the chain's genesis: records are missing from its start.
    expect(AuditLog.verifyChain(files.slice(1), KEY)).toMatchObject({ ok: false, reason: 'not_genesis', records: 0 });
    // The live file alone is verified with the predecessors its chain names.
    expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: true, records: total, lastGoodSeq: total });
    expect(AuditLog.verifyChain([files[0], ...files.slice(2)], KEY)).toMatchObject({ ok: false, firstBad: { reason: expect.stringMatching(/missing/) } });
  });
});

describe('failures never lose records silently', () => {
  const haveDevFull = fs.existsSync('/dev/full');

  test.runIf(haveDevFull)('a required log that cannot be written makes append throw', () => {
    const log = new AuditLog({ file: '/dev/full', key: KEY, required: true });
    log.append('gate_decision', 'info', {});
    expect(() => log.flush()).toThrow(/ENOSPC|no space/i);
    expect(log.healthy).toBe(false);
    let err: unknown;
    try {
      log.append('gate_decision', 'info', {});
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GuardError);
    expect((err as GuardError).code).toBe('ERR_AUDIT_UNAVAILABLE');
    log.close();
  });

  test.runIf(haveDevFull)('a full buffer that cannot be written refuses, it does not drop', () => {
    const log = new AuditLog({ file: '/dev/full', key: KEY, maxBuffered: 3 });
    for (let i = 0; i < 3; i++) log.append('gate_decision', 'info', { i });
    expect(() => log.append('gate_decision', 'info', { i: 3 })).toThrow(/full/);
    expect(log.seq).toBe(3);
    log.close();
  });

  test('a writer killed mid-stream loses nothing but the torn last line', async () => {
    const file = tmpFile();
    const code = `
      const { AuditLog } = require(${JSON.stringify(path.join(repoRoot, 'dist', 'index.js'))});
      const log = new AuditLog({ file: process.argv[1], key: Buffer.from(process.argv[2], 'hex'), maxBuffered: 50 });
      let i = 0;
      process.stdout.write('ready\\n');
      for (;;) { log.append('gate_decision', 'info', { i: i++, pad: 'y'.repeat(300) }); }
    `;
    const child = startChild(process.execPath, ['-e', code, file, KEY.toString('hex')], { stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout!.on('error', () => {}); // the pipe resets when the child is killed
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const result = AuditLog.verify(file, KEY);
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    const complete = lines.filter((l, k) => k < lines.length - 1).length;
    expect(result.records).toBeGreaterThan(50);
    if (result.ok) {
      expect(result.records).toBe(complete);
    } else {
      // the only problem is the final, partially written line
      expect(result.records).toBe(complete);
      expect(result.firstBad).toMatchObject({ line: complete + 1, reason: expect.stringMatching(/torn/) });
    }
  });
});

describe('AuditLog rejects bad input', () => {
  test('constructor and append', () => {
    expect(() => new AuditLog(undefined as never)).toThrow(TypeError);
    expect(() => new AuditLog({ file: '', key: KEY })).toThrow(TypeError);
    expect(() => new AuditLog({ file: tmpFile(), key: 'short' })).toThrow(RangeError);
    expect(() => new AuditLog({ file: tmpFile(), key: 5 as never })).toThrow(TypeError);
    expect(() => new AuditLog({ file: tmpFile(), key: KEY, maxBuffered: 0 })).toThrow(RangeError);
    const log = new AuditLog({ file: tmpFile(), key: KEY });
    expect(() => log.append('Bad Type', 'info')).toThrow(TypeError);
    expect(() => log.append('gate_decision', 'loud' as never)).toThrow(TypeError);
    expect(() => log.append('gate_decision', 'info', [] as never)).toThrow(TypeError);
    expect(() => log.append('gate_decision', 'info', { mac: 'x' })).toThrow(/reserved/);
    expect(() => log.append('gate_decision', 'info', { n: NaN })).toThrow(GuardError);
    expect(log.seq).toBe(0);
    log.close();
    expect(() => log.append('gate_decision', 'info')).toThrow(/closed/);
  });
});

describe('guardkernel audit verify', () => {
  const cli = path.join(repoRoot, 'dist', 'cli', 'main.js');

  test('exit 0 for an intact log, 1 for a tampered one, 2 for bad usage', () => {
    const file = writeLog(5);
    const keyFile = tmpFile('key');
    fs.writeFileSync(keyFile, KEY);
    const ok = runSync(process.execPath, [cli, 'audit', 'verify', file, '--key-file', keyFile], { encoding: 'utf8' });
    expect(ok.status).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, records: 5 });
    const lines = readLines(file);
    writeLines(file, [lines[0], lines[2], lines[3], lines[4]]);
    const bad = runSync(process.execPath, [cli, 'audit', 'verify', file], { encoding: 'utf8', env: { ...process.env, GUARDKERNEL_AUDIT_KEY: KEY.toString('base64') } });
    expect(bad.status).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ ok: false, firstBad: { line: 2, seq: 3 } });
    expect(runSync(process.execPath, [cli, 'audit', 'verify'], { encoding: 'utf8' }).status).toBe(2);
    expect(runSync(process.execPath, [cli, 'audit', 'frob'], { encoding: 'utf8' }).status).toBe(2);
    expect(runSync(process.execPath, [cli, 'audit', 'verify', file], { encoding: 'utf8', env: { ...process.env, GUARDKERNEL_AUDIT_KEY: '' } }).status).toBe(2);
  });
});
