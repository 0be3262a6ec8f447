// cuda/*.cuh device math must compile for the host too: build it with the
// host C++ compiler and check the results against an independent JS version.
import { runSync } from './child';
import { skipWithout, toolMissing } from './prerequisites';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, test } from 'vitest';
import { mix32, repoRoot } from './helpers';

const cxx = process.env.CXX || 'g++';
const haveCxx = !skipWithout(`a C++ compiler (${cxx})`, toolMissing(cxx));

test.runIf(haveCxx)('cuda/hd.cuh builds with the host compiler and computes the documented values', () => {
  const exe = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gk-hd-')), 'hd_check');
  const build = runSync(cxx, ['-std=c++17', '-Wall', '-Werror', '-I', path.join(repoRoot, 'cuda'), path.join(__dirname, 'native', 'hd_host_check.cc'), '-o', exe], { encoding: 'utf8', timeout: 600_000 });
  expect(build.stderr).toBe('');
  expect(build.status).toBe(0);
  const out = runSync(exe, [], { encoding: 'utf8' }).stdout.trim().split('\n');
  expect(out[0]).toBe(`be 1 2 3 4 ${0x01020304}`);
  expect(out[1]).toBe(`rotl ${3}`);
  for (let i = 0; i < 5; i++) expect(out[2 + i]).toBe(`mix ${i} ${mix32((i ^ 0x9e3779b9) >>> 0)}`);
});
