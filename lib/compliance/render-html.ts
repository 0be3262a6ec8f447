/**
 * A report as one self-contained HTML page: inline style, no script, no
 * reference to anything outside the file, every text escaped.
 */
import { STATUS_LABELS, checkDetails } from './present';
import type { ComplianceReport } from './types';

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const STYLE = `
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #1b1b1b; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: .25rem; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
dl.meta dt { font-weight: 600; }
code { font-family: ui-monospace, monospace; word-break: break-all; }
table { border-collapse: collapse; margin: 1rem 0; width: 100%; }
th, td { border: 1px solid #c8c8c8; padding: .35rem .6rem; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
.status { font-weight: 700; white-space: nowrap; }
.compliant { color: #136f2a; }
.non_compliant { color: #b3261e; }
.not_applicable { color: #5f5f5f; }
section.check { border-top: 1px solid #c8c8c8; padding-top: .5rem; margin-top: 1rem; }
section.check h3 { margin: .3rem 0; font-size: 1.1rem; }
`;

export function renderHtml(report: ComplianceReport): string {
  const e = escapeHtml;
  const s = report.summary;
  const status = (st: keyof typeof STATUS_LABELS) => `<span class="status ${st}">${STATUS_LABELS[st]}</span>`;
  const rows = report.checks.map((c) => `<tr><td>${e(c.name)}</td><td>${e(c.controls.join(', '))}</td><td>${status(c.status)}</td></tr>`).join('\n');
  const sections = report.checks
    .map((c) => {
      const details = checkDetails(c).map(([label, text]) => `<dt>${e(label)}</dt><dd>${e(text)}</dd>`).join('');
      return `<section class="check" id="check-${e(c.id)}"><h3>${e(c.name)} ${status(c.status)}</h3>
<dl><dt>Id</dt><dd><code>${e(c.id)}</code></dd><dt>Controls</dt><dd>${e(c.controls.join(', ') || 'none')}</dd><dt>Inspects</dt><dd>${e(c.description)}</dd>${details}</dl></section>`;
    })
    .join('\n');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Compliance report: ${e(report.standardName)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>Compliance report: ${e(report.standardName)}</h1>
<dl class="meta">
<dt>Standard</dt><dd>${e(report.standard)}</dd>
<dt>Generated</dt><dd>${e(report.generatedAt)}</dd>
<dt>Configuration fingerprint</dt><dd><code>${e(report.fingerprint)}</code></dd>
<dt>guardkernel</dt><dd>${e(report.guardkernelVersion)}</dd>
</dl>
<h2>Summary</h2>
<table>
<tr><th>Status</th><th>Checks</th></tr>
<tr><td>${status('compliant')}</td><td>${s.compliant}</td></tr>
<tr><td>${status('non_compliant')}</td><td>${s.non_compliant}</td></tr>
<tr><td>${status('not_applicable')}</td><td>${s.not_applicable}</td></tr>
<tr><td>Total</td><td>${s.total}</td></tr>
</table>
<table>
<tr><th>Check</th><th>Controls</th><th>Status</th></tr>
${rows}
</table>
<h2>Checks</h2>
${sections}
</body>
</html>
`;
}
