// Socket fuzzer for the JSON-RPC server: seeded request lines (valid
// gate_checks, then byte- and structure-level mutations) go to an in-process
// GuardServer over raw sockets; each reply is checked against a model of the
// protocol and, for gate_check, against a second Gate with the same policy
// that sees the same requests in the same order (its own cache, trust,
// quarantine, velocity and nonce state: no shared parts). Replay a failure
// with the SEED, iteration and line the assertion message names.
import crypto from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { AuditLog, Gate, GuardClient, GuardError, GuardServer, SERVICE_METHODS, carHash } from '../lib/index';
import { randomInt, rng } from './helpers';

const SEED = 0x5eed_2026;
const ITERATIONS = 3000; // fuzz lines in all, over CONNECTIONS sequential connections
const CONNECTIONS = 3;

const POLICY = {
  version: 7,
  mode: 'enforce',
  default: 'deny',
  trust: { base: 0.5, identities: [{ match: 'agent-prod-*', adjust: 0.3 }, { match: 'agent-bad-*', adjust: -0.4 }], violation_penalty: 0.02, recovery_per_hour: 0.05 },
  actions: {
    file_read: { min_trust: 0.3, allow_identities: ['agent-*'], deny_identities: ['agent-bad-*'], constraints: { resource: { glob: '/srv/data/**' }, 'args.mode': { one_of: ['r', 'rb'] } }, on_violation: 'block' },
    file_write: { allow_identities: ['agent-prod-*'], constraints: { resource: { prefix: '/srv/data/out/' }, 'args.bytes': { range: { min: 0, max: 1048576 } } }, on_violation: 'block' },
    net_send: { allow_identities: ['robot-*'], on_violation: 'quarantine' }, // rare: quarantine moves state, and must not swallow the run
    http_get: { constraints: { resource: { regex: 'https://api\\.example\\.com/v[0-9]+/.*' } }, on_violation: 'warn' },
    db_query: { constraints: { 'args.table': { equals: 'public' } } },
    shell_exec: { require_approval: true },
  },
};
// A fixed clock: trust recovery, velocity windows and cache expiry then depend on the request order only.
const clock = () => 1_700_000_000_000;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-fuzz-'));
const audits: AuditLog[] = [];
function makeGate(name: string): Gate {
  const audit = new AuditLog({ file: path.join(dir, `${name}.log`), key: crypto.randomBytes(32) });
  audits.push(audit);
  // No approval stage: two gates would open requests with different random ids (test/approvals-ipc.test.ts covers it on the socket).
  return new Gate({ policy: POLICY, audit, clock, velocity: { maxPerAgent: 150, windowMs: 60_000 }, approvals: false });
}
afterAll(() => {
  for (const a of audits) a.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A number written as its own literal text (-0, 1e21, integers past 2^53). */
class Lit { constructor(readonly text: string) {} }
const AGENTS = ['agent-1', 'agent-prod-7', 'agent-bad-3', 'robot-9', 'agent-é', 'agent-😀', 'agent-prod-\u2028'];
const ACTIONS = ['file_read', 'file_read', 'file_write', 'http_get', 'db_query', 'shell_exec', 'unknown_act'];
const seen: Array<Record<string, unknown>> = []; // earlier CARs, asked again (spelled anew): cache hits
const PIECES = ['/srv/data/', '/srv/data/out/', '..', '/', 'a.csv', 'é', '😀', '\ud83d\ude00x', '%2e%2e', '\\', '"q"', '/etc/passwd', 'https://api.example.com/v1/q', ' ', '\t', '\u0000'];
const NUMBERS = [0, 1, -1, 1.5, 1e-7, 1048576, 1048577, 100, 4096, new Lit('-0'), new Lit('1E+2'), new Lit('-0.0'), new Lit('4.096e3'), new Lit('1e21'), new Lit('9007199254740993'), new Lit('123456789012345678901234567890')];

const pick = <T>(next: () => number, xs: readonly T[]): T => xs[randomInt(next, 0, xs.length - 1)];
function randomString(next: () => number, from: readonly string[], max: number): string {
  let s = '';
  for (let n = randomInt(next, 0, max); n > 0; n--) s += next() < 0.2 ? String.fromCodePoint(randomInt(next, 0x20, next() < 0.5 ? 0x7e : 0x1f6ff)) : pick(next, from);
  return s;
}
function randomValue(next: () => number, depth: number): unknown {
  const r = next();
  if (r < 0.3) return pick(next, NUMBERS);
  if (r < 0.55) return randomString(next, PIECES, 3);
  if (r < 0.65) return pick(next, [true, false, null]);
  if (depth > 3) return 'deep';
  if (r < 0.8) return Array.from({ length: randomInt(next, 0, 3) }, () => randomValue(next, depth + 1));
  return Object.fromEntries(Array.from({ length: randomInt(next, 0, 3) }, () => [randomString(next, ['k', 'é', '😀', 'a.b', '__proto__'], 2), randomValue(next, depth + 1)]));
}
function randomCar(next: () => number): Record<string, unknown> {
  if (seen.length > 0 && next() < 0.35) return pick(next, seen);
  const car: Record<string, unknown> = { action_type: next() < 0.9 ? pick(next, ACTIONS) : randomString(next, ['file_', 'read', 'é'], 3), agent_id: next() < 0.85 ? pick(next, AGENTS) : randomString(next, ['agent-', 'prod-', 'x', '😀'], 4) };
  if (next() < 0.9) car.resource = randomString(next, PIECES, 5);
  if (next() < 0.8) car.args = { mode: pick(next, ['r', 'rb', 'w', 'R']), bytes: pick(next, next() < 0.8 ? NUMBERS.slice(0, 12) : NUMBERS), table: pick(next, ['public', 'secret']), ...(next() < 0.4 ? { nested: randomValue(next, 1) } : {}) };
  if (next() < 0.01) car.action_type = 'net_send';
  if (next() < 0.05) delete car[pick(next, ['action_type', 'agent_id'])];
  if (seen.length < 200) seen.push(car);
  return car;
}

/** JSON text with random but equivalent spellings: \uXXXX escapes, \/, whitespace, literal numbers. */
function enc(next: () => number, v: unknown): string {
  const ws = () => (next() < 0.1 ? pick(next, [' ', '\t', '  ', ' \t ']) : '');
  if (v instanceof Lit) return v.text;
  if (typeof v === 'string') {
    let out = '"';
    for (const ch of v) {
      const plain = JSON.stringify(ch).slice(1, -1);
      const r = next();
      if (ch === '/' && r < 0.3) out += '\\/';
      else if (r < 0.15 || (plain.length === 1 && ch.codePointAt(0)! > 0x7f && r < 0.3)) {
        // Escape each UTF-16 unit (an astral char becomes its surrogate pair).
        for (let i = 0; i < ch.length; i++) out += '\\u' + ch.charCodeAt(i).toString(16).padStart(4, '0');
      } else out += plain;
    }
    return out + '"';
  }
  if (Array.isArray(v)) return ws() + '[' + v.map((x) => ws() + enc(next, x) + ws()).join(',') + ']';
  if (typeof v === 'object' && v !== null) return '{' + Object.entries(v).map(([k, x]) => ws() + enc(next, k) + ws() + ':' + ws() + enc(next, x) + ws()).join(',') + '}';
  return JSON.stringify(v);
}

const ODD_IDS = ['true', '{}', '[1]', '1.5', '-0', '1e400', 'null', '"s\\u00e9"', '""', '9007199254740993', '-1e-400'];
const BAD_BYTES = [[0xff], [0xc0, 0xae], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0x80], [0xe2, 0x82], [0xf0, 0x9f, 0x98]];

/** One request as text: mostly gate_check, with structure-level variants. */
function request(next: () => number, i: number): string {
  const r = next();
  const id = next() < 0.6 ? String(i) : enc(next, `r-${i}`);
  const car = randomCar(next);
  let params = '{"car":' + enc(next, car) + '}';
  if (r < 0.05) params = '{"car":' + enc(next, car) + ',"nonce":' + enc(next, `n-${randomInt(next, 0, 15)}`) + '}';
  else if (r < 0.08) params = '{"car":' + enc(next, car) + ',"session_id":"s-1"}';
  else if (r < 0.09) params = '{"car":' + enc(next, car) + ',"extra":1}';
  else if (r < 0.1) params = '{"car":' + enc(next, randomCar(next)) + ',"car":' + enc(next, car) + '}'; // duplicate: the last wins
  else if (r < 0.12) params = '[' + enc(next, car) + ']';
  else if (r < 0.14) params = '{"car":' + enc(next, pick(next, ['x', 1, null, [car]])) + '}';
  let method = 'gate_check';
  if (r >= 0.14 && r < 0.2) [method, params] = ['gate_check_batch', '{"requests":' + enc(next, Array.from({ length: randomInt(next, 0, 3) }, () => (next() < 0.8 ? { car: randomCar(next) } : randomValue(next, 2)))) + '}'];
  else if (r < 0.24) method = 'hash_car';
  else if (r < 0.26) [method, params] = [pick(next, ['ping', 'version']), next() < 0.7 ? '{}' : '{"x":1}'];
  else if (r < 0.27) method = 'no_such_method';
  const idPart = r >= 0.27 && r < 0.3 ? '' : '"id":' + (r >= 0.3 && r < 0.33 ? pick(next, ODD_IDS) : id) + ',';
  const version = r >= 0.33 && r < 0.35 ? pick(next, ['"1.0"', '2', '"2.0 "', 'null']) : '"2.0"';
  const parts = ['"jsonrpc":' + version, idPart.slice(0, -1), '"method":"' + method + '"', '"params":' + params].filter((p) => p !== '');
  if (next() < 0.2) parts.reverse(); // key order must not matter
  return '{' + parts.join(',') + '}';
}

/** A line's bytes: a request, a batch of them, then (for a share) byte-level damage. Never a raw newline. */
function fuzzLine(next: () => number, i: number): Buffer {
  let text = next() < 0.08 ? '[' + Array.from({ length: randomInt(next, 1, 4) }, (_, k) => request(next, i * 10 + k)).join(',') + ']' : request(next, i);
  const r = next();
  if (r < 0.04) text = text.replace('"agent_id":', '"agent_id":"dup",' + ' "agent_id":'); // duplicate key: JSON.parse keeps the last
  else if (r < 0.07) text = text.replace(/("resource":")/, '$1\\ud800'); // lone surrogate escape
  else if (r < 0.1) text = '\u00a0 ' + text + pick(next, ['  ', '\t', '\u2028', '\ufeff']);
  else if (r < 0.12) text = text.replace(/^\{/, '{"id":"shadowed",'); // a duplicate id: the reply must echo the last
  let b = Buffer.from(text, 'utf8');
  if (next() < 0.35) {
    for (let n = randomInt(next, 1, 3); n > 0; n--) {
      const at = randomInt(next, 0, b.length);
      const m = next();
      if (m < 0.25 && b.length > 0) b[Math.min(at, b.length - 1)] ^= 1 << randomInt(next, 0, 7);
      else if (m < 0.45) b = Buffer.concat([b.subarray(0, at), Buffer.from([randomInt(next, 0, 255)]), b.subarray(at)]);
      else if (m < 0.6) b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
      else if (m < 0.7) b = b.subarray(0, at);
      else b = Buffer.concat([b.subarray(0, at), Buffer.from(pick(next, BAD_BYTES)), b.subarray(at)]);
    }
    for (let k = 0; k < b.length; k++) if (b[k] === 0x0a) b[k] = 0x20; // one value per line
  }
  return b;
}

type Expected = { id: unknown; result?: unknown; error?: number; anyResult?: boolean };
const isId = (v: unknown) => v === null || typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const PARAMS: Record<string, Record<string, string>> = { gate_check: { car: 'object', permit: 'string', nonce: 'string', session_id: 'string' }, gate_check_batch: { requests: 'array' }, hash_car: { car: 'object' }, ping: {}, version: {} };
const REQUIRED: Record<string, string> = { gate_check: 'car', gate_check_batch: 'requests', hash_car: 'car' };
const typeOk = (v: unknown, t: string) => (t === 'object' ? isObject(v) : t === 'array' ? Array.isArray(v) : typeof v === t);

/** What the dispatcher must answer to one request (null: a notification), applying gate work to `ref` in order. */
function modelOne(ref: Gate, m: unknown): Expected | null {
  if (!isObject(m)) return { id: null, error: -32600 };
  const hasId = Object.hasOwn(m, 'id');
  if (m.jsonrpc !== '2.0' || typeof m.method !== 'string' || (hasId && !isId(m.id))) return { id: hasId && isId(m.id) ? m.id : null, error: -32600 };
  const id = hasId ? m.id : null;
  const reply = (e: Expected) => (hasId ? e : null);
  const method = m.method;
  if (!Object.hasOwn(SERVICE_METHODS, method) && method !== 'auth') return reply({ id, error: -32601 });
  const spec = PARAMS[method];
  if (spec === undefined) return reply({ id, anyResult: true }); // never generated on purpose (stateful methods would desync the reference)
  const p = m.params === undefined ? {} : m.params;
  if (!isObject(p)) return reply({ id, error: -32602 });
  if (REQUIRED[method] !== undefined && (!Object.hasOwn(p, REQUIRED[method]) || p[REQUIRED[method]] === undefined)) return reply({ id, error: -32602 });
  for (const k of Object.keys(spec)) if (p[k] !== undefined && Object.hasOwn(p, k) && !typeOk(p[k], spec[k])) return reply({ id, error: -32602 });
  if (Object.keys(p).some((k) => !Object.hasOwn(spec, k))) return reply({ id, error: -32602 });
  if (method === 'ping') return reply({ id, result: 'pong' });
  if (method === 'version') return reply({ id, anyResult: true });
  if (method === 'hash_car') {
    try {
      return reply({ id, result: { car_hash: carHash(p.car as Record<string, unknown>) } });
    } catch (err) {
      return reply({ id, error: err instanceof GuardError ? -32000 : err instanceof TypeError || err instanceof RangeError ? -32602 : -32603 });
    }
  }
  if (method === 'gate_check') return reply({ id, result: ref.check({ car: p.car as Record<string, unknown>, permit: p.permit as string, nonce: p.nonce as string, sessionId: p.session_id as string }) });
  // gate_check_batch, mapped as lib/ipc/methods.ts maps it.
  const requests = (p.requests as unknown[]).map((r) => {
    const o = (typeof r === 'object' && r !== null ? r : {}) as Record<string, unknown>;
    return { car: o.car as Record<string, unknown>, permit: o.permit as string, nonce: o.nonce as string, sessionId: o.session_id as string };
  });
  return reply({ id, result: { decisions: ref.checkBatch(requests) } });
}

/** The expected reply to a line: 'none', one response, or a batch array. */
function modelLine(ref: Gate, bytes: Buffer): 'none' | Expected | Expected[] {
  if (!isUtf8(bytes)) return { id: null, error: -32700 };
  let text = bytes.toString('utf8');
  if (text.endsWith('\r')) text = text.slice(0, -1);
  if (text.trim() === '') return 'none'; // a blank line (String.prototype.trim's whitespace) is skipped
  let v: unknown;
  try { v = JSON.parse(text); } catch { return { id: null, error: -32700 }; }
  if (!Array.isArray(v)) return modelOne(ref, v) ?? 'none';
  if (v.length === 0) return { id: null, error: -32600 };
  const out = v.map((m) => modelOne(ref, m)).filter((e): e is Expected => e !== null);
  return out.length === 0 ? 'none' : out;
}

function checkOne(got: unknown, want: Expected, where: string): void {
  expect(isObject(got), where).toBe(true);
  const g = got as Record<string, unknown>;
  expect(g.jsonrpc, where).toBe('2.0');
  expect(JSON.stringify(g.id), `${where}: id`).toBe(JSON.stringify(want.id)); // -0 and 0 print alike
  if (want.error !== undefined) {
    expect(Object.keys(g).sort(), where).toEqual(['error', 'id', 'jsonrpc']);
    expect((g.error as { code: unknown }).code, `${where}: error code`).toBe(want.error);
    expect(typeof (g.error as { message: unknown }).message, where).toBe('string');
  } else if (want.anyResult) {
    expect(Object.hasOwn(g, 'result') !== Object.hasOwn(g, 'error'), where).toBe(true);
  } else {
    expect(Object.keys(g).sort(), where).toEqual(['id', 'jsonrpc', 'result']);
    // Every field of the wire form, in JSON.stringify's order (lib/ipc/decision-json.ts).
    expect(JSON.stringify(g.result), `${where}: result`).toBe(JSON.stringify(want.result));
  }
}

const syncLine = (k: number) => `{"jsonrpc":"2.0","id":"~sync-${k}","method":"ping"}`;
const syncReply = (k: number) => `{"jsonrpc":"2.0","id":"~sync-${k}","result":"pong"}`;

/**
 * Sends each line followed by a ping with a unique id (pipelined, cut into
 * random-sized chunks that split lines and UTF-8 sequences), and returns the
 * reply lines that came between each pair of pings: line k's replies.
 */
function exchange(socketPath: string, lines: Buffer[], next: () => number): Promise<string[][]> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socketPath);
    const got: string[][] = lines.map(() => []);
    let k = 0;
    let buf = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const reply = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (k < lines.length && reply === syncReply(k)) k++;
        else if (k < lines.length) got[k].push(reply);
        else return reject(new Error(`a reply after the last ping: ${reply}`));
      }
      if (k === lines.length) { s.end(); resolve(got); }
    });
    s.on('error', reject);
    s.on('close', () => k < lines.length && reject(new Error(`connection closed after ${k} of ${lines.length} lines (line ${k}: ${lines[k]?.toString('hex')})`)));
    const all = Buffer.concat(lines.flatMap((l, i) => [l, Buffer.from('\n' + syncLine(i) + '\n')]));
    void (async () => {
      for (let at = 0; at < all.length; ) {
        const n = randomInt(next, 1, 4096);
        if (!s.write(all.subarray(at, at + n))) await new Promise((r) => s.once('drain', r));
        at += n;
      }
    })();
  });
}

test(`fuzzed lines get the replies the protocol and a reference gate say (seed ${SEED}, ${ITERATIONS} lines)`, async () => {
  const gate = makeGate('server');
  const ref = makeGate('reference');
  const socketPath = path.join(dir, 'core.sock');
  const server = new GuardServer({ socketPath, context: { gate, metrics: {} } });
  await server.listen();
  try {
    const next = rng(SEED);
    const perConn = Math.ceil(ITERATIONS / CONNECTIONS);
    const counts = { invalidUtf8: 0, parseError: 0, results: 0, none: 0 };
    for (let c = 0; c < CONNECTIONS; c++) {
      const first = c * perConn;
      const lines = Array.from({ length: Math.min(perConn, ITERATIONS - first) }, (_, j) => fuzzLine(next, first + j));
      // The reference sees the requests in the order this connection's lines are answered.
      const wants = lines.map((l) => modelLine(ref, l));
      const got = await exchange(socketPath, lines, next);
      for (let j = 0; j < lines.length; j++) {
        const want = wants[j];
        const where = `seed ${SEED}, iteration ${first + j}, line ${JSON.stringify(lines[j].toString('latin1'))} (hex ${lines[j].toString('hex')}), replies ${JSON.stringify(got[j])}`;
        if (want === 'none') {
          counts.none++;
          expect(got[j], where).toEqual([]);
          continue;
        }
        expect(got[j].length, where).toBe(1);
        const parsed = JSON.parse(got[j][0]) as unknown;
        if (!isUtf8(lines[j])) {
          counts.invalidUtf8++;
          expect(got[j][0], where).toBe(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error: the line is not valid UTF-8' } }));
        } else if (Array.isArray(want)) {
          expect(Array.isArray(parsed) && parsed.length, where).toBe(want.length);
          want.forEach((w, i) => checkOne((parsed as unknown[])[i], w, `${where} [${i}]`));
        } else {
          if (want.error === -32700) counts.parseError++;
          if (want.result !== undefined) counts.results++;
          checkOne(parsed, want, where);
        }
      }
    }
    // The fuzz must have reached every branch it claims to test.
    expect(counts.invalidUtf8 * counts.parseError * counts.results * counts.none).toBeGreaterThan(0);

    // Still serving: a fresh client, a ping and a known decision.
    const client = await GuardClient.connect(socketPath, { timeoutMs: 5000 });
    const car = { action_type: 'shell_exec', agent_id: 'agent-final', resource: '/bin/ls' };
    const [pong, d] = await Promise.all([client.ping(), client.gateCheck({ car })]).finally(() => client.close());
    expect(pong).toBe('pong');
    expect(d).toEqual(ref.check({ car })); // the reference saw every fuzz request too, so state matches
    expect(d.decision).toBe('pending');
  } finally {
    await server.close();
  }
}, 60_000);
