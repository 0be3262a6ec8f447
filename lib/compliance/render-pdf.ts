/**
 * A report as a real PDF, laid out by pdfkit with the standard Helvetica
 * fonts (no font files to embed or fetch). Those fonts cover WinAnsi only:
 * other characters are shown as '?'. pdfkit is loaded on the first PDF
 * (about 100 ms), not when guardkernel is.
 */
import type PDFKit from 'pdfkit';
import { STATUS_LABELS, checkDetails } from './present';
import type { ComplianceReport, ComplianceStatus } from './types';

const COLORS: Record<ComplianceStatus, string> = { compliant: '#136f2a', non_compliant: '#b3261e', not_applicable: '#5f5f5f' };
const SUBSTITUTES: Record<string, string> = { '\u2018': "'", '\u2019': "'", '\u201c': '"', '\u201d': '"', '\u2013': '-', '\u2014': '-', '\u2026': '...', '\u2022': '*', '\u00d7': 'x' };

/** Text the standard fonts can draw: printable Latin-1, common punctuation substituted, the rest '?'. */
export function pdfText(text: string): string {
  return text.replace(/[\r\n\t]+/g, ' ').replace(/[^\x20-\x7e\xa0-\xff]/gu, (c) => SUBSTITUTES[c] ?? '?');
}

export function renderPdf(report: ComplianceReport): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const t = pdfText;
    const PDFDocument = require('pdfkit') as typeof PDFKit;
    const doc = new PDFDocument({
      size: 'A4',
      margin: 56,
      info: { Title: t(`Compliance report: ${report.standardName}`), Subject: t(report.standard), Creator: `guardkernel ${t(report.guardkernelVersion)}`, CreationDate: new Date(report.generatedAt) },
    });
    const chunks: Buffer[] = [];
    doc.on('data', (c: Buffer) => chunks.push(c));
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
    try {
      doc.font('Helvetica-Bold').fontSize(18).fillColor('#000').text(t(`Compliance report: ${report.standardName}`));
      doc.moveDown(0.5).font('Helvetica').fontSize(10);
      doc.text(`Standard: ${t(report.standard)}`);
      doc.text(`Generated: ${t(report.generatedAt)}`);
      doc.text(`Configuration fingerprint: ${t(report.fingerprint)}`);
      doc.text(`guardkernel: ${t(report.guardkernelVersion)}`);
      doc.moveDown().font('Helvetica-Bold').fontSize(13).text('Summary');
      doc.font('Helvetica').fontSize(10);
      const s = report.summary;
      for (const st of ['compliant', 'non_compliant', 'not_applicable'] as const) doc.fillColor(COLORS[st]).text(`${STATUS_LABELS[st]}: ${s[st]}`);
      doc.fillColor('#000').text(`Total: ${s.total}`);
      doc.moveDown().font('Helvetica-Bold').fontSize(13).text('Checks');
      for (const c of report.checks) {
        doc.moveDown(0.6).font('Helvetica-Bold').fontSize(11).fillColor('#000').text(t(c.name), { continued: true });
        doc.fillColor(COLORS[c.status]).text(`  ${STATUS_LABELS[c.status]}`);
        doc.font('Helvetica').fontSize(9).fillColor('#333');
        doc.text(`Id: ${t(c.id)}    Controls: ${t(c.controls.join(', ') || 'none')}`);
        if (c.description !== '') doc.text(`Inspects: ${t(c.description)}`);
        doc.fillColor('#000');
        for (const [label, text] of checkDetails(c)) {
          doc.font('Helvetica-Bold').text(`${label}: `, { continued: true }).font('Helvetica').text(t(text));
        }
      }
      doc.end();
    } catch (err) {
      reject(err);
    }
  });
}
