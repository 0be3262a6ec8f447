// carHash of a typical 6-field CAR with nested args: guardkernel vs the
// `canonicalize` package (RFC 8785) + node:crypto.
'use strict';
const crypto = require('node:crypto');
const gk = require('../../dist/index.js');
const { runCases } = require('../harness');

const car = {
  action_type: 'file_read',
  agent_id: 'agent-prod-42',
  resource: '/srv/data/reports/2026/q3-summary.csv',
  tool: 'filesystem',
  server_id: 'mcp-fs-01',
  args: { mode: 'r', offset: 0, limit: 4096, encoding: 'utf8', follow_symlinks: false, tags: ['finance', 'q3'] },
};

async function main() {
// The canonicalize package is ESM-only.
const jcs = (await import('canonicalize')).default;

// Same answer first: a benchmark of two different computations means nothing.
const theirs = 'sha256:' + crypto.createHash('sha256').update(jcs(car)).digest('hex');
if (gk.carHash(car) !== theirs) throw new Error('carHash disagrees with canonicalize + createHash');

// Distinct CARs, far more than the addon remembers digests of (native/hash/form_memo.h):
// every hash is computed. carHash(car) above repeats one CAR, as a gate mostly sees.
const distinct = Array.from({ length: 8192 }, (_, i) => ({ ...car, args: { ...car.args, offset: i } }));
let next = 0;

const g = 'carHash (6-field CAR, nested args)';
const c = 'canonical form only';
const inner = 100;
await runCases('car', [
  { group: g, name: "canonicalize(car) + crypto.createHash('sha256')", fn: () => 'sha256:' + crypto.createHash('sha256').update(jcs(car)).digest('hex'), inner, baseline: true },
  ...(typeof crypto.hash === 'function'
    ? [{ group: g, name: "canonicalize(car) + crypto.hash('sha256')", fn: () => 'sha256:' + crypto.hash('sha256', jcs(car), 'hex'), inner }]
    : []),
  { group: g, name: 'carHash(car)', fn: () => gk.carHash(car), inner },
  { group: g, name: 'carHash of a different CAR each call (no remembered digest)', fn: () => gk.carHash(distinct[next++ & 8191]), inner },
  { group: c, name: 'canonicalize package', fn: () => jcs(car), inner, baseline: true },
  { group: c, name: 'guardkernel canonicalize(car) [validating]', fn: () => gk.canonicalize(car), inner },
]);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
