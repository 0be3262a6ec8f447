/** A report as Markdown: every text escaped so a check's words cannot become markup. */
import { STATUS_LABELS, checkDetails } from './present';
import type { ComplianceReport } from './types';

/**
 * Escapes Markdown and inline HTML; newlines become spaces (a table cell or
 * heading is one line). Texts never start a line, so '-', '+' and '1.' stay, and with
 * '[' and ']' escaped no '(' can make a link.
 */
export function escapeMarkdown(text: string): string {
  return text
    .replace(/[\r\n]+/g, ' ')
    .replace(/[\\`*_[\]#!|<>~&]/g, (c) => (c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '&' ? '&amp;' : '\\' + c));
}

export function renderMarkdown(report: ComplianceReport): string {
  const e = escapeMarkdown;
  const s = report.summary;
  const lines: string[] = [
    `# Compliance report: ${e(report.standardName)}`,
    '',
    `- Standard: ${e(report.standard)}`,
    `- Generated: ${e(report.generatedAt)}`,
    `- Configuration fingerprint: \`${report.fingerprint.replace(/`/g, '')}\``,
    `- guardkernel: ${e(report.guardkernelVersion)}`,
    '',
    '## Summary',
    '',
    '| Status | Checks |',
    '| --- | ---: |',
    `| ${STATUS_LABELS.compliant} | ${s.compliant} |`,
    `| ${STATUS_LABELS.non_compliant} | ${s.non_compliant} |`,
    `| ${STATUS_LABELS.not_applicable} | ${s.not_applicable} |`,
    `| Total | ${s.total} |`,
    '',
    '| Check | Controls | Status |',
    '| --- | --- | --- |',
    ...report.checks.map((c) => `| ${e(c.name)} | ${e(c.controls.join(', '))} | ${STATUS_LABELS[c.status]} |`),
    '',
    '## Checks',
  ];
  for (const c of report.checks) {
    lines.push('', `### ${e(c.name)}: ${STATUS_LABELS[c.status]}`, '', `- Id: ${e(c.id)}`, `- Controls: ${e(c.controls.join(', ') || 'none')}`);
    if (c.description !== '') lines.push(`- Inspects: ${e(c.description)}`);
    for (const [label, text] of checkDetails(c)) lines.push(`- ${label}: ${e(text)}`);
  }
  return lines.join('\n') + '\n';
}
