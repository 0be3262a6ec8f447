// What the package does when the CUDA addon is present but a device call
// fails (driver reset, out of memory): simulated with a fake addon whose
// calls throw the addon's coded error. 'auto' answers on the CPU with the
// state untouched; an explicit 'cuda' is a GuardError, never a crash or a
// silent wrong answer.
import { expect, test, vi } from 'vitest';
// vi.mock below is hoisted above these imports, so the package sees the fake GPU.
import { CUDA_MIN_BATCH, ErrorCodes, GuardError, KernelSandbox, MemoryEncryption, SandboxPolicy, aead } from '../lib';
import { coreAddon } from '../lib/native/loader';

const { calls, failing } = vi.hoisted(() => ({
  calls: { sandbox: 0, gcm: 0 },
  failing: (): never => {
    throw Object.assign(new Error('CUDA sandbox check failed: cudaErrorMemoryAllocation'), { code: 'ERR_GPU_UNAVAILABLE' });
  },
}));

vi.mock('../lib/native/loader', async (importOriginal) => {
  const original = await importOriginal<typeof import('../lib/native/loader')>();
  const addon = {
    sandboxCheck: () => {
      calls.sandbox++;
      failing();
    },
    gcmSeal: () => {
      calls.gcm++;
      failing();
    },
    gcmOpen: failing,
    sealBlocks: failing,
    openBlocks: failing,
  };
  return { ...original, gpuBackend: () => ({ kind: 'cuda', devices: [], addon }) };
});


test('sandbox: a failing device call falls back under auto, is ERR_GPU_UNAVAILABLE under cuda, and changes no state', () => {
  const box = new KernelSandbox({ maxMessagesPerSecond: 1 }, SandboxPolicy.permissive());
  const a = box.registerKernel('a');
  box.registerKernel('b');
  box.registerTopic('t');
  const n = CUDA_MIN_BATCH;
  const batch = { src: new Uint32Array(n).fill(a), dst: new Uint32Array(n).fill(1), topic: new Uint32Array(n), bytes: new Uint32Array(n) };
  let caught: unknown;
  try {
    box.checkMessages(batch, 10, { backend: 'cuda' });
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(GuardError);
  expect((caught as InstanceType<typeof GuardError>).code).toBe(ErrorCodes.GPU_UNAVAILABLE);
  expect(box.usage('a').tokens).toBe(1); // nothing spent
  const r = box.checkMessages(batch, 10);
  expect(calls.sandbox).toBe(2);
  expect(r.backend).toBe(coreAddon() !== null ? 'native' : 'js');
  expect(r.verdicts[0]).toBe(0);
  expect(r.verdicts[1]).toBe(4); // rate_limited: one token at 1 msg/s
});

test('aead and MemoryEncryption: a failing device call is a GuardError', () => {
  const code = (fn: () => unknown): unknown => {
    try {
      fn();
    } catch (e) {
      return e instanceof GuardError ? e.code : e;
    }
    return undefined;
  };
  expect(code(() => aead.seal('aes-256-gcm', Buffer.alloc(32), Buffer.alloc(12), Buffer.alloc(10), undefined, { backend: 'cuda' }))).toBe(ErrorCodes.GPU_UNAVAILABLE);
  expect(calls.gcm).toBe(1);
  const enc = new MemoryEncryption({ key: Buffer.alloc(32, 1), device: 'cuda' });
  expect(enc.stats().device).toBe('cuda');
  expect(code(() => enc.encrypt(Buffer.alloc(10)))).toBe(ErrorCodes.GPU_UNAVAILABLE);
  expect(code(() => enc.encryptBlocks(Buffer.alloc(64), 16))).toBe(ErrorCodes.GPU_UNAVAILABLE);
});
