/** Compliance reports over a live guardkernel setup. */
export { ComplianceReporter } from './reporter';
export { ComplianceMonitor, type ComplianceChange, type MonitorOptions } from './monitor';
export { BUILTIN_CHECKS } from './checks';
export { STANDARDS, type StandardInfo } from './standards';
export { COMPLIANCE_REPORT_SCHEMA, validateReport, renderReport } from './export';
export { fingerprint as configurationFingerprint, inspectConfiguration } from './configuration';
export { loadComplianceConfig, type LoadedConfig } from './config';
export {
  STANDARD_IDS,
  STATUSES as COMPLIANCE_STATUSES,
  EXPORT_FORMATS,
  type AuditSettings,
  type CheckEnvironment,
  type ComplianceCheckResult,
  type ComplianceCheck,
  type ComplianceContext,
  type ComplianceReport,
  type ComplianceRequirements,
  type ComplianceStatus,
  type ExportFormat,
  type ReportCheck,
  type SandboxSettings,
  type ServerSettings,
  type StandardId,
} from './types';
