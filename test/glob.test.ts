// The one glob dialect: * vs **, ?, dots, escapes, anchoring.
import { describe, expect, test } from 'vitest';
import { compileGlob } from '../lib/index';
import { compileNameGlob } from '../lib/policy/glob';

const cases: Array<[pattern: string, matches: string[], rejects: string[]]> = [
  ['agent-prod-*', ['agent-prod-1', 'agent-prod-', 'agent-prod-a.b'], ['agent-prod', 'xagent-prod-1', 'agent-staging-1', 'agent-prod-1/x']],
  ['/srv/data/*', ['/srv/data/a.txt', '/srv/data/.hidden'], ['/srv/data/sub/a.txt', '/srv/data', '/srv/datax/a']],
  ['/srv/data/**', ['/srv/data/a.txt', '/srv/data/sub/deep/a.txt', '/srv/data/'], ['/srv/data', '/srv/dat/a', '/srv/database/x']],
  ['/srv/**/*.csv', ['/srv/a/b.csv', '/srv/a/b/c.csv'], ['/srv/a/b.csvx', '/srv/a/bcsv', '/srv/b.json']],
  ['file.txt', ['file.txt'], ['fileXtxt', 'file.txt2', 'afile.txt']],
  ['a?c', ['abc', 'a.c'], ['ac', 'abbc', 'a/c']],
  ['\\*literal', ['*literal'], ['xliteral', 'literal']],
  ['a\\?b', ['a?b'], ['axb']],
  ['dir\\\\name', ['dir\\name'], ['dirname', 'dir/name']],
  ['(x)+[y]{2}^$|', ['(x)+[y]{2}^$|'], ['xxyy', '(x)[y]']],
  ['*', ['anything', '', 'a.b'], ['a/b']],
  ['**', ['a/b/c', ''], []],
  ['é*', ['éa'], ['e\u0301a', 'Éa']],
];

describe('compileGlob', () => {
  for (const [pattern, yes, no] of cases) {
    test(pattern, () => {
      const g = compileGlob(pattern);
      for (const v of yes) expect({ v, ok: g.test(v) }).toEqual({ v, ok: true });
      for (const v of no) expect({ v, ok: g.test(v) }).toEqual({ v, ok: false });
    });
  }

  test('rejects bad patterns', () => {
    for (const p of ['', 'abc\\', 5, undefined, 'x'.repeat(1025)]) expect(() => compileGlob(p as never)).toThrow(RangeError);
  });
});

// Names (identities, action types) read the same syntax; their wildcards cross `/`.
const nameCases: Array<[pattern: string, matches: string[], rejects: string[]]> = [
  ['agent-evil*', ['agent-evil', 'agent-evil/2', 'agent-evil/a/b', 'agent-evil\n'], ['agent-evi', 'xagent-evil']],
  ['agent-?', ['agent-/', 'agent-a'], ['agent-', 'agent-ab']],
  ['a**b', ['ab', 'a/b', 'a//b'], ['a/', 'b']],
  ['*/x', ['/x', 'a/b/x'], ['x', 'a/b/y']],
  ['\\*lit', ['*lit'], ['/lit', 'xlit']],
  ['plain/name', ['plain/name'], ['plain/namex']],
];

describe('compileNameGlob', () => {
  for (const [pattern, yes, no] of nameCases) {
    test(pattern, () => {
      const g = compileNameGlob(pattern);
      for (const v of yes) expect({ v, ok: g.test(v) }).toEqual({ v, ok: true });
      for (const v of no) expect({ v, ok: g.test(v) }).toEqual({ v, ok: false });
    });
  }

  test('rejects bad patterns', () => {
    for (const p of ['', 'abc\\', 5, undefined, 'x'.repeat(1025)]) expect(() => compileNameGlob(p as never)).toThrow(RangeError);
  });
});
