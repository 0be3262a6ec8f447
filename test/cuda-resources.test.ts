// What ptxas says about our kernels, for every GPU generation the addon
// ships machine code for (CMakeLists.txt): nothing may spill registers to
// local memory, and on Hopper (the H100 the speed targets name) registers
// must not be what limits how many blocks of threads an SM holds. Neither
// the host builds nor the CPU emulator can see either; both decide speed.
// Thrust's kernels (the sandbox's sorts and scans) are CUB's to tune and
// are only reported.
import { runSync } from './child';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { repoRoot } from './helpers';
import { skipWithout } from './prerequisites';

const nvcc = process.env.GUARDKERNEL_NVCC || 'nvcc';
// Under `npm run test:asan` the sanitizer runtime is preloaded into every
// child; nvcc's own binaries crash with it.
const { LD_PRELOAD: _preload, ...nvccEnv } = process.env;
const nvccVersion = runSync(nvcc, ['--version'], { encoding: 'utf8', env: nvccEnv, timeout: 600_000 });
const missing = nvccVersion.status === 0 ? null : `no ${nvcc}`;

/** The kernels' launch size (cuda/aes_gcm_kernels.cu kThreads; XorReduceKernel uses 1,024). */
const THREADS: Record<string, number> = { CtrKernel: 256, GhashTreeKernel: 256, BlocksKernel: 256, XorReduceKernel: 1024 };
const OUR_SOURCES = ['cuda/aes_gcm_kernels.cu', 'cuda/device_query.cu'];

interface KernelResources {
  name: string;
  arch: string;
  registers: number;
  sharedBytes: number;
  stackBytes: number;
  spillStores: number;
  spillLoads: number;
}

/** Parses `ptxas -v` output: one record per kernel entry. */
function parsePtxasReport(text: string): KernelResources[] {
  const out: KernelResources[] = [];
  let current: KernelResources | undefined;
  for (const line of text.split('\n')) {
    const entry = /Compiling entry function '([^']+)' for '(sm_\d+)'/.exec(line);
    if (entry) {
      current = { name: entry[1], arch: entry[2], registers: -1, sharedBytes: 0, stackBytes: -1, spillStores: -1, spillLoads: -1 };
      out.push(current);
      continue;
    }
    if (current === undefined) continue;
    const frame = /(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads/.exec(line);
    if (frame) [current.stackBytes, current.spillStores, current.spillLoads] = frame.slice(1).map(Number);
    const used = /Used (\d+) registers/.exec(line);
    if (used) current.registers = Number(used[1]);
    const smem = /(\d+) bytes smem/.exec(line);
    if (smem) current.sharedBytes = Number(smem[1]);
  }
  return out;
}

/** "CtrKernel" from a mangled name, or the name itself. */
function shortName(mangled: string): string {
  const m = /(\d+)([A-Za-z]+Kernel)/.exec(mangled);
  return m ? m[2] : mangled;
}

/** The real architectures CMakeLists.txt builds (75, 80, ...). */
function shippedArchitectures(): string[] {
  const cmake = fs.readFileSync(path.join(repoRoot, 'CMakeLists.txt'), 'utf8');
  const list = /set\(CMAKE_CUDA_ARCHITECTURES ([^)]*)\)/.exec(cmake);
  if (!list) throw new Error('CMakeLists.txt: no CMAKE_CUDA_ARCHITECTURES');
  return [...list[1].matchAll(/(\d+)-real/g)].map((m) => m[1]);
}

/** ptxas's report for `source` on sm_`arch`, cached in the temp directory by every input. */
function ptxasReport(source: string, arch: string): string {
  const flags = ['-std=c++17', '-O3', '-DNDEBUG', `-arch=sm_${arch}`, '-Xptxas', '-v', '-I', path.join(repoRoot, 'cuda'), '-I', path.join(repoRoot, 'native')];
  const h = crypto.createHash('sha256').update(nvccVersion.stdout).update(JSON.stringify(flags)).update(source);
  for (const name of fs.readdirSync(path.join(repoRoot, 'cuda')).sort()) h.update(name).update(fs.readFileSync(path.join(repoRoot, 'cuda', name)));
  const cache = path.join(os.tmpdir(), 'guardkernel-ptxas', `${h.digest('hex').slice(0, 16)}.txt`);
  if (fs.existsSync(cache)) return fs.readFileSync(cache, 'utf8');
  const object = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gk-ptxas-')), 'k.o');
  const r = runSync(nvcc, [...flags, '-c', path.join(repoRoot, source), '-o', object], { encoding: 'utf8', env: nvccEnv });
  fs.rmSync(path.dirname(object), { recursive: true, force: true });
  if (r.status !== 0) throw new Error(`${nvcc} ${source} for sm_${arch} failed:\n${r.stderr}`);
  fs.mkdirSync(path.dirname(cache), { recursive: true });
  fs.writeFileSync(cache, r.stderr + r.stdout);
  return r.stderr + r.stdout;
}

/** Hopper (sm_90) per-SM limits, from NVIDIA's occupancy tables. */
const HOPPER = { registers: 65536, registerUnitPerWarp: 256, sharedBytes: 228 * 1024, reservedSharedPerBlock: 1024, threads: 2048, blocks: 32 };

/** Blocks of `threads` an SM holds as limited by registers, and by everything else. */
function hopperBlocksPerSm(k: Pick<KernelResources, 'registers' | 'sharedBytes'>, threads: number): { byRegisters: number; byOthers: number } {
  const warps = Math.ceil(threads / 32);
  const perWarp = Math.ceil((k.registers * 32) / HOPPER.registerUnitPerWarp) * HOPPER.registerUnitPerWarp;
  const byRegisters = Math.floor(HOPPER.registers / (perWarp * warps));
  const byShared = Math.floor(HOPPER.sharedBytes / (k.sharedBytes + HOPPER.reservedSharedPerBlock));
  return { byRegisters, byOthers: Math.min(byShared, Math.floor(HOPPER.threads / threads), HOPPER.blocks) };
}

test('the ptxas report parser reads entries, spills, registers and shared memory', () => {
  const sample = [
    "ptxas info    : Compiling entry function '_ZN2gk3aes9CtrKernelEv' for 'sm_90'",
    "ptxas info    : Function properties for _ZN2gk3aes9CtrKernelEv",
    '    8 bytes stack frame, 4 bytes spill stores, 12 bytes spill loads',
    'ptxas info    : Used 40 registers, used 1 barriers, 32768 bytes smem',
    "ptxas info    : Compiling entry function 'other' for 'sm_75'",
    'ptxas info    : Function properties for other',
    '    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads',
    'ptxas info    : Used 18 registers, 376 bytes cmem[0]',
  ].join('\n');
  expect(parsePtxasReport(sample)).toEqual([
    { name: '_ZN2gk3aes9CtrKernelEv', arch: 'sm_90', registers: 40, sharedBytes: 32768, stackBytes: 8, spillStores: 4, spillLoads: 12 },
    { name: 'other', arch: 'sm_75', registers: 18, sharedBytes: 0, stackBytes: 0, spillStores: 0, spillLoads: 0 },
  ]);
  expect(shortName('_ZN2gk3aes9CtrKernelEv')).toBe('CtrKernel');
  // 32 registers and 32 KiB: shared memory binds (6 blocks) before registers (8);
  // 64 registers: registers bind at 4.
  expect(hopperBlocksPerSm({ registers: 32, sharedBytes: 32768 }, 256)).toEqual({ byRegisters: 8, byOthers: 6 });
  expect(hopperBlocksPerSm({ registers: 64, sharedBytes: 32768 }, 256)).toEqual({ byRegisters: 4, byOthers: 6 });
});

describe.skipIf(skipWithout('nvcc (the CUDA toolkit)', missing))('ptxas on our kernels', () => {
  const archs = shippedArchitectures();

  test('the shipped architectures are read from CMakeLists.txt', () => {
    expect(archs).toContain('75');
    expect(archs).toContain('90');
  });

  test.each(archs.map((a) => [a]))('sm_%s: no kernel spills registers', (arch) => {
    const kernels = OUR_SOURCES.flatMap((s) => parsePtxasReport(ptxasReport(s, arch)));
    const names = new Set(kernels.map((k) => shortName(k.name)));
    for (const expected of ['CtrKernel', 'GhashTreeKernel', 'XorReduceKernel', 'BlocksKernel', 'SelfTestKernel']) expect(names).toContain(expected);
    for (const k of kernels) {
      expect(k.registers, k.name).toBeGreaterThan(0);
      expect({ kernel: shortName(k.name), spillStores: k.spillStores, spillLoads: k.spillLoads }).toEqual({ kernel: shortName(k.name), spillStores: 0, spillLoads: 0 });
    }
  }, 120_000);

  test('sm_90: registers never limit the blocks an SM holds below what shared memory and threads allow', () => {
    const kernels = parsePtxasReport(ptxasReport('cuda/aes_gcm_kernels.cu', '90'));
    for (const k of kernels) {
      const threads = THREADS[shortName(k.name)];
      expect(threads, `launch size of ${k.name}`).toBeDefined();
      const { byRegisters, byOthers } = hopperBlocksPerSm(k, threads);
      expect(byRegisters, `${shortName(k.name)}: ${k.registers} registers, ${k.sharedBytes} B shared`).toBeGreaterThanOrEqual(byOthers);
    }
  }, 120_000);
});
