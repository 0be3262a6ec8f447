// The package as a consumer installs it: `npm pack`, `prebuildify --napi
// --strip` in the unpacked package (which also proves the tarball holds what
// compiling needs), packed again, then `npm ci --offline` of that tarball into
// an empty project (see test/tarball-install.ts for how offline works):
//  1. with the machine's compilers: one line per native build step; the quick
//     start runs as CommonJS and as ESM; doctor's advice; a failing optional
//     CUDA build leaves the install green;
//  2. where no compiler can be reached: every install script runs, the core
//     loads from prebuilds/ without compiling; forcing a compile fails.
// The install's compile-from-source step runs in every clean clone's
// `npm ci` (CI's first step); GUARDKERNEL_TEST_FROM_SOURCE=1 also installs a
// tarball without prebuilds here (one more compile, minutes).
// Slow (minutes: one compile, two or three offline installs): it runs once
// per `npm test`, in the native pass (skipped with GUARDKERNEL_NATIVE=0).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runSync } from './child';
import { repoRoot } from './helpers';
import { emptyProject, noCompilerEnv, npm, npmEnv, pack, re2Mirror, tarList, untar } from './tarball-install';

const platform = `${process.platform}-${process.arch}`;
const skip = process.env.GUARDKERNEL_NATIVE === '0' || process.platform === 'win32';
const SLOW = 20 * 60_000;

// The quick start, pasted into a consumer's project: a gate over the example
// policy, one allowed and one denied action, and the backend in use.
const CAR = `{
  action_type: 'file_read',
  agent_id: 'agent-prod-42',
  resource: '/srv/data/reports/q3.csv',
  args: { mode: 'r', limit: 4096 },
}`;
const QUICK_START_CJS = `const fs = require('node:fs');
const { Gate, carHash, backends } = require('guardkernel');

const policy = fs.readFileSync(require.resolve('guardkernel/examples/policy.yaml'), 'utf8');
const gate = new Gate({ policy });
const car = ${CAR};
console.log(carHash(car));
console.log(gate.check({ car }).decision);
const denied = gate.check({ car: { ...car, resource: '/etc/passwd' } });
console.log(denied.decision, '-', denied.reason);
console.log(JSON.stringify(backends().core));
`;
const QUICK_START_ESM = `import fs from 'node:fs';
import { Gate, carHash, backends } from 'guardkernel';

const policy = fs.readFileSync(new URL(import.meta.resolve('guardkernel/examples/policy.yaml')), 'utf8');
const gate = new Gate({ policy });
const car = ${CAR};
console.log(carHash(car));
console.log(gate.check({ car }).decision);
const denied = gate.check({ car: { ...car, resource: '/etc/passwd' } });
console.log(denied.decision, '-', denied.reason);
console.log(JSON.stringify(backends().core));
`;

interface Core {
  kind: string;
  path?: string;
  reason?: string;
}

function quickStart(project: string, file: string, source: string, env: NodeJS.ProcessEnv = npmEnv()): Core {
  fs.writeFileSync(path.join(project, file), source);
  const r = runSync(process.execPath, [file], { cwd: project, env, encoding: 'utf8' });
  expect(r.status, `${file}:\n${r.stdout}${r.stderr}`).toBe(0);
  const lines = r.stdout.trim().split('\n');
  expect(lines[0]).toMatch(/^sha256:[0-9a-f]{64}$/);
  expect(lines[1]).toBe('allow');
  expect(lines[2]).toMatch(/^deny - .*resource does not match/);
  return JSON.parse(lines[3]) as Core;
}

function installLines(output: string): string[] {
  return output.split('\n').filter((l) => l.startsWith('guardkernel: '));
}

describe.skipIf(skip)('installing the packed tarball into an empty project, offline', () => {
  let work: string;
  let sourceTarball: string; // no prebuilds/: installing it compiles
  let prebuiltTarball: string; // with prebuildify's output
  let addon: string; // its file name in prebuilds/<platform>/
  let re2Env: Record<string, string>;
  const started = Date.now();

  beforeAll(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-tarball-'));
    // Pack the repository, then repack it without any prebuilds/ it may have.
    const packed = pack(repoRoot, path.join(work, 'packed'));
    const stage = untar(packed, path.join(work, 'stage'));
    fs.rmSync(path.join(stage, 'prebuilds'), { recursive: true, force: true });
    sourceTarball = pack(stage, path.join(work, 'source'));
    re2Env = re2Mirror(path.join(work, 're2-mirror'));

    // prebuildify in the unpacked package, with this repository's node_modules (node-addon-api, node-gyp)
    fs.symlinkSync(path.join(repoRoot, 'node_modules'), path.join(stage, 'node_modules'), 'dir');
    const prebuildify = path.join(repoRoot, 'node_modules', 'prebuildify', 'bin.js');
    const t0 = Date.now();
    const pb = runSync(process.execPath, [prebuildify, '--napi', '--strip'], { cwd: stage, env: npmEnv({ JOBS: 'max' }), encoding: 'utf8', timeout: SLOW });
    if (pb.status !== 0) throw new Error(`prebuildify failed:\n${`${pb.stdout}${pb.stderr}`.slice(-4000)}`);
    console.log(`package-install: prebuildify --napi --strip: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    fs.rmSync(path.join(stage, 'node_modules'));
    fs.rmSync(path.join(stage, 'build'), { recursive: true, force: true });
    const built = fs.readdirSync(path.join(stage, 'prebuilds', platform));
    if (built.length !== 1) throw new Error(`prebuildify wrote ${JSON.stringify(built)}`);
    addon = built[0];
    prebuiltTarball = pack(stage, path.join(work, 'prebuilt'));
  }, SLOW);

  afterAll(() => {
    console.log(`package-install: ${((Date.now() - started) / 1000).toFixed(1)} s in all`);
    if (work && !process.env.GUARDKERNEL_KEEP_TARBALL_TEST) fs.rmSync(work, { recursive: true, force: true });
  });

  test('the tarballs ship the install script and the sources to compile; the prebuilt one prebuilds/, no build output', () => {
    const source = tarList(sourceTarball);
    for (const f of ['package/scripts/install.js', 'package/scripts/build-cuda.js', 'package/binding.gyp', 'package/CMakeLists.txt', 'package/dist/index.js', 'package/dist/index.mjs']) {
      expect(source).toContain(f);
    }
    expect(source.filter((f) => /^package\/(build|build-cuda|prebuilds)\//.test(f))).toEqual([]);
    expect(addon).toMatch(/^guardkernel(\.napi)?\.node$/);
    const prebuilt = tarList(prebuiltTarball);
    expect(prebuilt.filter((f) => /^package\/(build|build-cuda|prebuilds)\//.test(f))).toEqual([`package/prebuilds/${platform}/${addon}`]);
  });

  test(
    'installed with the compilers at hand: one line per step; the quick start runs as CommonJS and as ESM; doctor advises npm rebuild; a failing CUDA build does not fail it',
    () => {
      const project = path.join(work, 'prebuilt');
      emptyProject(project, prebuiltTarball);
      const t0 = Date.now();
      const r = npm(['ci', '--offline', '--foreground-scripts'], project, npmEnv({ ...re2Env, GUARDKERNEL_SKIP_CUDA: '1' }));
      console.log(`package-install: npm ci --offline: ${((Date.now() - t0) / 1000).toFixed(1)} s\n${installLines(r.output).join('\n')}`);
      expect(r.status, r.output.slice(-6000)).toBe(0);
      expect(installLines(r.output)).toEqual([
        expect.stringMatching(new RegExp(`^guardkernel: core addon: prebuilt for ${platform} found \\(prebuilds/${platform}/${addon.replace(/\./g, '\\.')}, \\d+\\.\\d s\\)$`)),
        'guardkernel: CUDA addon: skipped (GUARDKERNEL_SKIP_CUDA=1)',
      ]);

      const pkgDir = path.join(project, 'node_modules', 'guardkernel');
      const cjs = quickStart(project, 'quick-start.cjs', QUICK_START_CJS);
      const esm = quickStart(project, 'quick-start.mjs', QUICK_START_ESM);
      expect(cjs.kind).toBe('native');
      expect(cjs.path).toBe(path.join(pkgDir, 'prebuilds', platform, addon));
      expect(esm).toEqual(cjs);

      // doctor, run the way a consumer runs it, gives a consumer's advice
      const doctor = runSync(process.execPath, [path.join(project, 'node_modules', '.bin', 'guardkernel'), 'doctor'], {
        cwd: project,
        env: npmEnv(),
        encoding: 'utf8',
      });
      expect(doctor.status, doctor.stderr).toBe(0);
      expect(doctor.stdout).toMatch(/core backend: native/);
      expect(doctor.stdout).toMatch(/to fix:\n {2}gpu: .*npm rebuild guardkernel --foreground-scripts/);
      expect(doctor.stdout).not.toMatch(/npm run build/);

      // An optional CUDA build that fails (a "compiler" that always fails)
      // says so in one line and does not fail the install; the core is kept.
      const rebuild = npm(['rebuild', 'guardkernel', '--foreground-scripts'], project, npmEnv({ GUARDKERNEL_NVCC: '/bin/false' }));
      expect(rebuild.status, rebuild.output.slice(-4000)).toBe(0);
      const again = installLines(rebuild.output);
      console.log(`package-install: rebuild with GUARDKERNEL_NVCC=/bin/false:\n${again.join('\n')}`);
      expect(again[0]).toMatch(/^guardkernel: core addon: prebuilt for .* found/);
      expect(again[1]).toMatch(
        /^guardkernel: CUDA addon: (nvcc .* found at \/bin\/false, building with cmake-js .*… failed after \d+\.\d s \(log: .*build-cuda\/build\.log\); installed without it: GPU features use the CPU backend|skipped \(.*\))$/,
      );
      expect(again).toHaveLength(2);
    },
    SLOW,
  );

  test(
    'installed where no compiler can be reached: the core loads from prebuilds/ without compiling',
    () => {
      const project = path.join(work, 'prebuilt-no-compiler');
      emptyProject(project, prebuiltTarball);
      const noCc = noCompilerEnv(path.join(work, 'no-compiler-bin'), re2Env);
      // The environment really cannot compile:
      const probe = runSync('sh', ['-c', 'command -v cc || command -v gcc || command -v g++ || command -v c++ || command -v make || command -v clang'], {
        env: noCc,
        encoding: 'utf8',
      });
      expect(probe.status, `found a compiler: ${probe.stdout}`).not.toBe(0);

      // Every install script of the tree runs here (guardkernel's; re2's from its mirror).
      const t0 = Date.now();
      const r = npm(['ci', '--offline', '--foreground-scripts'], project, noCc);
      console.log(`package-install: npm ci --offline with no compiler: ${((Date.now() - t0) / 1000).toFixed(1)} s\n${installLines(r.output).join('\n')}`);
      expect(r.status, r.output.slice(-6000)).toBe(0);
      expect(installLines(r.output)).toEqual([
        expect.stringMatching(new RegExp(`^guardkernel: core addon: prebuilt for ${platform} found \\(prebuilds/${platform}/${addon.replace(/\./g, '\\.')}, \\d+\\.\\d s\\)$`)),
        // no nvcc, or (where it sits in /usr/local/cuda/bin) no cmake
        expect.stringMatching(/^guardkernel: CUDA addon: skipped \((no nvcc on PATH|nvcc found .* but no cmake on PATH).*\)$/),
      ]);

      const pkgDir = path.join(project, 'node_modules', 'guardkernel');
      expect(fs.existsSync(path.join(pkgDir, 'build')), 'nothing was compiled into build/').toBe(false);
      const cjs = quickStart(project, 'quick-start.cjs', QUICK_START_CJS, noCc);
      const esm = quickStart(project, 'quick-start.mjs', QUICK_START_ESM, noCc);
      expect(cjs.kind).toBe('native');
      expect(cjs.path).toBe(path.join(pkgDir, 'prebuilds', platform, addon));
      expect(esm).toEqual(cjs);

      // Control: asked to compile in the same environment, the install fails,
      // loudly, with the core's line and the compiler's log.
      const forced = npm(['rebuild', 'guardkernel', '--foreground-scripts'], project, { ...noCc, npm_config_build_from_source: 'true' });
      expect(forced.status).not.toBe(0);
      expect(forced.output).toMatch(/guardkernel: core addon: no prebuilt for .*compiling from source \(node-gyp\)… FAILED after \d+\.\d s/);
      expect(forced.output).toMatch(/guardkernel: the core addon could not be built/);
    },
    SLOW,
  );

  test.runIf(process.env.GUARDKERNEL_TEST_FROM_SOURCE === '1')(
    'a tarball without prebuilds: the install compiles the core and says so; the quick start runs',
    () => {
      const project = path.join(work, 'from-source');
      emptyProject(project, sourceTarball);
      const t0 = Date.now();
      const r = npm(['ci', '--offline', '--foreground-scripts'], project, npmEnv({ ...re2Env, GUARDKERNEL_SKIP_CUDA: '1' }));
      console.log(`package-install: from-source npm ci --offline: ${((Date.now() - t0) / 1000).toFixed(1)} s\n${installLines(r.output).join('\n')}`);
      expect(r.status, r.output.slice(-6000)).toBe(0);
      expect(installLines(r.output)).toEqual([
        expect.stringMatching(new RegExp(`^guardkernel: core addon: no prebuilt for ${platform}, compiling from source \\(node-gyp\\)… done in \\d+\\.\\d s$`)),
        'guardkernel: CUDA addon: skipped (GUARDKERNEL_SKIP_CUDA=1)',
      ]);
      const pkgDir = path.join(project, 'node_modules', 'guardkernel');
      const cjs = quickStart(project, 'quick-start.cjs', QUICK_START_CJS);
      expect(quickStart(project, 'quick-start.mjs', QUICK_START_ESM)).toEqual(cjs);
      expect(cjs).toMatchObject({ kind: 'native', path: path.join(pkgDir, 'build', 'Release', 'guardkernel.node') });
    },
    SLOW,
  );
});
