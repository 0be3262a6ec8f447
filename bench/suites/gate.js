// gate.check of a typical CAR through a 50-rule policy (cache miss and hit),
// and checkBatch of 1,000 requests, against one crypto.createHmac of 200 B in
// the same process; with and without an audit log writing to a file.
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const gk = require('../../dist/index.js');
const { runCases } = require('../harness');

function fiftyRulePolicy() {
  const actions = {};
  for (let i = 0; i < 49; i++) {
    actions[`action_${i}`] = {
      allow_identities: ['agent-*'],
      deny_identities: ['agent-untrusted-*'],
      constraints: { resource: { glob: `/srv/app${i}/**` }, 'args.mode': { one_of: ['r', 'w'] } },
    };
  }
  actions.file_read = {
    allow_identities: ['agent-*'],
    deny_identities: ['agent-untrusted-*'],
    constraints: { resource: { glob: '/srv/data/**' }, 'args.mode': { one_of: ['r'] }, 'args.limit': { range: { min: 1, max: 65536 } } },
  };
  return { version: 1, mode: 'enforce', default: 'deny', trust: { base: 0.5, identities: [{ match: 'agent-prod-*', adjust: 0.3 }] }, actions };
}

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

  const g = 'gate.check vs one HMAC of 200 B';
  await runCases('gate', [
    { group: g, name: "crypto.createHmac('sha256', key).update(200 B).digest()", baseline: true, inner: 50, fn: () => crypto.createHmac('sha256', key).update(msg).digest() },
    { group: g, name: 'gate.check, cache miss (no cache)', inner: 50, fn: () => miss.check({ car }) },
    { group: g, name: 'gate.check, cache hit', inner: 50, fn: () => hit.check({ car }) },
    { group: g, name: 'gate.check, cache hit, audit log to a file', inner: 50, fn: () => audited.check({ car }) },
    { group: g, name: 'gate.check, cache miss, audit log to a file', inner: 50, fn: () => auditedMiss.check({ car }) },
    { group: 'checkBatch of 1,000 (per decision)', name: "crypto.createHmac('sha256', key).update(200 B).digest()", baseline: true, inner: 50, fn: () => crypto.createHmac('sha256', key).update(msg).digest() },
    { group: 'checkBatch of 1,000 (per decision)', name: 'gate.checkBatch(1000 requests) / 1000', inner: 1, fn: () => batchGate.checkBatch(batch), perOpDivisor: 1000 },
  ]);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
