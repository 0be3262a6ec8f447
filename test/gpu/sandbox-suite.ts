// The K2K sandbox's CUDA backend against the reference model and the native
// checker, written once for two runners: test/gpu/sandbox.test.ts on a real
// device and test/cuda-emulated.test.ts on the CPU emulator.
import { describe, expect, test } from 'vitest';
import { KernelSandbox, ResourceLimits, SandboxPolicy } from '../../lib/index';
import { core, rng } from '../helpers';
import { compareWithModel, randomBatch } from '../sandbox-model';

export interface SandboxSizes {
  /** Seeds of 12 random batches each, against the model. */
  seeds: number;
  /** Seeds whose batches alternate between CUDA and native. */
  alternatingSeeds: number;
  maxBatch: number;
  /** One batch this large against the native checker. */
  bigBatch: number;
}

export function cudaSandboxSuite(name: string, sizes: SandboxSizes): void {
  describe(`${name}: K2K sandbox on CUDA`, () => {
    test(`matches the reference model on ${sizes.seeds * 12} random batches with carried state`, () => {
      for (let seed = 1; seed <= sizes.seeds; seed++) {
        const r = compareWithModel(seed, rng(seed + 104729), () => 'cuda', { batches: 12, maxSize: sizes.maxBatch, largeEvery: 6 });
        expect(r.mismatch).toBeNull();
      }
    }, 600_000);

    test.runIf(core !== null)('state carries over when batches alternate between CUDA and native', () => {
      for (let seed = 1; seed <= sizes.alternatingSeeds; seed++) {
        const r = compareWithModel(seed, rng(seed * 13 + 1), (i) => (i % 2 === 0 ? 'cuda' : 'native'), { batches: 12, maxSize: sizes.maxBatch, largeEvery: 4 });
        expect(r.mismatch).toBeNull();
      }
    }, 600_000);

    test.runIf(core !== null)(`a ${sizes.bigBatch}-message batch gives the native checker’s verdicts exactly`, () => {
      const make = (): KernelSandbox => {
        const box = new KernelSandbox(new ResourceLimits().maxMessagesPerSecond(2000).maxK2kConnections(8).maxMemoryBytes(1 << 20), SandboxPolicy.permissive().denyK2kTo(['k1*']));
        for (let k = 0; k < 300; k++) box.registerKernel(`k${k}`);
        box.registerTopic('t');
        return box;
      };
      const a = make();
      const b = make();
      const batch = randomBatch(rng(5), sizes.bigBatch, 300, 1);
      const onDevice = a.checkMessages(batch, 1000, { backend: 'cuda' });
      const onCpu = b.checkMessages(batch, 1000, { backend: 'native' });
      expect(Buffer.from(onDevice.verdicts).equals(Buffer.from(onCpu.verdicts))).toBe(true);
      expect(onDevice.violations).toEqual(onCpu.violations);
      for (let k = 0; k < 300; k++) expect(a.usage(k)).toEqual(b.usage(k));
    }, 600_000);
  });
}
