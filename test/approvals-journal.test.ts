// ApprovalJournal: the JSONL file that keeps approval requests across a
// restart. Round trip; latest snapshot wins; a torn last line is forgiven, a
// bad middle line is not; compaction; no symlink followed; mode 0600.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { ErrorCodes, GuardError } from '../lib/errors';
import { ApprovalJournal } from '../lib/gate/approvals/journal';
import { Gate } from '../lib/gate/gate';
import type { ApprovalRequest } from '../lib/gate/approvals/types';

const NOW = 1_750_000_000_000;
const HOUR = 3_600_000;
const clock = () => NOW;

function tmpFile(): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gk-journal-')), 'approvals.jsonl');
}

let seq = 0;
function request(overrides: Partial<ApprovalRequest> = {}): ApprovalRequest {
  seq++;
  return {
    id: `apr_${crypto.randomBytes(16).toString('base64url')}`,
    status: 'pending',
    car_hash: `sha256:${crypto.randomBytes(32).toString('hex')}`,
    car: { action_type: 'file_delete', agent_id: 'agent-1', args: { path: `/tmp/${seq}`, note: 'é ✓ \u2028' } },
    agent_id: 'agent-1',
    action_type: 'file_delete',
    session_id: 'sess-1',
    rule: 'file_delete',
    policy_version: 2,
    requested_at: NOW - 1000 + seq,
    expires_at: NOW + HOUR,
    requester: null,
    approvers: ['token:operator', 'uid:*'],
    min_approvals: 2,
    approvals: [{ approver: 'uid:1000', at: NOW - 500, reason: null }],
    decided_by: null,
    decided_at: null,
    reason: null,
    used_at: null,
    ...overrides,
  };
}

function open(file: string, options: Parameters<typeof ApprovalJournal.open>[1] = {}) {
  return ApprovalJournal.open(file, { clock, ...options });
}

afterEach(() => {
  vi.restoreAllMocks();
});

const lines = (file: string) => fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');

describe('round trip', () => {
  test('what is written comes back after a reopen, oldest first, and the file is 0600', () => {
    const file = tmpFile();
    const first = open(file);
    expect(first.requests).toEqual([]);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const reqs = [request(), request({ status: 'granted', decided_by: 'uid:1000', decided_at: NOW, reason: 'ok', approvers: null }), request({ status: 'used', used_at: NOW })];
    for (const r of [reqs[2], reqs[0], reqs[1]]) first.journal.write(r);
    first.journal.close();
    const again = open(file);
    expect(again.requests).toEqual(reqs);
    again.journal.close();
    expect(fs.statSync(file).mode & 0o777).toBe(0o600); // after compaction too
  });

  test('each write is in the file, on its own line, when write returns', () => {
    const file = tmpFile();
    const { journal } = open(file);
    const r = request();
    journal.write(r);
    expect(lines(file).map((l) => JSON.parse(l))).toEqual([r]);
    journal.write({ ...r, status: 'denied' });
    expect(lines(file)).toHaveLength(2);
    journal.close();
  });

  test('the latest snapshot of an id wins, and the reopened file keeps only it', () => {
    const file = tmpFile();
    const { journal } = open(file);
    const r = request();
    const other = request();
    journal.write(r);
    journal.write(other);
    journal.write({ ...r, approvals: [...r.approvals, { approver: 'token:operator', at: NOW, reason: 'fine' }], status: 'granted', decided_by: 'token:operator', decided_at: NOW });
    journal.close();
    const again = open(file);
    expect(again.requests.map((x) => [x.id, x.status])).toEqual([[r.id, 'granted'], [other.id, 'pending']]);
    expect(again.requests[0].approvals).toHaveLength(2);
    expect(lines(file)).toHaveLength(2);
    again.journal.close();
  });
});

describe('reading strictly', () => {
  test('a torn last line (no newline) is dropped and the file cut back to the last complete line', () => {
    const file = tmpFile();
    const { journal } = open(file);
    const a = request();
    const b = request();
    journal.write(a);
    journal.write(b);
    journal.close();
    const complete = fs.readFileSync(file, 'utf8');
    for (const tail of [JSON.stringify(request()).slice(0, 40), JSON.stringify(request())]) {
      // Even a whole record without its newline: that write never returned.
      fs.appendFileSync(file, tail);
      const again = open(file);
      expect(again.requests).toEqual([a, b]);
      expect(fs.readFileSync(file, 'utf8')).toBe(complete);
      again.journal.close();
    }
  });

  test.each([
    ['not JSON', '{"id": nope}', /line 2: not JSON/],
    ['not UTF-8', Buffer.from([0x7b, 0xff, 0x7d]), /line 2: not UTF-8/],
    ['an empty line', '', /line 2: not JSON/],
    ['a bad status', JSON.stringify(request({ status: 'approved' as never })), /line 2: bad status/],
    ['a bad id', JSON.stringify(request({ id: 'apr_short' })), /line 2: bad id/],
    ['a bad car_hash', JSON.stringify(request({ car_hash: 'sha256:ABC' })), /line 2: bad car_hash/],
    ['a missing field', JSON.stringify({ ...request(), used_at: undefined }), /line 2: missing field "used_at"/],
    ['an unknown field', JSON.stringify({ ...request(), extra: 1 }), /line 2: unknown field "extra"/],
    ['a string time', JSON.stringify({ ...request(), expires_at: String(NOW) }), /line 2: bad expires_at/],
    ['a bad vote', JSON.stringify(request({ approvals: [{ approver: 'x', at: -1, reason: null }] })), /line 2: bad approvals/],
    ['an array', '[]', /line 2: not an object/],
  ])('a middle line with %s is refused, naming the line, and the file is left as it was', (_, bad, message) => {
    const file = tmpFile();
    const good = JSON.stringify(request());
    const content = Buffer.concat([Buffer.from(`${good}\n`), Buffer.from(bad), Buffer.from(`\n${JSON.stringify(request())}\n`)]);
    fs.writeFileSync(file, content, { mode: 0o600 });
    expect(() => open(file)).toThrow(message);
    expect(() => open(file)).toThrow(/Refusing to start/);
    expect(fs.readFileSync(file).equals(content)).toBe(true);
  });

  test('a bad complete last line is refused too (it was acknowledged)', () => {
    const file = tmpFile();
    fs.writeFileSync(file, `${JSON.stringify(request())}\n{"id":1}\n`, { mode: 0o600 });
    expect(() => open(file)).toThrow(/line 2: /);
  });
});

describe('compaction', () => {
  test('on open, requests expired more than 24 h ago are dropped; the rest kept', () => {
    const file = tmpFile();
    const old = request({ expires_at: NOW - 24 * HOUR - 1, status: 'expired' });
    const recent = request({ expires_at: NOW - 23 * HOUR, status: 'expired' });
    const open1 = request();
    fs.writeFileSync(file, [old, recent, open1].map((r) => `${JSON.stringify(r)}\n`).join(''), { mode: 0o600 });
    const { journal, requests } = open(file);
    expect(requests.map((r) => r.id)).toEqual([recent.id, open1.id]);
    expect(lines(file).map((l) => JSON.parse(l).id)).toEqual([recent.id, open1.id]);
    journal.close();
  });

  test('on write, once the file is past 4x its live requests and 1 MiB, it is rewritten with the latest of each', () => {
    const file = tmpFile();
    const { journal } = open(file);
    const big = request({ car: { blob: 'x'.repeat(200_000) } });
    const small = request();
    journal.write(small);
    const written: number[] = [];
    for (let i = 0; i < 10; i++) {
      journal.write({ ...big, approvals: [{ approver: `uid:${i}`, at: NOW, reason: null }] });
      written.push(lines(file).length);
    }
    // 9 lines (past 4 x 2 live, and past 1 MiB): the 8th big write compacts to 2 lines.
    expect(written).toEqual([2, 3, 4, 5, 6, 7, 8, 2, 3, 4]);
    journal.write({ ...small, status: 'denied' }); // appends continue on the new file
    journal.close();
    expect(fs.existsSync(`${file}.tmp`)).toBe(false);
    const again = open(file);
    expect(again.requests.map((r) => [r.id, r.status, r.approvals[0].approver])).toEqual([
      [big.id, 'pending', 'uid:9'],
      [small.id, 'denied', 'uid:1000'],
    ]);
    again.journal.close();
  });
});

describe('durability', () => {
  test('write fsyncs its line before returning; compaction fsyncs the new file, then the directory after the rename', () => {
    const file = tmpFile();
    const calls: string[] = [];
    const fdNames = new Map<number, string>();
    const openSync = fs.openSync;
    vi.spyOn(fs, 'openSync').mockImplementation(((p: fs.PathLike, ...rest: unknown[]) => {
      const fd = (openSync as (...a: unknown[]) => number)(p, ...rest);
      fdNames.set(fd, String(p) === file ? 'file' : String(p) === `${file}.tmp` ? 'tmp' : String(p) === path.dirname(file) ? 'dir' : String(p));
      return fd;
    }) as typeof fs.openSync);
    const renameSync = fs.renameSync;
    vi.spyOn(fs, 'renameSync').mockImplementation((a, b) => {
      calls.push('rename');
      renameSync(a, b);
    });
    const writeSync = fs.writeSync;
    vi.spyOn(fs, 'writeSync').mockImplementation(((fd: number, ...rest: unknown[]) => {
      calls.push(`write ${fdNames.get(fd)}`);
      return (writeSync as (...a: unknown[]) => number)(fd, ...rest);
    }) as typeof fs.writeSync);
    const fsyncSync = fs.fsyncSync;
    vi.spyOn(fs, 'fsyncSync').mockImplementation((fd) => {
      calls.push(`fsync ${fdNames.get(fd)}`);
      fsyncSync(fd);
    });
    const { journal } = open(file); // opens the file, compacts into tmp (empty: no write)
    expect(calls).toEqual(['fsync tmp', 'rename', 'fsync dir']);
    calls.length = 0;
    journal.write(request());
    // The fd opened on tmp is the file now: the line goes there, then is fsynced.
    expect(calls).toEqual(['write tmp', 'fsync tmp']);
    journal.close();
  });

  test('sync: false appends at once and fsyncs once at the next turn for all such lines; a synced write or close covers them', async () => {
    const file = tmpFile();
    const { journal } = open(file);
    const fsyncs: number[] = [];
    const fsyncSync = fs.fsyncSync;
    vi.spyOn(fs, 'fsyncSync').mockImplementation((fd) => {
      fsyncs.push(fd as number);
      fsyncSync(fd);
    });
    const opened = Array.from({ length: 50 }, () => request());
    for (const r of opened) journal.write(r, { sync: false });
    // In the file (it survives a SIGKILL) before any fsync.
    expect(lines(file).map((l) => JSON.parse(l).id)).toEqual(opened.map((r) => r.id));
    expect(fsyncs).toHaveLength(0);
    await new Promise((r) => setImmediate(r));
    expect(fsyncs).toHaveLength(1); // one for the fifty
    await new Promise((r) => setImmediate(r));
    expect(fsyncs).toHaveLength(1); // nothing left to sync
    // A synced write fsyncs at once (and so covers a deferred line before it): the turn's fsync then has nothing to do.
    journal.write(request(), { sync: false });
    journal.write(request());
    expect(fsyncs).toHaveLength(2);
    await new Promise((r) => setImmediate(r));
    expect(fsyncs).toHaveLength(2);
    // close fsyncs a deferred line.
    journal.write(request(), { sync: false });
    journal.close();
    expect(fsyncs).toHaveLength(3);
    expect(open(file).requests).toHaveLength(53);
  });

  test('a deferred fsync that fails stops the journal: no later write is acknowledged', async () => {
    const file = tmpFile();
    const { journal } = open(file);
    journal.write(request(), { sync: false });
    vi.spyOn(fs, 'fsyncSync').mockImplementationOnce(() => {
      throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO', syscall: 'fsync' });
    });
    await new Promise((r) => setImmediate(r));
    expect(() => journal.write(request())).toThrow(/failed earlier and takes no more writes: EIO/);
    expect(() => journal.write(request(), { sync: false })).toThrow(/failed earlier/);
    journal.close();
  });

  test('a failed fsync: the write throws, its line is cut back off, and the journal takes no more writes', () => {
    const file = tmpFile();
    const { journal } = open(file);
    const a = request();
    journal.write(a);
    vi.spyOn(fs, 'fsyncSync').mockImplementationOnce(() => {
      throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO', syscall: 'fsync' });
    });
    expect(() => journal.write(request())).toThrow(/could not be written: EIO/);
    expect(lines(file).map((l) => JSON.parse(l).id)).toEqual([a.id]);
    expect(() => journal.write(request())).toThrow(/failed earlier/);
    journal.close();
    expect(open(file).requests).toEqual([a]);
  });

  test('a short write (disk full): the partial line is cut back off and later writes go on', () => {
    const file = tmpFile();
    const { journal } = open(file);
    const a = request();
    journal.write(a);
    const writeSync = fs.writeSync;
    let calls = 0;
    vi.spyOn(fs, 'writeSync').mockImplementation(((fd: number, buf: Buffer, off: number, len: number) => {
      if (++calls === 1) return writeSync(fd, buf, off, 10); // part of the line reaches the file
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write' });
    }) as typeof fs.writeSync);
    expect(() => journal.write(request())).toThrow(/ENOSPC/);
    vi.restoreAllMocks();
    expect(fs.readFileSync(file, 'utf8')).toBe(`${JSON.stringify(a)}\n`);
    const b = request();
    journal.write(b);
    journal.close();
    expect(open(file).requests).toEqual([a, b]);
  });
});

describe('refusals', () => {
  test('a symlink at the path is refused and its target left alone', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-journal-'));
    const target = path.join(dir, 'victim');
    fs.writeFileSync(target, 'precious\n');
    const file = path.join(dir, 'approvals.jsonl');
    fs.symlinkSync(target, file);
    expect(() => open(file)).toThrow(/symbolic link/);
    fs.rmSync(target);
    expect(() => open(file)).toThrow(/symbolic link/); // a dangling one too: not created through it
    expect(fs.existsSync(target)).toBe(false);
  });

  test('a symlink planted at the tmp path is removed, never written through', () => {
    const file = tmpFile();
    const victim = path.join(path.dirname(file), 'victim');
    fs.writeFileSync(victim, 'precious\n');
    fs.symlinkSync(victim, `${file}.tmp`);
    const { journal } = open(file);
    journal.write(request());
    journal.close();
    expect(fs.readFileSync(victim, 'utf8')).toBe('precious\n');
    expect(fs.lstatSync(file).isFile()).toBe(true);
  });

  test('a file others can write, or no directory, is refused', () => {
    const file = tmpFile();
    fs.writeFileSync(file, '');
    fs.chmodSync(file, 0o666);
    expect(() => open(file)).toThrow(/writable by others \(mode 666\)/);
    expect(() => open(path.join(path.dirname(file), 'missing', 'approvals.jsonl'))).toThrow(/directory .* does not exist/);
    expect(() => open(path.dirname(file))).toThrow();
  });

  test('write after close throws ERR_CLOSED; close is idempotent', () => {
    const { journal } = open(tmpFile());
    journal.close();
    journal.close();
    let err: unknown;
    try {
      journal.write(request());
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GuardError);
    expect((err as GuardError).code).toBe(ErrorCodes.CLOSED);
  });

  test('a malformed request is refused before anything is written', () => {
    const file = tmpFile();
    const { journal } = open(file);
    expect(() => journal.write(request({ status: 'maybe' as never }))).toThrow(/bad status/);
    expect(() => journal.write(request({ car: { n: 1n } }))).toThrow(TypeError);
    expect(() => journal.write(undefined as never)).toThrow(/not an object/);
    expect(() => journal.write({ ...request(), timed_out: true } as never)).toThrow(/unknown field "timed_out"/);
    expect(fs.readFileSync(file, 'utf8')).toBe('');
    journal.close();
  });

  test('beyond maxRecords a new request is refused (updates still pass); long-expired ones make room', () => {
    let now = NOW;
    const file = tmpFile();
    const { journal } = ApprovalJournal.open(file, { maxRecords: 2, clock: () => now });
    const a = request({ expires_at: NOW + HOUR });
    const b = request();
    journal.write(a);
    journal.write(b);
    expect(() => journal.write(request())).toThrow(/full \(maxRecords 2\)/);
    journal.write({ ...b, status: 'denied' });
    now = NOW + 26 * HOUR; // a and b expired more than a day ago
    const c = request({ expires_at: now + HOUR });
    journal.write(c);
    journal.close();
    expect(open(file, { maxRecords: 2, clock: () => now }).requests.map((r) => r.id)).toEqual([c.id]);
  });

  test('bad options are refused', () => {
    expect(() => ApprovalJournal.open('')).toThrow(/Expected a file path for file but received a string of length 0/);
    expect(() => ApprovalJournal.open(tmpFile(), { maxRecords: 0 })).toThrow(/Expected a positive integer for maxRecords but received number 0/);
    expect(() => ApprovalJournal.open(tmpFile(), { clock: 1 as never })).toThrow(/Expected a function for clock/);
  });
});

describe('the gate and its journal', () => {
  test('a pending decision opens its request with a deferred fsync; the grant and its use are fsynced before they return', async () => {
    const file = tmpFile();
    const gate = new Gate({ policy: { version: 1, mode: 'enforce', default: 'deny', actions: { shell_exec: { require_approval: true } } }, approvals: { journal: file } });
    const fsyncs: string[] = [];
    const fsyncSync = fs.fsyncSync;
    vi.spyOn(fs, 'fsyncSync').mockImplementation((fd) => {
      fsyncs.push('fsync');
      fsyncSync(fd);
    });
    const car = (cmd: string) => ({ action_type: 'shell_exec', agent_id: 'agent-1', args: { cmd } });
    const ids = ['a', 'b', 'c'].map((cmd) => gate.check({ car: car(cmd) }).approval_id!);
    // Written before check returned (a SIGKILL keeps them), fsynced once at the next turn.
    expect(lines(file).map((l) => JSON.parse(l).id)).toEqual(ids);
    expect(fsyncs).toHaveLength(0);
    await new Promise((r) => setImmediate(r));
    expect(fsyncs).toHaveLength(1);
    const book = gate.approvals as { approve(id: string, vote: { approver: string }): unknown };
    book.approve(ids[0], { approver: 'alice' });
    expect(fsyncs).toHaveLength(2); // the grant: at once
    expect(gate.check({ car: car('a') })).toMatchObject({ decision: 'allow', source: 'approval' });
    expect(fsyncs).toHaveLength(3); // its use: at once (a lost 'used' line would let the grant serve twice)
    expect(JSON.parse(lines(file).at(-1)!)).toMatchObject({ id: ids[0], status: 'used' });
    gate.close();
  });
});
