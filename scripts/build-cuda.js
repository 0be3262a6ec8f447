#!/usr/bin/env node
// Builds the optional CUDA addon (build-cuda/Release/guardkernel_cuda.node)
// with cmake-js. Run by `npm install` (optional: it never fails the install,
// and says in one line why it skipped) and by `npm run build:cuda`
// (`--require`: any problem is an error, as CI wants).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.join(__dirname, '..');
const required = process.argv.includes('--require');
const outDir = path.join(root, 'build-cuda');

function finish(message, ok) {
  const line = `guardkernel: ${message}`;
  if (ok || !required) {
    console.log(line);
    process.exit(0);
  }
  console.error(line);
  process.exit(1);
}

function isExecutable(file) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

// GUARDKERNEL_NVCC names the compiler outright (and nothing else is searched).
function findNvcc() {
  if (process.env.GUARDKERNEL_NVCC) {
    return isExecutable(process.env.GUARDKERNEL_NVCC) ? process.env.GUARDKERNEL_NVCC : null;
  }
  const exe = process.platform === 'win32' ? 'nvcc.exe' : 'nvcc';
  const dirs = (process.env.PATH || '').split(path.delimiter);
  for (const base of [process.env.CUDACXX && path.dirname(process.env.CUDACXX), process.env.CUDA_PATH, process.env.CUDA_HOME]) {
    if (base) dirs.push(base, path.join(base, 'bin'));
  }
  dirs.push('/usr/local/cuda/bin');
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = path.join(dir, exe);
    if (isExecutable(candidate)) return candidate;
  }
  return null;
}

if (!required && process.env.GUARDKERNEL_GPU === '0') {
  finish('GUARDKERNEL_GPU=0: skipping the CUDA addon build.', true);
}

const prebuilt = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'guardkernel_cuda.node');
if (!required && fs.existsSync(prebuilt)) {
  finish(`using the prebuilt CUDA addon (${path.relative(root, prebuilt)}).`, true);
}

const nvcc = findNvcc();
if (!nvcc) {
  finish('nvcc not found; skipping the CUDA addon (GPU features use the CPU backend). Install the CUDA toolkit and run "npm run build:cuda" to add it.', false);
}

let cmakeJs;
try {
  cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
} catch {
  finish('cmake-js is not installed; skipping the CUDA addon build (to build it: npm install cmake-js && npm rebuild guardkernel).', false);
}

const env = { ...process.env, CUDACXX: nvcc };
const args = [cmakeJs, 'build', '--out', outDir];
let result;
if (required) {
  result = spawnSync(process.execPath, args, { cwd: root, env, stdio: 'inherit' });
} else {
  // Keep `npm install` quiet: the full log goes to a file, one line to the console.
  fs.mkdirSync(outDir, { recursive: true });
  const logFile = path.join(outDir, 'build.log');
  result = spawnSync(process.execPath, args, { cwd: root, env, encoding: 'utf8', maxBuffer: 64 << 20 });
  fs.writeFileSync(logFile, `${result.stdout || ''}${result.stderr || ''}`);
  if (result.status !== 0) {
    finish(`the CUDA addon failed to build (log: ${path.relative(root, logFile)}); GPU features use the CPU backend.`, false);
  }
}
if (result.status !== 0) finish(`cmake-js exited with ${result.status ?? result.signal}`, false);
finish(`built the CUDA addon with ${nvcc} (build-cuda/Release/guardkernel_cuda.node).`, true);
