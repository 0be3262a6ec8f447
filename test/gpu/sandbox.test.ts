// The K2K sandbox on the device: the CUDA build of cuda/sandbox_parallel.cuh
// against the reference model and the native checker
// (test/gpu/sandbox-suite.ts, at full sizes). Skipped without a GPU.
import { describe } from 'vitest';
import { backends } from '../../lib/index';
import { skipWithout } from '../prerequisites';
import { cudaSandboxSuite } from './sandbox-suite';

const onGpu = !skipWithout('a CUDA GPU', backends().gpu.kind === 'cuda' ? null : (backends().gpu.reason ?? 'CPU backend'), 'GUARDKERNEL_REQUIRE_GPU');

describe.runIf(onGpu)('on the GPU', () => {
  cudaSandboxSuite('GPU', { seeds: 100, alternatingSeeds: 30, maxBatch: 100_000, bigBatch: 1 << 22 });
});
