/**
 * The one loader. It decides, once per process, which backends run:
 *  - core: the C++ addon (node-gyp-build: prebuilds/ then build/) or the
 *    TypeScript fallback over node:crypto;
 *  - gpu: the CUDA addon by explicit path (prebuilds/<platform>-<arch>/, then
 *    cmake-js's build-cuda/) or the CPU.
 * Nothing here throws at import time: every failure is collected and reported
 * by `backends()` and `guardkernel doctor`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { debuglog } from 'node:util';
import { CORE_ABI_VERSION, CUDA_ABI_VERSION, type CoreAddon, type CudaAddon, type GpuDevice } from './addon-types';

const debug = debuglog('guardkernel');

export interface CoreBackend {
  kind: 'native' | 'js';
  /** Why the fallback is in use (absent when native). */
  reason?: string;
  /** Path of the loaded `.node` file. */
  path?: string;
  /** SHA-256 implementation inside the addon: `'sha-ni'` or `'portable'`. */
  sha256?: string;
}

export interface GpuBackend {
  kind: 'cuda' | 'cpu';
  devices: GpuDevice[];
  /** Why the CPU backend is in use (absent when CUDA is active). */
  reason?: string;
  path?: string;
}

export interface Backends {
  core: CoreBackend;
  gpu: GpuBackend;
}

/** Where to look and which environment to obey; tests point these elsewhere. */
export interface LoadOptions {
  /** Package root holding prebuilds/, build/ and build-cuda/. */
  root?: string;
  env?: NodeJS.ProcessEnv;
}

export interface CoreLoad extends CoreBackend {
  addon: CoreAddon | null;
}

export interface GpuLoad extends GpuBackend {
  addon: CudaAddon | null;
}

const packageRoot = path.resolve(__dirname, '..', '..');

function message(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .join(' ');
}

/** Loads the core addon without touching module state. Never throws. */
export function loadCore(options: LoadOptions = {}): CoreLoad {
  const env = options.env ?? process.env;
  const root = options.root ?? packageRoot;
  if (env.GUARDKERNEL_NATIVE === '0') {
    return { kind: 'js', addon: null, reason: 'disabled by GUARDKERNEL_NATIVE=0' };
  }
  let file: string;
  let addon: CoreAddon;
  try {
    // node-gyp-build: prebuilds/<platform>-<arch>/ first, then build/Release
    // (PREBUILDS_ONLY=1 makes it skip build/).
    const nodeGypBuild = require('node-gyp-build') as { path(dir: string): string };
    file = nodeGypBuild.path(root);
    addon = require(file) as CoreAddon;
  } catch (err) {
    return {
      kind: 'js',
      addon: null,
      reason: `core addon failed to load: ${message(err)} (run "npm run build:native" to build it)`,
    };
  }
  if (addon.abiVersion !== CORE_ABI_VERSION) {
    return {
      kind: 'js',
      addon: null,
      path: file,
      reason: `core addon at ${file} has ABI ${String(addon.abiVersion)}, expected ${CORE_ABI_VERSION} (stale build: run "npm run build:native")`,
    };
  }
  return { kind: 'native', addon, path: file, sha256: addon.shaImplementation() };
}

/** The CUDA addon's candidate paths, in the order they are tried. */
export function cudaCandidates(_root?: string): string[][] {
  return [
    ['module_root', 'prebuilds', `${process.platform}-${process.arch}`, 'bindings'],
    ['module_root', 'build-cuda', 'Release', 'bindings'],
  ];
}

/** Loads the CUDA addon and lists devices without touching module state. Never throws. */
export function loadGpu(options: LoadOptions = {}): GpuLoad {
  const env = options.env ?? process.env;
  const root = options.root ?? packageRoot;
  if (env.GUARDKERNEL_GPU === '0') {
    return { kind: 'cpu', addon: null, devices: [], reason: 'disabled by GUARDKERNEL_GPU=0' };
  }
  let addon: CudaAddon;
  try {
    const bindings = require('bindings') as (opts: object) => CudaAddon;
    addon = bindings({ bindings: 'guardkernel_cuda.node', module_root: root, try: cudaCandidates(root) });
  } catch (err) {
    return {
      kind: 'cpu',
      addon: null,
      devices: [],
      reason: `CUDA addon not loaded: ${message(err)} (built by "npm run build:cuda" where nvcc is installed)`,
    };
  }
  if (addon.abiVersion !== CUDA_ABI_VERSION) {
    return {
      kind: 'cpu',
      addon: null,
      devices: [],
      reason: `CUDA addon has ABI ${String(addon.abiVersion)}, expected ${CUDA_ABI_VERSION} (stale build)`,
    };
  }
  const file = cudaCandidates(root)
    .map((c) => path.join(root, ...c.slice(1, -1), 'guardkernel_cuda.node'))
    .find((f) => fs.existsSync(f));
  let devices: GpuDevice[];
  try {
    const count = addon.deviceCount();
    if (count.count === 0) {
      // Without a driver cudaGetDeviceCount fails (error 35): that is "no GPU".
      const why = count.error ? `no CUDA device (${count.error})` : 'no CUDA device';
      return { kind: 'cpu', addon, devices: [], reason: why, path: file };
    }
    devices = addon.devices();
  } catch (err) {
    return { kind: 'cpu', addon, devices: [], reason: `CUDA device query failed: ${message(err)}` };
  }
  return { kind: 'cuda', addon, devices, path: file };
}

let core: CoreLoad | undefined;
let gpu: GpuLoad | undefined;

/** The process's core backend, loaded on first use (at import of the package). */
export function coreBackend(): CoreLoad {
  if (core === undefined) {
    core = loadCore();
    if (core.kind === 'js' && process.env.GUARDKERNEL_NATIVE !== '0') {
      process.emitWarning(`guardkernel: using the TypeScript fallback: ${core.reason}`, {
        code: 'GUARDKERNEL_FALLBACK',
      });
    }
  }
  return core;
}

/** The core addon, or null when the TypeScript fallback is in use. */
export function coreAddon(): CoreAddon | null {
  return coreBackend().addon;
}

/** The process's GPU backend, loaded lazily (CUDA initialisation is not free). */
export function gpuBackend(): GpuLoad {
  if (gpu === undefined) {
    gpu = loadGpu();
    if (gpu.kind === 'cpu') debug('GPU backend: cpu (%s)', gpu.reason);
  }
  return gpu;
}

function publicView<T extends { addon: unknown }>(load: T): Omit<T, 'addon'> {
  const { addon: _addon, ...rest } = load;
  return rest;
}

/** What is in use and why. */
export function backends(): Backends {
  return { core: publicView(coreBackend()), gpu: publicView(gpuBackend()) };
}
