// carHash, the server's gate_check line reader, checkBatch and the audit log
// in several worker_threads at once.
// Each thread has its own canonical scratch buffer and key-layout table (one
// per module instance) and the addon keeps per-thread string scratch: the
// answers must match the main thread's exactly, with no cross-talk.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { expect, test } from 'vitest';
import { repoRoot } from './helpers';

const dist = path.join(repoRoot, 'dist', 'index.js');
const gateLine = path.join(repoRoot, 'dist', 'ipc', 'gate-line.js');

const WORK = `
  const g = require(${JSON.stringify(dist)});
  const crypto = require('node:crypto');
  const fs = require('node:fs');
  const path = require('node:path');
  function run(seed, dir) {
    let s = seed >>> 0 || 1;
    const next = () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 4294967296; };
    const words = ['a', 'é', '€', '😀', '"', '\\\\', 'path/x', 'agent'];
    const word = () => words[Math.floor(next() * words.length)] + Math.floor(next() * 50);
    const h = crypto.createHash('sha256');
    const cars = [];
    const lines = require(${JSON.stringify(gateLine)}).GateLineReader.create(); // null without the addon
    for (let i = 0; i < 3000; i++) {
      const car = { action_type: next() < 0.5 ? 'file_read' : 'x', agent_id: 'agent-' + Math.floor(next() * 9), resource: '/srv/' + word() };
      if (next() < 0.5) car.args = { [word()]: word(), n: Math.floor(next() * 1e6) };
      cars.push(car);
      const one = g.carHash(car);
      if (one !== 'sha256:' + crypto.createHash('sha256').update(g.canonicalize(car)).digest('hex')) throw new Error('carHash differs from the string path in a thread');
      h.update(one);
      if (lines !== null) {
        const got = lines.read(JSON.stringify({ jsonrpc: '2.0', id: i, method: 'gate_check', params: { car } }));
        if (got === null || got.carHash !== one || got.agentId !== car.agent_id) throw new Error('the server fast path reads a line differently in a thread');
      }
    }
    const gate = new g.Gate({ policy: { version: 1, mode: 'enforce', default: 'deny', actions: { file_read: { constraints: { resource: { glob: '/srv/**' } } } } }, clock: () => 5000 });
    const decisions = gate.checkBatch(cars.map((car) => ({ car })));
    for (let i = 0; i < cars.length; i++) if (decisions[i].car_hash !== g.carHash(cars[i])) throw new Error('batch hash differs in a thread');
    h.update(decisions.map((d) => d.decision + d.source).join());
    const file = path.join(dir, 'audit-' + seed + '.log');
    const key = Buffer.alloc(32, seed);
    const log = new g.AuditLog({ file, key, clock: () => 7 });
    for (let i = 0; i < 500; i++) log.append('gate_decision', 'info', { i, what: word(), nested: { w: word() } });
    log.close();
    const v = g.AuditLog.verify(file, key);
    if (!v.ok || v.records !== 500) throw new Error('audit log did not verify in a thread');
    h.update(fs.readFileSync(file));
    return h.digest('hex');
  }
`;

test('four worker_threads hash CARs, run checkBatch and write audit logs with the same answers as the main thread', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-threads-gate-'));
  fs.mkdirSync(path.join(dir, 'w'));
  const seeds = [3, 5, 7, 9];
  const results = await Promise.all(
    seeds.map(
      (seed) =>
        new Promise<string>((resolve, reject) => {
          const w = new Worker(`${WORK}\nrequire('node:worker_threads').parentPort.postMessage(run(${seed}, ${JSON.stringify(path.join(dir, 'w'))}));`, { eval: true });
          w.once('message', resolve);
          w.once('error', reject);
        }),
    ),
  );
  fs.mkdirSync(path.join(dir, 'm'));
  const expected = seeds.map((seed) => new Function('require', `${WORK}; return run(${seed}, ${JSON.stringify(path.join(dir, 'm'))});`)(require) as string);
  expect(results).toEqual(expected);
  expect(new Set(results).size).toBe(4);
}, 60_000);
