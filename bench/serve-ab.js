#!/usr/bin/env node
// Paired A/B of two builds of `guardkernel serve`: this checkout and another
// built one (BASE, a checkout's root with dist/ and build/), each in its own
// process with its own state, driven in short alternating rounds on the same
// request lines. Why: on this shared VM a server's speed drifts by tens of
// percent within seconds, so two runs one after the other cannot show a
// change of a few percent; rounds of a second or so, alternating (A B, B A,
// ...), see the same machine. It prints the median of the per-round ratios
// of wall time and the ratio of main-thread CPU (from /proc) over all rounds.
//
//   node bench/serve-ab.js BASE [--connections 32] [--window 16] [--rounds 16]
//        [--requests 20000] [--policy example|fifty] [--traffic mixed|repeated|session|decimals]
//
// session: the mixed lines, each with a params.session_id (one of 64), as a
// client of per-session velocity sends them; decimals: the mixed lines, each
// CAR's args with an amount that has a fraction (12.34; the same for the
// same CAR). Not a suite of `npm run bench`:
// it compares builds, not guardkernel with an alternative.
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { drive, Lines, startProcess } = require('./suites/server');
const { createWorkload, fiftyRulePolicy } = require('./workload');
const { Keyring } = require('../dist/index.js');

function options(argv) {
  const o = { base: argv[0], connections: 32, window: 16, rounds: 16, requests: 20_000, policy: 'example', traffic: 'mixed' };
  if (o.base === undefined || o.base.startsWith('--')) throw new Error('usage: node bench/serve-ab.js BASE [--connections N] [--window N] [--rounds N] [--requests N] [--policy example|fifty] [--traffic mixed|repeated|session|decimals]');
  for (let i = 1; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    const value = argv[i + 1];
    if (!(key in o) || key === 'base' || value === undefined) throw new Error(`unknown or incomplete option ${argv[i]}`);
    o[key] = typeof o[key] === 'number' ? Number(value) : value;
    if (typeof o[key] === 'number' && !(Number.isSafeInteger(o[key]) && o[key] > 0)) throw new Error(`--${key} takes a positive integer`);
  }
  if (!['example', 'fifty'].includes(o.policy)) throw new Error('--policy is example or fifty');
  if (!['mixed', 'repeated', 'session', 'decimals'].includes(o.traffic)) throw new Error('--traffic is mixed, repeated, session or decimals');
  return o;
}

// Main-thread CPU time of a process, in ms (10 ms ticks).
function mainThreadMs(pid) {
  const f = fs.readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

async function start(root, secret, policy) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-serve-ab-'));
  const socket = path.join(dir, 'gk.sock');
  const args = [path.join(root, 'dist', 'cli', 'main.js'), 'serve', '--state-dir', dir, '--socket', socket];
  if (policy === 'fifty') {
    fs.writeFileSync(path.join(dir, 'policy.json'), JSON.stringify(fiftyRulePolicy()));
    args.push('--policy', path.join(dir, 'policy.json'));
  }
  const child = await startProcess(args, 'guardkernel: policy', { GUARD_HMAC_SECRET: secret.toString('base64') });
  return { child, socket, dir };
}

async function main() {
  const o = options(process.argv.slice(2));
  const secret = crypto.randomBytes(32);
  const keyring = new Keyring({ keys: { k1: secret }, active: 'k1' });
  const warmup = 20_000;
  let tails = o.traffic === 'repeated' ? null : createWorkload({ policy: o.policy, keyring }).lineTails(warmup + o.rounds * o.requests + 1000);
  if (o.traffic === 'session') tails = tails.map((t, i) => t.replace('"params":{', `"params":{"session_id":"sess-${i % 64}",`));
  // The amount follows from the line's text, so a repeated CAR stays repeated (and cacheable).
  if (o.traffic === 'decimals') tails = tails.map((t) => t.replace('"args":{', `"args":{"amount":${(crypto.createHash('sha256').update(t).digest().readUInt32LE(0) % 100_000) / 100 + 0.01},`));
  const servers = [await start(path.resolve(o.base), secret, o.policy), await start(path.join(__dirname, '..'), secret, o.policy)];
  try {
    // Each server takes the same lines in the same order (each nonce and permit once per server).
    const lines = servers.map(() => (tails === null ? undefined : new Lines(tails, false)));
    for (let k = 0; k < 2; k++) await drive(servers[k].socket, o.connections, o.window, warmup, lines[k]);
    const wall = [[], []];
    const cpu = [0, 0];
    for (let r = 0; r < o.rounds; r++) {
      for (const k of r % 2 === 0 ? [1, 0] : [0, 1]) {
        const pid = servers[k].child.pid;
        const before = mainThreadMs(pid);
        const t = process.hrtime.bigint();
        await drive(servers[k].socket, o.connections, o.window, o.requests, lines[k]);
        wall[k].push(Number(process.hrtime.bigint() - t) / o.requests);
        cpu[k] += mainThreadMs(pid) - before;
      }
      // serve admits 100 connections a second per server by default.
      if (o.connections > 8) await new Promise((resolve) => setTimeout(resolve, Math.ceil((o.connections / 90) * 1000)));
    }
    const median = (x) => [...x].sort((a, b) => a - b)[x.length >> 1];
    const perRequest = (ms) => (ms * 1e6) / (o.rounds * o.requests);
    const result = {
      ...o,
      wallNsPerRequest: { base: median(wall[0]), this: median(wall[1]) },
      wallRatio: median(wall[1].map((x, i) => x / wall[0][i])),
      mainThreadCpuNsPerRequest: { base: perRequest(cpu[0]), this: perRequest(cpu[1]) },
      cpuRatio: cpu[1] / cpu[0],
    };
    console.log(`${o.traffic}, ${o.policy} policy, ${o.connections} x ${o.window}: this/base wall time ${result.wallRatio.toFixed(3)} (median of ${o.rounds} paired rounds), main-thread CPU ${result.cpuRatio.toFixed(3)} (${Math.round(result.mainThreadCpuNsPerRequest.base)} -> ${Math.round(result.mainThreadCpuNsPerRequest.this)} ns per request)`);
    console.log(JSON.stringify(result));
  } finally {
    for (const s of servers) {
      s.child.kill('SIGTERM');
      await new Promise((resolve) => s.child.once('exit', resolve));
      fs.rmSync(s.dir, { recursive: true, force: true });
    }
  }
}

main().catch((err) => {
  console.error(err.message);
  process.exit(2);
});
