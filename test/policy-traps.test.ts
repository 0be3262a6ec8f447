// Policy-language traps: identity globs that stop at `/` (deny lists failing
// open), prefixes that admit dot segments, backslashes as a hidden separator,
// and regex constraints that a backtracking engine would run.
import { afterEach, describe, expect, test, vi } from 'vitest';
import { ErrorCodes, GuardError } from '../lib/errors';
import { Quarantine } from '../lib/gate/quarantine';
import { SandboxPolicy } from '../lib/k2k/policy';
import { MAX_REGEX_INPUT } from '../lib/policy/compile';
import { PolicyEngine } from '../lib/policy/engine';

type Doc = Record<string, unknown>;
let version = 0;
const engine = (actions: Doc, extra: Doc = {}) => new PolicyEngine({ version: ++version, mode: 'enforce', actions, ...extra });
const decide = (e: PolicyEngine, car: Doc) => e.evaluate({ action_type: 'act', agent_id: 'agent-1', ...car }, { now: 0 });

function loadError(doc: Doc): GuardError {
  try {
    new PolicyEngine({ version: 1, mode: 'enforce', ...doc });
  } catch (err) {
    expect(err).toBeInstanceOf(GuardError);
    expect((err as GuardError).code).toBe(ErrorCodes.POLICY_INVALID);
    return err as GuardError;
  }
  throw new Error('the policy loaded');
}

describe('identity globs match any character, / included', () => {
  const e = engine({ act: { allow_identities: ['agent-*', 'svc-?'], deny_identities: ['agent-evil*', 'agent-x?y', 'team-**-bad'] } });
  const verdict = (agent: string) => decide(e, { agent_id: agent }).decision;

  test('a deny entry covers ids with / in them (it failed open)', () => {
    for (const id of ['agent-evil', 'agent-evil/2', 'agent-evil/../agent-good', 'agent-evil/a/b/c', 'agent-evil\n/x', 'agent-x/y']) {
      expect({ id, d: verdict(id) }).toEqual({ id, d: 'deny' });
    }
    expect(decide(e, { agent_id: 'agent-evil/2' }).reason).toMatch(/is denied/);
  });

  test('allow entries cross / alike; exact names stay exact; escapes stay literal', () => {
    for (const id of ['agent-good', 'agent-a/b', 'agent-/', 'svc-/', 'svc-a']) expect({ id, d: verdict(id) }).toEqual({ id, d: 'allow' });
    for (const id of ['agent', 'svc-ab', 'xagent-a', 'svc-']) expect({ id, d: verdict(id) }).toEqual({ id, d: 'deny' });
    const lit = engine({ act: { allow_identities: ['bot\\*', 'exact-1'] } });
    expect(decide(lit, { agent_id: 'bot*' }).decision).toBe('allow');
    expect(decide(lit, { agent_id: 'bot/x' }).decision).toBe('deny');
    expect(decide(lit, { agent_id: 'exact-1/x' }).decision).toBe('deny');
  });

  test('an escape that escapes nothing is refused: CORP\\evil must not deny CORPevil and let CORP\\evil through', () => {
    expect(loadError({ actions: { act: { deny_identities: ['CORP\\evil'] } } }).path).toBe('actions.act.deny_identities');
    expect(loadError({ actions: { act: { allow_identities: ['ok', 'dom\\user*'] } } }).path).toBe('actions.act.allow_identities');
    expect(loadError({ trust: { identities: [{ match: 'a\\b', adjust: 0.1 }] }, actions: {} }).path).toBe('trust.identities.0.match');
    expect(loadError({ actions: { act: { constraints: { resource: { glob: 'C:\\data\\**' } } } } }).path).toBe('actions.act.constraints.resource.glob');
    // Written as an escaped backslash, the name is denied exactly.
    const e = engine({ act: { deny_identities: ['CORP\\\\evil*'] } });
    expect(decide(e, { agent_id: 'CORP\\evil' }).decision).toBe('deny');
    expect(decide(e, { agent_id: 'CORP\\evil/2' }).decision).toBe('deny');
    expect(decide(e, { agent_id: 'CORPevil' }).decision).toBe('allow');
  });

  test('trust identity rules cross / too', () => {
    const t = new PolicyEngine({
      version: 1,
      mode: 'enforce',
      trust: { base: 0.5, identities: [{ match: 'bad-*', adjust: -0.4 }, { match: 'prod-?/x', adjust: 0.3 }] },
      actions: {},
    });
    expect(t.trustScore('bad-a/b', 0)).toBeCloseTo(0.1);
    expect(t.trustScore('prod-//x', 0)).toBeCloseTo(0.8);
    expect(t.trustScore('good/bad-a', 0)).toBeCloseTo(0.5);
  });

  test('quarantine scopes are name patterns: http_* covers http_get/v2', () => {
    const q = new Quarantine();
    q.quarantine('a', 'test', { isolation: 'network' });
    q.quarantine('b', 'test', { isolation: ['db_*', 'tool-?'] });
    q.quarantine('c', 'test', { isolation: 'filesystem' });
    for (const t of ['http_get/v2', 'http_/', 'fetch/x', 'dns_/a/b']) expect({ t, d: q.denies('a', t) }).toEqual({ t, d: true });
    for (const t of ['db_write/x', 'tool-/']) expect({ t, d: q.denies('b', t) }).toEqual({ t, d: true });
    for (const t of ['file_read/../x', 'fs_/']) expect({ t, d: q.denies('c', t) }).toEqual({ t, d: true });
    expect(q.denies('a', 'file_read')).toBe(false);
    expect(q.denies('b', 'xdb_write')).toBe(false);
  });

  test('K2K patterns: * matches any character, and nothing else is a wildcard', () => {
    const p = new SandboxPolicy().k2kAllowList(['worker-*']).k2kDenyList(['worker-evil*']).allowTopics(['jobs/*', 'a?c']);
    expect(p.allowsK2kTo('worker-a/b')).toBe(true);
    expect(p.allowsK2kTo('worker-evil/2')).toBe(false);
    expect(p.allowsK2kTo('xworker-a')).toBe(false);
    expect(p.allowsTopic('jobs/a/b')).toBe(true);
    expect(p.allowsTopic('a?c')).toBe(true);
    expect(p.allowsTopic('abc')).toBe(false);
  });
});

// Values with a dot segment, in the forms a file system or a URL decoder reads as one.
const DOT_SEGMENTS = [
  '/srv/data/../../etc/passwd',
  '/srv/data/..',
  '/srv/data/../',
  '/srv/data/./x',
  '/srv/data/.',
  '/srv/data/a/../../../etc',
  '/srv/data//../x',
  '/srv/data/%2e%2e/etc/passwd',
  '/srv/data/%2E%2E/etc',
  '/srv/data/.%2e/etc',
  '/srv/data/%2e./etc',
  '/srv/data/%2e/x',
  '/srv/data/..%2fetc',
  '/srv/data/..%2Fetc',
  '/srv/data/a%2f..%2f..%2fetc',
  '/srv/data/.../x', // Windows drops trailing dots
  '/srv/data/.. /x', // and trailing spaces
  '/srv/data/. /x',
];
// Values a dot-segment guard must not refuse.
const NOT_DOT_SEGMENTS = ['/srv/data/a..b', '/srv/data/.hidden', '/srv/data/..hidden', '/srv/data/a.', '/srv/data/x..', '/srv/data/%2e%2ex', '/srv/data/a%2fb', '/srv/data/%252e%252e/x', '/srv/data/a b'];
const BACKSLASHES = ['/srv/data/..\\..\\etc\\passwd', '/srv/data/a\\b', '/srv/data/\\', '/srv/data/x%5c..%5cetc', '/srv/data/x%5C..'];

describe('path constraints (prefix, glob) refuse dot segments and backslashes alike', () => {
  const kinds: Array<[string, Doc]> = [
    ['prefix', { prefix: '/srv/data/' }],
    ['glob **', { glob: '/srv/data/**' }],
  ];
  for (const [name, spec] of kinds) {
    test(`${name}: dot segments, plain and encoded`, () => {
      const e = engine({ act: { constraints: { resource: spec } } });
      for (const resource of DOT_SEGMENTS) expect({ resource, d: decide(e, { resource }).decision }).toEqual({ resource, d: 'deny' });
      expect(decide(e, { resource: '/srv/data/../../etc/passwd' }).reason).toMatch(/"\." or "\.\." segment/);
      for (const resource of NOT_DOT_SEGMENTS) expect({ resource, d: decide(e, { resource }).decision }).toEqual({ resource, d: 'allow' });
    });

    test(`${name}: backslashes, plain and encoded`, () => {
      const e = engine({ act: { constraints: { resource: spec } } });
      for (const resource of BACKSLASHES) expect({ resource, d: decide(e, { resource }).decision }).toEqual({ resource, d: 'deny' });
      expect(decide(e, { resource: '/srv/data/a\\b' }).reason).toMatch(/backslash/);
    });
  }

  test('differential: random values against a split-based reference of the path rule', () => {
    // Reference: decode %2e %2f %5c once, then refuse a backslash or a segment of only dots and spaces.
    const refused = (v: string) => {
      const d = v.replace(/%(2e|2f|5c)/gi, (m) => ({ '2e': '.', '2f': '/', '5c': '\\' })[m.slice(1).toLowerCase()]!);
      return d.includes('\\') || d.split('/').some((seg) => /^[. ]*$/.test(seg) && seg.includes('.'));
    };
    const e = engine({ act: { constraints: { 'args.g': { glob: '**' }, 'args.p': { prefix: 'x' } } } });
    const parts = ['.', '.', '/', '/', ' ', 'a', 'a', 'a', 'b', '%2e', '%2E', '%2f', '%2F', '%5c', '%', '2', 'e', '\\', '%25'];
    let seed = 1;
    let refusals = 0;
    for (let k = 0; k < 5000; k++) {
      let v = '';
      for (let j = 0; j < 1 + (k % 8); j++) v += parts[((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) % parts.length];
      const want = refused(v) ? 'deny' : 'allow';
      expect({ v, d: decide(e, { args: { g: v, p: 'x' + v } }).decision }).toEqual({ v, d: want });
      refusals += want === 'deny' ? 1 : 0;
    }
    expect(refusals).toBeGreaterThan(500);
    expect(refusals).toBeLessThan(4500);
  });

  test('glob * and ?: a backslash is no way around the / they stop at', () => {
    const e = engine({ act: { constraints: { resource: { glob: '/srv/data/*' }, 'args.f': { glob: 'in?out' } } } });
    expect(decide(e, { resource: '/srv/data/a', args: { f: 'in-out' } }).decision).toBe('allow');
    expect(decide(e, { resource: '/srv/data/..\\secret', args: { f: 'in-out' } }).decision).toBe('deny');
    expect(decide(e, { resource: '/srv/data/a', args: { f: 'in\\out' } }).decision).toBe('deny');
  });

  test('patterns without / guard too: a bare * does not admit ".." or "."', () => {
    const e = engine({ act: { constraints: { 'args.name': { glob: '*' }, 'args.dir': { prefix: 'build' } } } });
    expect(decide(e, { args: { name: 'report.txt', dir: 'build/out' } }).decision).toBe('allow');
    for (const name of ['..', '.', '.. ']) expect(decide(e, { args: { name, dir: 'build/out' } }).decision).toBe('deny');
    expect(decide(e, { args: { name: 'a', dir: 'build/../etc' } }).decision).toBe('deny');
  });

  test('a prefix or glob that names a backslash is refused at load, with its path', () => {
    const prefix = loadError({ actions: { file_read: { constraints: { resource: { prefix: 'C:\\data\\' } } } } });
    expect(prefix.path).toBe('actions.file_read.constraints.resource.prefix');
    const glob = loadError({ actions: { file_read: { constraints: { resource: { glob: 'C:\\\\data\\\\**' } } } } });
    expect(glob.path).toBe('actions.file_read.constraints.resource.glob');
    // An escaped star is not a backslash.
    expect(() => engine({ act: { constraints: { resource: { glob: '/srv/\\*/**' } } } })).not.toThrow();
  });
});

describe('regex constraints run on a linear-time engine', () => {
  afterEach(() => vi.restoreAllMocks());

  test('patterns a linear engine cannot run are refused at load, naming the path', () => {
    for (const regex of ['(a)\\1', '(?<n>a)\\k<n>', 'a(?=b)', 'a(?!b)', '(?<=a)b', '(?<!a)b', 'a{1001}']) {
      const err = loadError({ actions: { file_read: { constraints: { 'args.x': { regex } } } } });
      expect({ regex, path: err.path }).toEqual({ regex, path: 'actions.file_read.constraints.args.x.regex' });
    }
  });

  test('a pattern cannot break out of the anchoring group', () => {
    for (const regex of ['a)|(b', 'a)|(?:.*', '(', ')', '[a']) {
      const err = loadError({ actions: { file_read: { constraints: { 'args.x': { regex } } } } });
      expect(err.path).toBe('actions.file_read.constraints.args.x.regex');
    }
  });

  test('whole-value match, unicode classes, alternation', () => {
    const e = engine({ act: { constraints: { 'args.x': { regex: '[a-z]+|\\p{Lu}\\d{2,3}' } } } });
    const d = (x: unknown) => decide(e, { args: { x } }).decision;
    for (const x of ['abc', 'É12', 'A123']) expect({ x, d: d(x) }).toEqual({ x, d: 'allow' });
    for (const x of ['abc1', 'A1', 'A1234', '', 'abc\n', 5, '\uD800']) expect({ x, d: d(x) }).toEqual({ x, d: 'deny' });
  });

  test('JavaScript meaning where RE2 differs: . excludes line terminators, \\s is Unicode white space', () => {
    const patterns = ['.', '.+', 'a.b', '\\s*', '\\S+', '[\\sa]+', '[^\\s]+', '[.]+', '\\.', '(?:\\s|x)+', '[a\\]\\s]+', '\\w+\\s\\d', '[\\u{1F600}.]+'];
    const chars = ['a', 'b', 'x', '.', ']', '1', ' ', '\t', '\n', '\r', '\v', '\f', '\u00a0', '\u2028', '\u2029', '\ufeff', '\u3000', '\u{1F600}', 'é'];
    let n = 0;
    for (const regex of patterns) {
      const e = engine({ act: { constraints: { 'args.x': { regex } } } });
      const js = new RegExp(`^(?:${regex})$`, 'u');
      let seed = regex.length;
      for (let k = 0; k < 300; k++) {
        let x = '';
        const len = k % 5;
        for (let j = 0; j < len; j++) x += chars[(seed = (seed * 1103515245 + 12345) >>> 0) % chars.length];
        const want = js.test(x) ? 'allow' : 'deny';
        expect({ regex, x, d: decide(e, { args: { x } }).decision }).toEqual({ regex, x, d: want });
        n += want === 'allow' ? 1 : 0;
      }
    }
    expect(n).toBeGreaterThan(300);
    // \S inside a class has no RE2 spelling: refused rather than misread.
    expect(loadError({ actions: { file_read: { constraints: { 'args.x': { regex: '[\\Sa]' } } } } }).path).toBe('actions.file_read.constraints.args.x.regex');
  });

  test(`values longer than ${MAX_REGEX_INPUT} characters fail without being matched`, () => {
    const e = engine({ act: { constraints: { 'args.x': { regex: 'a*' } } } });
    expect(decide(e, { args: { x: 'a'.repeat(MAX_REGEX_INPUT) } }).decision).toBe('allow');
    const over = decide(e, { args: { x: 'a'.repeat(MAX_REGEX_INPUT + 1) } });
    expect(over.decision).toBe('deny');
    expect(over.reason).toMatch(/longer than the 8192 characters/);
  });

  test('values are matched as their own UTF-8 bytes: the widest that fit, and no bytes of a longer value before them', () => {
    const e = engine({ act: { constraints: { 'args.x': { regex: '[€]*|\\u{1F600}*|ab' } } } });
    const d = (x: string) => decide(e, { args: { x } }).decision;
    expect(d('€'.repeat(MAX_REGEX_INPUT))).toBe('allow'); // 3 bytes per unit: the most UTF-8 a value can take
    expect(d('\u{1F600}'.repeat(MAX_REGEX_INPUT / 2))).toBe('allow');
    expect(d('€'.repeat(MAX_REGEX_INPUT - 1) + 'x')).toBe('deny');
    // A long value, then a short one: the short one is matched alone.
    expect(d('ab' + 'x'.repeat(5000))).toBe('deny');
    expect(d('ab')).toBe('allow');
    expect(d('a')).toBe('deny');
  });

  test('a pattern that backtracks exponentially in JavaScript answers on 8 KiB', () => {
    const e = engine({ act: { constraints: { 'args.x': { regex: '(a+)+$|(a|aa)*b' } } } });
    expect(decide(e, { args: { x: 'a'.repeat(MAX_REGEX_INPUT - 1) + '!' } }).decision).toBe('deny');
    expect(decide(e, { args: { x: 'a'.repeat(MAX_REGEX_INPUT) } }).decision).toBe('allow');
  });

  test('evaluation runs no JavaScript RegExp: globs, identities, prefixes, regexes', () => {
    const e = engine(
      {
        act: {
          allow_identities: ['agent-*'],
          deny_identities: ['agent-evil*'],
          constraints: { resource: { glob: '/srv/**/*.csv' }, 'args.p': { prefix: '/tmp/' }, 'args.r': { regex: '(x|y)+z' } },
        },
      },
      { trust: { identities: [{ match: 'agent-?', adjust: 0.1 }] } },
    );
    const car = { agent_id: 'agent-2', resource: '/srv/a/b.csv', args: { p: '/tmp/x', r: 'xyxz' } };
    const exec = vi.spyOn(RegExp.prototype, 'exec');
    const test = vi.spyOn(RegExp.prototype, 'test');
    const decisions = [car, { ...car, agent_id: 'agent-evil/1' }, { ...car, resource: '/srv/a/../b.csv' }, { ...car, args: { p: '/tmp/x', r: 'xyx' } }].map(
      (c) => decide(e, c).decision,
    );
    const calls = exec.mock.calls.length + test.mock.calls.length;
    vi.restoreAllMocks();
    expect(decisions).toEqual(['allow', 'deny', 'deny', 'deny']);
    expect(calls).toBe(0);
  });
});

describe('constraint values the CAR rules refuse', () => {
  test('rejects bad input: an equals / one_of value nested too deep is ERR_POLICY_INVALID naming its path, not a CAR error', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 40; i++) deep = { a: deep };
    for (const [spec, at] of [[{ equals: deep }, 'actions.x.constraints.args.equals'], [{ one_of: [1, deep] }, 'actions.x.constraints.args.one_of.1']] as const) {
      let err: unknown;
      try {
        new PolicyEngine({ version: 1, mode: 'enforce', actions: { x: { constraints: { args: spec } } } });
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ code: 'ERR_POLICY_INVALID', path: at });
    }
  });
});
