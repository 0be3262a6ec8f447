/** Small helpers the built-in checks share: result builders and readable units. */
import { describe } from '../errors';
import type { ComplianceCheckResult } from './types';

export function compliant(evidence: string): ComplianceCheckResult {
  return { status: 'compliant', evidence };
}

export function nonCompliant(finding: string, recommendation: string): ComplianceCheckResult {
  return { status: 'non_compliant', finding, recommendation };
}

export function notApplicable(why: string): ComplianceCheckResult {
  return { status: 'not_applicable', why };
}

const UNITS: ReadonlyArray<[number, string]> = [
  [86_400_000, 'd'],
  [3_600_000, 'h'],
  [60_000, 'min'],
  [1000, 's'],
];

/** "90 d", "5 min", "1500 ms", "never". */
export function duration(ms: number): string {
  if (ms === Infinity) return 'never';
  for (const [size, unit] of UNITS) if (ms >= size && ms % size === 0) return `${ms / size} ${unit}`;
  for (const [size, unit] of UNITS) if (ms >= size) return `${(ms / size).toFixed(1)} ${unit}`;
  return `${ms} ms`;
}

/** A file mode as octal digits, e.g. "600". */
export function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(3, '0');
}

/** Infinity (or any non-finite number) as null, for JSON. */
export function finiteOrNull(n: number | undefined): number | null {
  return n === undefined || !Number.isFinite(n) ? null : n;
}

/** A value for an error message: short strings verbatim (standard ids, formats and statuses are not secrets). */
export function shown(v: unknown): string {
  return typeof v === 'string' && v.length <= 64 ? JSON.stringify(v) : describe(v);
}
