// Direct calls into the addon's sandboxCheck with arrays that lie about the
// state's size: the C++ side must refuse them (a JS error), never read or
// write out of bounds. Run under ASan by `npm run test:asan`.
import fs from 'node:fs';
import path from 'node:path';
import { expect, test } from 'vitest';
import { ErrorCodes, KernelSandbox, SandboxPolicy, backends } from '../lib';
import { SandboxState } from '../lib/k2k/state';
import { core, repoRoot } from './helpers';

function fresh(connections = 4): { s: SandboxState; args: () => unknown[] } {
  const s = new SandboxState(10, 1000, connections, false);
  s.addKernel(true);
  s.addKernel(true);
  s.addTopic(true);
  const n = 3;
  const cols = [new Uint32Array(n), Uint32Array.of(1, 0, 1), new Uint32Array(n), new Uint32Array(n)];
  return { s, args: () => [s.params, s.kernelF64, s.kernelI32, s.violations, s.dstAllowed, s.topicAllowed, s.connBits, ...cols, 5, new Uint8Array(n), new Float64Array(8)] };
}

test.runIf(core !== null)('sandboxCheck refuses arrays shorter than the params imply, and bad params', () => {
  const call = (mutate: (a: unknown[], s: SandboxState) => void): unknown => {
    const { s, args } = fresh();
    const a = args();
    mutate(a, s);
    return () => (core!.sandboxCheck as (...x: unknown[]) => void)(...a);
  };
  expect(call(() => {})).not.toThrow();
  const cases: [string, (a: unknown[], s: SandboxState) => void][] = [
    ['short kernelF64', (a) => (a[1] = new Float64Array(4))],
    ['short kernelI32', (a) => (a[2] = new Int32Array(4))],
    ['wrong type for kernelI32', (a, s) => (a[2] = new Uint32Array(s.kernelI32.length))],
    ['short violations', (a) => (a[3] = new Float64Array(1))],
    ['short dstAllowed', (a) => (a[4] = new Uint8Array(1))],
    ['short connBits', (a) => (a[6] = new Uint32Array(1))],
    ['dst shorter than src', (a) => (a[8] = new Uint32Array(1))],
    ['bytes not typed', (a) => (a[10] = [0, 0, 0])],
    ['short verdicts', (a) => (a[12] = new Uint8Array(1))],
    ['short counts', (a) => (a[13] = new Float64Array(7))],
    ['negative now', (a) => (a[11] = -1)],
    ['fractional now', (a) => (a[11] = 0.5)],
    ['capacity larger than the arrays', (a, s) => ((a[0] as Float64Array).set([128], 6), void s)],
    ['kernels above capacity', (a) => ((a[0] as Float64Array)[0] = 65)],
    ['topics above the topic array', (a) => ((a[0] as Float64Array)[1] = 1000)],
    ['fractional rate', (a) => ((a[0] as Float64Array)[2] = 1.5)],
    ['capacity not a multiple of 32', (a) => ((a[0] as Float64Array)[6] = 33)],
    ['NaN param', (a) => ((a[0] as Float64Array)[3] = NaN)],
    ['too few arguments', (a) => a.splice(5)],
  ];
  for (const [name, mutate] of cases) expect(call(mutate), name).toThrow();
});

test.runIf(core !== null)('out-of-range message ids are verdicts, not memory accesses', () => {
  const { s } = fresh();
  const n = 4;
  const src = Uint32Array.of(0, 0xffffffff, 63, 1);
  const dst = Uint32Array.of(0xffffffff, 0, 1, 64);
  const verdicts = new Uint8Array(n);
  core!.sandboxCheck(s.params, s.kernelF64, s.kernelI32, s.violations, s.dstAllowed, s.topicAllowed, s.connBits, src, dst, Uint32Array.of(0, 0, 0xffffffff, 0), new Uint32Array(n), 0, verdicts, new Float64Array(8));
  expect(Array.from(verdicts)).toEqual([7, 7, 7, 7]);
});

test.runIf(backends().gpu.kind !== 'cuda')('without a device, the CUDA backend refuses with ERR_GPU_UNAVAILABLE and leaves the state as it was', () => {
  const box = new KernelSandbox({ maxMessagesPerSecond: 1 }, SandboxPolicy.permissive());
  const a = box.registerKernel('a');
  const b = box.registerKernel('b');
  box.registerTopic('t');
  const batch = { src: Uint32Array.of(a, a), dst: Uint32Array.of(b, b), topic: new Uint32Array(2), bytes: new Uint32Array(2) };
  expect(() => box.checkMessages(batch, 10, { backend: 'cuda' })).toThrow(expect.objectContaining({ code: ErrorCodes.GPU_UNAVAILABLE }));
  // Nothing was spent: the bucket still pays for one message.
  expect(Array.from(box.checkMessages(batch, 10, { backend: 'js' }).verdicts)).toEqual([0, 4]);
  // The CUDA addon itself, where it is built, fails the same way (a driver is missing, not a crash).
  const cudaFile = path.join(repoRoot, 'build-cuda', 'Release', 'guardkernel_cuda.node');
  if (fs.existsSync(cudaFile)) {
    const addon = require(cudaFile) as { sandboxCheck: (...args: unknown[]) => void };
    const s = new SandboxState(10, 1000, 4, false);
    s.addKernel(true);
    s.addTopic(true);
    const before = s.kernelF64.slice();
    expect(() => addon.sandboxCheck(s.params, s.kernelF64, s.kernelI32, s.violations, s.dstAllowed, s.topicAllowed, s.connBits, new Uint32Array(1), new Uint32Array(1), new Uint32Array(1), new Uint32Array(1), 5, new Uint8Array(1), new Float64Array(8))).toThrow(
      expect.objectContaining({ code: ErrorCodes.GPU_UNAVAILABLE }),
    );
    expect(s.kernelF64).toEqual(before);
    expect(() => addon.sandboxCheck(s.params)).toThrow(TypeError);
  }
});
