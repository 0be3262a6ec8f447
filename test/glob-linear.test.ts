// Globs match in linear time: step counts (not timers) on adversarial 64 KiB
// values stay within a bound linear in the value, and the matcher agrees with
// the old RegExp translation (a simple reference, harmless on short inputs).
import { describe, expect, test } from 'vitest';
import { compileGlob, compileNameGlob, matchSteps, resetMatchSteps } from '../lib/policy/glob';
import { compileNamePattern, namePatternSteps, resetNamePatternSteps } from '../lib/k2k/policy';
import { PolicyEngine } from '../lib/policy/engine';

const KIB64 = 64 * 1024;

/** The RegExp translation glob.ts used before: the reference semantics. */
function referenceGlob(pattern: string, crossSlash: boolean): RegExp {
  const special = /[.+^${}()|[\]\\/-]/g;
  const star = crossSlash ? '[\\s\\S]*' : '[^/]*';
  const one = crossSlash ? '[\\s\\S]' : '[^/]';
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') re += pattern[++i].replace(special, '\\$&').replace(/[*?]/, '\\$&');
    else if (c === '*') {
      if (pattern[i + 1] === '*') {
        re += '[\\s\\S]*';
        while (pattern[i + 1] === '*') i++;
      } else re += star;
    } else if (c === '?') re += one;
    else re += c.replace(special, '\\$&');
  }
  return new RegExp(re + '$');
}

/** The K2K pattern translation used before. */
function referenceK2k(pattern: string): RegExp {
  return new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\/-]/g, '\\$&')).join('[\\s\\S]*')}$`);
}

/** Deterministic PRNG (mulberry32), so a failure names a reproducible case. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TOKENS = ['a', 'b', '/', '.', '-', '*', '**', '?', '\\*', '\\?', '\\\\', '\\a', 'é', '\u{1F600}'];
const CHARS = ['a', 'b', '/', '.', '-', '*', '?', '\\', 'é', '\uD83D', '\uDE00'];

function randomPattern(r: () => number, maxTokens: number, tokens = TOKENS): string {
  const n = 1 + Math.floor(r() * maxTokens);
  let p = '';
  for (let i = 0; i < n; i++) p += tokens[Math.floor(r() * tokens.length)];
  return p;
}

/** A value built to match `pattern` (wildcards filled at random), then maybe mutated. */
function valueFor(pattern: string, r: () => number): string {
  let v = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') v += pattern[++i];
    else if (c === '*') {
      const k = Math.floor(r() * 4);
      for (let j = 0; j < k; j++) v += CHARS[Math.floor(r() * CHARS.length)];
    } else if (c === '?') v += CHARS[Math.floor(r() * CHARS.length)];
    else v += c;
  }
  if (r() < 0.5 && v.length > 0) {
    const at = Math.floor(r() * v.length);
    const op = r();
    if (op < 0.33) v = v.slice(0, at) + v.slice(at + 1);
    else if (op < 0.66) v = v.slice(0, at) + CHARS[Math.floor(r() * CHARS.length)] + v.slice(at);
    else v = v.slice(0, at) + CHARS[Math.floor(r() * CHARS.length)] + v.slice(at + 1);
  }
  return v;
}

function randomValue(r: () => number, maxLen: number): string {
  const n = Math.floor(r() * (maxLen + 1));
  let v = '';
  for (let i = 0; i < n; i++) v += CHARS[Math.floor(r() * CHARS.length)];
  return v;
}

describe('differential: the linear matcher agrees with the RegExp reference', () => {
  for (const [name, compile, crossSlash] of [
    ['path globs', compileGlob, false],
    ['name globs', compileNameGlob, true],
  ] as const) {
    test(`${name}: 6000 random patterns x 12 values`, () => {
      const r = rng(crossSlash ? 7 : 3);
      let matched = 0;
      let total = 0;
      for (let n = 0; n < 6000; n++) {
        // Mostly short patterns (one bit-word); some past 31 tokens (several words, carries between them).
        const pattern = n % 10 === 0 ? randomPattern(r, 90, ['a', 'b', '/', '?', '\\*', 'a', 'b', '-', n % 20 === 0 ? '*' : '**']) : randomPattern(r, 9);
        if (pattern.endsWith('\\') && !pattern.endsWith('\\\\')) continue;
        const g = compile(pattern);
        const ref = referenceGlob(pattern, crossSlash);
        for (let k = 0; k < 12; k++) {
          const v = k < 8 ? valueFor(pattern, r) : randomValue(r, 12);
          const want = ref.test(v);
          const got = g.test(v);
          if (got !== want) expect({ pattern, v, got }).toEqual({ pattern, v, got: want });
          matched += want ? 1 : 0;
          total++;
        }
      }
      // The generator exercises both answers.
      expect(matched).toBeGreaterThan(total / 10);
      expect(total - matched).toBeGreaterThan(total / 10);
    });
  }

  test('K2K name patterns: 6000 random patterns x 12 values', () => {
    const r = rng(11);
    const tokens = ['a', 'b', '*', '**', '?', '\\', '.', '/', 'é'];
    let matched = 0;
    for (let n = 0; n < 6000; n++) {
      const pattern = randomPattern(r, 10, tokens);
      const p = compileNamePattern(pattern);
      const ref = referenceK2k(pattern);
      for (let k = 0; k < 12; k++) {
        // `?` and `\` are literal in K2K patterns: fill only the stars.
        const v = k < 8 ? valueFor(pattern.replace(/[?\\]/g, '.'), r) : randomValue(r, 12);
        const want = ref.test(v);
        if (p.test(v) !== want) expect({ pattern, v, got: p.test(v) }).toEqual({ pattern, v, got: want });
        matched += want ? 1 : 0;
      }
    }
    expect(matched).toBeGreaterThan(6000);
  });
});

/** Words of state the NFA updates per character for a pattern of this length (the documented bound). */
const words = (pattern: string) => Math.ceil((pattern.length + 1) / 32);

/** Steps of one match, and the answer. */
function measure(test: (v: string) => boolean, v: string): { steps: number; ok: boolean } {
  resetMatchSteps();
  const ok = test(v);
  return { steps: matchSteps(), ok };
}

// Pattern, adversarial value, answer as a path glob, answer as a name glob.
// Each value starts with the pattern's literal prefix and ends with its
// literal suffix, so no string compare can end the match early: the middle is
// a long run that almost matches (the worst case of a backtracking engine)
// and fails only at its end, on a `/` a path star cannot cross or on a
// required character (`#`) the value lacks.
const ADVERSARIAL: Array<[pattern: string, value: string, path: boolean, name: boolean]> = [
  ['/var/log/*-*-*.log', '/var/log/' + '-'.repeat(KIB64) + '/.log', false, true],
  ['/var/log/*-*-*#*.log', '/var/log/' + '-'.repeat(KIB64) + '.log', false, false],
  ['*-*-*-*-*-*-*-*#*.log', '-'.repeat(KIB64) + '.log', false, false],
  ['**a**a**a**a**a**c**b', 'a'.repeat(KIB64) + 'b', false, false],
  ['*a*a*a*a*a*b', 'a'.repeat(KIB64) + '/b', false, true],
  ['**/*/**/*/**y*x', 'a/'.repeat(KIB64 / 2) + 'x', false, false],
  ['/srv/**/*.csv', '/srv/' + 'a.csv'.repeat(KIB64 / 4) + '.csv', false, false],
  ['?*?*?*?*?*?*#*!', 'x'.repeat(KIB64) + '!', false, false],
  ['\\**\\**\\**\\*#*x', '*'.repeat(KIB64) + 'x', false, false],
  ['**\\?*?\\?**\\?#*y', '?'.repeat(KIB64) + 'y', false, false],
  ['a*b*c*d*e*f*g*h*i*j*k*l*m*n*o*p*q*r*s*t*u*v*w*x*y*z*A*B*C*D*#*!', 'abcdefghijklmnopqrstuvwxyzABCDEF'.repeat(KIB64 / 32) + '!', false, false],
  ['*a'.repeat(60) + '*#*b', 'a'.repeat(KIB64) + 'b', false, false], // 124 characters: 4 bit-words
  ['**a'.repeat(40) + '*/' + '?'.repeat(20) + '#*b', 'a'.repeat(KIB64) + '/' + 'a'.repeat(KIB64) + 'b', false, false],
  ['*a'.repeat(510) + '*#*b', 'a'.repeat(KIB64) + 'b', false, false], // 1024 characters: 33 bit-words
];

describe('step counts on adversarial 64 KiB values', () => {
  for (const [name, compile] of [
    ['path', compileGlob],
    ['name', compileNameGlob],
  ] as const) {
    for (const [pattern, value, pathAnswer, nameAnswer] of ADVERSARIAL) {
      test(`${name} glob ${pattern.length > 40 ? pattern.slice(0, 40) + '...' : pattern}`, () => {
        const g = compile(pattern);
        const { steps, ok } = measure((v) => g.test(v), value);
        expect(ok).toBe(name === 'path' ? pathAnswer : nameAnswer);
        expect(value.length).toBeGreaterThanOrEqual(KIB64);
        // Linear in the value for a fixed pattern: one pass, a few words per character.
        expect(steps).toBeGreaterThanOrEqual(value.length / 2); // the run was read, not cut short
        expect(steps).toBeLessThanOrEqual((value.length + pattern.length) * words(pattern));
        // And the bound, c x pattern x value with c = 1.
        expect(steps).toBeLessThanOrEqual(pattern.length * value.length);
      });
    }
  }

  test('doubling the value at most doubles the steps (plus the fixed parts)', () => {
    for (const [pattern, value] of ADVERSARIAL) {
      const g = compileGlob(pattern);
      // Half the run, the same ends (so the same literal compares pass).
      const q = Math.floor(value.length / 4);
      const half = measure((v) => g.test(v), value.slice(0, q) + value.slice(value.length - q)).steps;
      const full = measure((v) => g.test(v), value).steps;
      expect({ pattern, ok: full <= 2 * half + 4 * (pattern.length + 2) * words(pattern) }).toEqual({ pattern, ok: true });
    }
  });

  test('a matching 64 KiB value costs the same bound', () => {
    const cases: Array<[string, string]> = [
      ['/var/log/*-*-*.log', '/var/log/' + '-'.repeat(KIB64) + '.log'],
      ['/srv/**/*.csv', '/srv/' + 'a/'.repeat(KIB64 / 2) + 'x.csv'],
      ['*a'.repeat(60) + 'b', 'a'.repeat(KIB64) + 'b'],
    ];
    for (const [pattern, value] of cases) {
      const { steps, ok } = measure((v) => compileGlob(pattern).test(v), value);
      expect(ok).toBe(true);
      expect(steps).toBeLessThanOrEqual((value.length + pattern.length) * words(pattern));
    }
  });

  test('the common shapes are string compares: literal, prefix + **, prefix + *', () => {
    const v = '/srv/data/' + 'a'.repeat(KIB64);
    expect(measure((x) => compileGlob('/srv/data/**').test(x), v)).toEqual({ steps: 10, ok: true });
    expect(measure((x) => compileGlob('/srv/other/**').test(x), v).ok).toBe(false);
    expect(measure((x) => compileGlob('/srv/data/*').test(x), v).steps).toBeLessThanOrEqual(v.length + 10);
    expect(measure((x) => compileNameGlob('agent-*').test(x), 'agent-' + '/'.repeat(KIB64))).toEqual({ steps: 6, ok: true });
  });
});

describe('K2K name patterns: step counts on adversarial 64 KiB names', () => {
  // As above: the ends hold, the middle almost matches.
  const cases: Array<[string, string]> = [
    ['*a*a*a*a*a*#*b', 'a'.repeat(KIB64) + 'b'],
    ['*aaaaaaaab*aaaaaaab*', 'a'.repeat(KIB64)],
    ['x*' + 'ab*'.repeat(80) + '#*c', 'x' + 'ab'.repeat(KIB64 / 2) + 'c'],
    ['*' + 'a'.repeat(200) + 'b*', 'a'.repeat(KIB64)],
  ];
  for (const [pattern, name] of cases) {
    test(pattern.length > 40 ? pattern.slice(0, 40) + '...' : pattern, () => {
      const p = compileNamePattern(pattern);
      resetNamePatternSteps();
      expect(p.test(name)).toBe(false);
      const steps = namePatternSteps();
      const longestPiece = Math.max(...pattern.split('*').map((s) => s.length));
      expect(steps).toBeGreaterThanOrEqual(name.length / 2);
      expect(steps).toBeLessThanOrEqual((name.length + pattern.length) * (longestPiece + 1));
      resetNamePatternSteps();
      const q = Math.floor(name.length / 4);
      p.test(name.slice(0, q) + name.slice(name.length - q));
      const half = namePatternSteps();
      expect(steps).toBeLessThanOrEqual(2 * half + (pattern.length + 1) * (longestPiece + 1));
    });
  }
});

describe('every policy glob runs on the linear matcher', () => {
  const dashes = '-'.repeat(KIB64);
  // Wildcards at both ends of the middle: no literal suffix check can stop
  // the run early, the NFA reads the whole 64 KiB and fails at its end.
  const doc = (n: number) => ({
    version: n,
    mode: 'enforce',
    trust: { base: 0.5, identities: [{ match: 'a*-*-*-*x*', adjust: 0.1 }] },
    actions: {
      act: {
        allow_identities: ['a*-*-*-*x*'],
        deny_identities: ['a*-*-*-*y*'],
        constraints: { resource: { glob: '/var/log/*-*-*x*' } },
      },
    },
  });

  test('constraint, allow, deny and trust globs: each reads the 64 KiB once', () => {
    const e = new PolicyEngine(doc(1));
    resetMatchSteps();
    const d = e.evaluate({ action_type: 'act', agent_id: 'a' + dashes, resource: '/var/log/' + dashes }, { now: 0 });
    expect(d.decision).toBe('deny');
    expect(d.reason).toMatch(/not in the allow list/);
    expect(d.reason).toMatch(/resource does not match/);
    const steps = matchSteps();
    // Four globs (deny, allow, trust, resource), each about one step per character.
    expect(steps).toBeGreaterThan(3 * KIB64);
    expect(steps).toBeLessThanOrEqual(4 * (KIB64 + 64));
  });

  test('the issue\'s case: /var/log/*-*-*.log against 64 KiB of dashes', () => {
    const e = new PolicyEngine({ version: 1, mode: 'enforce', actions: { act: { constraints: { resource: { glob: '/var/log/*-*-*.log' } } } } });
    for (const resource of ['/var/log/' + dashes, '/var/log/' + dashes + '.log', '/var/log/' + dashes + '/.log', '/var/log/' + dashes + 'x.log']) {
      resetMatchSteps();
      const d = e.evaluate({ action_type: 'act', agent_id: 'a', resource }, { now: 0 });
      expect(d.decision).toBe(resource.endsWith('-.log') || resource.endsWith('x.log') ? 'allow' : 'deny');
      expect(matchSteps()).toBeLessThanOrEqual(resource.length + 32);
    }
  });
});
