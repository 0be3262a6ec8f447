// Rules the test files themselves follow (issue: a native hang froze the
// whole suite): every child process goes through test/child.ts, which gives
// it a time limit and kills it by PID.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { runSync } from './child';

function testFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...testFiles(p));
    else if (/\.(ts|js|mjs)$/.test(e.name)) out.push(p);
  }
  return out;
}

describe('test hygiene', () => {
  test('no test file starts a child process except through test/child.ts', () => {
    const offenders = testFiles(__dirname)
      .filter((f) => path.basename(f) !== 'child.ts')
      .filter((f) => /from ['"](node:)?child_process['"]|require\(['"](node:)?child_process['"]\)/.test(fs.readFileSync(f, 'utf8')))
      .map((f) => path.relative(__dirname, f));
    expect(offenders).toEqual([]);
  });

  test('a child that outlives its limit is killed and the call throws, naming it', () => {
    expect(() => runSync(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { timeout: 300 })).toThrow(/killed after 300 ms \(pid \d+\)/);
  });
});
