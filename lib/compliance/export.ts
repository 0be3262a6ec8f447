/**
 * Exports a report to a file: JSON (the documented schema), Markdown, HTML or
 * PDF. The report is checked against the schema first, so a hand-edited or
 * truncated report is refused rather than rendered. Files are written to a
 * temporary name beside the target (mode 0600) and renamed into place.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ValidateFunction } from 'ajv';
import { describe } from '../errors';
import { shown } from './check-helpers';
import schema from './report.schema.json';
import validateReportSchema from './report-schema.validate';
import { renderHtml } from './render-html';
import { renderMarkdown } from './render-markdown';
import { renderPdf } from './render-pdf';
import { EXPORT_FORMATS, type ComplianceReport, type ExportFormat } from './types';

/** The report's JSON Schema (draft-07), as shipped in lib/compliance/report.schema.json. */
export const COMPLIANCE_REPORT_SCHEMA: Readonly<Record<string, unknown>> = schema;

// Generated ahead of time by scripts/gen-validators.js (no code generation at run time).
const validator = validateReportSchema as unknown as ValidateFunction;

/** Throws a TypeError naming the first problem when `report` is not a valid report. */
export function validateReport(report: unknown): asserts report is ComplianceReport {
  if (!validator(report)) {
    const e = validator.errors?.[0];
    throw new TypeError(`Expected a compliance report but ${e ? `${e.instancePath || 'the report'} ${e.message}` : 'received something else'}`);
  }
  const r = report as ComplianceReport;
  const counts = { compliant: 0, non_compliant: 0, not_applicable: 0 };
  for (const c of r.checks) counts[c.status]++;
  const s = r.summary;
  if (s.total !== r.checks.length || s.compliant !== counts.compliant || s.non_compliant !== counts.non_compliant || s.not_applicable !== counts.not_applicable) {
    throw new TypeError('Expected a compliance report whose summary counts its checks, but they disagree');
  }
}

/** The bytes of `report` in `format`. */
export async function renderReport(report: ComplianceReport, format: ExportFormat): Promise<Buffer> {
  if (!EXPORT_FORMATS.includes(format)) throw new TypeError(`Expected one of ${EXPORT_FORMATS.join(', ')} for format but received ${shown(format)}`);
  validateReport(report);
  switch (format) {
    case 'json':
      return Buffer.from(JSON.stringify(report, null, 2) + '\n', 'utf8');
    case 'markdown':
      return Buffer.from(renderMarkdown(report), 'utf8');
    case 'html':
      return Buffer.from(renderHtml(report), 'utf8');
    case 'pdf':
      return renderPdf(report);
  }
}

/** Writes `report` as `format` to `file`; resolves to the absolute path written. */
export async function exportReport(report: ComplianceReport, format: ExportFormat, file: string): Promise<string> {
  if (typeof file !== 'string' || file.length === 0) throw new TypeError(`Expected a file path but received ${describe(file)}`);
  const bytes = await renderReport(report, format);
  const target = path.resolve(file);
  const tmp = `${target}.${process.pid}.${Date.now()}.tmp`;
  fs.writeFileSync(tmp, bytes, { mode: 0o600, flag: 'wx' });
  try {
    fs.renameSync(tmp, target);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  return target;
}
