// Approvals over the socket: how soon an agent waiting on `approval_wait`
// hears that an operator approved (approve sent -> the waiter's reply read),
// on a real `guardkernel serve` process. Baseline: a `ping` round trip on the
// same socket, measured in the same rounds (what any reply costs).
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { runCases } = require('../harness');

const ROUNDS = 400;
const OPERATOR = 'operator-token-0123456789';
const AGENT = 'agent-token-0123456789abc';

function startServe(dir) {
  const child = spawn(process.execPath, [path.join(__dirname, '..', '..', 'dist', 'cli', 'main.js'), 'serve', '--state-dir', dir, '--socket', path.join(dir, 'core.sock'), '--policy', path.join(dir, 'policy.yaml'), '--operator-token-file', path.join(dir, 'op.token'), '--agent-token-file', path.join(dir, 'agent.token')], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, XDG_RUNTIME_DIR: '', GUARD_HMAC_SECRET: '' } });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('guardkernel: approval requests')) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`serve exited ${code}`)));
  });
}

/** A line client: call(method, params) -> the reply; each reply timestamped when its line is read. */
function connect(socket) {
  return new Promise((resolve, reject) => {
    const s = net.connect(socket);
    const waiting = new Map();
    let id = 1;
    let buf = '';
    s.on('data', (chunk) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const at = process.hrtime.bigint();
        const reply = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        const w = waiting.get(reply.id);
        waiting.delete(reply.id);
        if (reply.error) w.reject(new Error(JSON.stringify(reply.error)));
        else w.resolve({ result: reply.result, at });
      }
    });
    s.once('error', reject);
    s.once('connect', () =>
      resolve({
        call(method, params) {
          const n = id++;
          const p = new Promise((res, rej) => waiting.set(n, { resolve: res, reject: rej }));
          s.write(JSON.stringify({ jsonrpc: '2.0', id: n, method, params }) + '\n');
          return p;
        },
        end: () => s.end(),
      }),
    );
  });
}

const pct = (xs, q) => xs[Math.min(xs.length - 1, Math.floor(xs.length * q))];

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-bench-approvals-'));
  fs.writeFileSync(path.join(dir, 'policy.yaml'), 'version: 1\nmode: enforce\ndefault: deny\nactions:\n  shell_exec:\n    require_approval: true\n');
  fs.writeFileSync(path.join(dir, 'op.token'), OPERATOR, { mode: 0o600 });
  fs.writeFileSync(path.join(dir, 'agent.token'), AGENT, { mode: 0o600 });
  const serve = await startServe(dir);
  const socket = path.join(dir, 'core.sock');
  const agent = await connect(socket);
  const operator = await connect(socket);
  await agent.call('auth', { token: AGENT });
  await operator.call('auth', { token: OPERATOR });
  const wake = [];
  const ping = [];
  try {
    for (let i = 0; i < ROUNDS; i++) {
      const t0 = process.hrtime.bigint();
      const pong = await operator.call('ping', {});
      ping.push(Number(pong.at - t0));
      const { result } = await agent.call('gate_check', { car: { action_type: 'shell_exec', agent_id: 'agent-1', args: { n: i } } });
      if (result.approval_id === undefined) throw new Error(JSON.stringify(result));
      const waited = agent.call('approval_wait', { id: result.approval_id, timeout_ms: 10_000 });
      await agent.call('ping', {}); // the wait is registered on the server before the approve goes out
      const sent = process.hrtime.bigint();
      await operator.call('approval_approve', { id: result.approval_id });
      const woke = await waited;
      if (woke.result.status !== 'granted') throw new Error(`woke with ${woke.result.status}`);
      wake.push(Number(woke.at - sent));
      await agent.call('gate_check', { car: { action_type: 'shell_exec', agent_id: 'agent-1', args: { n: i } } }); // uses the grant (an agent has 100 open at most)
    }
  } finally {
    agent.end();
    operator.end();
    serve.kill('SIGTERM');
  }
  const row = (name, xs, baseline) => {
    const s = [...xs].sort((a, b) => a - b);
    const mean = s.reduce((a, b) => a + b, 0) / s.length;
    return { group: 'approval_wait over the socket (approve sent -> waiter woken)', name, baseline, meanNs: mean, p50Ns: pct(s, 0.5), p99Ns: pct(s, 0.99), opsPerSec: 1e9 / mean, samples: s.length };
  };
  const base = row('ping round trip', ping, true);
  const w = row('approve -> approval_wait reply (includes the journal fsync)', wake, false);
  w.note = `p50 ${(w.p50Ns / 1e6).toFixed(2)} ms, p99 ${(w.p99Ns / 1e6).toFixed(2)} ms over ${ROUNDS} approvals`;
  await runCases('approvals', [], { extraRows: async () => [base, w] });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
