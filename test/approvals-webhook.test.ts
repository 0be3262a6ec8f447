// ApprovalWebhook: signed JSON deliveries to a real local receiver, retries
// re-signed, failures counted and audited, send never blocks or throws, close
// bounded; verifyWebhookSignature refuses every bad header.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { AuditLog } from '../lib/audit/log';
import type { ApprovalEvent, ApprovalRequest } from '../lib/gate/approvals/types';
import { ApprovalWebhook, signWebhook, verifyWebhookSignature, type WebhookVerification } from '../lib/gate/approvals/webhook';
import { until } from './helpers';

const SECRET = crypto.randomBytes(32);
const AUDIT_KEY = crypto.randomBytes(32);

function request(overrides: Partial<ApprovalRequest> = {}): ApprovalRequest {
  return {
    id: `apr_${crypto.randomBytes(16).toString('base64url')}`,
    status: 'pending',
    car_hash: `sha256:${'ab'.repeat(32)}`,
    car: { action_type: 'file_delete', agent_id: 'agent-1', args: { path: '/tmp/x' } },
    agent_id: 'agent-1',
    action_type: 'file_delete',
    session_id: null,
    rule: 'file_delete',
    policy_version: 3,
    requested_at: 1_700_000_000_000,
    expires_at: 1_700_000_600_000,
    requester: 'uid:1000',
    approvers: null,
    min_approvals: 1,
    approvals: [],
    decided_by: null,
    decided_at: null,
    reason: null,
    used_at: null,
    ...overrides,
  };
}

const event = (type: ApprovalEvent['type'] = 'requested', r = request()): ApprovalEvent => ({ type, request: r });

interface Hit {
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  url: string;
  verdict: WebhookVerification;
}

/** A local receiver that verifies each delivery; `answer` decides the reply (or holds it). */
async function receiver(answer: (res: http.ServerResponse, n: number) => void, now: () => number = Date.now) {
  const hits: Hit[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const header = req.headers['guardkernel-signature'];
      hits.push({ headers: req.headers, body, url: req.url ?? '', verdict: verifyWebhookSignature(SECRET, typeof header === 'string' ? header : undefined, body, { now: now() }) });
      answer(res, hits.length);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const close = () => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  };
  cleanups.push(close);
  return { url: `http://127.0.0.1:${port}/hook`, port, hits, close };
}

/** A port nothing listens on. */
async function deadPort(): Promise<number> {
  const r = await receiver(() => {});
  await r.close();
  return r.port;
}

function auditLog(): { log: AuditLog; file: string; records: (type: string) => Record<string, unknown>[] } {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gk-webhook-')), 'audit.log');
  const log = new AuditLog({ file, key: AUDIT_KEY });
  cleanups.push(async () => log.close());
  const records = (type: string) => {
    log.flush();
    return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l)).filter((r) => r.type === type);
  };
  return { log, file, records };
}

let cleanups: Array<() => Promise<void>> = [];
const hooks: ApprovalWebhook[] = [];
function webhook(options: ConstructorParameters<typeof ApprovalWebhook>[0]): ApprovalWebhook {
  const w = new ApprovalWebhook(options);
  hooks.push(w);
  return w;
}

afterEach(async () => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
  for (const w of hooks.splice(0)) await w.close(0);
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('deliveries', () => {
  test('an event arrives as signed JSON with the documented headers and body', async () => {
    const clock = () => 1_750_000_123_456;
    const r = await receiver((res) => res.end('ok'), clock);
    const w = webhook({ url: r.url, secret: SECRET, clock });
    const req = request();
    w.send(event('granted', req));
    await until(() => w.stats().sent === 1);
    expect(r.hits).toHaveLength(1);
    const [hit] = r.hits;
    expect(hit.verdict).toEqual({ ok: true, timestamp: 1_750_000_123 });
    expect(hit.url).toBe('/hook');
    expect(hit.headers['content-type']).toBe('application/json');
    expect(hit.headers['user-agent']).toBe('guardkernel-webhook');
    expect(hit.headers['guardkernel-delivery']).toMatch(/^whd_[A-Za-z0-9_-]{22}$/);
    expect(JSON.parse(hit.body.toString('utf8'))).toEqual({ type: 'approval.granted', id: hit.headers['guardkernel-delivery'], created_at: 1_750_000_123_456, request: req });
    // The header is exactly what signWebhook gives for that body and second.
    expect(hit.headers['guardkernel-signature']).toBe(signWebhook(SECRET, hit.body.toString('utf8'), 1_750_000_123));
    expect(w.stats()).toEqual({ sent: 1, failed: 0, retried: 0, dropped: 0, queued: 0, inFlight: 0, auditFailures: 0 });
  });

  test('a 500 is retried: the same delivery id, re-signed with a fresh timestamp', async () => {
    let now = 1_750_000_000_000;
    const clock = () => now;
    const r = await receiver((res, n) => {
      now += 7000; // the retry is signed 7 s later
      res.statusCode = n === 1 ? 500 : 200;
      res.end();
    }, clock);
    const w = webhook({ url: r.url, secret: SECRET, clock, backoffMs: 1 });
    w.send(event());
    await until(() => w.stats().sent === 1);
    expect(r.hits).toHaveLength(2);
    expect(r.hits.map((h) => h.verdict.ok)).toEqual([true, true]);
    expect(r.hits[1].headers['guardkernel-delivery']).toBe(r.hits[0].headers['guardkernel-delivery']);
    expect(r.hits[1].body.equals(r.hits[0].body)).toBe(true);
    const t = r.hits.map((h) => (h.verdict as { timestamp: number }).timestamp);
    expect(t[1]).toBe(t[0] + 7);
    expect(w.stats()).toMatchObject({ sent: 1, retried: 1, failed: 0 });
  });

  test('send returns before the receiver answers, and at most 4 deliveries are in flight', async () => {
    const held: http.ServerResponse[] = [];
    const r = await receiver((res) => held.push(res));
    const w = webhook({ url: r.url, secret: SECRET });
    for (let i = 0; i < 6; i++) w.send(event());
    expect(w.stats()).toMatchObject({ sent: 0, inFlight: 4, queued: 2 });
    await until(() => held.length === 4);
    expect(w.stats()).toMatchObject({ sent: 0, inFlight: 4, queued: 2 });
    for (const res of held.splice(0)) res.end();
    await until(() => held.length === 2);
    for (const res of held.splice(0)) res.end();
    await until(() => w.stats().sent === 6);
    expect(r.hits.every((h) => h.verdict.ok)).toBe(true);
    expect(new Set(r.hits.map((h) => h.headers['guardkernel-delivery'])).size).toBe(6);
  });

  test('a dead receiver: retried, then failed, counted and audited without the query or credentials', async () => {
    const port = await deadPort();
    const { log, file, records } = auditLog();
    const w = webhook({ url: `http://user:hunter2@127.0.0.1:${port}/hook?token=s3cret#frag`, secret: SECRET, audit: log, attempts: 3, backoffMs: 1 });
    const req = request();
    w.send(event('denied', req));
    await until(() => w.stats().failed === 1);
    expect(w.stats()).toMatchObject({ sent: 0, failed: 1, retried: 2, queued: 0, inFlight: 0, auditFailures: 0 });
    const [rec, ...more] = records('webhook_failed');
    expect(more).toEqual([]);
    expect(rec).toMatchObject({ severity: 'warning', url: `http://127.0.0.1:${port}/hook`, event: 'denied', approval_id: req.id, attempts: 3, error: 'ECONNREFUSED' });
    const text = fs.readFileSync(file, 'utf8');
    expect(text).not.toContain('s3cret');
    expect(text).not.toContain('hunter2');
    log.close();
    expect(AuditLog.verify(file, AUDIT_KEY)).toMatchObject({ ok: true });
  });

  test('credentials in the URL travel as Basic auth, never in the request line', async () => {
    const r = await receiver((res) => res.end());
    const w = webhook({ url: r.url.replace('http://', 'http://us%20er:p%40ss@') + '?token=t1', secret: SECRET });
    w.send(event());
    await until(() => w.stats().sent === 1);
    expect(r.hits[0].headers.authorization).toBe(`Basic ${Buffer.from('us er:p@ss').toString('base64')}`);
    expect(r.hits[0].url).toBe('/hook?token=t1');
  });

  test('a closed audit log is counted in auditFailures, never thrown', async () => {
    const { log } = auditLog();
    log.close();
    const w = webhook({ url: `http://127.0.0.1:${await deadPort()}/`, secret: SECRET, audit: log, attempts: 1 });
    w.send(event());
    await until(() => w.stats().failed === 1);
    expect(w.stats()).toMatchObject({ failed: 1, auditFailures: 1 });
  });

  test('an attempt that gets no answer times out; a redirect is not followed', async () => {
    const r = await receiver((res, n) => {
      if (n === 1) return; // never answered
      res.writeHead(302, { location: '/elsewhere' }).end();
    });
    const { log, records } = auditLog();
    const w = webhook({ url: r.url, secret: SECRET, audit: log, attempts: 1, timeoutMs: 50 });
    w.send(event());
    await until(() => w.stats().failed === 1);
    w.send(event());
    await until(() => w.stats().failed === 2);
    expect(r.hits.map((h) => h.url)).toEqual(['/hook', '/hook']);
    expect(records('webhook_failed').map((x) => x.error)).toEqual(['timeout after 50 ms', 'HTTP 302']);
  });

  test('retries back off exponentially with ±20% jitter', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const calls: number[] = [];
    let now = 0;
    vi.stubGlobal('fetch', async () => {
      calls.push(now);
      throw new Error('down');
    });
    const random = vi.spyOn(Math, 'random');
    const w = webhook({ url: 'https://hooks.example/x', secret: SECRET, attempts: 4, backoffMs: 1000 });
    const advance = async (ms: number) => {
      now += ms;
      await vi.advanceTimersByTimeAsync(ms);
    };
    // Math.random is read when an attempt fails, so each value is set before the attempt it jitters.
    random.mockReturnValue(0); // the shortest delay: 0.8 × 1000
    w.send(event());
    await advance(0);
    expect(calls).toEqual([0]);
    await advance(799);
    expect(calls).toHaveLength(1);
    random.mockReturnValue(0.999_999); // the longest: 1.2 × 2000
    await advance(1);
    expect(calls).toEqual([0, 800]);
    await advance(2399);
    expect(calls).toHaveLength(2);
    random.mockReturnValue(0.5); // no jitter: 4000
    await advance(1);
    expect(calls).toEqual([0, 800, 3200]);
    await advance(3999);
    expect(calls).toHaveLength(3);
    await advance(1);
    expect(calls).toEqual([0, 800, 3200, 7200]);
    expect(w.stats()).toMatchObject({ failed: 1, retried: 3, queued: 0 });
  });
});

describe('bounds and shutdown', () => {
  test('beyond maxQueue new events are dropped, counted and audited', async () => {
    const held: http.ServerResponse[] = [];
    const r = await receiver((res) => held.push(res));
    const { log, records } = auditLog();
    const w = webhook({ url: r.url, secret: SECRET, audit: log, maxQueue: 2 });
    const reqs = Array.from({ length: 7 }, () => request());
    for (const q of reqs) w.send(event('requested', q));
    expect(w.stats()).toMatchObject({ inFlight: 4, queued: 2, dropped: 1 });
    expect(records('webhook_dropped')).toEqual([expect.objectContaining({ reason: 'queue_full', approval_id: reqs[6].id, event: 'requested' })]);
    await until(() => held.length === 4);
    for (const res of held.splice(0)) res.end();
    await until(() => held.length === 2);
    for (const res of held.splice(0)) res.end();
    await until(() => w.stats().sent === 6);
  });

  test('send never throws: bad events and events after close are dropped', async () => {
    const w = webhook({ url: 'http://127.0.0.1:9/', secret: SECRET });
    expect(() => w.send(null as unknown as ApprovalEvent)).not.toThrow();
    expect(() => w.send(event('requested', request({ car: { n: 1n } })))).not.toThrow(); // JSON cannot carry a BigInt
    expect(() => w.send({ type: 'granted' } as ApprovalEvent)).not.toThrow();
    expect(w.stats()).toMatchObject({ dropped: 3, queued: 0, inFlight: 0 });
    await w.close();
    expect(() => w.send(event())).not.toThrow();
    expect(w.stats().dropped).toBe(4);
  });

  test('close waits for deliveries in flight', async () => {
    const held: http.ServerResponse[] = [];
    const r = await receiver((res) => held.push(res));
    const w = webhook({ url: r.url, secret: SECRET });
    w.send(event());
    await until(() => held.length === 1);
    let closed = false;
    const closing = w.close(60_000).then(() => (closed = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(closed).toBe(false);
    held[0].end();
    await closing;
    expect(w.stats()).toMatchObject({ sent: 1, failed: 0, inFlight: 0 });
  });

  test('close aborts what is still in flight at its timeout, counted as failed', async () => {
    const r = await receiver(() => {}); // never answers
    const { log, records } = auditLog();
    const w = webhook({ url: r.url, secret: SECRET, audit: log });
    w.send(event());
    await until(() => r.hits.length === 1);
    await w.close(0);
    expect(w.stats()).toMatchObject({ sent: 0, failed: 1, inFlight: 0, queued: 0 });
    expect(records('webhook_failed').map((x) => x.error)).toEqual(['closed']);
  });

  test('close cancels pending retries (counted as failed); their timers never hold the process', async () => {
    const { log, records } = auditLog();
    const w = webhook({ url: `http://127.0.0.1:${await deadPort()}/`, secret: SECRET, audit: log, backoffMs: 600_000 });
    w.send(event());
    await until(() => w.stats().retried === 1);
    expect(w.stats()).toMatchObject({ queued: 1, inFlight: 0 });
    const timers = () => process.getActiveResourcesInfo().filter((x) => x === 'Timeout').length;
    const withRetry = timers();
    await w.close();
    expect(timers()).toBe(withRetry); // the pending retry's timer was unref'd
    expect(w.stats()).toMatchObject({ failed: 1, queued: 0, retried: 1 });
    expect(records('webhook_failed')).toEqual([expect.objectContaining({ attempts: 1, error: 'ECONNREFUSED; retry cancelled at close' })]);
  });
});

describe('constructor input', () => {
  const ok = { url: 'https://hooks.example/approvals', secret: SECRET };
  test.each([
    [{ ...ok, url: 'not a url' }, TypeError, /Expected an http: or https: URL for url but received a string/],
    [{ ...ok, url: 42 }, TypeError, /for url but received number 42/],
    [{ ...ok, url: 'ftp://hooks.example/' }, TypeError, /received a ftp: URL/],
    [{ ...ok, url: 'file:///etc/passwd' }, TypeError, /received a file: URL/],
    [{ ...ok, secret: 'short' }, RangeError, /Expected at least 32 bytes for secret but received 5 bytes/],
    [{ ...ok, secret: new Uint8Array(31) }, RangeError, /received 31 bytes/],
    [{ ...ok, secret: 12 }, TypeError, /Expected a string or Uint8Array for secret/],
    [{ ...ok, attempts: 0 }, RangeError, /for attempts but received number 0/],
    [{ ...ok, attempts: 1.5 }, RangeError, /for attempts/],
    [{ ...ok, backoffMs: -1 }, RangeError, /for backoffMs/],
    [{ ...ok, timeoutMs: Infinity }, RangeError, /for timeoutMs/],
    [{ ...ok, maxQueue: '10' }, RangeError, /for maxQueue but received a string/],
    [{ ...ok, clock: 5 }, TypeError, /Expected a function for clock/],
    [{ ...ok, audit: {} }, TypeError, /Expected an AuditLog for audit/],
    [null, TypeError, /Expected options for ApprovalWebhook but received null/],
  ])('refuses %#', (options, type, message) => {
    expect(() => new ApprovalWebhook(options as never)).toThrow(type);
    expect(() => new ApprovalWebhook(options as never)).toThrow(message);
  });

  test('a URL given wrongly is not echoed into the error (it may hold a token)', () => {
    expect(() => new ApprovalWebhook({ ...ok, url: 'http://[bad/?token=s3cret' })).toThrow(/^(?!.*s3cret)/);
  });

  test('a 32-byte string secret is accepted (as UTF-8)', () => {
    expect(() => new ApprovalWebhook({ ...ok, secret: 'x'.repeat(32) })).not.toThrow();
  });
});

describe('verifyWebhookSignature', () => {
  const body = JSON.stringify({ type: 'approval.requested', id: 'whd_x', created_at: 1, request: request() });
  const now = 1_750_000_000_000;
  const t = now / 1000;
  const header = signWebhook(SECRET, body, t);
  const v1 = header.split(',v1=')[1];

  test('accepts a good signature, for a string or Buffer body, and any matching v1', () => {
    expect(verifyWebhookSignature(SECRET, header, body, { now })).toEqual({ ok: true, timestamp: t });
    expect(verifyWebhookSignature(SECRET, header, Buffer.from(body), { now })).toEqual({ ok: true, timestamp: t });
    expect(verifyWebhookSignature(SECRET, `t=${t},v1=${'0'.repeat(64)},v1=${v1}`, body, { now })).toMatchObject({ ok: true });
    expect(verifyWebhookSignature(SECRET, `t=${t},v0=whatever,v1=${v1}`, body, { now })).toMatchObject({ ok: true }); // other schemes ignored
    // The signature is HMAC-SHA256(secret, t + "." + body), independently computed.
    expect(v1).toBe(crypto.createHmac('sha256', SECRET).update(`${t}.${body}`).digest('hex'));
  });

  test('rejects a tampered body and a wrong secret as a mismatch', () => {
    expect(verifyWebhookSignature(SECRET, header, body.replace('requested', 'granted'), { now })).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifyWebhookSignature(crypto.randomBytes(32), header, body, { now })).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifyWebhookSignature(SECRET, `t=${t + 1},v1=${v1}`, body, { now })).toEqual({ ok: false, reason: 'mismatch' });
  });

  test('rejects a stale or future timestamp beyond the tolerance', () => {
    expect(verifyWebhookSignature(SECRET, header, body, { now: now + 300_000 })).toMatchObject({ ok: true });
    expect(verifyWebhookSignature(SECRET, header, body, { now: now + 301_000 })).toEqual({ ok: false, reason: 'stale' });
    expect(verifyWebhookSignature(SECRET, header, body, { now: now - 301_000 })).toEqual({ ok: false, reason: 'stale' });
    expect(verifyWebhookSignature(SECRET, header, body, { now: now + 20_000, toleranceSec: 10 })).toEqual({ ok: false, reason: 'stale' });
  });

  test.each([
    [undefined, 'missing'],
    ['', 'missing'],
    [`v1=${v1}`, 'malformed'], // no t
    [`t=${t}`, 'malformed'], // no v1
    [`t=${t},t=${t},v1=${v1}`, 'malformed'], // two t
    [`t=${t}, v1=${v1}`, 'malformed'], // whitespace
    [`t=-1,v1=${v1}`, 'malformed'],
    [`t=1e9,v1=${v1}`, 'malformed'],
    [`t=${t},v1=${v1.toUpperCase()}`, 'malformed'],
    [`t=${t},v1=${v1.slice(2)}`, 'malformed'],
    [`t=${t},v1=${v1},`, 'malformed'],
    [`t=${t},v1=${v1},junk`, 'malformed'],
    [`t=${t},${'v0=x,'.repeat(250)}v1=${v1}`, 'malformed'], // past 1 KiB
  ])('rejects header %# as %s', (h, reason) => {
    expect(verifyWebhookSignature(SECRET, h, body, { now })).toEqual({ ok: false, reason });
  });

  test('a bad secret or option is a programming error, thrown', () => {
    expect(() => verifyWebhookSignature('short', header, body)).toThrow(RangeError);
    expect(() => verifyWebhookSignature(SECRET, header, body, { toleranceSec: -1 })).toThrow(/toleranceSec/);
    expect(() => signWebhook(SECRET, body, -5)).toThrow(/timestampSec/);
  });
});
