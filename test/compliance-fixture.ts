// A complete, compliant guardkernel setup for the compliance tests: real
// objects, real files, a real listening socket. Tests break one part at a time.
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { AuditLog, Gate, KernelSandbox, Keyring, MemoryEncryption, PolicyEngine, ResourceLimits, SandboxPolicy, VelocityGuard, type ComplianceContext } from '../lib/index';
import { repoRoot } from './helpers';

export const examplePolicy = (): Record<string, unknown> => YAML.parse(fs.readFileSync(path.join(repoRoot, 'examples', 'policy.yaml'), 'utf8')) as Record<string, unknown>;

export interface Fixture {
  dir: string;
  context: ComplianceContext;
  audit: AuditLog;
  auditFile: string;
  auditKey: Buffer;
  socketPath: string;
  secretFile: string;
  gate: Gate;
  close(): Promise<void>;
}

/** Gate parts with the compliant defaults, overridable. */
export function makeGate(audit: AuditLog | undefined, overrides: { policy?: Record<string, unknown>; velocity?: VelocityGuard | null; keyring?: Keyring | null; nonceTtlMs?: number } = {}): Gate {
  const keyring = overrides.keyring === null ? undefined : (overrides.keyring ?? new Keyring({ keys: { k1: crypto.randomBytes(32) }, active: 'k1', maxTtlMs: 60_000 }));
  const velocity = overrides.velocity === null ? undefined : (overrides.velocity ?? new VelocityGuard({ maxPerAgent: 100, windowMs: 60_000 }));
  return new Gate({ policy: new PolicyEngine(overrides.policy ?? examplePolicy()), keyring, velocity, audit, nonceTtlMs: overrides.nonceTtlMs ?? 300_000 });
}

export function restrictiveSandbox(): KernelSandbox {
  const sandbox = new KernelSandbox(ResourceLimits.conservative(), SandboxPolicy.restrictive().k2kAllowList(['trusted_*']).allowTopics(['telemetry.*']));
  sandbox.registerKernel('untrusted_a');
  return sandbox;
}

export async function makeFixture(): Promise<Fixture> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-compliance-'));
  const auditFile = path.join(dir, 'audit.log');
  const auditKey = crypto.randomBytes(32);
  const audit = new AuditLog({ file: auditFile, key: auditKey });
  const gate = makeGate(audit);
  gate.check({ car: { action_type: 'file_read', agent_id: 'agent-prod-1', resource: '/srv/data/x.csv', args: { mode: 'r' } } });
  audit.flush();
  const socketPath = path.join(dir, 'core.sock');
  const server = net.createServer((s) => s.end());
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  fs.chmodSync(socketPath, 0o600);
  const secretFile = path.join(dir, 'hmac.key');
  fs.writeFileSync(secretFile, crypto.randomBytes(32), { mode: 0o600 });
  const context: ComplianceContext = {
    gate,
    server: { socketPath, socketMode: 0o600, authEnabled: true, secretSource: 'generated', secretFile },
    memoryEncryption: await MemoryEncryption.fromPassword(crypto.randomBytes(24).toString('base64'), { rotateEveryMs: 86_400_000 }),
    sandbox: { sandbox: restrictiveSandbox(), untrustedKernels: ['untrusted_a'] },
    audit: { log: audit, file: auditFile, key: auditKey, retentionDays: 3000 },
  };
  return {
    dir,
    context,
    audit,
    auditFile,
    auditKey,
    socketPath,
    secretFile,
    gate,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      audit.close();
      context.memoryEncryption?.close();
    },
  };
}
