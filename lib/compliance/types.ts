/**
 * The compliance reporter's types: what a check is given (the context: the
 * live objects of a guardkernel setup), what it answers, and the report.
 */
import type { AuditLog } from '../audit/log';
import type { MemoryEncryption } from '../crypto/memory-encryption';
import type { Gate } from '../gate/gate';
import type { KernelSandbox } from '../k2k/sandbox';

/** The built-in standards. */
export const STANDARD_IDS = ['soc2', 'gdpr', 'hipaa', 'pci-dss', 'iso27001', 'fedramp', 'nist-csf'] as const;
export type StandardId = (typeof STANDARD_IDS)[number];

export const STATUSES = ['compliant', 'non_compliant', 'not_applicable'] as const;
export type ComplianceStatus = (typeof STATUSES)[number];

/** What a check answers. */
export type ComplianceCheckResult =
  | { status: 'compliant'; evidence: string }
  | { status: 'non_compliant'; finding: string; recommendation: string }
  | { status: 'not_applicable'; why: string };

/** The IPC server's settings, as the code that started it knows them. */
export interface ServerSettings {
  /** The socket file; its mode is read from the file itself when it exists. */
  socketPath: string;
  /** The mode the server was asked to give the socket (used when the file is absent). */
  socketMode?: number;
  /** Whether clients must `auth` before any other method. */
  authEnabled: boolean;
  /** Where the permit HMAC secret came from: generated (random, stored 0600) or supplied (env or an operator's file). */
  secretSource: 'generated' | 'supplied';
  /** The secret's file, when it lives in one: its mode is checked too. */
  secretFile?: string;
}

export interface AuditSettings {
  /** The live log (its health is checked), when there is one. */
  log?: AuditLog;
  /** The log file, verified now with `AuditLog.verify(file, key)`. */
  file: string;
  /** The audit HMAC key. */
  key: Uint8Array | string;
  /** How long records (rotated files included) are kept, in days; Infinity: forever. */
  retentionDays?: number;
}

export interface SandboxSettings {
  /** The sandbox untrusted kernels run in. */
  sandbox: KernelSandbox;
  /** Names of the kernels that are untrusted (they must run under a restrictive policy). */
  untrustedKernels: readonly string[];
}

/** Thresholds; each has a default (see README, "Compliance reports"). */
export interface ComplianceRequirements {
  /** Longest acceptable memory-encryption key age before rotation, ms. Default 90 days. */
  maxKeyAgeMs?: number;
  /** Shortest acceptable audit retention, days. Default: per standard (365; HIPAA 2190; FedRAMP 913; GDPR none). */
  minRetentionDays?: number;
}

/** Everything the checks inspect. Every part is optional: a check with nothing to inspect answers not_applicable or non_compliant as documented. */
export interface ComplianceContext {
  gate?: Gate;
  server?: ServerSettings;
  memoryEncryption?: MemoryEncryption;
  /**
   * false: this setup moves no data to device memory (e.g. `guardkernel
   * serve`), so the memory-encryption checks do not apply. Default true: a
   * missing memoryEncryption is a finding.
   */
  deviceMemory?: boolean;
  sandbox?: SandboxSettings;
  audit?: AuditSettings;
  requirements?: ComplianceRequirements;
}

/** Passed to every check beside the context. */
export interface CheckEnvironment {
  /** The standard being reported on. */
  standard: string;
  /** Milliseconds since the epoch of this run. */
  now: number;
}

/** A check: built in, or added with `reporter.addCheck`. */
export interface ComplianceCheck {
  /** Unique id: lower-case letters, digits, '-', '_' and '.', 1 to 64 characters. */
  id: string;
  name: string;
  description: string;
  /** The standard(s) it belongs to: built-in ids or custom names (same id syntax). */
  standard: string | readonly string[];
  /** The control ids it evidences, per standard or for all of them. */
  controls?: readonly string[] | Readonly<Record<string, readonly string[]>>;
  /** Inspects the context; synchronous. A throw is reported as non_compliant. */
  check(context: ComplianceContext, env: CheckEnvironment): ComplianceCheckResult;
}

/** A built-in check before its standards and controls are attached (lib/compliance/checks.ts). */
export type CheckDefinition = Omit<ComplianceCheck, 'standard' | 'controls'>;

/** One check's line in a report. */
export interface ReportCheck {
  id: string;
  name: string;
  description: string;
  status: ComplianceStatus;
  controls: string[];
  evidence?: string;
  finding?: string;
  recommendation?: string;
  why?: string;
}

export interface ComplianceReport {
  /** The JSON schema this report follows (lib/compliance/report.schema.json). */
  schema: 'guardkernel-compliance-report/1';
  standard: string;
  standardName: string;
  /** ISO 8601, UTC. */
  generatedAt: string;
  guardkernelVersion: string;
  /** "sha256:" + hex SHA-256 of the canonical JSON (RFC 8785) of `configuration`. */
  fingerprint: string;
  summary: { total: number; compliant: number; non_compliant: number; not_applicable: number };
  checks: ReportCheck[];
  /** What was inspected (no secrets); null means unlimited or never. */
  configuration: Record<string, unknown>;
}

export type ExportFormat = 'json' | 'html' | 'markdown' | 'pdf';
export const EXPORT_FORMATS: readonly ExportFormat[] = ['json', 'html', 'markdown', 'pdf'];
