// Whole-process server bench: `guardkernel serve` and a minimal JSON echo
// server each run in their own process; this process drives the load over
// Unix sockets (gate_check of a typical CAR, pipelined), on 1 connection and
// on 32, and reports throughput and per-request latency (p50/p99).
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { runCases } = require('../harness');

const REQUESTS = 40_000;
const ROUNDS = 5;

/** The round with the median throughput. */
function median(rounds) {
  return [...rounds].sort((a, b) => a.opsPerSec - b.opsPerSec)[Math.floor(rounds.length / 2)];
}
const car = { action_type: 'file_read', agent_id: 'agent-prod-42', resource: '/srv/data/reports/q3.csv', args: { mode: 'r' } };

function startProcess(args, readyText) {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, XDG_RUNTIME_DIR: '', GUARD_HMAC_SECRET: '' } });
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

async function measured(child, socketPath, connections, window, total) {
  const before = cpuMs(child);
  const r = await drive(socketPath, connections, window, total);
  const after = cpuMs(child);
  r.serverCpuUsPerRequest = before === null || after === null ? null : ((after - before) * 1000) / total;
  return r;
}

// Drives `total` requests over `connections` sockets, each keeping `window` in flight.
async function drive(socketPath, connections, window, total) {
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
          out += JSON.stringify({ jsonrpc: '2.0', id: nextId, method: 'gate_check', params: { car } }) + '\n';
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
          const id = JSON.parse(line).id;
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
  try {
    for (const [connections, window] of [[1, 256], [32, 16]]) {
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
  } finally {
    gk.kill('SIGTERM');
    echo.kill('SIGTERM');
  }
  // Ratios here are of throughput ("speed vs baseline" = guardkernel / echo):
  // the median of the paired rounds' ratios, each round against the echo
  // round run just before it.
  for (const r of rows) if (!r.baseline) r.throughputRatio = [...r.roundRatios].sort((a, b) => a - b)[Math.floor(r.roundRatios.length / 2)];
  await runCases('server', [], { extraRows: async () => rows });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
