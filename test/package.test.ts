// The package as a user sees it: require, import, the bin, the install script.
import { runSync } from './child';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { repoRoot } from './helpers';

function run(args: string[], env: Record<string, string> = {}) {
  return runSync(process.execPath, args, { cwd: repoRoot, env: { ...process.env, ...env }, encoding: 'utf8' });
}

describe('package entry points', () => {
  test('require and import give the same API', () => {
    const cjs = run(['-e', "const g=require('guardkernel');console.log(Object.keys(g).filter(k=>k!=='default').sort().join(','))"]);
    const esm = run(['--input-type=module', '-e', "import * as g from 'guardkernel';console.log(Object.keys(g).filter(k=>k!=='default').sort().join(','))"]);
    expect(cjs.status).toBe(0);
    expect(esm.status).toBe(0);
    expect(esm.stdout).toBe(cjs.stdout);
    for (const name of ['sha256', 'sha256Hex', 'hmacSha256', 'HmacKey', 'canonicalize', 'carHash', 'backends', 'GuardError']) {
      expect(cjs.stdout.split(',').map((s) => s.trim())).toContain(name);
    }
  });

  test('ESM and CJS share one module instance', () => {
    const r = run([
      '--input-type=module',
      '-e',
      "import { createRequire } from 'node:module'; import { HmacKey } from 'guardkernel'; const req = createRequire(process.cwd() + '/x.js'); console.log(req('guardkernel').HmacKey === HmacKey)",
    ]);
    expect(r.stdout.trim()).toBe('true');
  });

  // The constructor's blocking Argon2id runs CommonJS on a worker thread,
  // which must not inherit --input-type=module from an ESM parent.
  test('a MemoryEncryption from a password, built in an ES module evaluated from the command line', () => {
    const r = run([
      '--input-type=module',
      '-e',
      "import { MemoryEncryption } from 'guardkernel'; const m = new MemoryEncryption({ password: 'pw', kdf: { name: 'argon2id', memoryCost: 1024, timeCost: 1, parallelism: 1 } }); console.log(m.settings().kdf.name, m.decrypt(m.encrypt(Buffer.from('ok'))).toString())",
    ]);
    expect(r.stdout.trim(), r.stderr).toBe('argon2id ok');
  });

  test('type declarations are emitted', () => {
    const fs = require('node:fs') as typeof import('node:fs');
    const dts = fs.readFileSync(path.join(repoRoot, 'dist', 'index.d.ts'), 'utf8');
    expect(dts).toMatch(/carHash/);
    expect(fs.existsSync(path.join(repoRoot, 'dist', 'index.d.mts'))).toBe(true);
  });
});

describe('guardkernel bin', () => {
  const cli = path.join(repoRoot, 'dist', 'cli', 'main.js');

  test('doctor prints the backends, reasons and devices', () => {
    const r = run([cli, 'doctor']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/core backend: (native|js)/);
    expect(r.stdout).toMatch(/gpu backend: +(cuda|cpu)/);
    expect(r.stdout).toMatch(/devices found: \d+/);
    const forced = run([cli, 'doctor'], { GUARDKERNEL_NATIVE: '0', GUARDKERNEL_GPU: '0' });
    expect(forced.stdout).toMatch(/core backend: js/);
    expect(forced.stdout).toMatch(/fallback reason: disabled by GUARDKERNEL_NATIVE=0/);
    expect(forced.stdout).toMatch(/fallback reason: disabled by GUARDKERNEL_GPU=0/);
  });

  test('doctor --json is the backends() object', () => {
    const r = run([cli, 'doctor', '--json'], { GUARDKERNEL_GPU: '0' });
    expect(r.status).toBe(0);
    const b = JSON.parse(r.stdout);
    expect(b.gpu.kind).toBe('cpu');
    expect(['native', 'js']).toContain(b.core.kind);
  });

  test('version, help, and bad input', () => {
    const pkg = require(path.join(repoRoot, 'package.json')) as { version: string };
    expect(run([cli, 'version']).stdout.trim()).toBe(pkg.version);
    expect(run([cli, '--help']).stdout).toMatch(/Usage: guardkernel/);
    const bad = run([cli, 'frobnicate']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/unknown command "frobnicate"/);
    const badFlag = run([cli, 'doctor', '--nope']);
    expect(badFlag.status).toBe(2);
    expect(badFlag.stderr).toMatch(/unknown option --nope/);
  });
});

describe('install script for the CUDA addon', () => {
  const script = path.join(repoRoot, 'scripts', 'build-cuda.js');

  test('without nvcc it prints one clear line and succeeds', () => {
    const r = run([script], { GUARDKERNEL_NVCC: '/nonexistent/nvcc' });
    expect(r.status).toBe(0);
    const lines = (r.stdout + r.stderr).trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/nvcc not found; skipping the CUDA addon/);
  });

  test('with --require (CI) a missing nvcc is an error', () => {
    const r = run([script, '--require'], { GUARDKERNEL_NVCC: '/nonexistent/nvcc' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/nvcc not found/);
  });

  test('GUARDKERNEL_GPU=0 skips the build', () => {
    const r = run([script], { GUARDKERNEL_GPU: '0' });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/skipping the CUDA addon build/);
  });
});

describe('README', () => {
  // Every runnable block is run by test/docs-snippets.test.ts; this checks
  // that the two quick starts print what their comments say.
  test.each([
    ['CommonJS', 'js runnable', (code: string) => run(['-e', code])],
    ['ES module', 'mjs runnable', (code: string) => run(['--input-type=module', '-e', code])],
  ] as const)('the %s quick start runs as pasted and prints what it says', (_name, fence, exec) => {
    const fs = require('node:fs') as typeof import('node:fs');
    const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
    const quick = readme.slice(readme.indexOf('## Quick start'));
    const code = new RegExp('```' + fence + '\n([\\s\\S]*?)```').exec(quick)![1];
    const r = exec(code);
    expect(r.stderr.replace(/.*GUARDKERNEL_FALLBACK.*\n?/g, '')).toBe('');
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(lines[1]).toBe('allow');
    expect(lines[2]).toMatch(/^deny policy rule file_read: resource does not match/);
    expect(lines[3]).toBe('pending');
    expect(['native', 'js']).toContain(lines[4]);
  });
});
