/** The process sandbox's vocabulary, shared by the sandbox, the gate's quarantine mapping and the CLI. */

export type SandboxNetwork = 'none' | 'loopback' | 'host';

/** Why a sandboxed process ended. A file-size hit is a 'violation' whose `violations` entry names `fileSizeBytes`. */
export type SandboxReason = 'exit' | 'memory' | 'cpu' | 'wall' | 'processes' | 'violation' | 'killed';

export const SANDBOX_REASONS: readonly SandboxReason[] = ['exit', 'memory', 'cpu', 'wall', 'processes', 'violation', 'killed'];

export interface SandboxLimits {
  /** Memory. cgroup v2 `memory.max` (resident memory) where a delegated leaf exists, else RLIMIT_AS (address space, per process). */
  memoryBytes?: number;
  /** CPU time per process (RLIMIT_CPU: whole seconds, rounded up; the kernel checks about once per tick). */
  cpuMs?: number;
  /** Wall-clock time of the whole run; the process group is killed at the deadline. */
  wallMs?: number;
  /** Processes (and threads) at once: cgroup pids.max, or RLIMIT_NPROC inside a fresh user namespace. */
  processes?: number;
  /** Open file descriptors per process (RLIMIT_NOFILE). */
  openFiles?: number;
  /** Largest file a process may write (RLIMIT_FSIZE). */
  fileSizeBytes?: number;
}

export interface SandboxFilesystem {
  /** Readable (and executable) trees or files. */
  read?: string[];
  /** Readable and writable trees or files. */
  write?: string[];
  /**
   * Add the system's program and library directories read-only (/usr, /bin, /lib*, a few /etc
   * files the loader and libc read) and /dev/null, /dev/zero, /dev/urandom read-write. Default true.
   */
  system?: boolean;
}

/**
 * A confinement that may be weaker than asked, named explicitly by the caller:
 * - 'seccomp': run without the seccomp filter and no_new_privs where the kernel has none;
 * - 'filesystem': run without Landlock where the kernel has none (the allow lists are then not enforced);
 * - 'network': run on the host network where namespaces are unavailable;
 * - 'processes': run without a process limit where none can be enforced (e.g. uid 0 and no cgroup).
 * Landlock's signal scope (ABI 6) is applied where the kernel has it and reported in `enforcement.signals`.
 */
export type SandboxWeakening = 'seccomp' | 'filesystem' | 'network' | 'processes';
/** A mechanism the caller demands; 'cgroup': memory and processes through a cgroup v2 leaf (RSS, not address space). */
export type SandboxRequirement = 'cgroup';

/** What a quarantined agent may still run: the profile `gate.sandboxFor(agentId)` returns. */
export interface SandboxProfile {
  /** False: the agent may not run anything (isolation 'full'). */
  allowed: boolean;
  /** Why (the quarantine's isolation and reason), for messages. */
  reason?: string;
  /** Forced network mode ('none' under isolation 'network'). */
  network?: SandboxNetwork;
  /** True: no write paths (isolation 'filesystem'). */
  readOnly?: boolean;
}

/** How each confinement of a run is enforced (null: not enforced). */
export interface SandboxEnforcement {
  /** Linux: cgroup v2 memory.max (RSS) or RLIMIT_AS (address space); Windows: the job's committed memory. */
  memory: 'cgroup-v2' | 'rlimit-as' | 'job-object' | null;
  processes: 'cgroup-v2' | 'cgroup-v1-pids' | 'rlimit-nproc-userns' | 'job-object' | null;
  /** Windows: per-process user time. */
  cpu: 'rlimit-cpu' | 'job-object' | null;
  wall: 'timer' | null;
  openFiles: 'rlimit-nofile' | null;
  fileSize: 'rlimit-fsize' | null;
  filesystem: 'landlock' | 'sandbox-exec' | null;
  network: 'netns+landlock-tcp' | 'netns' | 'sandbox-exec' | null;
  syscalls: 'seccomp' | null;
  signals: 'landlock-scope' | 'sandbox-exec' | null;
  processTree: 'process-group' | 'job-object' | null;
}

export interface SandboxViolationRecord {
  /** 'seccomp': killed for a denied system call; 'limit': a limit was hit. */
  type: 'seccomp' | 'limit';
  /** For 'limit': which one (a key of SandboxLimits). */
  limit?: keyof SandboxLimits;
  detail: string;
}

export interface SandboxUsage {
  cpuMs: number;
  /** Largest resident set of the process or one of its reaped descendants (cgroup: memory.peak where present). */
  maxRssBytes: number;
  wallMs: number;
}

export interface SandboxResult {
  /** Exit status, or null when a signal ended it. */
  code: number | null;
  /** Signal name (e.g. 'SIGKILL'), or null. */
  signal: string | null;
  reason: SandboxReason;
  usage: SandboxUsage;
  violations: SandboxViolationRecord[];
  enforcement: SandboxEnforcement;
}
