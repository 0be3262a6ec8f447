// Fleet mode: gate checks against a real redis-server on loopback (started
// here on a free port, killed by PID at the end) vs the same gate on the
// in-process stores, in the same process and run. Every request carries a
// fresh nonce and a rate limit applies, so each Redis check runs the whole
// gate step (velocity + nonce) on the server.
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const net = require('node:net');
const gk = require('../../dist/index.js');
const { runCases } = require('../harness');

const REDIS = process.env.GUARDKERNEL_REDIS_SERVER || 'redis-server';
const policy = { version: 1, mode: 'enforce', default: 'deny', actions: { file_read: { constraints: { resource: { glob: '/srv/**' } } } } };
const velocity = { windowMs: 60_000, maxPerAgent: 1_000_000 };

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function ping(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('error', () => resolve(false));
    s.once('connect', () => s.write('PING\r\n'));
    s.once('data', (d) => {
      s.destroy();
      resolve(d.toString().startsWith('+PONG'));
    });
  });
}

async function startRedis() {
  const port = await freePort();
  const child = spawn(REDIS, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'], { stdio: 'ignore' });
  process.on('exit', () => child.kill('SIGKILL'));
  const deadline = Date.now() + 10_000;
  while (!(await ping(port))) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error('redis-server did not start');
    await new Promise((r) => setTimeout(r, 20));
  }
  return { url: `redis://127.0.0.1:${port}`, child };
}

/** `concurrency` checks in flight for `ms`: decisions per second and latency percentiles (ns). */
async function loaded(gate, concurrency, ms) {
  let n = 0;
  const lat = [];
  const end = Date.now() + ms;
  const t0 = process.hrtime.bigint();
  const worker = async (w) => {
    while (Date.now() < end) {
      const i = n++;
      const s = process.hrtime.bigint();
      await gate.checkAsync({ car: { action_type: 'file_read', agent_id: `agent-${i % 100}`, resource: '/srv/data/x' }, nonce: `load-${w}-${i}` });
      lat.push(Number(process.hrtime.bigint() - s));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  lat.sort((a, b) => a - b);
  return { opsPerSec: n / seconds, meanNs: lat.reduce((a, b) => a + b, 0) / lat.length, p50Ns: lat[Math.floor(lat.length * 0.5)], p99Ns: lat[Math.floor(lat.length * 0.99)], samples: lat.length };
}

async function main() {
  if (spawnSync(REDIS, ['--version']).status !== 0) throw new Error(`${REDIS} not found: install redis-server to run the fleet bench`);
  const redis = await startRedis();
  const memory = new gk.Gate({ policy, velocity });
  const fleet = new gk.Gate({ policy, velocity, store: { redis: redis.url, prefix: 'bench:' } });
  await fleet.ready();
  let seq = 0;
  const req = () => {
    const i = seq++;
    return { car: { action_type: 'file_read', agent_id: `agent-${i % 100}`, resource: '/srv/data/x' }, nonce: `n-${i}` };
  };
  const batch = () => Array.from({ length: 1000 }, req);
  const one = 'gate_check, one request at a time (fresh nonce, rate limit)';
  const many = 'checkBatch of 1,000 (per decision)';
  // Round trips per batch, counted by the store (one pipeline = one command).
  const before = fleet.store.status().commands;
  const probe = await fleet.checkBatchAsync(batch());
  const commandsPerBatch = fleet.store.status().commands - before;
  if (!probe.every((d) => d.decision === 'allow')) throw new Error('unexpected decisions');
  await runCases(
    'fleet',
    [
      {
        group: one,
        name: 'memory store: await gate.checkAsync',
        baseline: true,
        inner: 20,
        fn: async () => {
          for (let i = 0; i < 20; i++) await memory.checkAsync(req());
        },
      },
      {
        group: one,
        name: 'Redis store: await gate.checkAsync (one round trip)',
        inner: 5,
        fn: async () => {
          for (let i = 0; i < 5; i++) await fleet.checkAsync(req());
        },
      },
      { group: many, name: 'memory store: gate.checkBatch(1000) / 1000', baseline: true, perOpDivisor: 1000, fn: () => memory.checkBatch(batch()) },
      { group: many, name: `Redis store: await gate.checkBatchAsync(1000) / 1000 (${commandsPerBatch} pipeline per batch)`, perOpDivisor: 1000, fn: async () => fleet.checkBatchAsync(batch()) },
    ],
    {
      time: 1500,
      warmupTime: 200,
      extraRows: async () => {
        const group = '64 checks in flight for 2 s (decisions/s; latency per check)';
        const m = await loaded(memory, 64, 2000);
        const r = await loaded(fleet, 64, 2000);
        return [
          { group, name: 'memory store', baseline: true, ...m },
          { group, name: 'Redis store', ...r, throughputRatio: r.opsPerSec / m.opsPerSec, commandsPerBatchOf1000: commandsPerBatch },
        ];
      },
    },
  );
  await fleet.close();
  redis.child.kill('SIGKILL');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
