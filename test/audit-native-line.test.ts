// The addon's one-call decision line (native/audit/audit_line.cc), checked against a
// line built independently here: canonicalizeJson for the record and
// node:crypto for the MAC. Also every way the call gives up or refuses.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { AuditLog, canonicalizeJson } from '../lib/index';
import { coreAddon } from '../lib/native/loader';
import type { NativeHmacKey } from '../lib/native/addon-types';
import { randomInt, rng } from './helpers';

const core = coreAddon();
const KEY = crypto.randomBytes(32);
const PIECES = ['a', 'Z', '-', '/', 'é', '€', '😀', '\u0000', '\u0008', '\u001f', '"', '\\', '\n', '\r', '\t', '\f', '\u2028', '中', '\u007f', ' ', '\u07ff', '\u0800', '\uffff'];

interface Fields {
  seq: number; ts: number; type: string; severity: string; decision: string; source: string; reason: string;
  car_hash: string; policy_version: number; agent_id: string; action_type: string; session_id?: string;
}

function text(next: () => number, max: number): string {
  let s = '';
  for (let i = randomInt(next, 0, max); i > 0; i--) s += PIECES[randomInt(next, 0, PIECES.length - 1)];
  return s;
}

function seal(key: NativeHmacKey, prev: Uint8Array, out: Uint8Array, at: number, f: Fields): number {
  return key.sealDecisionLine(prev, out, at, f.seq, f.ts, f.type, f.severity, f.decision, f.source, f.reason, f.car_hash, f.policy_version, f.agent_id, f.action_type, f.session_id);
}

/** The line as the contract defines it, built without the addon. */
function expectedLine(prevHex: string, f: Fields): { line: string; mac: string } {
  const record: Record<string, unknown> = { ...f, prev: prevHex };
  if (f.session_id === undefined) delete record.session_id;
  const canonical = canonicalizeJson(record);
  const mac = crypto.createHmac('sha256', KEY).update(prevHex + canonical, 'utf8').digest('hex');
  return { line: canonical.slice(0, -1) + `,"mac":"${mac}"}\n`, mac };
}

const ok = (): Fields => ({ seq: 1, ts: 1_764_540_000_000, type: 'gate_decision', severity: 'info', decision: 'allow', source: 'policy', reason: 'r', car_hash: 'sha256:' + 'a'.repeat(64), policy_version: 1, agent_id: 'a', action_type: 'x' });

describe.runIf(core !== null)('sealDecisionLine (addon)', () => {
  test('2,000 random records: the line and the next prev are what canonicalizeJson and node:crypto give', () => {
    const key = new core!.HmacKey(KEY);
    const next = rng(0xa0d17);
    const prev = Buffer.from('0'.repeat(64), 'latin1');
    const out = Buffer.alloc(1 << 20);
    let at = 0;
    let expected = '';
    const ints = [0, -0, 1, 9, 10, 99_999_999, 100_000_000, 2 ** 31, 2 ** 32, 2 ** 53 - 1];
    for (let i = 0; i < 2000; i++) {
      const f: Fields = {
        seq: i + 1, ts: next() < 0.3 ? ints[randomInt(next, 0, ints.length - 1)] : randomInt(next, 0, 2 ** 40),
        type: text(next, 6) || 'gate_decision', severity: text(next, 3), decision: text(next, 3), source: text(next, 3),
        reason: text(next, 30), car_hash: next() < 0.5 ? 'sha256:' + crypto.randomBytes(32).toString('hex') : text(next, 10),
        policy_version: ints[randomInt(next, 0, ints.length - 1)], agent_id: text(next, 12), action_type: text(next, 8),
      };
      if (next() < 0.5) f.session_id = text(next, 8);
      const want = expectedLine(prev.toString('latin1'), f);
      const n = seal(key, prev, out, at, f);
      expect(n).toBe(Buffer.byteLength(want.line));
      expect(out.toString('utf8', at, at + n)).toBe(want.line);
      expect(prev.toString('latin1')).toBe(want.mac);
      at += n;
      expected += want.line;
      if (at > out.length - 4096) at = 0, expected = '';
    }
    expect(out.toString('utf8', 0, at)).toBe(expected);
    key.destroy();
  });

  test('gives up (-1, nothing changed) on what the TypeScript paths must judge', () => {
    const key = new core!.HmacKey(KEY);
    const prev = Buffer.from('ab'.repeat(32), 'latin1');
    const out = Buffer.alloc(4096, 0x2e);
    const cases: Array<Partial<Fields> | Record<string, unknown>> = [
      { reason: 'lone \ud800' }, { reason: '\udc00 low first' }, { agent_id: 'end \ud83d' }, { action_type: '\ud83d\ud83d' },
      { policy_version: 1.5 }, { policy_version: -1 }, { policy_version: 2 ** 53 }, { policy_version: NaN }, { policy_version: Infinity },
      { ts: -5 }, { ts: 0.25 }, { seq: 1e21 }, { agent_id: 42 }, { reason: null }, { car_hash: undefined }, { session_id: 7 },
      { agent_id: 'x'.repeat(70_000) }, { reason: 'é'.repeat(40_000) },
    ];
    for (const c of cases) {
      expect(seal(key, prev, out, 0, { ...ok(), ...c } as Fields)).toBe(-1);
      expect(prev.toString('latin1')).toBe('ab'.repeat(32));
      expect(out.every((b) => b === 0x2e)).toBe(true);
    }
    // A previous MAC that is not lower-case hex (a damaged log's) is not copied blindly.
    for (const bad of ['AB'.repeat(32), 'é'.repeat(32), '"'.repeat(64)]) {
      const p = Buffer.from(bad, 'utf8').subarray(0, 64);
      expect(seal(key, p, out, 0, ok())).toBe(-1);
    }
    // One bad byte anywhere is enough.
    for (let at = 0; at < 64; at += 9) {
      for (const b of [0x2f, 0x3a, 0x40, 0x41, 0x46, 0x60, 0x67, 0x22, 0x00, 0xff]) {
        const p = Buffer.from('0123456789abcdef'.repeat(4), 'latin1');
        p[at] = b;
        expect(seal(key, p, out, 0, ok())).toBe(-1);
        expect(out.every((x) => x === 0x2e)).toBe(true);
      }
    }
    key.destroy();
  });

  test('a record just under and just over 64 KiB', () => {
    const key = new core!.HmacKey(KEY);
    const prev = Buffer.from('0'.repeat(64), 'latin1');
    const out = Buffer.alloc(70_000);
    const base = Buffer.byteLength(canonicalizeJson({ ...ok(), prev: '0'.repeat(64), reason: '' }));
    const fits = { ...ok(), reason: 'r'.repeat(65_536 - base) };
    expect(seal(key, prev, out, 0, fits)).toBe(Buffer.byteLength(expectedLine('0'.repeat(64), fits).line));
    prev.write('0'.repeat(64), 'latin1');
    expect(seal(key, prev, out, 0, { ...ok(), reason: 'r'.repeat(65_537 - base) })).toBe(-1);
    key.destroy();
  });

  test('too little room: -2 and nothing changed; exactly enough room is enough', () => {
    const key = new core!.HmacKey(KEY);
    const prev = Buffer.from('0'.repeat(64), 'latin1');
    const need = Buffer.byteLength(expectedLine('0'.repeat(64), ok()).line);
    const out = Buffer.alloc(need + 10, 0x2e);
    expect(seal(key, prev, out, 11, ok())).toBe(-2);
    expect(prev.toString('latin1')).toBe('0'.repeat(64));
    expect(out.every((b) => b === 0x2e)).toBe(true);
    expect(seal(key, prev, out, 10, ok())).toBe(need);
    key.destroy();
  });

  test('rejects bad buffers and offsets, overlapping prev and out, a destroyed key', () => {
    const key = new core!.HmacKey(KEY);
    const prev = Buffer.from('0'.repeat(64), 'latin1');
    const out = Buffer.alloc(4096);
    const f = ok();
    const call = (p: unknown, o: unknown, at: unknown) => key.sealDecisionLine(p as Uint8Array, o as Uint8Array, at as number, f.seq, f.ts, f.type, f.severity, f.decision, f.source, f.reason, f.car_hash, f.policy_version, f.agent_id, f.action_type, undefined);
    expect(() => call('0'.repeat(64), out, 0)).toThrow(TypeError);
    expect(() => call(prev, 'out', 0)).toThrow(TypeError);
    expect(() => call(prev.subarray(0, 63), out, 0)).toThrow(RangeError);
    expect(() => call(prev, out, -1)).toThrow(RangeError);
    expect(() => call(prev, out, 4097)).toThrow(RangeError);
    expect(() => call(prev, out, 0.5)).toThrow(RangeError);
    const shared = Buffer.alloc(4096, 0x30);
    expect(() => call(shared.subarray(100, 164), shared, 0)).toThrow(/overlap/);
    key.destroy();
    expect(() => call(prev, out, 0)).toThrow(/destroyed|closed/i);
  });

  test('the lines the addon writes through AuditLog pass the verifier\'s byte-for-byte canonical check; an oversized one is cut by the generic path', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gk-audit-native-')), 'audit.log');
    const log = new AuditLog({ file, key: KEY });
    const next = rng(0x5eed);
    for (let i = 0; i < 300; i++) {
      const f = ok();
      log.appendDecision('gate_decision', 'info', { decision: text(next, 3), source: 'policy', reason: text(next, 30), car_hash: f.car_hash, policy_version: 1, agent_id: text(next, 12), action_type: text(next, 8), session_id: next() < 0.5 ? text(next, 8) : undefined });
    }
    log.appendDecision('gate_decision', 'warning', { ...ok(), action_type: 'x'.repeat(70_000) });
    log.close();
    expect(AuditLog.verify(file, KEY)).toMatchObject({ ok: true, records: 301 });
    const last = JSON.parse(fs.readFileSync(file, 'utf8').trim().split('\n').pop()!);
    expect(last.action_type).toMatchObject({ truncated: true, length: 70_000 });
  });
});
