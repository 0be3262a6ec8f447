/**
 * Typed violations returned by `KernelSandbox.checkViolations(kernel)`, one
 * per kind, for what happened since the previous call for that kernel (and,
 * for recorded usage, what is over its limit now). `count` is how many
 * messages were refused for that reason since the previous call (0 for a
 * usage-based violation).
 */
export type SandboxViolation =
  | { type: 'MemoryExceeded'; kernel: string; used: number; limit: number; count: number }
  | { type: 'ExecutionTimeout'; kernel: string; elapsed: number; limit: number; count: number }
  | { type: 'UnauthorizedK2K'; kernel: string; target: string; count: number }
  | { type: 'RateLimitExceeded'; kernel: string; rate: number; count: number }
  | { type: 'ConnectionLimitExceeded'; kernel: string; limit: number; count: number }
  | { type: 'TopicDenied'; kernel: string; topic: string; count: number }
  | { type: 'WriteDenied'; kernel: string; count: number }
  | { type: 'UnknownKernel'; kernel: string; count: number };

export type SandboxViolationType = SandboxViolation['type'];

/** Summary of one `checkMessages` call. */
export interface ViolationSummary {
  /** Messages refused. */
  total: number;
  /** Messages per verdict name (allow included). */
  byVerdict: Record<string, number>;
}
