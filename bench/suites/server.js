// Whole-process server bench: `guardkernel serve` and a minimal JSON echo
// server each run in their own process; this process drives the load over
// Unix sockets (gate_check of a typical CAR, pipelined), on 1 connection and
// on 32, and reports throughput and per-request latency (p50/p99). First the
// best case, one CAR sent over and over; then mixed traffic (bench/workload.js:
// CARs drawn Zipf(1) from 100,000, with nonces, permits and invalid requests)
// under the example policy and a 50-rule policy, each against the echo server
// answering the same lines, in the same paired rounds.
'use strict';
const crypto = require('node:crypto');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { runCases } = require('../harness');
const { createWorkload, fiftyRulePolicy, LINE_HEAD } = require('../workload');

// GK_BENCH_REQUESTS: fewer per round, for a quick smoke run only.
const REQUESTS = Number(process.env.GK_BENCH_REQUESTS) || 40_000;
const ROUNDS = 5;

/** The round with the median throughput. */
function median(rounds) {
  return [...rounds].sort((a, b) => a.opsPerSec - b.opsPerSec)[Math.floor(rounds.length / 2)];
}
const car = { action_type: 'file_read', agent_id: 'agent-prod-42', resource: '/srv/data/reports/q3.csv', args: { mode: 'r' } };

function startProcess(args, readyText, env = {}) {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, XDG_RUNTIME_DIR: '', GUARD_HMAC_SECRET: '', ...env } });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes(readyText)) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}`)));
  });
}

// CPU time (user + system) a child has used, in ms; null where /proc is absent.
// Throughput on 2 shared cores also depends on the load driver; CPU per
// request is the server's own cost.
function cpuMs(child) {
  try {
    const f = fs.readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // clock ticks of 10 ms
  } catch {
    return null;
  }
}

async function measured(child, socketPath, connections, window, total, lines) {
  const before = cpuMs(child);
  const r = await drive(socketPath, connections, window, total, lines);
  const after = cpuMs(child);
  r.serverCpuUsPerRequest = before === null || after === null ? null : ((after - before) * 1000) / total;
  return r;
}

/**
 * Precomputed request lines (bench/workload.js), taken in order by every
 * connection of a run: `LINE_HEAD + id + tails[i]`. `wrap`: start again at the
 * end (the echo server); without it running out is an error (guardkernel:
 * each nonce and permit must be sent once).
 */
class Lines {
  constructor(tails, wrap) {
    this.tails = tails;
    this.wrap = wrap;
    this.i = 0;
  }

  next() {
    if (this.i === this.tails.length) {
      if (!this.wrap) throw new Error(`the ${this.tails.length} precomputed request lines ran out`);
      this.i = 0;
    }
    return this.tails[this.i++];
  }
}

// Drives `total` requests over `connections` sockets, each keeping `window` in
// flight: the repeated CAR, or the next of `lines`. `tally`: counts the
// answers (decision/source, or the error code), for the warm-up only.
async function drive(socketPath, connections, window, total, lines, tally) {
  const perConn = Math.ceil(total / connections);
  const latencies = new Float64Array(perConn * connections);
  let li = 0;
  const start = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: connections }, () => new Promise((resolve, reject) => {
      const s = net.connect(socketPath);
      const sent = new Map();
      let nextId = 1;
      let done = 0;
      let buf = '';
      const send = (n) => {
        let out = '';
        for (let i = 0; i < n && nextId <= perConn; i++, nextId++) {
          sent.set(nextId, process.hrtime.bigint());
          if (lines === undefined) out += JSON.stringify({ jsonrpc: '2.0', id: nextId, method: 'gate_check', params: { car } }) + '\n';
          else out += LINE_HEAD + nextId + lines.next();
        }
        if (out) s.write(out);
      };
      s.on('connect', () => send(window));
      s.on("error", (e) => reject(new Error(`${socketPath} conn: ${e.message} after ${done} replies`)));
      s.on('data', (chunk) => {
        buf += chunk;
        let nl;
        let answered = 0;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          const reply = JSON.parse(line);
          const id = reply.id;
          if (tally !== undefined) {
            const k = reply.result?.decision !== undefined ? `${reply.result.decision}/${reply.result.source}` : reply.error !== undefined ? `error ${reply.error.code}` : 'other';
            tally[k] = (tally[k] ?? 0) + 1;
          }
          latencies[li++] = Number(process.hrtime.bigint() - sent.get(id));
          sent.delete(id);
          answered++;
          done++;
        }
        if (done >= perConn) {
          s.end();
          resolve();
        } else send(answered);
      });
    })),
  );
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const sorted = Array.from(latencies.subarray(0, li)).sort((a, b) => a - b);
  return { opsPerSec: li / seconds, p50: sorted[Math.floor(li * 0.5)], p99: sorted[Math.floor(li * 0.99)], mean: sorted.reduce((a, b) => a + b, 0) / li };
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-bench-server-'));
  const gkSocket = path.join(dir, 'core.sock');
  const echoSocket = path.join(dir, 'echo.sock');
  const gk = await startProcess([path.join(__dirname, '..', '..', 'dist', 'cli', 'main.js'), 'serve', '--state-dir', dir], 'guardkernel: policy');
  const echo = await startProcess([path.join(__dirname, '..', 'echo-server.js'), echoSocket], 'ready');
  const rows = [];
  const configs = [[1, 256], [32, 16]];
  try {
    for (const [connections, window] of configs) {
      const group = `gate_check over the socket, ${connections} connection${connections > 1 ? 's' : ''} (pipelined, ${window} in flight each)`;
      await drive(echoSocket, connections, window, 5000); // warm up
      await drive(gkSocket, connections, window, 5000);
      // Alternating rounds: on a shared 2-core machine the speed drifts within
      // seconds, so each guardkernel round is paired with an echo round next
      // to it, and the median round of each is reported.
      const echoRounds = [];
      const gkRounds = [];
      for (let round = 0; round < ROUNDS; round++) {
        echoRounds.push(await measured(echo, echoSocket, connections, window, REQUESTS));
        gkRounds.push(await measured(gk, gkSocket, connections, window, REQUESTS));
      }
      const e = median(echoRounds);
      const g = median(gkRounds);
      const row = (name, r, baseline) => ({ group, name, baseline, meanNs: r.mean, p50Ns: r.p50, p99Ns: r.p99, opsPerSec: r.opsPerSec, serverCpuUsPerRequest: r.serverCpuUsPerRequest, samples: REQUESTS });
      const gkRow = row('guardkernel serve', g, false);
      gkRow.roundRatios = gkRounds.map((r, i) => Number((r.opsPerSec / echoRounds[i].opsPerSec).toFixed(3)));
      rows.push(row('newline-JSON echo server (bench/echo-server.js)', e, true), gkRow);
    }
  } catch (err) {
    echo.kill('SIGTERM');
    throw err;
  } finally {
    gk.kill('SIGTERM');
  }
  try {
    // Mixed traffic: a serve of its own per policy (fresh state: audit log,
    // approvals, nonces), with a permit secret the bench knows, so the permits
    // it mints verify.
    const secret = crypto.randomBytes(32);
    const { Keyring } = require('../../dist/index.js');
    const keyring = new Keyring({ keys: { k1: secret }, active: 'k1' });
    const policyFile = path.join(dir, 'fifty-rule-policy.json');
    fs.writeFileSync(policyFile, JSON.stringify(fiftyRulePolicy()));
    for (const [label, which, policyArgs] of [['example policy', 'example', []], ['50-rule policy', 'fifty', ['--policy', policyFile]]]) {
      const stateDir = fs.mkdtempSync(path.join(dir, `mixed-${which}-`));
      const socket = path.join(stateDir, 'core.sock');
      // Every request guardkernel is sent in this part, made before any timing.
      const perConfig = (n, c) => Math.ceil(n / c) * c;
      const need = configs.reduce((n, [c]) => n + perConfig(5000, c) + ROUNDS * perConfig(REQUESTS, c), 0);
      const tails = createWorkload({ policy: which, keyring }).lineTails(need);
      const gkLines = new Lines(tails, false);
      const echoLines = new Lines(tails, true);
      const child = await startProcess([path.join(__dirname, '..', '..', 'dist', 'cli', 'main.js'), 'serve', '--state-dir', stateDir, '--socket', socket, ...policyArgs], 'guardkernel: policy', { GUARD_HMAC_SECRET: secret.toString('base64') });
      try {
        for (const [connections, window] of configs) {
          const group = `gate_check over the socket, mixed traffic (${label}), ${connections} connection${connections > 1 ? 's' : ''} (pipelined, ${window} in flight each)`;
          const answers = {};
          await drive(echoSocket, connections, window, 5000, echoLines); // warm up
          await drive(socket, connections, window, 5000, gkLines, answers);
          const echoRounds = [];
          const gkRounds = [];
          for (let round = 0; round < ROUNDS; round++) {
            echoRounds.push(await measured(echo, echoSocket, connections, window, REQUESTS, echoLines));
            gkRounds.push(await measured(child, socket, connections, window, REQUESTS, gkLines));
          }
          const e = median(echoRounds);
          const g = median(gkRounds);
          const row = (name, r, baseline) => ({ group, name, baseline, meanNs: r.mean, p50Ns: r.p50, p99Ns: r.p99, opsPerSec: r.opsPerSec, serverCpuUsPerRequest: r.serverCpuUsPerRequest, samples: REQUESTS });
          const gkRow = row('guardkernel serve', g, false);
          gkRow.roundRatios = gkRounds.map((r, i) => Number((r.opsPerSec / echoRounds[i].opsPerSec).toFixed(3)));
          const total = Object.values(answers).reduce((a, b) => a + b, 0);
          gkRow.note = `answers in the warm-up (${total}): ${Object.entries(answers).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${((100 * v) / total).toFixed(1)} %`).join(', ')}`;
          rows.push(row('newline-JSON echo server (bench/echo-server.js), the same lines', e, true), gkRow);
        }
      } finally {
        child.kill('SIGTERM');
        await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', resolve)));
        fs.rmSync(stateDir, { recursive: true, force: true }); // its audit log: hundreds of MB
      }
    }
  } finally {
    echo.kill('SIGTERM');
  }
  // Ratios here are of throughput ("speed vs baseline" = guardkernel / echo):
  // the median of the paired rounds' ratios, each round against the echo
  // round run just before it.
  for (const r of rows) if (!r.baseline) r.throughputRatio = [...r.roundRatios].sort((a, b) => a - b)[Math.floor(r.roundRatios.length / 2)];
  await runCases('server', [], { extraRows: async () => rows });
}

// Run as a suite; bench/suites/profile.js borrows the load driver.
if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}

module.exports = { drive, Lines, startProcess, cpuMs };
