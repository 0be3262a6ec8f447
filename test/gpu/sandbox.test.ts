// The K2K sandbox on the device: the CUDA build of cuda/sandbox_parallel.cuh
// against the reference model and the native checker. Skipped without a GPU.
import { describe, expect, test } from 'vitest';
import { KernelSandbox, ResourceLimits, SandboxPolicy, backends } from '../../lib/index';
import { core, rng } from '../helpers';
import { compareWithModel, randomBatch } from '../sandbox-model';

const onGpu = backends().gpu.kind === 'cuda';

describe.runIf(onGpu)('K2K sandbox on CUDA', () => {
  test('matches the reference model on 1,200 random batches with carried state', () => {
    for (let seed = 1; seed <= 100; seed++) {
      const r = compareWithModel(seed, rng(seed + 104729), () => 'cuda', { batches: 12, maxSize: 100_000, largeEvery: 6 });
      expect(r.mismatch).toBeNull();
    }
  }, 600_000);

  test.runIf(core !== null)('state carries over when batches alternate between CUDA and native', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const r = compareWithModel(seed, rng(seed * 13 + 1), (i) => (i % 2 === 0 ? 'cuda' : 'native'), { batches: 12, maxSize: 100_000, largeEvery: 4 });
      expect(r.mismatch).toBeNull();
    }
  }, 600_000);

  test.runIf(core !== null)('a 4M-message batch gives the native checker’s verdicts exactly', () => {
    const make = (): KernelSandbox => {
      const box = new KernelSandbox(new ResourceLimits().maxMessagesPerSecond(2000).maxK2kConnections(8).maxMemoryBytes(1 << 20), SandboxPolicy.permissive().denyK2kTo(['k1*']));
      for (let k = 0; k < 300; k++) box.registerKernel(`k${k}`);
      box.registerTopic('t');
      return box;
    };
    const a = make();
    const b = make();
    const batch = randomBatch(rng(5), 1 << 22, 300, 1);
    const onDevice = a.checkMessages(batch, 1000, { backend: 'cuda' });
    const onCpu = b.checkMessages(batch, 1000, { backend: 'native' });
    expect(Buffer.from(onDevice.verdicts).equals(Buffer.from(onCpu.verdicts))).toBe(true);
    expect(onDevice.violations).toEqual(onCpu.violations);
    for (let k = 0; k < 300; k++) expect(a.usage(k)).toEqual(b.usage(k));
  }, 600_000);
});
