/** What every export shows the same way: status labels and the lines of one check. */
import type { ComplianceStatus, ReportCheck } from './types';

export const STATUS_LABELS: Readonly<Record<ComplianceStatus, string>> = Object.freeze({
  compliant: 'COMPLIANT',
  non_compliant: 'NON-COMPLIANT',
  not_applicable: 'NOT APPLICABLE',
});

/** The labelled texts of a check, in display order: evidence, or finding and recommendation, or why. */
export function checkDetails(c: ReportCheck): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (c.evidence !== undefined) out.push(['Evidence', c.evidence]);
  if (c.finding !== undefined) out.push(['Finding', c.finding]);
  if (c.recommendation !== undefined) out.push(['Recommendation', c.recommendation]);
  if (c.why !== undefined) out.push(['Not applicable because', c.why]);
  return out;
}
