/**
 * guardkernel: a security kernel for Node services.
 * Public API; see README.md for the guide and `backends()` for what is active.
 */
export { GuardError, ErrorCodes, type ErrorCode } from './errors';
export { backends, type Backends, type CoreBackend, type GpuBackend } from './native/loader';
export { sha256, sha256Hex, hmacSha256, hmacSha256Hex, HmacKey, DIGEST_BYTES, type BinaryLike } from './crypto/hash';
export {
  canonicalize,
  canonicalizeJson,
  carHash,
  isCarHash,
  DEFAULT_MAX_BYTES,
  DEFAULT_MAX_DEPTH,
  type Car,
  type CanonicalizeOptions,
} from './canonical/car';
export { gpuDevices, gpuSelfTest, type GpuDevice } from './native/gpu';
export { VERSION } from './version';
export { ReplayDetector, DEFAULT_REPLAY_CAPACITY, MAX_NONCE_LENGTH, type ReplayStatus, type ReplayStats, type ReplayDetectorOptions } from './permits/replay';
export { DecisionCache, DEFAULT_CACHE_CAPACITY, DEFAULT_CACHE_TTL_MS, type CacheEntry, type CachePutValue, type CacheStats, type CachedDecisionKind, type DecisionCacheOptions } from './gate/cache';
export {
  Keyring,
  MIN_SECRET_BYTES,
  MAX_PERMIT_LENGTH,
  MAX_PERMIT_TTL_MS,
  type IssueRequest,
  type IssuedPermit,
  type KeyringOptions,
  type PermitClaims,
  type PermitRejection,
  type PermitUse,
  type PermitVerification,
  type ReplayStore,
} from './permits/keyring';
export { VelocityGuard, DEFAULT_MAX_BUCKETS, type VelocityGuardOptions, type VelocityVerdict, type VelocityScope, type VelocityStats } from './gate/velocity';
export {
  AuditLog,
  SECURITY_EVENT_TYPES,
  GENESIS_MAC,
  FileAuditAnchor,
  TRUNCATED_HEAD_CHARS,
  type AuditAnchor,
  type AuditAnchorState,
  type AuditFailure,
  type AuditLogOptions,
  type AuditRecord,
  type AuditVerification,
  type AuditVerifyOptions,
  type SecurityEventType,
  type Severity,
  type TruncatedValue,
} from './audit/log';
export { compileGlob, type CompiledGlob } from './policy/glob';
export {
  Quarantine,
  ISOLATION_SCOPES,
  type QuarantineStatus,
  type IsolationScope,
  type ForensicLevel,
  type QuarantineRecord,
  type QuarantineAnalysis,
  type QuarantineOptions,
  type QuarantineTrace,
} from './gate/quarantine';
export { PolicyEngine, type PolicyDecision, type PolicyEngineOptions, type PolicyInput, type Mode, type OnViolation } from './policy/engine';
export { FleetStore, type FleetStoreStatus, type OnStoreError, type RedisStoreSpec, type StoreOption } from './fleet/store';
export { RedisAuditAnchor } from './fleet/audit-anchor';
export { Gate, type GateDecision, type GateOptions, type GateRequest, type GateSource } from './gate/gate';
export { ApprovalBook, type ApprovalBookOptions, type WaitOptions as ApprovalWaitOptions } from './gate/approvals/book';
export { FleetApprovalBook } from './gate/approvals/fleet-book';
export { ApprovalWebhook, signWebhook, verifyWebhookSignature, type ApprovalWebhookOptions } from './gate/approvals/webhook';
export type { ApprovalEvent, ApprovalRequest, ApprovalStatus, ApprovalVote, ApprovalWaitResult } from './gate/approvals/types';
export { GuardServer, type GuardServerOptions } from './ipc/server';
export { GuardClient, RpcCallError, type GuardClientOptions } from './ipc/client';
export { SERVICE_METHODS, type ServiceContext } from './ipc/methods';
export {
  KernelSandbox,
  ResourceLimits,
  SandboxPolicy,
  SandboxVerdict,
  VERDICT_NAMES,
  CUDA_MIN_BATCH,
  type CheckResult,
  type KernelSandboxOptions,
  type KernelUsage,
  type MemoryAccess,
  type MessageColumns,
  type ResourceLimitsInit,
  type SandboxBackend,
  type SandboxVerdictName,
  type SandboxViolation,
  type ViolationSummary,
} from './k2k';
export {
  ProcessSandbox,
  DEFAULT_ENV_ALLOW,
  SANDBOX_REASONS,
  type ProcessSandboxOptions,
  type SandboxCapabilities,
  type SandboxEnforcement,
  type SandboxFilesystem,
  type SandboxLimits,
  type SandboxNetwork,
  type SandboxProfile,
  type SandboxReason,
  type SandboxRequirement,
  type SandboxResult,
  type SandboxSpawnOptions,
  type SandboxUsage,
  type SandboxViolationRecord,
  type SandboxWeakening,
  type SandboxedProcess,
} from './sandbox';
export {
  MemoryEncryption,
  DeviceBuffer,
  type MemoryEncryptionOptions,
  type MemoryEncryptionStats,
  type PasswordKdf,
  type PasswordOptions,
  type DeviceKind,
  aead, kdf, AEAD_ALGORITHMS, type AeadAlgorithm, type AeadBackend, type AeadOptions, type Sealed, type Argon2idOptions, type HkdfHash } from './crypto';
export { type VelocityLimits } from './gate/velocity';
export { type MemoryEncryptionSettings, type ResolvedPasswordKdf } from './crypto';
export {
  ComplianceReporter,
  ComplianceMonitor,
  BUILTIN_CHECKS,
  STANDARDS,
  STANDARD_IDS,
  COMPLIANCE_STATUSES,
  EXPORT_FORMATS,
  COMPLIANCE_REPORT_SCHEMA,
  validateReport,
  renderReport,
  configurationFingerprint,
  inspectConfiguration,
  loadComplianceConfig,
  type LoadedConfig,
  type AuditSettings,
  type CheckEnvironment,
  type ComplianceCheckResult,
  type ComplianceChange,
  type ComplianceCheck,
  type ComplianceContext,
  type ComplianceReport,
  type ComplianceRequirements,
  type ComplianceStatus,
  type ExportFormat,
  type MonitorOptions,
  type ReportCheck,
  type SandboxSettings,
  type ServerSettings,
  type StandardId,
  type StandardInfo,
} from './compliance';
