/** The OS-level process sandbox: what the gate allowed runs confined (docs/sandbox.md). */
export {
  ProcessSandbox,
  DEFAULT_ENV_ALLOW,
  SYSTEM_READ_PATHS,
  SYSTEM_WRITE_PATHS,
  type ProcessSandboxOptions,
  type SandboxCapabilities,
  type SandboxSpawnOptions,
  type SandboxedProcess,
  type StdioEntry,
} from './process';
export {
  SANDBOX_REASONS,
  type SandboxEnforcement,
  type SandboxFilesystem,
  type SandboxLimits,
  type SandboxNetwork,
  type SandboxProfile,
  type SandboxReason,
  type SandboxRequirement,
  type SandboxResult,
  type SandboxUsage,
  type SandboxViolationRecord,
  type SandboxWeakening,
} from './types';
export { applySandboxProfile } from './profile';
