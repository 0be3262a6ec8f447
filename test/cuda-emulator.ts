// Builds guardkernel_cuda.node from the addon's own sources with g++ and the
// CPU runtime in test/native/cuda_emu/ instead of nvcc and a GPU, so the CUDA
// backend (bindings, launches, kernels, the library's 'cuda' paths) runs in
// CI. The .cu files are compiled as C++ after one rewrite: each
// `kernel<<<grid, block>>>(args)` becomes gk_emu::Launch(...). Builds are
// cached in the temp directory by a hash of every input.
import { runSync, startChild } from './child';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CudaAddon, GpuDevice } from '../lib/native/addon-types';

// Not from ./helpers: that imports lib/native, which the emulated test mocks
// with this module (the mock would wait on itself).
const repoRoot = path.resolve(__dirname, '..');

const cxx = process.env.CXX || 'g++';
const emuDir = path.join(repoRoot, 'test', 'native', 'cuda_emu');
const nodeInclude = [process.env.npm_config_nodedir, '/usr', path.dirname(path.dirname(process.execPath))]
  .filter((d): d is string => typeof d === 'string' && d.length > 0)
  .map((d) => path.join(d, 'include', 'node'))
  .find((d) => fs.existsSync(path.join(d, 'node_api.h')));
/** The CUDA toolkit's include directory holding Thrust (also used by test/sandbox-parallel.test.ts). */
export const cudaInclude = [process.env.CUDA_HOME, process.env.CUDA_PATH, '/usr/local/cuda']
  .filter((d): d is string => typeof d === 'string' && d.length > 0)
  .map((d) => path.join(d, 'include'))
  .find((d) => fs.existsSync(path.join(d, 'cccl', 'thrust')) || fs.existsSync(path.join(d, 'thrust')));

/** Why the emulated addon cannot be built here, or null when it can. */
export const emulatorMissing: string | null =
  runSync(cxx, ['--version']).status !== 0
    ? `no ${cxx}`
    : nodeInclude === undefined
      ? 'no Node headers (node_api.h)'
      : cudaInclude === undefined
        ? 'no CUDA toolkit headers (Thrust)'
        : process.platform !== 'linux'
          ? 'the emulator uses ucontext fibers (Linux)'
          : null;

/** Blocks of threads per launch at most in the emulated build (65,535 on a GPU): grid-stride loops run at small sizes. */
export const EMULATED_MAX_GRID = 64;

/** The launch rewrite: `name<<<config>>>(` becomes `::gk_emu::Launch(::gk_emu::LaunchConfig(config), name, `. */
export function rewriteLaunches(source: string): string {
  return source.replace(/(\b[A-Za-z_][\w:]*(?:<[^<>;()]*>)?)<<<([\s\S]*?)>>>\(/g, '::gk_emu::Launch(::gk_emu::LaunchConfig($2), $1, ');
}

interface Unit {
  source: string;
  /** Compiled against the real CUDA headers and Thrust's CPP system (no launches), not the emulator's header. */
  thrust?: boolean;
}

const UNITS: Unit[] = [
  { source: 'cuda/addon.cc' },
  { source: 'cuda/aes_gcm_binding.cc' },
  { source: 'cuda/device_buffer_binding.cc' },
  { source: 'native/args.cc' },
  { source: 'native/jcs/utf8_encode.cc' },
  { source: 'native/k2k/sandbox_args.cc' },
  { source: 'cuda/device_query.cu' },
  { source: 'cuda/aes_gcm_kernels.cu' },
  { source: 'cuda/aes_gcm_bench.cu' },
  { source: 'cuda/device_buffers.cu' },
  { source: 'cuda/sandbox_kernels.cu', thrust: true },
  { source: 'test/native/cuda_emu/emu_runtime.cc' },
];

/**
 * The sanitizers join in under `npm run test:asan`, whose preloaded runtime
 * the .node needs. GCC gives globals in a named section no redzones unless
 * the section is listed, and the emulator puts `__shared__` variables in one.
 */
function sanitizerFlags(): string[] {
  const preloaded = (process.env.LD_PRELOAD ?? '').includes('libasan');
  return process.env.GUARDKERNEL_HOST_SANITIZE === '1' && preloaded
    ? ['-fsanitize=address,undefined', '-fsanitize-sections=gk_emu_shared', '-fno-sanitize-recover=all', '-fno-omit-frame-pointer']
    : [];
}

function flags(unit: Unit): string[] {
  const common = [
    '-std=c++17',
    '-O2',
    '-g1',
    '-fPIC',
    '-pthread',
    '-fno-strict-aliasing',
    '-Wall',
    '-Wextra',
    '-Werror',
    '-DNAPI_VERSION=8',
    '-DNAPI_CPP_EXCEPTIONS',
    '-DNODE_ADDON_API_DISABLE_DEPRECATED',
    `-DGK_CUDA_MAX_GRID=${EMULATED_MAX_GRID}`,
    ...sanitizerFlags(),
    '-I',
    path.join(repoRoot, 'cuda'),
    '-I',
    path.join(repoRoot, 'native'),
    '-I',
    nodeInclude!,
    '-I',
    path.join(repoRoot, 'node_modules', 'node-addon-api'),
  ];
  if (unit.thrust) {
    // Thrust's CPP system binds references through null policy pointers (its
    // own idiom, reported by UBSan's null check): that check is off here.
    const thrustSanitize = sanitizerFlags().length > 0 ? ['-fno-sanitize=null'] : [];
    return [...common, ...thrustSanitize, '-DTHRUST_DEVICE_SYSTEM=THRUST_DEVICE_SYSTEM_CPP', '-isystem', path.join(cudaInclude!, 'cccl'), '-isystem', cudaInclude!];
  }
  return [...common, '-I', emuDir];
}

function inputsHash(): string {
  const h = crypto.createHash('sha256');
  h.update(runSync(cxx, ['--version'], { encoding: 'utf8' }).stdout);
  h.update(JSON.stringify(UNITS.map(flags)));
  for (const dir of ['cuda', 'native', 'test/native/cuda_emu']) {
    const names = (fs.readdirSync(path.join(repoRoot, dir), { recursive: true }) as string[]).sort();
    for (const name of names) {
      const file = path.join(repoRoot, dir, name);
      if (!fs.statSync(file).isFile()) continue;
      h.update(name);
      h.update(fs.readFileSync(file));
    }
  }
  h.update(rewriteLaunches.toString());
  return h.digest('hex').slice(0, 16);
}

function run(args: string[]): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = startChild(cxx, args, { stdio: ['ignore', 'pipe', 'pipe'] }, 600_000);
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    child.on('close', (status) => resolve({ status, output }));
  });
}

async function compileAll(work: string): Promise<string[]> {
  const objects: string[] = [];
  const jobs = UNITS.map((unit, i) => async () => {
    let file = path.join(repoRoot, unit.source);
    if (unit.source.endsWith('.cu') && !unit.thrust) {
      // #line keeps diagnostics (and sanitizer reports) on the original file.
      file = path.join(work, `${path.basename(unit.source, '.cu')}.cc`);
      const original = path.join(repoRoot, unit.source);
      fs.writeFileSync(file, `#line 1 "${original}"\n` + rewriteLaunches(fs.readFileSync(original, 'utf8')));
    }
    const object = path.join(work, `${i}.o`);
    const r = await run([...flags(unit), ...(unit.thrust ? ['-x', 'c++'] : []), '-c', file, '-o', object]);
    if (r.status !== 0) throw new Error(`emulated CUDA build: ${unit.source} failed:\n${r.output}`);
    objects.push(object);
  });
  const queue = [...jobs];
  const workers = Array.from({ length: Math.max(1, os.cpus().length) }, async () => {
    for (let job = queue.shift(); job !== undefined; job = queue.shift()) await job();
  });
  await Promise.all(workers);
  return objects;
}

const cacheRoot = path.join(os.tmpdir(), 'guardkernel-cuda-emu');
const CACHE_UNUSED_MS = 7 * 24 * 3600 * 1000;

/**
 * Removes cached builds under `root`, other than `keep`, that no run has
 * used for CACHE_UNUSED_MS (a use touches its directory): a few MB each,
 * one per source hash and sanitizer setting.
 */
export function pruneEmulatorCache(root: string, keep: string, now = Date.now()): void {
  let names: string[];
  try {
    names = fs.readdirSync(root);
  } catch {
    return;
  }
  for (const name of names) {
    const dir = path.join(root, name);
    if (dir === keep) continue;
    try {
      if (fs.statSync(dir).mtimeMs < now - CACHE_UNUSED_MS) fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // gone already (a concurrent run pruned it)
    }
  }
}

/**
 * `name` in this input hash's cache directory, built by `build` into a
 * scratch directory (removed after) when missing; returns its path.
 */
async function cached(name: string, build: (work: string) => Promise<string>): Promise<string> {
  const dir = path.join(cacheRoot, inputsHash());
  const file = path.join(dir, name);
  if (!fs.existsSync(file)) {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-cuda-emu-'));
    try {
      const built = await build(work);
      fs.mkdirSync(dir, { recursive: true });
      fs.renameSync(built, file); // atomic: a concurrent build of the same inputs writes the same bytes
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  }
  const now = new Date();
  fs.utimesSync(dir, now, now);
  pruneEmulatorCache(cacheRoot, dir);
  return file;
}

/** Builds (or reuses) the emulated addon and returns its path; throws with the compiler's output when a file does not compile. */
export async function buildEmulatedAddon(): Promise<string> {
  if (emulatorMissing !== null) throw new Error(`emulated CUDA addon: ${emulatorMissing}`);
  return cached('guardkernel_cuda.node', async (work) => {
    const objects = await compileAll(work);
    const linked = path.join(work, 'guardkernel_cuda.node');
    const r = await run(['-shared', '-pthread', ...sanitizerFlags(), '-o', linked, ...objects]);
    if (r.status !== 0) throw new Error(`emulated CUDA build: link failed:\n${r.output}`);
    return linked;
  });
}

/** What lib/native's gpuBackend() returns, with the emulated addon as the CUDA backend. */
export interface EmulatedGpu {
  kind: 'cuda';
  addon: CudaAddon;
  devices: GpuDevice[];
  path: string;
}

export async function emulatedGpu(): Promise<EmulatedGpu> {
  const file = await buildEmulatedAddon();
  const addon = require(file) as CudaAddon;
  return { kind: 'cuda', addon, devices: addon.devices(), path: file };
}

/** test/native/cuda_emu/emu_selfcheck.cc with the emulator, built like the addon's .cu files (and cached with it); returns the executable. */
export async function buildEmulatorSelfCheck(): Promise<string> {
  if (emulatorMissing !== null) throw new Error(`CUDA emulator: ${emulatorMissing}`);
  return cached('emu_selfcheck', async (work) => {
    const original = path.join(emuDir, 'emu_selfcheck.cc');
    const source = path.join(work, 'emu_selfcheck.cc');
    fs.writeFileSync(source, `#line 1 "${original}"\n` + rewriteLaunches(fs.readFileSync(original, 'utf8')));
    const exe = path.join(work, 'emu_selfcheck');
    const unit: Unit = { source: 'test/native/cuda_emu/emu_selfcheck.cc' };
    const r = await run([...flags(unit), source, path.join(emuDir, 'emu_runtime.cc'), '-o', exe]);
    if (r.status !== 0) throw new Error(`CUDA emulator self-check build failed:\n${r.output}`);
    return exe;
  });
}
