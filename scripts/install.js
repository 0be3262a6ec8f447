#!/usr/bin/env node
// npm's install step for guardkernel: one progress line per native build
// step, with the time it took.
//   1. the core addon (required): a prebuild from prebuilds/<platform>-<arch>/
//      or an earlier build/Release that loads, else compiled with node-gyp
//      (its output goes to a log; on failure the log is printed and the
//      install fails);
//   2. the CUDA addon (optional): skipped with one line, or built with
//      cmake-js (scripts/build-cuda.js); a failure never fails the install.
// npm 7+ runs dependency install scripts with their output captured, and
// shows it only when the script fails or with --foreground-scripts (the root
// project's own scripts are shown). So, installed as a dependency, each line
// also goes to the terminal (/dev/tty) when there is one and stdout is not
// it; GUARDKERNEL_INSTALL_TTY=0 turns that off. docs/install.md says more.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const cuda = require('./build-cuda.js');

const root = path.join(__dirname, '..');
const platform = `${process.platform}-${process.arch}`;

// Where the lines go. A pipe (npm capturing the output) gets each step as
// one line, written when the step ends. A terminal (stdout itself, or
// /dev/tty) gets whole lines only, each clearing npm's spinner first, and a
// long step also announces itself when it starts.
// /dev/tty only as a dependency: npm shows the root project's own output.
const asDependency = root.split(path.sep).includes('node_modules');
let tty = null;
if (asDependency && !process.stdout.isTTY && process.env.GUARDKERNEL_INSTALL_TTY !== '0' && process.platform !== 'win32') {
  try {
    tty = fs.openSync('/dev/tty', 'w');
  } catch {
    tty = null; // no controlling terminal (CI, a service): stdout only
  }
}

function toTerminal(text) {
  const clear = '\r\x1b[K';
  if (process.stdout.isTTY) process.stdout.write(clear + text);
  if (tty !== null) {
    try {
      fs.writeSync(tty, clear + text);
    } catch {
      tty = null;
    }
  }
}

function line(text) {
  if (!process.stdout.isTTY) process.stdout.write(`guardkernel: ${text}\n`);
  toTerminal(`guardkernel: ${text}\n`);
}

/**
 * A step that takes a while: `what` is said at once on a terminal; the
 * returned function ends it with the outcome ("{s}" becomes the elapsed time).
 */
function step(what) {
  const started = process.hrtime.bigint();
  toTerminal(`guardkernel: ${what}…\n`);
  return (outcome) => {
    const s = `${(Number(process.hrtime.bigint() - started) / 1e9).toFixed(1)} s`;
    const text = `guardkernel: ${what}… ${outcome.replace('{s}', s)}\n`;
    if (!process.stdout.isTTY) process.stdout.write(text);
    toTerminal(text);
  };
}

function rel(file) {
  return path.relative(root, file);
}

/** Loads a .node file in a child process (a crash there cannot take this one down). */
function loads(file) {
  const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(file)})`], { stdio: 'ignore', timeout: 60_000 });
  return r.status === 0;
}

function existingCore() {
  // `npm install --build-from-source` (or =guardkernel) compiles, as node-gyp-build does.
  const fromSource = process.env.npm_config_build_from_source;
  if (fromSource === 'true' || fromSource === 'guardkernel') return null;
  try {
    const file = require('node-gyp-build').path(root);
    return loads(file) ? file : null;
  } catch {
    return null; // neither prebuilds/ nor build/ has one
  }
}

/** node-gyp as npm would run it: the installed package, npm's own, or the PATH. */
function nodeGyp() {
  try {
    const pkg = require.resolve('node-gyp/package.json', { paths: [root] });
    const bin = require(pkg).bin;
    return [process.execPath, path.join(path.dirname(pkg), typeof bin === 'string' ? bin : bin['node-gyp'])];
  } catch {
    // not in node_modules
  }
  const npmGyp = process.env.npm_config_node_gyp;
  if (npmGyp && fs.existsSync(npmGyp)) return [process.execPath, npmGyp];
  return ['node-gyp'];
}

function core() {
  const t0 = process.hrtime.bigint();
  const found = existingCore();
  if (found) {
    const where = rel(found).startsWith('prebuilds') ? `prebuilt for ${platform} found` : 'already built';
    line(`core addon: ${where} (${rel(found)}, ${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(1)} s)`);
    return;
  }
  const done = step(`core addon: no prebuilt for ${platform}, compiling from source (node-gyp)`);
  const [cmd, ...args] = nodeGyp();
  // node-gyp rebuild empties build/ first: the log is written beside it, then moved in.
  const tmpLog = path.join(os.tmpdir(), `guardkernel-core-${process.pid}.log`);
  const fd = fs.openSync(tmpLog, 'w');
  let r;
  try {
    // all cores, unless JOBS or npm's --jobs says otherwise
    const jobs = process.env.JOBS || process.env.npm_config_jobs ? [] : ['--jobs', 'max'];
    r = spawnSync(cmd, [...args, 'rebuild', ...jobs], { cwd: root, stdio: ['ignore', fd, fd] });
  } finally {
    fs.closeSync(fd);
  }
  const built = path.join(root, 'build', 'Release', 'guardkernel.node');
  let log = path.join(root, 'build', 'build.log');
  try {
    fs.mkdirSync(path.dirname(log), { recursive: true });
    fs.copyFileSync(tmpLog, log);
    fs.rmSync(tmpLog);
  } catch {
    log = tmpLog;
  }
  if (r.status === 0 && fs.existsSync(built)) {
    done('done in {s}');
    return;
  }
  done(`FAILED after {s} (${r.error ? r.error.message : `exit ${r.status ?? r.signal}`})`);
  process.stderr.write(fs.readFileSync(log, 'utf8'));
  line(`the core addon could not be built: a C++17 compiler, make and python3 are needed where no prebuilt matches ${platform} (log above and in ${log}).`);
  process.exit(1);
}

function gpu() {
  const p = cuda.plan();
  if (p.action === 'skip') {
    const how = p.kind === 'opt-out' ? '' : '; GPU features use the CPU backend; to add it: npm rebuild guardkernel, once fixed';
    line(`CUDA addon: skipped (${p.why}${how})`);
    return;
  }
  if (p.action === 'prebuilt') {
    line(`CUDA addon: prebuilt found (${rel(p.file)})`);
    return;
  }
  const version = cuda.nvccVersion(p.nvcc);
  const done = step(`CUDA addon: nvcc ${version ?? '(version unknown)'} found at ${p.nvcc}, building with cmake-js (several minutes; GUARDKERNEL_SKIP_CUDA=1 skips it)`);
  let r;
  try {
    r = cuda.build({ nvcc: p.nvcc, cmakeJs: p.cmakeJs });
  } catch (err) {
    r = { ok: false, status: err.message, logFile: cuda.logFile };
  }
  if (r.ok) done(`done in {s}`);
  else done(`failed after {s} (log: ${r.logFile}); installed without it: GPU features use the CPU backend`);
}

core();
gpu();
if (tty !== null) fs.closeSync(tty);
