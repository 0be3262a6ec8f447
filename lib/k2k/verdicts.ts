/**
 * Verdict codes of `KernelSandbox.checkMessages`, one byte per message. The
 * numbers are part of the native and CUDA surface (cuda/sandbox_rules.cuh
 * defines the same values): never renumber, only append.
 */
export const SandboxVerdict = Object.freeze({
  allow: 0,
  unauthorized_k2k: 1,
  topic_denied: 2,
  connection_limit: 3,
  rate_limited: 4,
  memory_exceeded: 5,
  write_denied: 6,
  unknown_kernel: 7,
} as const);

export type SandboxVerdictName = keyof typeof SandboxVerdict;
export type SandboxVerdictCode = (typeof SandboxVerdict)[SandboxVerdictName];

/** Names indexed by code. */
export const VERDICT_NAMES: readonly SandboxVerdictName[] = Object.freeze(
  (Object.keys(SandboxVerdict) as SandboxVerdictName[]).sort((a, b) => SandboxVerdict[a] - SandboxVerdict[b]),
);

export const VERDICT_COUNT = VERDICT_NAMES.length;
