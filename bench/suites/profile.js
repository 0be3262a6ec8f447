// Where `guardkernel serve` spends its CPU on mixed traffic (issue 27): serve
// runs under `node --cpu-prof`, this process drives it with the mixed workload
// of bench/workload.js (requests made before the load starts), then serve is
// stopped (SIGTERM: it writes its profile on exit) and the profile's self
// time, taken only from the samples inside the measured window, is summed by
// function and grouped: parse, hash, policy, trust, audit seal, file write,
// reply, other (with what "other" holds).
//
//   node bench/suites/profile.js [--policy example|fifty] [--requests N]
//       [--connections C] [--window W] [--interval-us U] [--keep DIR]
//       [--traffic mixed|repeated]
//
// --traffic repeated: the best case of bench/suites/server.js instead (one
// CAR sent over and over), for comparison.
//
// Prints the breakdown on stderr; the last line of stdout is the JSON rows
// bench/run.js expects (so `node bench/run.js profile` works: each category's
// CPU time per request is its "mean", with its share in the note).
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { drive, Lines, startProcess, cpuMs } = require('./server');
const { createWorkload, fiftyRulePolicy } = require('../workload');

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

// The repeated-CAR case of bench/suites/server.js.
const REPEATED_CAR = { action_type: 'file_read', agent_id: 'agent-prod-42', resource: '/srv/data/reports/q3.csv', args: { mode: 'r' } };

const CATEGORIES = ['parse', 'hash', 'policy', 'trust', 'audit seal', 'file write', 'reply', 'other'];

// Native (addon) functions appear under their exported names, with no url.
const NATIVE = {
  parseGateLine: 'parse',
  carHashOfBytes: 'hash',
  carHashesInto: 'hash',
  signHex: 'hash',
  signInto: 'hash',
  verify: 'hash',
  sealDecisionLine: 'audit seal',
  sealBlocks: 'audit seal',
  // V8 / Node builtins with no url
  parse: 'parse',
  stringify: 'reply',
  writeSync: 'file write',
  writeString: 'file write',
  writeBuffer: 'file write',
  fsync: 'file write',
  fdatasync: 'file write',
  rename: 'file write',
  open: 'file write',
  close: 'file write',
  fstat: 'file write',
  writeUtf8String: 'reply',
  writeLatin1String: 'reply',
  writeBuffer_: 'reply',
  writev: 'reply',
  createHmac: 'hash',
  digest: 'hash',
  update: 'hash',
};

/**
 * The category of one profile node, and where "other" goes, a finer label.
 * `file` is the path relative to the package (dist/...) or a node: url.
 */
function categorize(functionName, file) {
  if (functionName === '(garbage collector)') return ['other', 'GC'];
  if (functionName === '(program)') return ['other', '(program): native code outside JS frames (event loop, syscalls, addon work not under a JS frame)'];
  if (functionName === '(root)') return ['other', '(root)'];
  if (file === '') return NATIVE[functionName] !== undefined ? [NATIVE[functionName], functionName] : ['other', `native ${functionName || '(anonymous)'}`];
  if (/^dist\/(policy|gate)\//.test(file) && /trust|penalty|violation/i.test(functionName)) return ['trust', `${file} ${functionName}`];
  if (file.startsWith('dist/policy/')) return ['policy', file];
  if (file.startsWith('dist/canonical/') || file.startsWith('dist/crypto/') || file === 'dist/permits/keyring.js' || file.startsWith('node:internal/crypto')) return ['hash', file];
  if (file.startsWith('dist/audit/')) return ['audit seal', file];
  if (file === 'dist/ipc/line-reader.js' || file === 'dist/ipc/gate-line.js') return ['parse', file];
  if (file === 'dist/ipc/jsonrpc.js') return /responseText|failureText/.test(functionName) ? ['reply', file] : ['parse', file];
  if (file === 'dist/ipc/decision-json.js') return ['reply', file];
  if (file === 'node:fs' || file.startsWith('node:internal/fs/')) return ['file write', file];
  if (file === 'node:net' || file.startsWith('node:internal/stream_base_commons') || file.startsWith('node:internal/streams/')) return ['reply', file];
  // The gate's other stages (pipeline, decision cache, nonces, approvals) and the server's dispatch, by file.
  if (file.startsWith('dist/')) return ['other', file];
  if (file.startsWith('node:')) return ['other', 'node internals (timers, events, process)'];
  return ['other', file];
}

function relative(url) {
  if (url === '') return '';
  if (url.startsWith('node:')) return url;
  const p = url.startsWith('file://') ? url.slice(7) : url;
  const root = path.join(__dirname, '..', '..') + path.sep;
  return p.startsWith(root) ? p.slice(root.length) : p;
}

/**
 * Self time by node from a .cpuprofile, counting only samples whose
 * timestamp (µs, the monotonic clock process.hrtime reads) is in [from, to].
 */
function selfTimes(profile, from, to) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  let t = profile.startTime;
  let total = 0;
  let idle = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i];
    if (t < from || t > to) continue;
    // A sample stands for the time until the next one.
    const dt = i + 1 < profile.timeDeltas.length ? profile.timeDeltas[i + 1] : 0;
    const node = byId.get(profile.samples[i]);
    if (node.callFrame.functionName === '(idle)') {
      idle += dt;
      continue;
    }
    total += dt;
    self.set(node, (self.get(node) ?? 0) + dt);
  }
  return { self, total, idle };
}

const frameKey = (cf) => `${cf.functionName || '(anonymous)'} ${cf.url === '' ? '(native)' : `${relative(cf.url)}:${cf.lineNumber + 1}`}`;

function summarize(profile, from, to, requests) {
  const { self, total, idle } = selfTimes(profile, from, to);
  // Native frames (fsync, writeUtf8String, ...) are named with their caller.
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n);
  const auditMemo = new Map();
  const underAudit = (n) => {
    if (n === undefined) return false;
    let v = auditMemo.get(n.id);
    if (v === undefined) {
      v = relative(n.callFrame.url).startsWith('dist/audit/') || underAudit(parent.get(n.id));
      auditMemo.set(n.id, v);
    }
    return v;
  };
  const categories = new Map(CATEGORIES.map((c) => [c, 0]));
  const other = new Map();
  const functions = new Map();
  for (const [node, us] of self) {
    const cf = node.callFrame;
    const file = relative(cf.url);
    // The nearest frame of the package above a native or node: one (else its direct caller).
    let up = file === '' || file.startsWith('node:') ? parent.get(node.id) : undefined;
    while (up !== undefined && !relative(up.callFrame.url).startsWith('dist/')) up = parent.get(up.id);
    let [cat, detail] = categorize(cf.functionName, file);
    // A native function with no category of its own counts where its caller does.
    if (file === '' && cat === 'other' && detail.startsWith('native ') && up !== undefined) [cat, detail] = categorize(up.callFrame.functionName, relative(up.callFrame.url));
    // Hashing called by the audit log is its seal (the record HMAC), not CAR hashing.
    if (cat === 'hash' && underAudit(node)) [cat, detail] = ['audit seal', detail];
    categories.set(cat, categories.get(cat) + us);
    if (cat === 'other') other.set(detail, (other.get(detail) ?? 0) + us);
    const key = frameKey(cf);
    const f = functions.get(key) ?? { us: 0, cat, callers: new Map() };
    f.us += us;
    if (file === '' && parent.has(node.id)) {
      const caller = frameKey((up ?? parent.get(node.id)).callFrame);
      f.callers.set(caller, (f.callers.get(caller) ?? 0) + us);
    }
    functions.set(key, f);
  }
  return { total, idle, requests, categories, other, functions };
}

function report(s, header) {
  const pct = (us) => `${((100 * us) / s.total).toFixed(1).padStart(5)} %`;
  const perReq = (us) => `${((us * 1000) / s.requests).toFixed(0).padStart(6)} ns/request`;
  const lines = [header, `CPU in the window (not idle): ${(s.total / 1000).toFixed(0)} ms over ${s.requests.toLocaleString('en-US')} requests = ${((s.total * 1000) / s.requests).toFixed(0)} ns/request; idle ${(s.idle / 1000).toFixed(0)} ms`, '', 'by category (self time):'];
  for (const [c, us] of [...s.categories].sort((a, b) => b[1] - a[1])) lines.push(`  ${c.padEnd(11)} ${pct(us)}  ${perReq(us)}`);
  lines.push('', '"other" holds:');
  for (const [d, us] of [...s.other].sort((a, b) => b[1] - a[1]).slice(0, 12)) lines.push(`  ${pct(us)}  ${d}`);
  lines.push('', 'top functions (self time):');
  for (const [k, f] of [...s.functions].sort((a, b) => b[1].us - a[1].us).slice(0, 30)) {
    const callers = [...f.callers].sort((a, b) => b[1] - a[1]).slice(0, 2).map(([c, us]) => `${c} ${pct(us).trim()}`);
    lines.push(`  ${pct(f.us)}  [${f.cat}] ${k}${callers.length > 0 ? `  <- ${callers.join(', ')}` : ''}`);
  }
  return lines.join('\n');
}

async function main() {
  const which = option('policy', 'example');
  const requests = Number(option('requests', '200000'));
  const connections = Number(option('connections', '4'));
  const window = Number(option('window', '64'));
  const intervalUs = Number(option('interval-us', '250'));
  const warm = 20_000;
  const keep = option('keep', undefined);
  const dir = keep ?? fs.mkdtempSync(path.join(os.tmpdir(), 'gk-bench-profile-'));
  fs.mkdirSync(dir, { recursive: true });
  const profDir = path.join(dir, 'prof');
  const socket = path.join(dir, 'core.sock');
  const secret = crypto.randomBytes(32);
  const { Keyring } = require('../../dist/index.js');
  const keyring = new Keyring({ keys: { k1: secret }, active: 'k1' });
  const policyArgs = [];
  if (which === 'fifty') {
    fs.writeFileSync(path.join(dir, 'fifty-rule-policy.json'), JSON.stringify(fiftyRulePolicy()));
    policyArgs.push('--policy', path.join(dir, 'fifty-rule-policy.json'));
  } else if (which !== 'example') throw new Error(`--policy example|fifty, not ${which}`);
  // Every line is made before serve starts.
  const round = (n) => Math.ceil(n / connections) * connections;
  const traffic = option('traffic', 'mixed');
  if (traffic !== 'mixed' && traffic !== 'repeated') throw new Error(`--traffic mixed|repeated, not ${traffic}`);
  const count = round(warm) + round(requests);
  const tails = traffic === 'mixed' ? createWorkload({ policy: which, keyring }).lineTails(count) : new Array(count).fill(`,"method":"gate_check","params":${JSON.stringify({ car: REPEATED_CAR })}}\n`);
  const lines = new Lines(tails, false);

  const mainJs = path.join(__dirname, '..', '..', 'dist', 'cli', 'main.js');
  const nodeFlags = ['--cpu-prof', '--cpu-prof-dir', profDir, '--cpu-prof-interval', String(intervalUs)];
  const child = await startProcess([...nodeFlags, mainJs, 'serve', '--state-dir', dir, '--socket', socket, ...policyArgs], 'guardkernel: policy', { GUARD_HMAC_SECRET: secret.toString('base64') });
  let load;
  let from;
  let to;
  let cpu;
  try {
    await drive(socket, connections, window, warm, lines);
    const c0 = cpuMs(child);
    from = Number(process.hrtime.bigint() / 1000n);
    load = await drive(socket, connections, window, requests, lines);
    to = Number(process.hrtime.bigint() / 1000n);
    const c1 = cpuMs(child);
    cpu = c0 === null || c1 === null ? null : ((c1 - c0) * 1000) / requests;
  } finally {
    child.kill('SIGTERM');
  }
  await new Promise((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', resolve)));
  const file = fs.readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
  if (file === undefined) throw new Error(`serve wrote no .cpuprofile in ${profDir}`);
  const profile = JSON.parse(fs.readFileSync(path.join(profDir, file), 'utf8'));
  // The profile's timestamps and process.hrtime are the same monotonic clock
  // (µs); a profile that does not overlap the window would say so here.
  if (profile.startTime > to || profile.endTime < from) throw new Error(`the profile (${profile.startTime}-${profile.endTime} µs) does not cover the load window (${from}-${to} µs)`);
  const s = summarize(profile, from, to, requests);
  const header = `serve under ${traffic === 'mixed' ? 'mixed traffic' : 'one repeated CAR'} (${which === 'example' ? 'example policy' : '50-rule policy'}), ${requests.toLocaleString('en-US')} gate_checks, ${connections} connections x ${window} in flight, --cpu-prof-interval ${intervalUs} µs, native core ${process.env.GUARDKERNEL_NATIVE === '0' ? 'off' : 'on'}: ${Math.round(load.opsPerSec).toLocaleString('en-US')} requests/s under the profiler, server CPU ${cpu === null ? '?' : cpu.toFixed(1)} µs/request (from /proc)\nprofile: ${path.join(profDir, file)}`;
  process.stderr.write(report(s, header) + '\n');
  // Without --keep the state directory goes (its audit log is ~100 MB), profile included.
  if (keep === undefined) {
    fs.rmSync(dir, { recursive: true, force: true });
    process.stderr.write('(the profile and serve\'s state were removed: --keep DIR keeps them)\n');
  }

  const group = `serve CPU self time by category, ${traffic === 'mixed' ? 'mixed traffic' : 'one repeated CAR'} (${which === 'example' ? 'example policy' : '50-rule policy'}), per request`;
  const rows = [];
  for (const [c, us] of [...s.categories].sort((a, b) => b[1] - a[1])) {
    const ns = (us * 1000) / requests;
    const top = [...s.functions].filter(([, f]) => f.cat === c).sort((a, b) => b[1].us - a[1].us).slice(0, 3).map(([k, f]) => `${k} ${((100 * f.us) / s.total).toFixed(1)} %`);
    rows.push({ group, name: c, baseline: false, meanNs: ns, p50Ns: ns, p99Ns: ns, opsPerSec: ns > 0 ? 1e9 / ns : 0, samples: requests, note: `${((100 * us) / s.total).toFixed(1)} % of serve's CPU in the window; largest: ${top.join('; ')}` });
  }
  const backend = require('../../dist/index.js').backends().core.kind;
  process.stdout.write(JSON.stringify(rows.map((r) => ({ suite: 'profile', backend, ...r }))) + '\n');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
