// The server's native gate_check line reader on randomly mutated lines
// (truncated, spliced, with stray quotes, escapes, surrogates and brackets),
// built with AddressSanitizer and UBSan: it must never read outside a line or
// hit undefined behaviour, and must take a share of the lines that stay valid.
import { runSync } from './child';
import { skipWithout, toolMissing } from './prerequisites';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, test } from 'vitest';
import { repoRoot } from './helpers';

const cxx = process.env.CXX || 'g++';
const haveCxx = !skipWithout(`a C++ compiler (${cxx})`, toolMissing(cxx));
const native = path.join(repoRoot, 'native');
const sources = ['ipc/gate_line.cc', 'jcs/jcs_number.cc', 'hash/form_memo.cc', 'hash/sha256.cc', 'hash/sha256_shani.cc', 'hash/seeded_hash.cc'].map((f) => path.join(native, f));

// Once per suite run: it does not depend on which core the run loads.
test.runIf(haveCxx && process.env.GUARDKERNEL_NATIVE !== '0')('300,000 mutated lines under ASan and UBSan', () => {
  const exe = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gk-gate-line-')), 'stress');
  const flags = ['-std=c++17', '-O1', '-g', '-fsanitize=address,undefined', '-fno-sanitize-recover=undefined', '-Wall', '-Werror', '-I', native];
  const build = runSync(cxx, [...flags, path.join(__dirname, 'native', 'gate_line_stress.cc'), ...sources, '-o', exe], { encoding: 'utf8', timeout: 600_000 });
  expect(build.stderr).toBe('');
  expect(build.status).toBe(0);
  const run = runSync(exe, ['300000', '7'], { encoding: 'utf8', env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1', LD_PRELOAD: '' } });
  expect(run.stderr).toBe('');
  expect(run.status).toBe(0);
  const [iterations, taken] = run.stdout.trim().split(' ').map(Number);
  expect(iterations).toBe(300_000);
  expect(taken).toBeGreaterThan(3000);
}, 120_000);
