/** K2K sandbox: limits and kernel-to-kernel policy for GPU actors. */
export { KernelSandbox, CUDA_MIN_BATCH, NATIVE_MIN_BATCH, MAX_BATCH, type CheckOptions, type CheckResult, type KernelSandboxOptions, type KernelUsage, type SandboxBackend } from './sandbox';
export { ResourceLimits, LIMIT_MAXIMA, type ResourceLimitsInit } from './limits';
export { SandboxPolicy, compileNamePattern, type MemoryAccess } from './policy';
export { SandboxVerdict, VERDICT_NAMES, type SandboxVerdictCode, type SandboxVerdictName } from './verdicts';
export type { SandboxViolation, SandboxViolationType, ViolationSummary } from './violations';
export type { MessageColumns } from './check-js';
