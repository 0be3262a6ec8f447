// AES-GCM on the device: the CUDA kernels against node:crypto, and
// MemoryEncryption's block envelopes sealed with one launch against the CPU
// path (test/gpu/crypto-suite.ts, at full sizes). Skipped without a GPU.
import { describe } from 'vitest';
import { backends } from '../../lib/index';
import { skipWithout } from '../prerequisites';
import { cudaCryptoSuite } from './crypto-suite';

const onGpu = !skipWithout('a CUDA GPU', backends().gpu.kind === 'cuda' ? null : (backends().gpu.reason ?? 'CPU backend'), 'GUARDKERNEL_REQUIRE_GPU');

describe.runIf(onGpu)('on the GPU', () => {
  cudaCryptoSuite('GPU', {
    randomInputs: 2000,
    // 128 KiB is one block of 256 GHASH threads (32 blocks of 16 bytes each);
    // past 256 MiB the CTR kernel's grid (65,535 blocks of 256 threads) strides.
    largeMessages: [128 << 10, (128 << 10) + 1, (1 << 20) + 3, (9 << 20) + 5, (64 << 20) - 1, (260 << 20) + 7],
    // 600,000 × 16 B: 32 blocks a warp; 530,000 × 512 B: more blocks than the grid's 65,535 × 8 warps.
    blockCases: [[17, 1001], [40, 999], [100, 333], [257, 300], [513, 300], [8213, 100], [100_000, 9], [16, 600_000], [512, 530_000]],
    envelopeSizes: [0, 1, 15, 16, 1000, 1 << 20],
  });
});
