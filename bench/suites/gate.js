// gate.check of a typical CAR through a 50-rule policy (cache miss and hit),
// and checkBatch of 1,000 requests, against one crypto.createHmac of 200 B in
// the same process; with and without an audit log writing to a file. Then
// mixed traffic (bench/workload.js): CARs drawn Zipf(1) from 100,000, with
// nonces, permits and invalid requests, through the gate as `serve` builds it
// (the example policy, or the 50-rule one), with and without an audit log.
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const gk = require('../../dist/index.js');
const { runCases } = require('../harness');
const { createWorkload, describeSample, fiftyRulePolicy } = require('../workload');

async function main() {
  const key = crypto.randomBytes(32);
  const msg = crypto.randomBytes(200);
  const car = { action_type: 'file_read', agent_id: 'agent-prod-42', resource: '/srv/data/reports/q3.csv', tool: 'fs', server_id: 'mcp-1', args: { mode: 'r', limit: 4096 } };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-bench-gate-'));

  const miss = new gk.Gate({ policy: fiftyRulePolicy(), cache: false });
  const hit = new gk.Gate({ policy: fiftyRulePolicy() });
  hit.check({ car });
  const audited = new gk.Gate({ policy: fiftyRulePolicy(), audit: new gk.AuditLog({ file: path.join(dir, 'audit.log'), key }) });
  audited.check({ car });
  const auditedMiss = new gk.Gate({ policy: fiftyRulePolicy(), cache: false, audit: new gk.AuditLog({ file: path.join(dir, 'audit2.log'), key }) });
  if (miss.check({ car }).decision !== 'allow' || hit.check({ car }).source !== 'cache') throw new Error('unexpected decisions');

  const batch = Array.from({ length: 1000 }, (_, i) => ({ car: { ...car, args: { mode: 'r', limit: 1 + (i % 50) } } }));
  const batchGate = new gk.Gate({ policy: fiftyRulePolicy() });
  batchGate.checkBatch(batch); // warm: 50 distinct CARs cached

  // Mixed traffic: requests generated before timing; each case replays its
  // own sequence from a cursor (fresh nonces and single-use permits as long
  // as the sequence does not wrap; wraps are counted and reported).
  const secret = crypto.randomBytes(32);
  const keyring = new gk.Keyring({ keys: { k1: secret }, active: 'k1' });
  const examplePolicy = fs.readFileSync(path.join(__dirname, '..', '..', 'examples', 'policy.yaml'), 'utf8');
  const MIXED = 300_000;
  // Their audit logs grow by hundreds of MB: removed when the suite ends.
  const mixedDir = fs.mkdtempSync(path.join(dir, 'mixed-'));
  process.on('exit', () => fs.rmSync(mixedDir, { recursive: true, force: true }));
  let gates = 0;
  // The gate as `serve` builds it (lib/cli/serve.ts): policy engine auditing
  // its loads, keyring, audit log, 5-minute nonces, journaled approvals.
  const serveGate = (policy, audit) => {
    const n = ++gates;
    const log = audit ? new gk.AuditLog({ file: path.join(mixedDir, `audit-${n}.log`), key }) : undefined;
    return new gk.Gate({ policy: new gk.PolicyEngine(policy, { audit: log }), keyring: new gk.Keyring({ keys: { k1: secret }, active: 'k1' }), audit: log, nonceTtlMs: 300_000, approvals: { journal: path.join(mixedDir, `approvals-${n}.jsonl`) } });
  };
  const mixed = [];
  for (const [label, which, policy] of [['example policy', 'example', examplePolicy], ['50-rule policy', 'fifty', fiftyRulePolicy()]]) {
    const sample = describeSample(createWorkload({ policy: which }), 100_000);
    // What the gate answers on this traffic (a separate gate, not timed).
    const probe = serveGate(policy, true);
    const outcomes = {};
    const probeReqs = createWorkload({ policy: which, keyring }).requests(20_000);
    for (const r of probeReqs) {
      const d = probe.check(r);
      const k = `${d.decision}/${d.source}`;
      outcomes[k] = (outcomes[k] ?? 0) + 1;
    }
    const answered = shares(Object.fromEntries(Object.entries(outcomes).map(([k, v]) => [k, v / probeReqs.length])));
    const reqs = createWorkload({ policy: which, keyring }).requests(MIXED);
    for (const audit of [true, false]) {
      const gate = serveGate(policy, audit);
      const cur = { i: 0, wraps: 0 };
      const name = `gate.check, mixed traffic, ${label}, ${audit ? 'audit log to a file' : 'no audit log'}`;
      mixed.push({
        name,
        cur,
        note: `requests ${shares(sample.kinds)}; action types ${shares(sample.actions, 6)}; require_approval rules ${pct(sample.approvalShare)}; answers to the first 20,000: ${answered}`,
        fn: () => {
          const r = reqs[cur.i];
          if (++cur.i === MIXED) {
            cur.i = 0;
            cur.wraps++;
          }
          return gate.check(r);
        },
      });
    }
  }
  const m = 'gate.check on mixed traffic (Zipf(1) over 100,000 CARs, 2,000 agents; nonces, permits, invalid) vs one HMAC of 200 B';

  annotateRows((row) => {
    const c = mixed.find((x) => row.group === m && x.name === row.name);
    if (c !== undefined) row.note = `${c.note}; the sequence of ${MIXED.toLocaleString('en-US')} ${c.cur.wraps === 0 ? 'did not wrap' : `wrapped ${c.cur.wraps}x`} (${c.cur.i.toLocaleString('en-US')} into its last pass)`;
  });

  // Invalid CARs an attacker picks: each is refused (deny, CAR_INVALID) after
  // the byte writer gives up and the string serializer names the fault. Each
  // request is a fresh object, as from JSON.parse.
  const nest = (depth, leaf, arrays) => {
    let v = leaf;
    for (let i = 0; i < depth; i++) v = arrays ? [v] : { k: v };
    return v;
  };
  const hostileGate = new gk.Gate({ policy: examplePolicy, cache: false });
  const validCar = { action_type: 'file_read', agent_id: 'agent-prod-42', resource: '/srv/data/reports/q3.csv', args: { mode: 'r', limit: 4096 } };
  const hostile = [
    ['valid CAR (for scale)', () => ({ ...validCar, args: { mode: 'r', limit: 4096 } })],
    ['objects 70 deep (limit 32)', () => ({ ...validCar, args: nest(70, 1, false) })],
    ['arrays 70 deep (limit 32)', () => ({ ...validCar, args: nest(70, 1, true) })],
    ['a lone surrogate 20 objects deep', () => ({ ...validCar, args: nest(20, 'x\ud800', false) })],
    ['NaN', () => ({ ...validCar, args: { mode: 'r', limit: NaN } })],
  ].map(([what, make]) => {
    const pool = Array.from({ length: 512 }, () => ({ car: make() }));
    let i = 0;
    const expected = what.startsWith('valid') ? 'allow' : 'deny';
    if (hostileGate.check(pool[0]).decision !== expected) throw new Error(`unexpected decision for ${what}`);
    return { name: `gate.check, ${what}`, fn: () => hostileGate.check(pool[i++ & 511]) };
  });
  const h = 'gate.check of invalid CARs an attacker picks (example policy, no cache) vs one HMAC of 200 B';

  const g = 'gate.check vs one HMAC of 200 B';
  await runCases('gate', [
    { group: g, name: "crypto.createHmac('sha256', key).update(200 B).digest()", baseline: true, inner: 50, fn: () => crypto.createHmac('sha256', key).update(msg).digest() },
    { group: g, name: 'gate.check, cache miss (no cache)', inner: 50, fn: () => miss.check({ car }) },
    { group: g, name: 'gate.check, cache hit', inner: 50, fn: () => hit.check({ car }) },
    { group: g, name: 'gate.check, cache hit, audit log to a file', inner: 50, fn: () => audited.check({ car }) },
    { group: g, name: 'gate.check, cache miss, audit log to a file', inner: 50, fn: () => auditedMiss.check({ car }) },
    { group: 'checkBatch of 1,000 (per decision)', name: "crypto.createHmac('sha256', key).update(200 B).digest()", baseline: true, inner: 50, fn: () => crypto.createHmac('sha256', key).update(msg).digest() },
    { group: 'checkBatch of 1,000 (per decision)', name: 'gate.checkBatch(1000 requests) / 1000', inner: 1, fn: () => batchGate.checkBatch(batch), perOpDivisor: 1000 },
    { group: m, name: "crypto.createHmac('sha256', key).update(200 B).digest()", baseline: true, inner: 50, fn: () => crypto.createHmac('sha256', key).update(msg).digest() },
    ...mixed.map((c) => ({ group: m, name: c.name, inner: 50, fn: c.fn })),
    { group: h, name: "crypto.createHmac('sha256', key).update(200 B).digest()", baseline: true, inner: 50, fn: () => crypto.createHmac('sha256', key).update(msg).digest() },
    ...hostile.map((c) => ({ group: h, name: c.name, inner: 20, fn: c.fn })),
  ]);
}

const pct = (x) => `${(100 * x).toFixed(1)} %`;
/** "a 50.0 %, b 20.0 %, ..." largest first; at most `top` named, the rest summed. */
function shares(obj, top = Infinity) {
  const e = Object.entries(obj).sort((a, b) => b[1] - a[1]);
  const rest = e.slice(top).reduce((n, [, v]) => n + v, 0);
  return e.slice(0, top).map(([k, v]) => `${k} ${pct(v)}`).concat(rest > 0 ? [`${e.length - top} others ${pct(rest)}`] : []).join(', ');
}

/**
 * runCases prints its rows as one JSON line; the mixed rows get a note (what
 * the traffic was, and whether a sequence wrapped: a wrapped sequence repeats
 * its nonces and permits, which are then denied as replays).
 */
function annotateRows(annotate) {
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = (text, ...rest) => {
    const rows = JSON.parse(String(text));
    for (const row of rows) annotate(row);
    return write(JSON.stringify(rows) + '\n', ...rest);
  };
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
