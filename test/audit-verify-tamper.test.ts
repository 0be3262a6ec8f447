// `audit verify` against tampering from every side (issue 25 item 2): records
// cut from the start, a deleted head with a cut tail, empty logs, lines that
// parse to the right record but are not its canonical bytes (duplicate,
// escaped or reordered keys, whitespace), swaps, gaps, splices, the wrong
// key, rotated chains with and without retention; and oversized records cut
// with a digest instead of dropped (item 3). Real files in temp dirs, the
// library and the built CLI (dist/cli/main.js, `npm run build:ts`).
import { runSync } from './child';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { AuditLog, Gate, GuardError, TRUNCATED_HEAD_CHARS, canonicalizeJson } from '../lib/index';
import { fakeClock, repoRoot } from './helpers';

const KEY = crypto.randomBytes(32);
const OTHER_KEY = crypto.randomBytes(32);
const cli = path.join(repoRoot, 'dist', 'cli', 'main.js');
const sha256 = (s: string) => crypto.createHash('sha256').update(s, 'utf8').digest('hex');

const tmpDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'gk-audit-tamper-'));
const tmpFile = () => path.join(tmpDir(), 'audit.log');
const readLines = (file: string) => fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
const writeLines = (file: string, lines: string[]) => fs.writeFileSync(file, lines.map((l) => l + '\n').join(''));

function writeLog(n: number, file = tmpFile(), key: Uint8Array = KEY): string {
  const clock = fakeClock(1_764_000_000_000);
  const log = new AuditLog({ file, key, clock: clock.fn });
  const run = crypto.randomUUID(); // two logs never share a record
  for (let i = 1; i <= n; i++) {
    clock.now += 7;
    log.append('gate_decision', 'info', { i, run, decision: i % 2 ? 'allow' : 'deny', agent_id: `agent-${i}` });
  }
  log.close();
  return file;
}

function cliVerify(args: string[]): { status: number | null; stdout: string; stderr: string; json: Record<string, unknown> | null } {
  const r = runSync(process.execPath, [cli, 'audit', 'verify', ...args], { encoding: 'utf8', env: { ...process.env, GUARDKERNEL_AUDIT_KEY: KEY.toString('base64') } });
  let json: Record<string, unknown> | null = null;
  try {
    json = JSON.parse(r.stdout);
  } catch {
    json = null;
  }
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, json };
}

describe('the chain starts at a genesis bound to the key', () => {
  test('records deleted from the start fail, however many, with the head left in place', () => {
    for (const cut of [1, 2, 5]) {
      const file = writeLog(8);
      writeLines(file, readLines(file).slice(cut));
      expect(AuditLog.verify(file, KEY), `cut ${cut}`).toMatchObject({ ok: false, reason: 'not_genesis', records: 0, firstBad: { line: 1, seq: cut + 1 } });
    }
  });

  test('records deleted from the start and renumbered cannot be resealed without the key', () => {
    const file = writeLog(6);
    const lines = readLines(file).slice(2).map((l, k) => l.replace(/"seq":\d+/, `"seq":${k + 1}`));
    writeLines(file, lines);
    expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: false, records: 0 });
  });

  test('a log with the legacy all-zero genesis is not taken as a chain start', () => {
    const file = writeLog(3);
    const lines = readLines(file);
    const first = JSON.parse(lines[0]);
    const { mac: _mac, ...rest } = { ...first, prev: '0'.repeat(64) };
    const mac = crypto.createHmac('sha256', KEY).update(rest.prev + canonicalizeJson(rest)).digest('hex');
    writeLines(file, [canonicalizeJson(rest).slice(0, -1) + `,"mac":"${mac}"}`]);
    expect(AuditLog.verify(file, KEY, { allowMissingHead: true })).toMatchObject({ ok: false, reason: 'not_genesis', firstBad: { reason: expect.stringMatching(/legacy/) } });
  });

  test('the genesis is the key id followed by a MAC: the same for every log of a key, different for another key', () => {
    const a = JSON.parse(readLines(writeLog(1))[0]).prev;
    const b = JSON.parse(readLines(writeLog(1))[0]).prev;
    const c = JSON.parse(readLines(writeLog(1, tmpFile(), OTHER_KEY))[0]).prev;
    expect(a).toBe(b);
    expect(c).not.toBe(a);
    expect(a.slice(0, 16)).toBe(AuditLog.keyId(KEY));
    expect(c.slice(0, 16)).toBe(AuditLog.keyId(OTHER_KEY));
  });
});

describe('the head checkpoint is required', () => {
  test('a deleted head together with a cut tail fails, unless the caller accepts a missing head', () => {
    const file = writeLog(10);
    writeLines(file, readLines(file).slice(0, 6));
    fs.rmSync(`${file}.head`);
    expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: false, reason: 'missing_head', records: 6, lastGoodSeq: 6 });
    // Explicitly accepting it: the cut is then invisible (the documented limit).
    expect(AuditLog.verify(file, KEY, { allowMissingHead: true })).toMatchObject({ ok: true, records: 6 });
  });

  test('an empty log: without a head it fails, a new log closed empty has one and verifies, a head ahead of it is a cut', () => {
    const bare = tmpFile();
    fs.writeFileSync(bare, '');
    expect(AuditLog.verify(bare, KEY)).toMatchObject({ ok: false, reason: 'missing_head', records: 0 });
    expect(AuditLog.verify(bare, KEY, { allowMissingHead: true })).toMatchObject({ ok: true, records: 0 });

    const fresh = tmpFile();
    new AuditLog({ file: fresh, key: KEY }).close();
    expect(fs.existsSync(`${fresh}.head`)).toBe(true);
    expect(AuditLog.verify(fresh, KEY)).toMatchObject({ ok: true, records: 0, lastGoodSeq: 0, headSeq: 0 });

    const emptied = writeLog(4);
    fs.writeFileSync(emptied, '');
    expect(AuditLog.verify(emptied, KEY)).toMatchObject({ ok: false, reason: 'truncated', records: 0 });
  });

  test('a head copied from another log of the same key fails', () => {
    const a = writeLog(5);
    const b = writeLog(5);
    fs.copyFileSync(`${b}.head`, `${a}.head`);
    expect(AuditLog.verify(a, KEY)).toMatchObject({ ok: false, reason: 'head_mismatch', firstBad: { seq: 5 } });
  });

  test('a head with its signature intact but bytes not canonical (a duplicate seq first) fails', () => {
    const file = writeLog(6);
    const head = fs.readFileSync(`${file}.head`, 'utf8');
    fs.writeFileSync(`${file}.head`, head.replace('{', '{"seq":9,'));
    expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: false, reason: 'head_invalid' });
  });

  test('a missing log file fails as such', () => {
    const file = writeLog(2);
    fs.rmSync(file);
    expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: false, reason: 'missing_log' });
  });
});

describe('every line is the canonical form of its record, byte for byte', () => {
  // Each edit leaves JSON.parse's result, and so the MAC, unchanged.
  const edits: Array<[string, (line: string) => string]> = [
    ['a duplicate key prepended (JSON.parse keeps the last)', (l) => l.replace('{', '{"decision":"allow",')],
    ['a duplicate key appended after the mac', (l) => l.replace(/}$/, ',"i":3}')],
    ['an escaped key', (l) => l.replace('"decision"', '"\\u0064ecision"')],
    ['an escaped character in a value', (l) => l.replace('"gate_decision"', '"gate\\u005fdecision"')],
    ['a space after a colon', (l) => l.replace('"seq":', '"seq": ')],
    ['a space before the first key', (l) => l.replace('{', '{ ')],
    ['a trailing space', (l) => l + ' '],
    ['a carriage return (CRLF)', (l) => l + '\r'],
    ['a number written another way', (l) => l.replace(/"ts":(\d+)/, '"ts":$1.0')],
    ['keys reordered (mac first)', (l) => {
      const { mac, ...rest } = JSON.parse(l);
      return JSON.stringify({ mac, ...rest });
    }],
    ['keys reordered (reverse)', (l) => {
      const r = JSON.parse(l);
      return JSON.stringify(Object.fromEntries(Object.entries(r).reverse()));
    }],
  ];
  for (const [name, edit] of edits) {
    test(name, () => {
      const file = writeLog(5);
      const lines = readLines(file);
      const changed = edit(lines[2]);
      expect(changed).not.toBe(lines[2]);
      lines[2] = changed;
      writeLines(file, lines);
      expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: false, reason: 'not_canonical', records: 2, lastGoodSeq: 2, firstBad: { line: 3, seq: 3 } });
    });
  }

  test('a leading byte-order mark (not JSON at all)', () => {
    const file = writeLog(3);
    const lines = readLines(file);
    lines[1] = '\ufeff' + lines[1];
    writeLines(file, lines);
    expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: false, reason: 'malformed', records: 1, firstBad: { line: 2 } });
  });

  test('invalid UTF-8 inside a string value', () => {
    const file = tmpFile();
    const log = new AuditLog({ file, key: KEY });
    log.append('gate_decision', 'info', { reason: 'caf\u00e9' });
    log.close();
    const bytes = fs.readFileSync(file);
    const at = bytes.indexOf(Buffer.from('caf\u00e9', 'utf8')) + 3;
    bytes[at + 1] = 0xff; // é's second byte: JSON.parse would read U+FFFD
    fs.writeFileSync(file, bytes);
    expect(AuditLog.verify(file, KEY).ok).toBe(false);
  });
});

describe('order, gaps and splices', () => {
  test('two records swapped', () => {
    const file = writeLog(6);
    const l = readLines(file);
    writeLines(file, [l[0], l[1], l[3], l[2], l[4], l[5]]);
    expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: false, records: 2, firstBad: { line: 3, seq: 4 } });
  });

  test('a seq gap in the middle', () => {
    const file = writeLog(6);
    const l = readLines(file);
    writeLines(file, [...l.slice(0, 3), ...l.slice(4)]);
    expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: false, reason: 'seq_gap', records: 3, firstBad: { line: 4, seq: 5, reason: 'seq 4 is missing' } });
  });

  test('a record from another log of the same key spliced in at its own seq', () => {
    const a = writeLog(6);
    const b = writeLog(6);
    const la = readLines(a);
    la[3] = readLines(b)[3];
    writeLines(a, la);
    expect(AuditLog.verify(a, KEY)).toMatchObject({ ok: false, reason: 'chain_broken', records: 3, firstBad: { line: 4, seq: 4 } });
  });

  test('a whole log of the same key put in place of another (head kept)', () => {
    const a = writeLog(6);
    const b = writeLog(6);
    fs.copyFileSync(b, a);
    expect(AuditLog.verify(a, KEY)).toMatchObject({ ok: false, reason: 'head_mismatch' });
  });
});

describe('the wrong key', () => {
  test('is reported as the wrong key with the log\'s key id, by the library and the CLI (exit 3)', () => {
    const file = writeLog(4, tmpFile(), OTHER_KEY);
    const theirs = AuditLog.keyId(OTHER_KEY);
    expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: false, reason: 'wrong_key', keyId: theirs });
    fs.rmSync(`${file}.head`);
    expect(AuditLog.verify(file, KEY, { allowMissingHead: true })).toMatchObject({ ok: false, reason: 'wrong_key', keyId: theirs });
    const r = cliVerify([file, '--allow-missing-head']);
    expect(r.status).toBe(3);
    expect(r.stderr).toContain(`wrong key`);
    expect(r.stderr).toContain(theirs);
    expect(r.stderr).toContain(AuditLog.keyId(KEY));
    expect(r.json).toMatchObject({ ok: false, reason: 'wrong_key', keyId: theirs });
  });

  test('the right key with a tampered record is tampering (exit 1), not a key problem', () => {
    const file = writeLog(4);
    const l = readLines(file);
    l[1] = l[1].replace('"agent_id":"agent-2"', '"agent_id":"agent-9"');
    writeLines(file, l);
    expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: false, reason: 'mac_mismatch' });
    const r = cliVerify([file]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/NOT INTACT \(mac_mismatch\)/);
  });
});

describe('rotated chains', () => {
  function rotatedLog(): { file: string; files: string[]; total: number } {
    const file = tmpFile();
    const log = new AuditLog({ file, key: KEY, rotateBytes: 1500 });
    for (let i = 0; i < 40; i++) {
      log.append('gate_decision', 'info', { i, pad: 'z'.repeat(40) });
      if (i % 4 === 3) log.flush();
    }
    log.close();
    const dir = path.dirname(file);
    const rotated = fs.readdirSync(dir).filter((f) => /^audit\.log\.\d+$/.test(f)).sort((x, y) => Number(x.split('.').pop()) - Number(y.split('.').pop()));
    const files = [...rotated.map((f) => path.join(dir, f)), file];
    return { file, files, total: 40 + rotated.length };
  }

  test('verify(live) walks back to the genesis; --chain still works; only the first file starts at genesis', () => {
    const { file, files, total } = rotatedLog();
    expect(files.length).toBeGreaterThanOrEqual(3);
    expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: true, records: total });
    expect(AuditLog.verifyChain(files, KEY)).toMatchObject({ ok: true, records: total });
    const r = cliVerify([file, '--chain', ...files.slice(0, -1)]);
    expect(r.status).toBe(0);
    expect(r.json).toMatchObject({ ok: true, records: total });
    expect(cliVerify([file]).json).toMatchObject({ ok: true, records: total });
  });

  test('the oldest file deleted: the rest does not start at genesis (library and CLI)', () => {
    const { file, files } = rotatedLog();
    fs.rmSync(files[0]);
    expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: false, reason: 'not_genesis', records: 0 });
    expect(AuditLog.verifyChain(files.slice(1), KEY)).toMatchObject({ ok: false, reason: 'not_genesis', file: files[1] });
    const r = cliVerify([file, '--chain', ...files.slice(1, -1)]);
    expect(r.status).toBe(1);
    expect(r.json).toMatchObject({ ok: false, reason: 'not_genesis' });
  });

  test('records cut from the start of the oldest file', () => {
    const { files } = rotatedLog();
    writeLines(files[0], readLines(files[0]).slice(2));
    expect(AuditLog.verifyChain(files, KEY)).toMatchObject({ ok: false, reason: 'not_genesis' });
  });

  test('a middle file deleted, or the head of the live file deleted', () => {
    const { file, files } = rotatedLog();
    expect(AuditLog.verifyChain([files[0], ...files.slice(2)], KEY)).toMatchObject({ ok: false, reason: 'seq_gap', file: files[2] });
    fs.rmSync(`${file}.head`);
    expect(AuditLog.verifyChain(files, KEY)).toMatchObject({ ok: false, reason: 'missing_head' });
  });

  test('files pruned by retention: the chain starts where the chained log_pruned record says, and nowhere else', () => {
    const { file, files, total } = rotatedLog();
    const day = 86_400_000;
    const old = (Date.now() - 40 * day) / 1000;
    fs.utimesSync(files[0], old, old);
    fs.utimesSync(files[1], old, old);
    const log = new AuditLog({ file, key: KEY, retentionDays: 30 });
    log.close();
    expect(fs.existsSync(files[0]) || fs.existsSync(files[1])).toBe(false);
    const pruned = readLines(file).map((l) => JSON.parse(l)).filter((r) => r.type === 'log_pruned');
    expect(pruned).toHaveLength(2);
    expect(pruned[0]).toMatchObject({ last_seq: expect.any(Number), last_mac: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const v = AuditLog.verify(file, KEY);
    expect(v).toMatchObject({ ok: true, lastGoodSeq: total + 2 });
    // Deleting one more file (not pruned by the log) is still caught.
    fs.rmSync(files[2]);
    expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: false, reason: 'not_genesis' });
  });
});

describe('oversized records are cut with a digest, never dropped (item 3)', () => {
  test('a gate deny with a 33,000-character action_type leaves its record', () => {
    const file = tmpFile();
    const audit = new AuditLog({ file, key: KEY });
    const gate = new Gate({ policy: { version: 1, mode: 'enforce', default: 'deny', actions: { file_read: {} } }, audit });
    const action = 'a'.repeat(33_000);
    const d = gate.check({ car: { action_type: action, agent_id: 'agent-1' } });
    expect(d.decision).toBe('deny');
    audit.close();
    const records = readLines(file).map((l) => JSON.parse(l));
    expect(records).toHaveLength(1);
    const r = records[0];
    expect(r).toMatchObject({ decision: 'deny', car_hash: d.car_hash, agent_id: 'agent-1' });
    // Whichever fields were cut carry the digest of the whole value.
    const cut = Object.entries(r).filter(([, v]) => typeof v === 'object' && v !== null && (v as { truncated?: boolean }).truncated === true);
    expect(cut.length).toBeGreaterThan(0);
    for (const [k, v] of cut) {
      const original = k === 'action_type' ? action : (d as unknown as Record<string, string>)[k];
      expect(v).toEqual({ truncated: true, length: Buffer.byteLength(original), sha256: sha256(original), head: original.slice(0, TRUNCATED_HEAD_CHARS) });
    }
    expect(Buffer.byteLength(readLines(file)[0])).toBeLessThan(64 * 1024 + 100);
    expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: true, records: 1 });
  });

  test('a 70,000-character reason: the one field is cut, the others kept', () => {
    const file = tmpFile();
    const log = new AuditLog({ file, key: KEY });
    const reason = 'r'.repeat(70_000);
    expect(log.append('quarantine_changed', 'warning', { agent_id: 'agent-7', status: 'recovered', reason })).toBe(1);
    log.close();
    const [r] = readLines(file).map((l) => JSON.parse(l));
    expect(r).toMatchObject({ seq: 1, agent_id: 'agent-7', status: 'recovered', reason: { truncated: true, length: 70_000, sha256: sha256(reason) } });
    expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: true, records: 1 });
  });

  test('recursively: a nested value is cut inside its object; many small members give one marker; a huge key; astral characters at the cut', () => {
    const file = tmpFile();
    const log = new AuditLog({ file, key: KEY });
    const big = '😀'.repeat(20_000); // 80,000 UTF-8 bytes; the head must not end in half a pair
    log.append('sandbox_violation', 'error', { detail: { small: 1, big, list: [1, 2, 3] }, keep: 'me' });
    const many: Record<string, string> = {};
    for (let i = 0; i < 3000; i++) many[`k${i}`] = 'v'.repeat(30);
    log.append('sandbox_violation', 'error', { many, keep: 'me' });
    log.append('sandbox_violation', 'error', { ['K'.repeat(70_000)]: 1 });
    log.close();
    const [a, b, c] = readLines(file).map((l) => JSON.parse(l));
    expect(a.keep).toBe('me');
    expect(a.detail.small).toBe(1);
    expect(a.detail.list).toEqual([1, 2, 3]);
    expect(a.detail.big).toMatchObject({ truncated: true, length: 80_000, sha256: sha256(big) });
    expect(a.detail.big.head).toBe('😀'.repeat(TRUNCATED_HEAD_CHARS / 2));
    expect(b.keep).toBe('me');
    expect(b.many).toMatchObject({ truncated: true, sha256: sha256(canonicalizeJson(many, { maxBytes: 1 << 30 })) });
    expect(c.truncated_fields).toMatchObject({ truncated: true, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: true, records: 3 });
  });

  test('what is not a size problem is still refused, and a refused record leaves no trace in the chain', () => {
    const file = tmpFile();
    const log = new AuditLog({ file, key: KEY });
    expect(() => log.append('gate_decision', 'info', { n: NaN, big: 'x'.repeat(70_000) })).toThrow(GuardError);
    expect(log.seq).toBe(0);
    log.append('gate_decision', 'info', { ok: true });
    log.close();
    expect(() => log.append('gate_decision', 'info', {})).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }));
    expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: true, records: 1 });
  });
});

describe('guardkernel audit verify: options', () => {
  test('--allow-missing-head, and bad usage', () => {
    const file = writeLog(3);
    fs.rmSync(`${file}.head`);
    const strict = cliVerify([file]);
    expect(strict.status).toBe(1);
    expect(strict.json).toMatchObject({ ok: false, reason: 'missing_head' });
    expect(strict.stderr).toMatch(/missing_head/);
    expect(cliVerify([file, '--allow-missing-head'])).toMatchObject({ status: 0, json: { ok: true, records: 3 } });
    expect(cliVerify([file, '--anchor-file']).status).toBe(2);
    expect(cliVerify([file, '--bogus']).status).toBe(2);
  });
});
