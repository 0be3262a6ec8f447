/** The built-in checks, each with the standards that map it and their controls. */
import { AUDIT_CHECKS } from './checks-audit';
import { CRYPTO_CHECKS } from './checks-crypto';
import { GATE_CHECKS } from './checks-gate';
import { SERVER_CHECKS } from './checks-server';
import { STANDARDS } from './standards';
import { STANDARD_IDS, type ComplianceCheck } from './types';

function attach(def: (typeof CRYPTO_CHECKS)[number]): ComplianceCheck {
  const controls: Record<string, readonly string[]> = {};
  for (const id of STANDARD_IDS) {
    const c = STANDARDS[id].controls[def.id];
    if (c !== undefined) controls[id] = c;
  }
  return Object.freeze({ ...def, standard: Object.freeze(Object.keys(controls)), controls: Object.freeze(controls) });
}

/** Every built-in check, in report order. */
export const BUILTIN_CHECKS: readonly ComplianceCheck[] = Object.freeze([...CRYPTO_CHECKS, ...AUDIT_CHECKS, ...SERVER_CHECKS, ...GATE_CHECKS].map(attach));
