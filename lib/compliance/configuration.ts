/**
 * The inspected configuration as plain JSON (settings only: no secrets, no
 * counters, so it stays the same from run to run while nothing changes) and
 * its fingerprint, "sha256:" + hex SHA-256 of its RFC 8785 canonical JSON.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { canonicalizeJson } from '../canonical/car';
import { sha256Hex } from '../crypto/hash';
import { finiteOrNull } from './check-helpers';
import type { ComplianceContext } from './types';

function socketMode(path: string): number | null {
  try {
    return fs.lstatSync(path).mode & 0o777;
  } catch {
    return null;
  }
}

export function inspectConfiguration(ctx: ComplianceContext): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const gate = ctx.gate;
  if (gate !== undefined) {
    const doc = gate.policy.document;
    out.gate = {
      policy: { version: gate.policy.version, mode: gate.policy.mode, default: (doc as { default?: unknown } | null)?.default ?? null, sha256: doc === null ? null : sha256Hex(canonicalizeJson(doc)) },
      velocity: gate.velocity === undefined ? null : { ...gate.velocity.limits },
      nonceTtlMs: ctx.gate?.nonceTtlMs ?? null,
      keyring: gate.keyring === undefined ? null : { active: gate.keyring.active, kids: gate.keyring.kids(), maxTtlMs: gate.keyring.maxTtlMs, clockToleranceMs: gate.keyring.clockToleranceMs },
      cache: gate.cache !== null,
      audit: gate.audit === undefined ? null : gate.audit.file,
    };
  }
  if (ctx.server !== undefined) {
    const s = ctx.server;
    out.server = {
      socketPath: s.socketPath,
      socketMode: finiteOrNull(s.socketMode),
      socketFileMode: socketMode(s.socketPath),
      authEnabled: s.authEnabled === true,
      secretSource: String(s.secretSource),
      secretFile: s.secretFile ?? null,
    };
  }
  if (ctx.memoryEncryption !== undefined) {
    const m = ctx.memoryEncryption.settings();
    out.memoryEncryption = { ...m, rotateEveryMs: finiteOrNull(m.rotateEveryMs), kdf: m.kdf === null ? null : { ...m.kdf } };
  }
  if (ctx.audit !== undefined) {
    const key = typeof ctx.audit.key === 'string' ? Buffer.from(ctx.audit.key, 'utf8') : ctx.audit.key;
    out.audit = {
      file: ctx.audit.file,
      retentionDays: finiteOrNull(ctx.audit.retentionDays),
      keepsForever: ctx.audit.retentionDays === Infinity,
      // Names the key without revealing it: HMAC of a fixed label under the key.
      keyId: key instanceof Uint8Array ? crypto.createHmac('sha256', key).update('guardkernel-compliance-key-id').digest('hex').slice(0, 16) : null,
      live: ctx.audit.log !== undefined,
    };
  }
  if (ctx.sandbox !== undefined) {
    const limits = ctx.sandbox.sandbox.limits.toJSON() as unknown as Record<string, number>;
    out.sandbox = {
      untrustedKernels: [...ctx.sandbox.untrustedKernels],
      policy: ctx.sandbox.sandbox.policy.toJSON(),
      limits: Object.fromEntries(Object.entries(limits).map(([k, v]) => [k, finiteOrNull(v)])),
    };
  }
  if (ctx.requirements !== undefined) out.requirements = { ...ctx.requirements };
  return out;
}

export function fingerprint(configuration: Record<string, unknown>): string {
  return 'sha256:' + sha256Hex(canonicalizeJson(configuration));
}
