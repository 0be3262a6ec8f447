// PolicyEngine: constraints, identities, trust, modes, versioning, hot reload.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { AuditLog, GuardError, PolicyEngine } from '../lib/index';
import { fakeClock, repoRoot } from './helpers';

type Doc = Record<string, unknown>;
const car = (fields: Doc) => ({ action_type: 'act', agent_id: 'agent-1', ...fields });

function engineFor(constraints: Doc, extra: Doc = {}) {
  return new PolicyEngine({ version: 1, mode: 'enforce', actions: { act: { constraints, ...extra } } });
}

describe('constraints: exact semantics', () => {
  const table: Array<[name: string, constraint: Doc, pass: unknown[], fail: unknown[]]> = [
    ['equals (string)', { equals: 'r' }, ['r'], ['R', 'rw', ' r', 1]],
    ['equals (object, key order irrelevant)', { equals: { a: 1, b: [2] } }, [{ b: [2], a: 1 }], [{ a: 1 }, { a: 1, b: [2], c: 0 }]],
    ['one_of', { one_of: ['r', 'w', 3] }, ['r', 'w', 3], ['rw', '3', 'x']],
    ['prefix (no substring match)', { prefix: '/srv/' }, ['/srv/', '/srv/a'], ['/srv', 'x/srv/a', '/SRV/a', 5]],
    ['glob *', { glob: '/srv/*.txt' }, ['/srv/a.txt'], ['/srv/a/b.txt', '/srv/a.txt.bak', '/srv/atxt']],
    ['glob ** and dot segments', { glob: '/srv/**' }, ['/srv/a', '/srv/a/b/c', '/srv/.hidden'], ['/srv/../etc/passwd', '/srv/a/../../x', '/srv/./a', '/srv/a/..', '/srvx']],
    ['glob escapes', { glob: 'a\\*b' }, ['a*b'], ['axb', 'ab']],
    ['regex is a whole-value match', { regex: '[a-z]+' }, ['abc'], ['abc1', '1abc', '', 'ABC']],
    ['regex alternation stays anchored', { regex: 'a|b' }, ['a', 'b'], ['ab', 'xa', 'bx']],
    ['range', { range: { min: 0, max: 10 } }, [0, 10, 5.5], [-1, 10.01, '5', NaN]],
    ['range (min only)', { range: { min: 1 } }, [1, 1e9], [0]],
    ['max_length', { max_length: 3 }, ['abc', '', [1, 2, 3]], ['abcd', [1, 2, 3, 4], 5]],
    ['several kinds at once (all must hold)', { prefix: 'ab', max_length: 4 }, ['ab', 'abcd'], ['abcde', 'xab']],
  ];
  for (const [name, constraint, pass, fail] of table) {
    test(name, () => {
      const e = engineFor({ 'args.v': constraint });
      for (const v of pass) expect({ v, d: e.evaluate(car({ args: { v } })).decision }).toEqual({ v, d: 'allow' });
      for (const v of fail) expect({ v, d: e.evaluate(car({ args: { v } })).decision }).toEqual({ v, d: 'deny' });
    });
  }

  test('a missing constrained field fails (and so does a path through a non-object)', () => {
    const e = engineFor({ 'args.mode': { one_of: ['r'] }, resource: { prefix: '/' } });
    expect(e.evaluate(car({ resource: '/a' })).reason).toMatch(/args\.mode is missing/);
    expect(e.evaluate(car({ resource: '/a', args: 'mode=r' })).decision).toBe('deny');
    expect(e.evaluate(car({ args: { mode: 'r' } })).reason).toMatch(/resource is missing/);
    expect(e.evaluate(car({ resource: '/a', args: { mode: 'r' } })).decision).toBe('allow');
    // inherited properties do not count as present
    expect(engineFor({ 'args.constructor': { max_length: 100 } }).evaluate(car({ args: {} })).decision).toBe('deny');
  });
});

describe('identities', () => {
  const e = new PolicyEngine({
    version: 1,
    mode: 'enforce',
    actions: { act: { allow_identities: ['agent-*', 'exact-bot'], deny_identities: ['agent-untrusted-*'] }, open: {} },
  });
  test('allow list, deny wins, and an allow list that does not match denies', () => {
    expect(e.evaluate(car({ agent_id: 'agent-7' })).decision).toBe('allow');
    expect(e.evaluate(car({ agent_id: 'exact-bot' })).decision).toBe('allow');
    expect(e.evaluate(car({ agent_id: 'exact-bot-2' })).decision).toBe('deny');
    expect(e.evaluate(car({ agent_id: 'agent-untrusted-1' })).reason).toMatch(/is denied/);
    expect(e.evaluate(car({ agent_id: 'someone' })).reason).toMatch(/not in the allow list/);
    expect(e.evaluate({ action_type: 'open', agent_id: 'someone' }).decision).toBe('allow');
  });
});

describe('trust', () => {
  test('base + matching adjustments - decayed penalties, clamped; min_trust', () => {
    const c = fakeClock(0);
    const e = new PolicyEngine(
      {
        version: 1,
        mode: 'enforce',
        trust: { base: 0.5, identities: [{ match: 'agent-prod-*', adjust: 0.3 }, { match: 'agent-prod-9', adjust: 0.4 }, { match: 'bad-*', adjust: -0.9 }], violation_penalty: 0.2, recovery_per_hour: 0.1 },
        actions: { read: { min_trust: 0.6 }, strict: { constraints: { resource: { equals: 'ok' } } } },
      },
      { clock: c.fn },
    );
    expect(e.trustScore('agent-prod-1')).toBe(0.8);
    expect(e.trustScore('agent-prod-9')).toBe(1); // 1.2 clamped
    expect(e.trustScore('bad-1')).toBe(0); // -0.4 clamped
    expect(e.trustScore('other')).toBe(0.5);
    expect(e.evaluate({ action_type: 'read', agent_id: 'other' })).toMatchObject({ decision: 'deny', trust_score: 0.5 });
    expect(e.evaluate({ action_type: 'read', agent_id: 'agent-prod-1' }).decision).toBe('allow');
    // two violations: 0.8 - 0.4 = 0.4, now below min_trust 0.6
    e.evaluate({ action_type: 'strict', agent_id: 'agent-prod-1', resource: 'no' });
    e.evaluate({ action_type: 'strict', agent_id: 'agent-prod-1', resource: 'no' });
    expect(e.trustScore('agent-prod-1')).toBe(0.4);
    expect(e.evaluate({ action_type: 'read', agent_id: 'agent-prod-1' }).reason).toMatch(/trust 0.4 is below 0.6/);
    // falling short of min_trust is itself a violation: another 0.2
    expect(e.trustScore('agent-prod-1')).toBe(0.2);
    c.now += 2 * 3_600_000; // recovers 0.2
    expect(e.trustScore('agent-prod-1')).toBe(0.4);
    c.now += 2 * 3_600_000;
    expect(e.trustScore('agent-prod-1')).toBe(0.6);
    expect(e.evaluate({ action_type: 'read', agent_id: 'agent-prod-1' }).decision).toBe('allow');
    c.now += 10 * 3_600_000;
    expect(e.trustScore('agent-prod-1')).toBe(0.8); // never above the base + adjustments
  });

  test('identity trust is memoized per policy: right for 25,000 agents (past the memo bound), long ids, and after a reload', () => {
    const doc = (version: number, adjust: number) => ({ version, mode: 'enforce', trust: { base: 0.5, identities: [{ match: 'prod-*', adjust }, { match: '*-7', adjust: -0.2 }] }, actions: {} });
    const e = new PolicyEngine(doc(1, 0.3));
    const want = (id: string, adjust: number) => Math.round(Math.min(1, Math.max(0, 0.5 + (id.startsWith('prod-') ? adjust : 0) + (id.endsWith('-7') ? -0.2 : 0))) * 1e6) / 1e6;
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 25_000; i++) {
        const id = `${i % 2 ? 'prod' : 'dev'}-${i % 10}-${i}`;
        if (e.trustScore(id) !== want(id, 0.3)) throw new Error(`${id}: ${e.trustScore(id)}`);
      }
    }
    const long = 'prod-' + 'x'.repeat(1000) + '-7';
    expect([e.trustScore(long), e.trustScore(long)]).toEqual([want(long, 0.3), want(long, 0.3)]);
    expect(e.trustScore('prod-1')).toBe(0.8);
    e.load(doc(2, -0.1)); // the new policy's adjustments, not the old memo
    expect(e.trustScore('prod-1')).toBe(0.4);
    expect(e.trustScore(long)).toBe(want(long, -0.1));
  });

  test('the memo carries each agent its penalty: trust equals an independent model through violations, evictions of the oldest penalty, a full memo, reloads and long ids', () => {
    // Seeded, so a failure reproduces.
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const c = fakeClock(0);
    const maxTracked = 7;
    const doc = (version: number, base: number) => ({ version, mode: 'enforce', trust: { base, identities: [{ match: 'p-*', adjust: 0.2 }], violation_penalty: 0.15, recovery_per_hour: 0.3 }, actions: { strict: { constraints: { resource: { equals: 'ok' } } } } });
    const e = new PolicyEngine(doc(1, 0.6), { clock: c.fn, maxTrackedAgents: maxTracked });
    // The model: penalties in last-violation order, bounded, decaying.
    let base = 0.6;
    const penalties = new Map<string, { value: number; at: number }>();
    const decayed = (p: { value: number; at: number } | undefined) => (p === undefined ? 0 : Math.max(0, p.value - (0.3 * Math.max(0, c.now - p.at)) / 3_600_000));
    const model = (id: string) => Math.round(Math.min(1, Math.max(0, base + (id.startsWith('p-') ? 0.2 : 0) - decayed(penalties.get(id)))) * 1e6) / 1e6;
    const long = 'p-' + 'y'.repeat(300); // past the memo's key bound: never memoized
    const ids = [...Array.from({ length: 12 }, (_, i) => `${i % 2 ? 'p' : 'q'}-${i}`), long];
    let version = 1;
    for (let step = 0; step < 4000; step++) {
      const id = ids[rand(ids.length)];
      const op = rand(100);
      if (op < 30) {
        e.evaluate({ action_type: 'strict', agent_id: id, resource: 'no' });
        const value = decayed(penalties.get(id)) + 0.15;
        penalties.delete(id);
        if (penalties.size >= maxTracked) penalties.delete(penalties.keys().next().value as string);
        penalties.set(id, { value, at: c.now });
      } else if (op < 33) {
        c.now += rand(3_600_000);
      } else if (op < 34) {
        base = [0.4, 0.6, 0.7][rand(3)];
        e.load(doc(++version, base)); // a new memo: penalties carry over
      } else if (op < 35) {
        // Fill the memo past its bound (it is cleared and refilled).
        for (let i = 0; i < 10_001; i++) e.trustScore(`filler-${step}-${i}`);
      }
      const got = e.trustScore(id);
      if (got !== model(id)) throw new Error(`step ${step}: ${id.slice(0, 10)} trust ${got}, model ${model(id)}`);
    }
    expect(penalties.size).toBe(maxTracked);
  });
});

describe('modes, defaults and on_violation', () => {
  const doc = (mode: string, extra: Doc = {}) => ({
    version: 1,
    mode,
    actions: {
      blocked: { constraints: { resource: { equals: 'x' } }, on_violation: 'block' },
      quarantined: { constraints: { resource: { equals: 'x' } }, on_violation: 'quarantine' },
      warned: { constraints: { resource: { equals: 'x' } }, on_violation: 'warn' },
      approval: { require_approval: true },
    },
    ...extra,
  });
  const ask = (e: PolicyEngine, action: string) => e.evaluate({ action_type: action, agent_id: 'a', resource: 'y' });

  test('enforce', () => {
    const e = new PolicyEngine(doc('enforce'));
    expect(ask(e, 'blocked')).toMatchObject({ decision: 'deny', violation: { action: 'block' } });
    expect(ask(e, 'quarantined')).toMatchObject({ decision: 'deny', quarantine: true });
    expect(ask(e, 'warned')).toMatchObject({ decision: 'allow', violation: { action: 'warn' } });
    expect(ask(e, 'approval').decision).toBe('pending');
    expect(ask(e, 'unknown_action')).toMatchObject({ decision: 'deny', matched_rule: null });
    expect(ask(new PolicyEngine(doc('enforce', { default: 'allow' })), 'unknown_action').decision).toBe('allow');
  });

  for (const mode of ['audit', 'permissive']) {
    test(`${mode}: allow, with what enforce would have done`, () => {
      const e = new PolicyEngine(doc(mode));
      expect(ask(e, 'blocked')).toMatchObject({ decision: 'allow', would_be: 'deny', violation: { action: 'block' } });
      expect(ask(e, 'quarantined')).toMatchObject({ decision: 'allow', would_be: 'deny' });
      expect(ask(e, 'quarantined').quarantine).toBeUndefined();
      expect(ask(e, 'approval')).toMatchObject({ decision: 'allow', would_be: 'pending' });
      expect(ask(e, 'unknown_action')).toMatchObject({ decision: 'allow', would_be: 'deny', mode });
      // no penalties outside enforce mode
      for (let i = 0; i < 5; i++) ask(e, 'blocked');
      expect(e.trustScore('a')).toBe(0.5);
    });
  }

  test('no policy loaded: deny', () => {
    expect(new PolicyEngine().evaluate({ action_type: 'x', agent_id: 'a' })).toMatchObject({ decision: 'deny', reason: 'no policy loaded', policy_version: 0 });
  });
});

describe('loading and versioning', () => {
  const good = { version: 3, mode: 'enforce', actions: { file_read: { constraints: { resource: { glob: '/srv/**' } } } } };

  const invalids: Array<[path: string, doc: unknown]> = [
    ['version', { mode: 'enforce' }],
    ['version', { version: 0, mode: 'enforce' }],
    ['version', { version: 4.5, mode: 'enforce' }],
    ['mode', { version: 4, mode: 'strict' }],
    ['default', { version: 4, mode: 'enforce', default: 'maybe' }],
    ['extra', { version: 4, mode: 'enforce', extra: 1 }],
    ['trust.base', { version: 4, mode: 'enforce', trust: { base: 1.5 } }],
    ['trust.identities.0.adjust', { version: 4, mode: 'enforce', trust: { identities: [{ match: 'a*' }] } }],
    ['trust.identities.0.match', { version: 4, mode: 'enforce', trust: { identities: [{ match: 'a\\', adjust: 0.1 }] } }],
    ['actions.file_read.min_trust', { version: 4, mode: 'enforce', actions: { file_read: { min_trust: 2 } } }],
    ['actions.file_read.on_violation', { version: 4, mode: 'enforce', actions: { file_read: { on_violation: 'explode' } } }],
    ['actions.file_read.allow_identities.1', { version: 4, mode: 'enforce', actions: { file_read: { allow_identities: ['a', 5] } } }],
    ['actions.file_read.deny_identities', { version: 4, mode: 'enforce', actions: { file_read: { deny_identities: ['bad\\'] } } }],
    ['actions.file_read.constraints.resource.glob', { version: 4, mode: 'enforce', actions: { file_read: { constraints: { resource: { glob: 'x\\' } } } } }],
    ['actions.file_read.constraints.resource.regex', { version: 4, mode: 'enforce', actions: { file_read: { constraints: { resource: { regex: '(' } } } } }],
    ['actions.file_read.constraints.resource.range', { version: 4, mode: 'enforce', actions: { file_read: { constraints: { resource: { range: { min: 5, max: 1 } } } } } }],
    ['actions.file_read.constraints.resource.contains', { version: 4, mode: 'enforce', actions: { file_read: { constraints: { resource: { contains: 'x' } } } } }],
    ['actions.file_read.constraints.resource', { version: 4, mode: 'enforce', actions: { file_read: { constraints: { resource: {} } } } }],
    ['actions.file_read.constraints.args..mode', { version: 4, mode: 'enforce', actions: { file_read: { constraints: { 'args..mode': { equals: 1 } } } } }],
    ['', 'version: [unclosed'],
    ['', 'version: 4\nversion: 5\nmode: enforce'],
    ['', '[1, 2]'],
  ];

  for (const [where, doc] of invalids) {
    test(`refuses an invalid document (${where || 'syntax'}), naming the path; the old policy stays`, () => {
      const e = new PolicyEngine(good);
      let err: unknown;
      try {
        e.load(doc as never);
      } catch (x) {
        err = x;
      }
      expect(err).toBeInstanceOf(GuardError);
      expect((err as GuardError).code).toBe('ERR_POLICY_INVALID');
      expect((err as GuardError).path).toBe(where);
      if (where) expect((err as GuardError).message.startsWith(where + ':')).toBe(true);
      expect(e.version).toBe(3);
      expect(e.evaluate({ action_type: 'file_read', agent_id: 'a', resource: '/srv/x' }).decision).toBe('allow');
    });
  }

  test('a version that is not newer is refused (no rollback)', () => {
    const e = new PolicyEngine(good);
    expect(() => e.load({ ...good })).toThrow(/3 is not newer than the active version 3/);
    expect(() => e.load({ ...good, version: 2 })).toThrow(GuardError);
    expect(e.load({ ...good, version: 4, mode: 'audit' })).toBe(4);
    expect(e.mode).toBe('audit');
  });

  test('YAML and JSON text both load; the document is kept frozen', () => {
    const e = new PolicyEngine('version: 1\nmode: enforce\nactions:\n  a: { require_approval: true }\n');
    expect(e.load(JSON.stringify({ version: 2, mode: 'enforce' }))).toBe(2);
    expect(Object.isFrozen(e.document)).toBe(true);
    const example = new PolicyEngine(fs.readFileSync(path.join(repoRoot, 'examples', 'policy.yaml'), 'utf8'));
    expect(example.version).toBe(1);
  });
});

describe('hot reload', () => {
  const once = (e: PolicyEngine, event: string) =>
    new Promise<unknown>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no ${event} event`)), 5000);
      e.once(event, (v) => {
        clearTimeout(t);
        resolve(v);
      });
    });

  test('reloads a rewritten file, keeps the old policy for a half-written or older one', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gk-policy-')), 'policy.yaml');
    // Each step replaces the file in one rename, so the poller sees exactly
    // the content under test (a plain rewrite passes through an empty file).
    let n = 0;
    const replace = (text: string) => {
      const tmp = `${file}.${n++}`;
      fs.writeFileSync(tmp, text);
      fs.renameSync(tmp, file);
    };
    fs.writeFileSync(file, 'version: 1\nmode: enforce\ndefault: deny\n');
    const e = new PolicyEngine(fs.readFileSync(file, 'utf8'));
    const stop = e.watch(file, { intervalMs: 20 });
    await new Promise((r) => setTimeout(r, 100)); // let the poller take its first look
    try {
      // a writer caught half-way: invalid YAML
      let failed = once(e, 'reload_failed');
      replace('version: 2\nmode: enforce\ndefault: al');
      expect(((await failed) as GuardError).code).toBe('ERR_POLICY_INVALID');
      expect(e.version).toBe(1);
      expect(e.evaluate({ action_type: 'x', agent_id: 'a' }).decision).toBe('deny');
      // the complete file
      const reloaded = once(e, 'reloaded');
      replace('version: 2\nmode: enforce\ndefault: allow\n');
      expect(await reloaded).toBe(2);
      expect(e.evaluate({ action_type: 'x', agent_id: 'a' }).decision).toBe('allow');
      // an older version written over it: refused
      failed = once(e, 'reload_failed');
      replace('version: 1\nmode: enforce\ndefault: deny\n');
      expect(((await failed) as Error).message).toMatch(/not newer/);
      expect(e.version).toBe(2);
      // the file disappears: still version 2
      failed = once(e, 'reload_failed');
      fs.rmSync(file);
      await failed;
      expect(e.version).toBe(2);
    } finally {
      stop();
    }
  });

  test('a watched file is not reloaded once its audit log refuses records (audit first); the failures are counted, not thrown', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-policy-audit-'));
    const file = path.join(dir, 'policy.yaml');
    fs.writeFileSync(file, 'version: 1\nmode: enforce\ndefault: deny\n');
    const audit = new AuditLog({ file: path.join(dir, 'audit.jsonl'), key: Buffer.alloc(32, 3) });
    const e = new PolicyEngine(fs.readFileSync(file, 'utf8'), { audit });
    const stop = e.watch(file, { intervalMs: 20 });
    await new Promise((r) => setTimeout(r, 100));
    audit.close();
    try {
      const refused = once(e, 'reload_failed');
      fs.writeFileSync(`${file}.tmp`, 'version: 2\nmode: enforce\ndefault: allow\n');
      fs.renameSync(`${file}.tmp`, file);
      expect(String(await refused)).toMatch(/closed/i);
      expect(e.version).toBe(1); // the reload's record was refused, so the reload was not made
      const failed = once(e, 'reload_failed');
      fs.writeFileSync(`${file}.tmp`, 'version: 3\nmode: enforce\ndefault: al');
      fs.renameSync(`${file}.tmp`, file);
      await failed;
      expect(e.version).toBe(1);
      expect(e.auditFailures).toBe(2); // the two failure records, counted
    } finally {
      stop();
    }
  });
});

describe('PolicyEngine rejects bad input', () => {
  test('constructor, load and watch arguments', () => {
    expect(() => new PolicyEngine(undefined, 5 as never)).toThrow(TypeError);
    expect(() => new PolicyEngine(undefined, { maxTrackedAgents: 0 })).toThrow(RangeError);
    expect(() => new PolicyEngine(42 as never)).toThrow(GuardError);
    expect(() => new PolicyEngine(null as never)).toThrow(GuardError);
    expect(() => PolicyEngine.parse(5 as never)).toThrow(TypeError);
    const e = new PolicyEngine();
    expect(() => e.watch('')).toThrow(TypeError);
    expect(() => e.watch('/tmp/x', { intervalMs: 1 })).toThrow(RangeError);
  });
});
