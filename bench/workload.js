// A workload that stands for real traffic (issue 27), seeded and reproducible:
// gate_check requests whose CARs are drawn Zipf(1) from a large population
// (>= 100,000 distinct CARs) of 1,000-10,000 agents, under the bundled
// example policy or a 50-rule policy, with a share of requests carrying a
// fresh nonce, a share carrying a permit (minted with a Keyring the caller
// supplies, whose secret the bench controls) and a share that is invalid.
//
// Everything is decided by one small PRNG (mulberry32) from the seed: the
// population, the draws, which requests carry a nonce / permit / nothing, the
// nonce texts. Only the permits themselves (their iat, exp and random jti)
// differ from run to run. Generation is meant to happen before timing: build
// `requests(n)` (or `lines(n)`) once, then replay them.
//
// Zipf(1): rank r (1-based) has weight 1/r. The cumulative weights are
// precomputed once (Float64Array of n), and each draw is an inverse-CDF
// lookup: one uniform number, one binary search (O(log n)).
'use strict';

/** The 50-rule policy of the gate suite: 49 rules over /srv/appN plus file_read. */
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

/** mulberry32: a 32-bit seeded PRNG, uniform in [0, 1). */
function mulberry32(seed) {
  let a = seed >>> 0;
  return function next() {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Zipf(s) over ranks 0..n-1 (rank 0 the most frequent): cumulative weights,
 * normalized to end at 1, and `draw(u)` the smallest rank whose cumulative
 * weight exceeds u (binary search).
 */
function zipf(n, s = 1) {
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`zipf: n must be a positive integer, not ${n}`);
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let r = 0; r < n; r++) {
    sum += 1 / Math.pow(r + 1, s);
    cdf[r] = sum;
  }
  for (let r = 0; r < n; r++) cdf[r] /= sum;
  cdf[n - 1] = 1;
  return {
    n,
    cdf,
    /** Probability of rank r (0-based). */
    p: (r) => cdf[r] - (r === 0 ? 0 : cdf[r - 1]),
    draw(u) {
      let lo = 0;
      let hi = n - 1;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (cdf[mid] > u) hi = mid;
        else lo = mid + 1;
      }
      return lo;
    },
  };
}

const pick = (next, xs) => xs[Math.floor(next() * xs.length)];
const pad = (n, w) => String(n).padStart(w, '0');

/** Picks by weight from [[value, weight], ...] (weights sum to 1). */
function weighted(next, table) {
  let u = next();
  for (const [v, w] of table) {
    if (u < w) return v;
    u -= w;
  }
  return table[table.length - 1][0];
}

// What each kind of agent does under the example policy. Real traffic is
// mostly allowed: prod and dev agents ask for what their rules admit;
// untrusted agents are the ones denied (by identity), so no agent's trust
// decays during a run and no agent is quarantined (file_write's
// on_violation: quarantine is never triggered: only prod agents write, and
// only within the rule's constraints). shell_exec (require_approval) is a
// small share: it answers pending and opens an approval request.
const EXAMPLE_ACTIONS = {
  prod: [['file_read', 0.55], ['http_get', 0.27], ['file_write', 0.12], ['shell_exec', 0.01], ['email_send', 0.05]],
  dev: [['file_read', 0.62], ['http_get', 0.32], ['shell_exec', 0.01], ['email_send', 0.05]],
  untrusted: [['file_read', 0.7], ['http_get', 0.3]],
};
const AGENT_KINDS = [['prod', 0.6], ['dev', 0.35], ['untrusted', 0.05]];
const TOOLS = ['fs', 'http', 'shell', 'mail'];
const DIRS = ['reports', 'exports', 'logs', 'models', 'users', 'billing', 'tmp', 'cache'];
const EXTS = ['csv', 'json', 'txt', 'parquet', 'log'];

function exampleCar(next, agentId, kind) {
  const action = weighted(next, EXAMPLE_ACTIONS[kind]);
  const server_id = `mcp-${Math.floor(next() * 16)}`;
  switch (action) {
    case 'file_read':
      return { action_type: 'file_read', agent_id: agentId, resource: `/srv/data/${pick(next, DIRS)}/${pad(Math.floor(next() * 1e6), 6)}.${pick(next, EXTS)}`, tool: 'fs', server_id, args: { mode: 'r', limit: 1 + Math.floor(next() * 65536) } };
    case 'file_write':
      return { action_type: 'file_write', agent_id: agentId, resource: `/srv/data/out/${pad(Math.floor(next() * 1e6), 6)}.${pick(next, EXTS)}`, tool: 'fs', server_id, args: { bytes: Math.floor(next() * 1048576), mode: 'w' } };
    case 'http_get':
      return { action_type: 'http_get', agent_id: agentId, resource: `https://api.example.com/v${1 + Math.floor(next() * 3)}/${pick(next, DIRS)}/${Math.floor(next() * 1e6)}`, tool: 'http', server_id, args: { timeout_ms: 1000 * (1 + Math.floor(next() * 30)) } };
    case 'shell_exec':
      return { action_type: 'shell_exec', agent_id: agentId, resource: `/usr/bin/${pick(next, ['ls', 'du', 'tar', 'git'])}`, tool: 'shell', server_id, args: { argv: ['-l', `/srv/data/${pick(next, DIRS)}/${Math.floor(next() * 1e6)}`] } };
    default:
      return { action_type: action, agent_id: agentId, resource: `mailto:user${Math.floor(next() * 1e6)}@example.com`, tool: 'mail', server_id, args: { subject_len: Math.floor(next() * 200) } };
  }
}

// Under the 50-rule policy: action_0..48 and file_read, within their rules,
// plus a share of action types no rule names (default deny).
function fiftyCar(next, agentId) {
  const u = next();
  const server_id = `mcp-${Math.floor(next() * 16)}`;
  if (u < 0.4) return { action_type: 'file_read', agent_id: agentId, resource: `/srv/data/${pick(next, DIRS)}/${pad(Math.floor(next() * 1e6), 6)}.${pick(next, EXTS)}`, tool: 'fs', server_id, args: { mode: 'r', limit: 1 + Math.floor(next() * 65536) } };
  if (u < 0.95) {
    const k = Math.floor(next() * 49);
    return { action_type: `action_${k}`, agent_id: agentId, resource: `/srv/app${k}/${pick(next, DIRS)}/${Math.floor(next() * 1e6)}`, tool: pick(next, TOOLS), server_id, args: { mode: next() < 0.7 ? 'r' : 'w' } };
  }
  return { action_type: 'email_send', agent_id: agentId, resource: `mailto:user${Math.floor(next() * 1e6)}@example.com`, tool: 'mail', server_id, args: { subject_len: Math.floor(next() * 200) } };
}

// Invalid requests: CARs the gate must refuse at validation (no NaN, no
// non-JSON values: they also travel over the socket as JSON).
const INVALID_FORMS = [
  (car) => { const { agent_id, ...rest } = car; return rest; }, // missing agent_id
  (car) => ({ ...car, agent_id: 42 }), // agent_id a number
  (car) => ({ ...car, action_type: ['file_read'] }), // action_type an array
  (car) => ({ ...car, action_type: null }), // action_type null
];

const DEFAULTS = { seed: 1, population: 100_000, agents: 2_000, policy: 'example', nonceShare: 0.03, permitShare: 0.02, invalidShare: 0.01 };

/**
 * @param {object} [options]
 * @param {number} [options.seed] PRNG seed (default 1)
 * @param {number} [options.population] distinct CARs (default 100,000; at least 100,000)
 * @param {number} [options.agents] distinct agents (1,000-10,000; default 2,000)
 * @param {'example'|'fifty'} [options.policy] which policy the CARs are made for
 * @param {number} [options.nonceShare] share of requests with a (fresh, unique) nonce
 * @param {number} [options.permitShare] share of requests with a permit
 * @param {number} [options.invalidShare] share of requests with an invalid CAR
 * @param {{issue(r: object): {permit: string}}} [options.keyring] mints the permits (without one, permit requests carry none)
 * @param {number} [options.permitTtlMs] permit lifetime (default 1 h)
 */
function createWorkload(options = {}) {
  const o = { ...DEFAULTS, ...options };
  if (!Number.isSafeInteger(o.population) || o.population < 100_000) throw new RangeError(`population must be at least 100,000, not ${o.population}`);
  if (!Number.isSafeInteger(o.agents) || o.agents < 1_000 || o.agents > 10_000) throw new RangeError(`agents must be 1,000-10,000, not ${o.agents}`);
  if (o.policy !== 'example' && o.policy !== 'fifty') throw new RangeError(`policy must be 'example' or 'fifty', not ${o.policy}`);
  if (!(o.nonceShare >= 0 && o.permitShare >= 0 && o.invalidShare >= 0 && o.nonceShare + o.permitShare + o.invalidShare <= 1)) throw new RangeError('shares must be >= 0 and sum to at most 1');

  // The population: its own stream of the seed, so drawing never changes it.
  const build = mulberry32(o.seed ^ 0x9e3779b9);
  const agentIds = [];
  const agentKinds = [];
  for (let a = 0; a < o.agents; a++) {
    const kind = weighted(build, AGENT_KINDS);
    agentKinds.push(kind);
    agentIds.push(`agent-${kind}-${pad(a, 5)}`);
  }
  // Rank r's CAR (rank 0 the most frequent). Each CAR carries a serial (args.req)
  // so that all `population` CARs are distinct even where the random parts collide.
  const cars = new Array(o.population);
  for (let r = 0; r < o.population; r++) {
    const a = Math.floor(build() * o.agents);
    const car = o.policy === 'example' ? exampleCar(build, agentIds[a], agentKinds[a]) : fiftyCar(build, agentIds[a]);
    car.args.req = r;
    cars[r] = car;
  }
  const dist = zipf(o.population, 1);
  const next = mulberry32(o.seed);
  const nonceTag = `wl${o.seed.toString(36)}`;
  let serial = 0; // every nonce this workload makes is unique
  const ttlMs = o.permitTtlMs ?? 3_600_000;

  /** The next request: { kind, rank, params } with params as gate_check takes them over the socket. */
  function draw() {
    const rank = dist.draw(next());
    const car = cars[rank];
    const u = next();
    let kind = 'plain';
    if (u < o.invalidShare) kind = 'invalid';
    else if (u < o.invalidShare + o.nonceShare) kind = 'nonce';
    else if (u < o.invalidShare + o.nonceShare + o.permitShare) kind = 'permit';
    const form = kind === 'invalid' ? Math.floor(next() * INVALID_FORMS.length) : 0;
    const n = serial++;
    if (kind === 'invalid') return { kind, rank, params: { car: INVALID_FORMS[form](car) } };
    if (kind === 'nonce') return { kind, rank, params: { car, nonce: `${nonceTag}-${n.toString(36)}-${Math.floor(next() * 2 ** 32).toString(36)}` } };
    if (kind === 'permit' && o.keyring !== undefined) return { kind, rank, params: { car, permit: o.keyring.issue({ car, agentId: car.agent_id, ttlMs }).permit } };
    return { kind, rank, params: { car } };
  }

  return {
    options: o,
    agentIds,
    /** The CAR of rank r (0-based); the same object each time. */
    carAt: (r) => cars[r],
    zipf: dist,
    draw,
    /** `n` requests as gate.check takes them: fresh objects (as a parsed request line would be). */
    requests(n) {
      const out = new Array(n);
      for (let i = 0; i < n; i++) {
        const { params } = draw();
        const req = JSON.parse(JSON.stringify(params));
        out[i] = { car: req.car };
        if (req.nonce !== undefined) out[i].nonce = req.nonce;
        if (req.permit !== undefined) out[i].permit = req.permit;
      }
      return out;
    },
    /**
     * `n` gate_check lines, each split around its id: send
     * `LINE_HEAD + id + tail` (tail ends with the newline).
     */
    lineTails(n) {
      const out = new Array(n);
      for (let i = 0; i < n; i++) out[i] = `,"method":"gate_check","params":${JSON.stringify(draw().params)}}\n`;
      return out;
    },
  };
}

const LINE_HEAD = '{"jsonrpc":"2.0","id":';

/** Counts of a sample of draws: kinds, action types, and the share that hits a rule with require_approval. */
function describeSample(workload, n) {
  const kinds = {};
  const actions = {};
  for (let i = 0; i < n; i++) {
    const d = workload.draw();
    kinds[d.kind] = (kinds[d.kind] ?? 0) + 1;
    const a = workload.carAt(d.rank).action_type;
    if (d.kind !== 'invalid') actions[a] = (actions[a] ?? 0) + 1;
  }
  const share = (x) => Number((x / n).toFixed(4));
  return {
    kinds: Object.fromEntries(Object.entries(kinds).map(([k, v]) => [k, share(v)])),
    actions: Object.fromEntries(Object.entries(actions).sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, share(v)])),
    approvalShare: share(actions.shell_exec ?? 0),
  };
}

module.exports = { createWorkload, describeSample, fiftyRulePolicy, mulberry32, zipf, LINE_HEAD, DEFAULTS };
