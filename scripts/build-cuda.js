#!/usr/bin/env node
// Builds the optional CUDA addon (build-cuda/Release/guardkernel_cuda.node)
// with cmake-js.
//  - `npm run build:cuda` (`--require`): any problem is an error, as CI wants;
//    the build's output streams to the console.
//  - `node scripts/build-cuda.js`: optional, never fails, one line.
//  - scripts/install.js (npm's install step) uses plan() and build() below and
//    prints its own progress line with the elapsed time.
// Environment: GUARDKERNEL_SKIP_CUDA=1 or GUARDKERNEL_GPU=0 skip the optional
// build; GUARDKERNEL_NVCC=/path/to/nvcc names the compiler (nothing else is
// searched); otherwise nvcc is looked for on PATH, $CUDACXX, $CUDA_PATH,
// $CUDA_HOME and /usr/local/cuda/bin.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.join(__dirname, '..');
const outDir = path.join(root, 'build-cuda');
const logFile = path.join(outDir, 'build.log');
const output = path.join(outDir, 'Release', 'guardkernel_cuda.node');

function isExecutable(file) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function searchPath(exe, extraDirs = [], env = process.env) {
  const dirs = (env.PATH || '').split(path.delimiter).concat(extraDirs);
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = path.join(dir, exe);
    if (isExecutable(candidate)) return candidate;
  }
  return null;
}

/** nvcc's path, or null. GUARDKERNEL_NVCC names the compiler outright (and nothing else is searched). */
function findNvcc(env = process.env) {
  if (env.GUARDKERNEL_NVCC) {
    return isExecutable(env.GUARDKERNEL_NVCC) ? env.GUARDKERNEL_NVCC : null;
  }
  const exe = process.platform === 'win32' ? 'nvcc.exe' : 'nvcc';
  const extra = [];
  for (const base of [env.CUDACXX && path.dirname(env.CUDACXX), env.CUDA_PATH, env.CUDA_HOME]) {
    if (base) extra.push(base, path.join(base, 'bin'));
  }
  extra.push('/usr/local/cuda/bin');
  return searchPath(exe, extra, env);
}

/** "13.0" from `nvcc --version`, or null when it does not answer. */
function nvccVersion(nvcc) {
  const r = spawnSync(nvcc, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  const m = /release (\d+\.\d+)/.exec(`${r.stdout || ''}`);
  return m ? m[1] : null;
}

function findCmakeJs() {
  try {
    return require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
  } catch {
    return null;
  }
}

/**
 * What an install should do about the CUDA addon:
 *   { action: 'skip', why, kind }   kind: 'opt-out' | 'no-nvcc' | 'no-cmake-js' | 'no-cmake'
 *   { action: 'prebuilt', file }
 *   { action: 'build', nvcc, cmakeJs }
 * With `required` (npm run build:cuda) opt-outs and prebuilds are ignored.
 */
function plan({ required = false, env = process.env } = {}) {
  if (!required && env.GUARDKERNEL_SKIP_CUDA && env.GUARDKERNEL_SKIP_CUDA !== '0') {
    return { action: 'skip', kind: 'opt-out', why: `GUARDKERNEL_SKIP_CUDA=${env.GUARDKERNEL_SKIP_CUDA}` };
  }
  if (!required && env.GUARDKERNEL_GPU === '0') {
    return { action: 'skip', kind: 'opt-out', why: 'GUARDKERNEL_GPU=0' };
  }
  const prebuilt = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'guardkernel_cuda.node');
  if (!required && fs.existsSync(prebuilt)) return { action: 'prebuilt', file: prebuilt };
  const nvcc = findNvcc(env);
  if (!nvcc) {
    return {
      action: 'skip',
      kind: 'no-nvcc',
      why: env.GUARDKERNEL_NVCC
        ? `GUARDKERNEL_NVCC=${env.GUARDKERNEL_NVCC} is not an executable file`
        : 'no nvcc on PATH, CUDA_PATH, CUDA_HOME or /usr/local/cuda/bin',
    };
  }
  const cmakeJs = findCmakeJs();
  if (!cmakeJs) {
    return {
      action: 'skip',
      kind: 'no-cmake-js',
      nvcc,
      why: 'cmake-js is not installed (an optional dependency: was the install run with --omit=optional?)',
    };
  }
  if (!searchPath(process.platform === 'win32' ? 'cmake.exe' : 'cmake', [], env)) {
    return { action: 'skip', kind: 'no-cmake', nvcc, why: `nvcc found (${nvcc}) but no cmake on PATH` };
  }
  return { action: 'build', nvcc, cmakeJs };
}

/**
 * Runs cmake-js. `stream`: the build's output goes to the console (CI);
 * otherwise it goes to build-cuda/build.log. Returns { ok, status, logFile? }.
 */
function build({ nvcc, cmakeJs, stream = false, env = process.env }) {
  const childEnv = { ...env, CUDACXX: nvcc };
  const args = [cmakeJs, 'build', '--out', outDir];
  if (stream) {
    const r = spawnSync(process.execPath, args, { cwd: root, env: childEnv, stdio: 'inherit' });
    return { ok: r.status === 0, status: r.status ?? r.signal };
  }
  fs.mkdirSync(outDir, { recursive: true });
  const fd = fs.openSync(logFile, 'w');
  let r;
  try {
    r = spawnSync(process.execPath, args, { cwd: root, env: childEnv, stdio: ['ignore', fd, fd] });
  } finally {
    fs.closeSync(fd);
  }
  return { ok: r.status === 0 && fs.existsSync(output), status: r.status ?? r.signal, logFile };
}

module.exports = { findNvcc, nvccVersion, plan, build, root, output, logFile };

function main() {
  const required = process.argv.includes('--require');
  const finish = (message, ok) => {
    const line = `guardkernel: ${message}`;
    if (ok || !required) {
      console.log(line);
      process.exit(0);
    }
    console.error(line);
    process.exit(1);
  };
  const p = plan({ required });
  if (p.action === 'skip' && p.kind === 'opt-out') finish(`${p.why}: skipping the CUDA addon build.`, true);
  if (p.action === 'prebuilt') finish(`using the prebuilt CUDA addon (${path.relative(root, p.file)}).`, true);
  if (p.action === 'skip' && p.kind === 'no-nvcc') {
    finish(`nvcc not found; skipping the CUDA addon (${p.why}; GPU features use the CPU backend). Install the CUDA toolkit, then run "npm rebuild guardkernel" (in this repository: "npm run build:cuda").`, false);
  }
  if (p.action === 'skip') finish(`${p.why}; skipping the CUDA addon build.`, false);
  const r = build({ nvcc: p.nvcc, cmakeJs: p.cmakeJs, stream: required });
  if (!r.ok && !required) {
    finish(`the CUDA addon failed to build (log: ${path.relative(process.cwd(), r.logFile)}); GPU features use the CPU backend.`, false);
  }
  if (!r.ok) finish(`cmake-js exited with ${r.status}`, false);
  finish(`built the CUDA addon with ${p.nvcc} (${path.relative(root, output)}).`, true);
}

if (require.main === module) main();
