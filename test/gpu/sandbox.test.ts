// The K2K sandbox on the device: the CUDA build of cuda/sandbox_parallel.cuh
// against the reference model and the native checker
// (test/gpu/sandbox-suite.ts, at full sizes). Skipped without a GPU.
import { describe } from 'vitest';
import { backends } from '../../lib/index';
import { cudaSandboxSuite } from './sandbox-suite';

const onGpu = backends().gpu.kind === 'cuda';

describe.runIf(onGpu)('on the GPU', () => {
  cudaSandboxSuite('GPU', { seeds: 100, alternatingSeeds: 30, maxBatch: 100_000, bigBatch: 1 << 22 });
});
