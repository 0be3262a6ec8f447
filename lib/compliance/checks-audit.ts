/**
 * Built-in checks on the audit log: on (and written by the gate), its chain
 * verifying now, and a retention period long enough for the standard.
 */
import fs from 'node:fs';
import { AuditLog } from '../audit/log';
import { compliant, nonCompliant } from './check-helpers';
import { STANDARDS } from './standards';
import type { CheckDefinition, ComplianceContext, StandardId } from './types';

/** The log file and key the context names: the audit settings, else the gate's log (no key then). */
function auditTarget(ctx: ComplianceContext): { file: string; key?: Uint8Array | string; log?: AuditLog } | null {
  if (ctx.audit !== undefined) return { file: ctx.audit.file, key: ctx.audit.key, log: ctx.audit.log ?? ctx.gate?.audit };
  if (ctx.gate?.audit !== undefined) return { file: ctx.gate.audit.file, log: ctx.gate.audit };
  return null;
}

const auditLog: CheckDefinition = {
  id: 'audit-log',
  name: 'Audit log is on',
  description: 'An audit log file exists, the live log (if any) is healthy, and the gate writes its decisions to that same log.',
  check(ctx) {
    const t = auditTarget(ctx);
    if (t === null) return nonCompliant('No audit log is configured: decisions and security events are not recorded.', 'Give the Gate an AuditLog (guardkernel serve always does) and pass its file and key to the reporter as audit.');
    if (ctx.gate !== undefined && ctx.gate.audit === undefined) {
      return nonCompliant('The gate has no audit log: its decisions are not recorded.', 'Construct the Gate with audit: an AuditLog.');
    }
    if (ctx.gate?.audit !== undefined && ctx.gate.audit.file !== t.file) {
      return nonCompliant(`The gate writes to ${ctx.gate.audit.file}, not to the audit file under review (${t.file}).`, 'Point the reporter at the log the gate writes.');
    }
    if (t.log !== undefined && !t.log.healthy) {
      return nonCompliant(`The audit log cannot be written: ${t.log.lastError?.message ?? 'unknown error'}.`, 'Fix the file system problem; records stay buffered until a write succeeds.');
    }
    if (!fs.existsSync(t.file)) return nonCompliant(`The audit file ${t.file} does not exist.`, 'Start the service with its audit log, or correct the path.');
    const live = t.log !== undefined ? `; live log at seq ${t.log.seq}${t.log.required ? ', required (the gate denies when it cannot write)' : ''}` : '';
    const gate = ctx.gate !== undefined ? '; the gate records every decision there' : '';
    return compliant(`Audit log ${t.file}${live}${gate}.`);
  },
};

const auditIntegrity: CheckDefinition = {
  id: 'audit-integrity',
  name: 'Audit log is chained and verifies now',
  description: 'AuditLog.verify(file, key) is run now, after flushing the live log: the chain from its genesis, every record MAC, every line byte for byte canonical, and the signed head checkpoint (required) must verify.',
  check(ctx) {
    const t = auditTarget(ctx);
    if (t === null) return nonCompliant('No audit log is configured, so there is no chain to verify.', 'Configure an audit log (see the audit-log check).');
    if (t.key === undefined) return nonCompliant(`The audit key of ${t.file} was not given to the reporter, so the chain cannot be verified.`, 'Pass audit: { file, key } to the reporter.');
    try {
      t.log?.flush();
    } catch (err) {
      return nonCompliant(`Buffered audit records could not be written before verifying: ${(err as Error).message}.`, 'Fix the file system problem, then report again.');
    }
    let v: ReturnType<typeof AuditLog.verify>;
    try {
      v = AuditLog.verify(t.file, t.key);
    } catch (err) {
      return nonCompliant(`${t.file} could not be verified: ${(err as Error).message}.`, 'Check the path and the key.');
    }
    if (!v.ok && v.reason === 'wrong_key') {
      // Not evidence of tampering: the reporter holds another key than the log's.
      return nonCompliant(
        `${t.file} fails verification with the key given: the log was written with key id ${v.keyId}, the reporter's key has id ${AuditLog.keyId(t.key)} (the wrong key, not a tampered log).`,
        'Give the reporter the audit key this log was written with, then report again.',
      );
    }
    if (!v.ok) {
      const where = v.firstBad === undefined ? '' : ` at line ${v.firstBad.line}${v.firstBad.seq === undefined ? '' : ` (seq ${v.firstBad.seq})`}: ${v.firstBad.reason}`;
      return nonCompliant(
        `${t.file} fails verification${where}; ${v.records} record(s) verify, up to seq ${v.lastGoodSeq}.`,
        'Treat the log as tampered with: preserve the file and its .head for investigation, and restore the service from a trusted state.',
      );
    }
    return compliant(`${t.file}: ${v.records} record(s) verified now, chained and MAC-sealed up to seq ${v.lastGoodSeq}, head checkpoint consistent.`);
  },
};

function retentionRule(ctx: ComplianceContext, standard: string): { minDays: number; finite: boolean; basis: string } {
  const base = STANDARDS[standard as StandardId]?.retention ?? { minDays: 365, finite: false, basis: 'default for custom standards' };
  const override = ctx.requirements?.minRetentionDays;
  return override === undefined ? base : { minDays: override, finite: base.finite, basis: 'requirements.minRetentionDays' };
}

const auditRetention: CheckDefinition = {
  id: 'audit-retention',
  name: 'Audit retention meets the standard',
  description: 'audit.retentionDays (how long records, rotated files included, are kept) is set and at least the standard\'s minimum (365 days; HIPAA 2190; FedRAMP 913; GDPR: any finite period).',
  check(ctx, env) {
    const rule = retentionRule(ctx, env.standard);
    const t = auditTarget(ctx);
    if (t === null) return nonCompliant('No audit log is configured, so nothing is retained.', 'Configure an audit log and its retention.');
    // A live log that deletes old rotations enforces its period; otherwise the declared one is all there is.
    const enforced = t.log !== undefined && t.log.retentionDays !== Infinity ? t.log.retentionDays : undefined;
    const days = enforced ?? ctx.audit?.retentionDays;
    const how = enforced !== undefined ? 'enforced: the log deletes older rotated files' : 'declared: guardkernel deletes nothing';
    const asked = rule.minDays > 0 ? `at least ${rule.minDays} days` : 'a defined period';
    if (days === undefined) return nonCompliant('No audit retention period is configured.', `Set audit.retentionDays (guardkernel serve --audit-retention-days) to ${asked} (${rule.basis}).`);
    if (typeof days !== 'number' || Number.isNaN(days) || days <= 0) {
      return nonCompliant(`The audit retention period ${String(days)} is not a positive number of days.`, `Set audit.retentionDays to ${asked}.`);
    }
    if (days === Infinity) {
      if (rule.finite) return nonCompliant('Audit records are kept forever; this standard asks for a defined, finite period.', `Set audit.retentionDays to a finite period (${rule.basis}).`);
      return compliant(`Audit records are kept indefinitely (minimum ${rule.minDays} days: ${rule.basis}).`);
    }
    if (days < rule.minDays) return nonCompliant(`Audit records are kept ${days} days (${how}), less than the ${rule.minDays} required (${rule.basis}).`, `Keep audit files at least ${rule.minDays} days.`);
    return compliant(`Audit records are kept ${days} days (${how}; minimum ${rule.minDays}: ${rule.basis}).`);
  },
};

export const AUDIT_CHECKS: readonly CheckDefinition[] = [auditLog, auditIntegrity, auditRetention];
