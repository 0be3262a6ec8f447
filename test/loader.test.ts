// lib/native/loader.ts: candidates in order, kill switches, fallbacks that never throw.
import { runSync } from './child';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { backends, gpuDevices, gpuSelfTest, GuardError, sha256Hex } from '../lib/index';
import { CORE_ABI_VERSION } from '../lib/native/addon-types';
import { loadCore, loadGpu } from '../lib/native/loader';
import { repoRoot } from './helpers';

function tempRoot(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'gk-loader-'));
}

function runNode(code: string, env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const r = runSync(process.execPath, ['-e', code], {
    cwd: repoRoot,
    env: { ...process.env, GUARDKERNEL_NATIVE: '', GUARDKERNEL_GPU: '', ...env },
    encoding: 'utf8',
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('core addon loading', () => {
  test('backends() reports the core kind this run expects', () => {
    const b = backends();
    if (process.env.GUARDKERNEL_NATIVE === '0') {
      expect(b.core).toEqual({ kind: 'js', reason: 'disabled by GUARDKERNEL_NATIVE=0' });
    } else if (process.env.GUARDKERNEL_EXPECT_NATIVE === '1') {
      // CI built the addon: silently running the fallback twice would hide a broken build.
      expect(b.core.kind).toBe('native');
      expect(b.core.path).toMatch(/\.node$/); // build/Release/guardkernel.node or a prebuildify name
      expect(['sha-ni', 'portable']).toContain(b.core.sha256);
      expect(b.core.reason).toBeUndefined();
    }
    expect(['cuda', 'cpu']).toContain(b.gpu.kind);
    expect(Array.isArray(b.gpu.devices)).toBe(true);
    // The public report carries no addon object.
    expect(JSON.parse(JSON.stringify(b))).toEqual(b);
  });

  test('a missing addon falls back to JS with the reason, without throwing', () => {
    const r = loadCore({ root: tempRoot(), env: {} });
    expect(r.kind).toBe('js');
    expect(r.addon).toBeNull();
    expect(r.reason).toMatch(/core addon failed to load: No native build was found/);
    expect(r.reason).toMatch(/npm run build:native/);
  });

  test('a corrupt addon file falls back to JS with the loader error', () => {
    const root = tempRoot();
    fs.mkdirSync(path.join(root, 'build', 'Release'), { recursive: true });
    fs.writeFileSync(path.join(root, 'build', 'Release', 'guardkernel.node'), 'not an ELF file');
    const r = loadCore({ root, env: {} });
    expect(r.kind).toBe('js');
    expect(r.reason).toMatch(/core addon failed to load/);
  });

  test('GUARDKERNEL_NATIVE=0 is obeyed', () => {
    expect(loadCore({ env: { GUARDKERNEL_NATIVE: '0' } })).toEqual({
      kind: 'js',
      addon: null,
      reason: 'disabled by GUARDKERNEL_NATIVE=0',
    });
  });

  test.runIf(fs.existsSync(path.join(repoRoot, 'build', 'Release', 'guardkernel.node')))('the built addon loads when allowed', () => {
    const r = loadCore({ env: {} });
    expect(r.kind).toBe('native');
    expect(r.addon?.abiVersion).toBe(CORE_ABI_VERSION);
  });
});

describe('CUDA addon loading', () => {
  test('GUARDKERNEL_GPU=0 is obeyed', () => {
    expect(loadGpu({ env: { GUARDKERNEL_GPU: '0' } })).toEqual({
      kind: 'cpu',
      addon: null,
      devices: [],
      reason: 'disabled by GUARDKERNEL_GPU=0',
    });
  });

  test('a missing CUDA addon means the CPU backend, naming the paths tried', () => {
    const root = tempRoot();
    const r = loadGpu({ root, env: {} });
    expect(r.kind).toBe('cpu');
    expect(r.devices).toEqual([]);
    expect(r.reason).toContain(path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'guardkernel_cuda.node'));
    expect(r.reason).toContain(path.join(root, 'build-cuda', 'Release', 'guardkernel_cuda.node'));
  });

  test('a corrupt CUDA addon means the CPU backend', () => {
    const root = tempRoot();
    const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'guardkernel_cuda.node'), 'garbage');
    const r = loadGpu({ root, env: {} });
    expect(r.kind).toBe('cpu');
    expect(r.reason).toMatch(/CUDA addon not loaded/);
  });

  test.runIf(fs.existsSync(path.join(repoRoot, 'build-cuda', 'Release', 'guardkernel_cuda.node')))(
    'the built CUDA addon loads even without a driver, and no device means CPU',
    () => {
      const r = loadGpu({ env: {} });
      if (r.kind === 'cpu') {
        expect(r.addon).not.toBeNull();
        expect(r.reason).toMatch(/no CUDA device/);
        expect(r.devices).toEqual([]);
        expect(r.addon!.deviceCount().count).toBe(0);
        expect(r.addon!.runtimeVersion()).toBeGreaterThanOrEqual(12000);
      } else {
        expect(r.devices.length).toBeGreaterThan(0);
      }
    },
  );

  test.skipIf(backends().gpu.kind === 'cuda')('without CUDA, GPU-only calls are ERR_GPU_UNAVAILABLE (skipped where a GPU is in use)', () => {
    expect(gpuDevices()).toEqual([]);
    let err: unknown;
    try {
      gpuSelfTest();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GuardError);
    expect((err as GuardError).code).toBe('ERR_GPU_UNAVAILABLE');
  });
});

describe('the environment switches in a fresh process', () => {
  const probe = "const g=require('./dist/index.js');console.log(JSON.stringify(g.backends()));";

  test('GUARDKERNEL_NATIVE=0 and GUARDKERNEL_GPU=0', () => {
    const r = runNode(probe, { GUARDKERNEL_NATIVE: '0', GUARDKERNEL_GPU: '0' });
    expect(r.status).toBe(0);
    const b = JSON.parse(r.stdout);
    expect(b.core).toEqual({ kind: 'js', reason: 'disabled by GUARDKERNEL_NATIVE=0' });
    expect(b.gpu).toEqual({ kind: 'cpu', devices: [], reason: 'disabled by GUARDKERNEL_GPU=0' });
    // A requested fallback is not worth a warning.
    expect(r.stderr).not.toMatch(/GUARDKERNEL_FALLBACK|fallback/);
  });

  test('the fallback computes the same hash as the native core', () => {
    const code = "const g=require('./dist/index.js');console.log(g.carHash({action_type:'a',agent_id:'b',args:{x:[1,2.5,'é']}}))";
    const js = runNode(code, { GUARDKERNEL_NATIVE: '0' });
    const def = runNode(code);
    expect(js.status).toBe(0);
    expect(js.stdout).toBe(def.stdout);
    expect(js.stdout.trim()).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  test('importing never throws, even with a broken addon location', () => {
    // Point node-gyp-build at nothing by loading the library from a copy of dist/ in an empty package.
    const root = tempRoot();
    fs.cpSync(path.join(repoRoot, 'dist'), path.join(root, 'dist'), { recursive: true });
    fs.copyFileSync(path.join(repoRoot, 'package.json'), path.join(root, 'package.json'));
    fs.symlinkSync(path.join(repoRoot, 'node_modules'), path.join(root, 'node_modules'), 'junction');
    const r = runSync(process.execPath, ['-e', "const g=require('./dist/index.js');console.log(JSON.stringify(g.backends().core));console.log(g.sha256Hex('abc'))"], {
      cwd: root,
      env: { ...process.env, GUARDKERNEL_NATIVE: '' },
      encoding: 'utf8',
    });
    expect(r.status).toBe(0);
    const [coreLine, hashLine] = r.stdout.trim().split('\n');
    expect(JSON.parse(coreLine).kind).toBe('js');
    expect(hashLine).toBe(sha256Hex('abc'));
    // An unrequested fallback is announced once.
    expect(r.stderr).toMatch(/GUARDKERNEL_FALLBACK|using the TypeScript fallback/);
  });
});
