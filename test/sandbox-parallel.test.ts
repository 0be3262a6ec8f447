// The CUDA algorithm (cuda/sandbox_parallel.cuh: sorts and segmented scans)
// compiled for the host with Thrust's CPP device system, held byte for byte
// to the sequential checker on 1,200 random batches: the same verdicts, the
// same counts and the same state afterwards. This runs where there is no GPU;
// test/gpu/sandbox.test.ts runs the device build against the same checker.
import { runSync } from './child';
import { skipWithout, toolMissing } from './prerequisites';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, test } from 'vitest';
import { checkMessagesJs } from '../lib/k2k/check-js';
import { KF_IN_FLIGHT, KF_MEMORY_USED, SandboxState } from '../lib/k2k/state';
import { VERDICT_COUNT } from '../lib/k2k/verdicts';
import { cudaInclude } from './cuda-emulator';
import { randomInt, repoRoot, rng } from './helpers';
import { type Batch, buildPolicy, randomBatch, randomLimits, randomName, randomPolicy } from './sandbox-model';

const cxx = process.env.CXX || 'g++';
const haveToolchain = !skipWithout(`a C++ compiler (${cxx}) and the CUDA toolkit headers`, toolMissing(cxx) ?? (cudaInclude === undefined ? 'no CUDA include directory' : null));

interface Case {
  now: number;
  before: SandboxState;
  batch: Batch;
  verdicts: Uint8Array;
  counts: Float64Array;
  after: SandboxState;
}

function snapshot(s: SandboxState): SandboxState {
  const copy = Object.create(SandboxState.prototype) as SandboxState;
  copy.params = s.params.slice();
  copy.kernelF64 = s.kernelF64.slice();
  copy.kernelI32 = s.kernelI32.slice();
  copy.violations = s.violations.slice();
  copy.dstAllowed = s.dstAllowed.slice();
  copy.topicAllowed = s.topicAllowed.slice();
  copy.connBits = s.connBits.slice();
  return copy;
}

function scenario(seed: number, cases: Case[]): void {
  const next = rng(seed);
  const limits = randomLimits(next);
  const policy = buildPolicy(randomPolicy(next));
  const state = new SandboxState(limits.maxMessagesPerSecond, limits.maxMemoryBytes, limits.maxK2kConnections, policy.readOnly);
  const addKernels = (n: number): void => {
    for (let i = 0; i < n; i++) state.addKernel(policy.allowsK2kTo(randomName(next) + randomInt(next, 0, 9)));
  };
  addKernels(randomInt(next, 1, 40));
  for (let t = randomInt(next, 1, 8); t > 0; t--) state.addTopic(policy.allowsTopic(randomName(next)));
  let now = randomInt(next, 0, 1_000_000);
  for (let b = 0; b < 12; b++) {
    if (next() < 0.3) addKernels(randomInt(next, 1, 60)); // crosses capacity 64 sometimes
    const k = state.kernelCount;
    if (next() < 0.3) state.setF64(KF_MEMORY_USED, randomInt(next, 0, k - 1), randomInt(next, 0, 3000));
    if (next() < 0.3) {
      const id = randomInt(next, 0, k - 1);
      state.setF64(KF_IN_FLIGHT, id, Math.max(0, state.f64(KF_IN_FLIGHT, id) - randomInt(next, 0, 100_000)));
    }
    const step = next();
    now = Math.max(0, now + (step < 0.3 ? 0 : step < 0.6 ? randomInt(next, 1, 20) : step < 0.9 ? randomInt(next, 1, 3000) : -randomInt(next, 1, 500)));
    const size = b === 11 ? randomInt(next, 0, 100_000) : next() < 0.05 ? 0 : randomInt(next, 1, 3000);
    const batch = randomBatch(next, size, k, state.topicCount);
    const before = snapshot(state);
    const verdicts = new Uint8Array(size);
    const counts = new Float64Array(VERDICT_COUNT);
    checkMessagesJs(state, batch, now, verdicts, counts);
    cases.push({ now, before, batch, verdicts, counts, after: snapshot(state) });
  }
}

function encode(cases: Case[]): Buffer {
  const parts: Buffer[] = [Buffer.from(Uint32Array.of(cases.length).buffer)];
  const array = (a: ArrayBufferView & { length: number }): void => {
    parts.push(Buffer.from(Uint32Array.of(a.length).buffer));
    parts.push(Buffer.from(a.buffer, a.byteOffset, a.byteLength));
  };
  for (const c of cases) {
    parts.push(Buffer.from(Float64Array.of(c.now).buffer));
    parts.push(Buffer.from(c.before.params.buffer));
    const s = c.before;
    for (const a of [s.kernelF64, s.kernelI32, s.violations, s.dstAllowed, s.topicAllowed, s.connBits, c.batch.src, c.batch.dst, c.batch.topic, c.batch.bytes]) array(a);
  }
  return Buffer.concat(parts);
}

test.runIf(haveToolchain)('the GPU algorithm, built for the host, matches the sequential checker byte for byte on 1,200 random batches', () => {
  const exe = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gk-spar-')), 'sandbox_parallel_host');
  const build = runSync(
    cxx,
    ['-std=c++17', '-O2', '-Wall', '-Wextra', '-Werror', '-DTHRUST_DEVICE_SYSTEM=THRUST_DEVICE_SYSTEM_CPP', '-isystem', path.join(cudaInclude as string, 'cccl'), '-isystem', cudaInclude as string, '-I', path.join(repoRoot, 'cuda'), path.join(__dirname, 'native', 'sandbox_parallel_host.cc'), '-o', exe],
    { encoding: 'utf8', timeout: 600_000 },
  );
  expect(build.stderr).toBe('');
  expect(build.status).toBe(0);

  const cases: Case[] = [];
  for (let seed = 1; seed <= 100; seed++) scenario(seed * 7 + 3, cases);
  const run = runSync(exe, [], { input: encode(cases), maxBuffer: 1 << 30 });
  expect(run.stderr.toString()).toBe('');
  expect(run.status).toBe(0);
  const out = run.stdout;
  let at = 0;
  const take = <T extends ArrayBufferView & { length: number }>(like: T): Buffer => {
    const b = out.subarray(at, at + like.byteLength);
    at += like.byteLength;
    return b;
  };
  let messages = 0;
  cases.forEach((c, i) => {
    const a = c.after;
    for (const [name, expected] of [
      ['verdicts', c.verdicts],
      ['counts', c.counts],
      ['kernelF64', a.kernelF64],
      ['kernelI32', a.kernelI32],
      ['violations', a.violations],
      ['connBits', a.connBits],
    ] as const) {
      const got = take(expected);
      const want = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength);
      if (!got.equals(want)) expect.fail(`case ${i} (${c.batch.src.length} messages): ${name} differs`);
    }
    messages += c.batch.src.length;
  });
  expect(at).toBe(out.length);
  expect(cases.length).toBe(1200);
  expect(messages).toBeGreaterThan(500_000);
});
