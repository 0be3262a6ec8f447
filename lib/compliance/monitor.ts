/**
 * ComplianceMonitor: re-runs one standard's checks on an interval (an unref'd
 * timer, so it never keeps a process alive). When a check's status differs
 * from the previous run it appends a `compliance_status_changed` record to
 * the audit log and emits 'change'. The first run (at start) is the
 * baseline and reports nothing.
 *
 * Events: 'change' (ComplianceChange), 'report' (every ComplianceReport),
 * 'error' (a failed run or audit write; only emitted when someone listens,
 * otherwise kept in `lastError`).
 */
import { EventEmitter } from 'node:events';
import type { AuditLog } from '../audit/log';
import { describe } from '../errors';
import type { ComplianceContext, ComplianceReport, ComplianceStatus } from './types';

/**
 * What the monitor reads: ComplianceReporter (reporter.ts, which creates
 * monitors) is one; named here so the two files do not import each other.
 */
export interface ReportSource {
  readonly context: ComplianceContext;
  generate(standard: string): ComplianceReport;
}

export interface MonitorOptions {
  /** How often to re-run, in ms (at least 10). */
  intervalMs: number;
  /** Where change records go. Default: the context's audit log (audit.log, else the gate's). */
  audit?: AuditLog;
}

export interface ComplianceChange {
  standard: string;
  checkId: string;
  name: string;
  from: ComplianceStatus;
  to: ComplianceStatus;
  /** seq of the audit record written for this change (absent when no audit log is configured). */
  auditSeq?: number;
  report: ComplianceReport;
}

export class ComplianceMonitor extends EventEmitter {
  readonly standard: string;
  readonly intervalMs: number;
  readonly #reporter: ReportSource;
  readonly #audit: AuditLog | undefined;
  #timer: NodeJS.Timeout | null;
  #last: ComplianceReport;
  #lastError: Error | null = null;

  constructor(reporter: ReportSource, standard: string, options: MonitorOptions) {
    super();
    if (typeof options !== 'object' || options === null) throw new TypeError(`Expected monitor options { intervalMs } but received ${describe(options)}`);
    const { intervalMs, audit } = options;
    if (!Number.isSafeInteger(intervalMs) || intervalMs < 10 || intervalMs > 2 ** 31 - 1) {
      throw new RangeError(`Expected an integer in [10, ${2 ** 31 - 1}] for intervalMs but received ${describe(intervalMs)}`);
    }
    if (audit !== undefined && (typeof audit !== 'object' || audit === null || typeof (audit as AuditLog).append !== 'function')) {
      throw new TypeError(`Expected an AuditLog for audit but received ${describe(audit)}`);
    }
    this.standard = standard;
    this.intervalMs = intervalMs;
    this.#reporter = reporter;
    this.#audit = audit ?? reporter.context.audit?.log ?? reporter.context.gate?.audit;
    this.#last = reporter.generate(standard);
    this.#timer = setInterval(() => this.runNow(), intervalMs);
    this.#timer.unref();
  }

  /** The most recent report. */
  get lastReport(): ComplianceReport {
    return this.#last;
  }

  /** The last error of a run or an audit write, if nobody listened for 'error'. */
  get lastError(): Error | null {
    return this.#lastError;
  }

  get running(): boolean {
    return this.#timer !== null;
  }

  /** Runs the checks now (the timer does this every intervalMs); returns the changes found. */
  runNow(): ComplianceChange[] {
    let report: ComplianceReport;
    try {
      report = this.#reporter.generate(this.standard);
    } catch (err) {
      this.#fail(err);
      return [];
    }
    const before = new Map(this.#last.checks.map((c) => [c.id, c.status]));
    this.#last = report;
    const changes: ComplianceChange[] = [];
    for (const c of report.checks) {
      const from = before.get(c.id);
      if (from === undefined || from === c.status) continue;
      const change: ComplianceChange = { standard: this.standard, checkId: c.id, name: c.name, from, to: c.status, report };
      if (this.#audit !== undefined) {
        try {
          change.auditSeq = this.#audit.append('compliance_status_changed', c.status === 'non_compliant' ? 'warning' : 'info', {
            standard: this.standard,
            check_id: c.id,
            from,
            to: c.status,
            fingerprint: report.fingerprint,
            detail: c.finding ?? c.evidence ?? c.why ?? '',
          });
        } catch (err) {
          this.#fail(err);
        }
      }
      changes.push(change);
    }
    this.emit('report', report);
    for (const change of changes) this.emit('change', change);
    return changes;
  }

  /** Stops the timer. Idempotent. */
  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  #fail(err: unknown): void {
    const e = err instanceof Error ? err : new Error(String(err));
    this.#lastError = e;
    if (this.listenerCount('error') > 0) this.emit('error', e);
  }
}
