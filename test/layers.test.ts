// The layer order of lib/ (written once, in scripts/check-layers.js) holds:
// no file imports a higher layer or a peer folder, and no import cycle exists.
// The checker itself is tried on small trees that break each rule.
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { check } = require('../scripts/check-layers.js') as {
  check: (libDir: string, layers?: string[][]) => string[];
};

const LAYERS = [['index.ts'], ['top'], ['mid', 'side'], ['low'], ['errors.ts']];

function tree(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-layers-'));
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

describe('lib/ layers', () => {
  it('lib/ follows the declared order and has no cycles', () => {
    expect(check(path.join(__dirname, '..', 'lib'))).toEqual([]);
  });

  it('accepts a tree that imports only downward', () => {
    const dir = tree({
      'index.ts': "export * from './top/a';",
      'top/a.ts': "import { b } from '../mid/b';\nimport { c } from '../low';\nexport const a = b + c;",
      'mid/b.ts': "import { E } from '../errors';\nexport const b = E;",
      'low/index.ts': 'export const c = 1;',
      'errors.ts': 'export const E = 1;',
    });
    expect(check(dir, LAYERS)).toEqual([]);
  });

  it('rejects an import from a lower layer to a higher one (also type-only and dynamic)', () => {
    const dir = tree({
      'top/a.ts': 'export const a = 1;',
      'low/x.ts': "import type { a } from '../top/a';\nexport type X = typeof a;",
      'low/y.ts': "export const y = () => import('../top/a');",
    });
    const problems = check(dir, LAYERS);
    expect(problems).toContain('low/x.ts imports top/a.ts: "low" is below "top"');
    expect(problems).toContain('low/y.ts imports top/a.ts: "low" is below "top"');
  });

  it('rejects imports between peers of one layer', () => {
    const dir = tree({ 'mid/b.ts': "import { s } from '../side/s';\nexport const b = s;", 'side/s.ts': 'export const s = 1;' });
    expect(check(dir, LAYERS)).toEqual(['mid/b.ts imports side/s.ts: "mid" and "side" are peers on one layer']);
  });

  it('rejects a cycle inside one folder and names its files', () => {
    const dir = tree({
      'low/a.ts': "import { b } from './b';\nexport const a = () => b;",
      'low/b.ts': "import { c } from './c';\nexport const b = () => c;",
      'low/c.ts': "import type { a } from './a';\nexport const c = 1 as unknown as typeof a;",
    });
    expect(check(dir, LAYERS)).toEqual(['cycle: low/a.ts -> low/b.ts -> low/c.ts -> low/a.ts']);
  });

  it('rejects a folder on no layer and an import that resolves nowhere', () => {
    const dir = tree({ 'stray/z.ts': "import { q } from './missing';\nexport const z = q;" });
    const problems = check(dir, LAYERS);
    expect(problems).toContain('stray/z.ts: "stray" is on no layer (add it to LAYERS in scripts/check-layers.js)');
    expect(problems).toContain('stray/z.ts: import "./missing" does not resolve to a file');
  });
});
