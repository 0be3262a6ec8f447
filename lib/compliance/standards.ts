/**
 * Which controls of each standard the built-in checks evidence. A check that
 * a standard does not map is not part of that standard's report.
 *
 * Editions: SOC 2 Trust Services Criteria (2017, points of focus revised
 * 2022); GDPR (Regulation (EU) 2016/679); HIPAA Security Rule (45 CFR Part
 * 164 Subpart C) and 164.316 documentation; PCI DSS v4.0.1; ISO/IEC
 * 27001:2022 Annex A; FedRAMP Rev. 5 baselines (NIST SP 800-53 Rev. 5);
 * NIST Cybersecurity Framework 2.0.
 */
import type { StandardId } from './types';

export interface StandardInfo {
  id: StandardId;
  name: string;
  /** Shortest audit retention the standard asks for, in days (0: none), and whether a finite period is required. */
  retention: { minDays: number; finite: boolean; basis: string };
  /** Built-in check id -> control ids. */
  controls: Readonly<Record<string, readonly string[]>>;
}

/** Freezes the table all the way down: reports everywhere read it, so nobody may edit it in place. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

export const STANDARDS: Readonly<Record<StandardId, StandardInfo>> = deepFreeze({
  soc2: {
    id: 'soc2',
    name: 'SOC 2 (AICPA Trust Services Criteria 2017, revised points of focus 2022)',
    retention: { minDays: 365, finite: false, basis: 'a 12-month examination period needs a year of records (CC7.2)' },
    controls: {
      'memory-encryption': ['CC6.1', 'CC6.7'],
      'key-rotation': ['CC6.1'],
      'kdf-strength': ['CC6.1'],
      'secret-source': ['CC6.1'],
      'audit-log': ['CC7.2'],
      'audit-integrity': ['CC7.2'],
      'audit-retention': ['CC7.2'],
      'socket-permissions': ['CC6.1', 'CC6.7'],
      authentication: ['CC6.1'],
      'rate-limits': ['CC6.6'],
      'policy-enforce': ['CC6.1', 'CC6.3'],
      'sandbox-untrusted': ['CC6.3', 'CC6.8'],
      'replay-window': ['CC6.1', 'CC6.6'],
    },
  },
  gdpr: {
    id: 'gdpr',
    name: 'GDPR (Regulation (EU) 2016/679)',
    retention: { minDays: 0, finite: true, basis: 'storage limitation (Art. 5(1)(e)): logs naming agents need a defined, finite period' },
    controls: {
      'memory-encryption': ['Art. 32(1)(a)'],
      'key-rotation': ['Art. 32(1)(a)'],
      'kdf-strength': ['Art. 32(1)(a)'],
      'secret-source': ['Art. 32(1)(b)'],
      'audit-log': ['Art. 5(2)', 'Art. 32(1)(d)'],
      'audit-integrity': ['Art. 5(1)(f)', 'Art. 32(1)(b)'],
      'audit-retention': ['Art. 5(1)(e)'],
      'socket-permissions': ['Art. 32(1)(b)'],
      authentication: ['Art. 32(1)(b)'],
      'rate-limits': ['Art. 32(1)(b)'],
      'policy-enforce': ['Art. 25(2)', 'Art. 32(1)(b)'],
      'sandbox-untrusted': ['Art. 25(1)', 'Art. 32(1)(b)'],
      'replay-window': ['Art. 32(1)(b)'],
    },
  },
  hipaa: {
    id: 'hipaa',
    name: 'HIPAA Security Rule (45 CFR Part 164, Subpart C)',
    retention: { minDays: 2190, finite: false, basis: '45 CFR 164.316(b)(2)(i): six years' },
    controls: {
      'memory-encryption': ['164.312(a)(2)(iv)'],
      'key-rotation': ['164.312(a)(2)(iv)'],
      'kdf-strength': ['164.312(a)(2)(iv)', '164.312(d)'],
      'secret-source': ['164.312(d)'],
      'audit-log': ['164.312(b)', '164.308(a)(1)(ii)(D)'],
      'audit-integrity': ['164.312(b)', '164.312(c)(1)'],
      'audit-retention': ['164.316(b)(2)(i)'],
      'socket-permissions': ['164.312(a)(1)', '164.312(e)(1)'],
      authentication: ['164.312(d)'],
      'policy-enforce': ['164.312(a)(1)', '164.308(a)(4)(ii)(B)'],
      'sandbox-untrusted': ['164.312(a)(1)'],
      'replay-window': ['164.312(d)'],
    },
  },
  'pci-dss': {
    id: 'pci-dss',
    name: 'PCI DSS v4.0.1',
    retention: { minDays: 365, finite: false, basis: 'Requirement 10.5.1: at least 12 months, 3 immediately available' },
    controls: {
      'memory-encryption': ['3.5.1'],
      'key-rotation': ['3.7.4'],
      'kdf-strength': ['3.6.1', '3.7.1'],
      'secret-source': ['3.6.1', '3.7.1'],
      'audit-log': ['10.2.1'],
      'audit-integrity': ['10.3.2', '10.3.4'],
      'audit-retention': ['10.5.1'],
      'socket-permissions': ['7.2.1'],
      authentication: ['8.3.1'],
      'policy-enforce': ['7.2.1', '7.2.2'],
      'sandbox-untrusted': ['7.2.2', '7.2.5'],
      'replay-window': ['8.3.1'],
    },
  },
  iso27001: {
    id: 'iso27001',
    name: 'ISO/IEC 27001:2022 (Annex A)',
    retention: { minDays: 365, finite: false, basis: 'A.8.15 and A.5.33 leave the period to the organisation; one year by default here' },
    controls: {
      'memory-encryption': ['A.8.24'],
      'key-rotation': ['A.8.24'],
      'kdf-strength': ['A.8.24', 'A.5.17'],
      'secret-source': ['A.5.17', 'A.8.24'],
      'audit-log': ['A.8.15', 'A.8.16'],
      'audit-integrity': ['A.8.15', 'A.5.33'],
      'audit-retention': ['A.8.15', 'A.5.33'],
      'socket-permissions': ['A.5.15', 'A.8.3'],
      authentication: ['A.8.5'],
      'rate-limits': ['A.8.6'],
      'policy-enforce': ['A.5.15', 'A.8.3'],
      'sandbox-untrusted': ['A.5.15', 'A.8.3'],
      'replay-window': ['A.8.5'],
    },
  },
  fedramp: {
    id: 'fedramp',
    name: 'FedRAMP Rev. 5 (NIST SP 800-53 Rev. 5 controls)',
    retention: { minDays: 913, finite: false, basis: 'AU-11 defers to OMB M-21-31: 12 months active plus 18 months cold storage' },
    controls: {
      'memory-encryption': ['SC-13', 'SC-28', 'SC-28(1)'],
      'approved-algorithm': ['SC-13'],
      'key-rotation': ['SC-12'],
      'kdf-strength': ['SC-12', 'IA-5(1)'],
      'secret-source': ['SC-12', 'IA-5'],
      'audit-log': ['AU-2', 'AU-12'],
      'audit-integrity': ['AU-9'],
      'audit-retention': ['AU-11'],
      'socket-permissions': ['AC-3', 'AC-6'],
      authentication: ['IA-2'],
      'rate-limits': ['SC-5'],
      'policy-enforce': ['AC-3'],
      'sandbox-untrusted': ['AC-6', 'SC-39'],
      'replay-window': ['IA-2(8)'],
    },
  },
  'nist-csf': {
    id: 'nist-csf',
    name: 'NIST Cybersecurity Framework 2.0',
    retention: { minDays: 365, finite: false, basis: 'PR.PS-04 names no period; one year by default here' },
    controls: {
      'memory-encryption': ['PR.DS-01'],
      'key-rotation': ['PR.DS-01'],
      'kdf-strength': ['PR.AA-01'],
      'secret-source': ['PR.AA-01'],
      'audit-log': ['PR.PS-04', 'DE.CM-09'],
      'audit-integrity': ['PR.PS-04', 'PR.DS-01'],
      'audit-retention': ['PR.PS-04'],
      'socket-permissions': ['PR.AA-05', 'PR.DS-02'],
      authentication: ['PR.AA-03'],
      'rate-limits': ['PR.IR-04'],
      'policy-enforce': ['PR.AA-05'],
      'sandbox-untrusted': ['PR.AA-05', 'PR.IR-01'],
      'replay-window': ['PR.AA-03'],
    },
  },
});
