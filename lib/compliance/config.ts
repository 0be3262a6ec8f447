/**
 * A compliance configuration file (JSON or YAML) turned into the live objects
 * the checks inspect: the policy file is loaded by a PolicyEngine, the
 * VelocityGuard, Keyring, Gate, MemoryEncryption (with the configured KDF run
 * for real on a throwaway password) and KernelSandbox are constructed with
 * the file's settings, and the audit file is verified with its key. Nothing
 * is signed or encrypted for use, and no file is written. The format is in
 * the README ("Compliance reports").
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { AuditLog } from '../audit/log';
import { MemoryEncryption, type PasswordKdf } from '../crypto/memory-encryption';
import { describe } from '../errors';
import { Gate } from '../gate/gate';
import { Keyring } from '../permits/keyring';
import { PolicyEngine } from '../policy/engine';
import { ResourceLimits, type ResourceLimitsInit } from '../k2k/limits';
import { SandboxPolicy } from '../k2k/policy';
import { KernelSandbox } from '../k2k/sandbox';
import { VelocityGuard, type VelocityGuardOptions } from '../gate/velocity';
import type { ComplianceContext } from './types';

type Obj = Record<string, unknown>;

const SHAPE: Record<string, readonly string[]> = {
  '': ['policy', 'gate', 'permits', 'server', 'audit', 'memoryEncryption', 'deviceMemory', 'sandbox', 'requirements'],
  gate: ['nonceTtlMs', 'velocity'],
  'gate.velocity': ['maxPerAgent', 'maxPerSession', 'windowMs', 'burst', 'maxBuckets'],
  permits: ['maxTtlMs', 'clockToleranceMs'],
  server: ['socket', 'socketMode', 'authTokenFile', 'secretSource', 'secretFile'],
  audit: ['file', 'keyFile', 'retentionDays'],
  memoryEncryption: ['algorithm', 'rotateEveryMs', 'maxInvocationsPerKey', 'kdf'],
  'memoryEncryption.kdf': ['name', 'memoryCost', 'timeCost', 'parallelism', 'iterations'],
  sandbox: ['untrustedKernels', 'policy', 'limits'],
  'sandbox.policy': ['preset', 'k2kAllow', 'k2kDeny', 'topics', 'memoryAccess'],
  'sandbox.limits': ['preset', 'maxMemoryBytes', 'maxExecutionMs', 'maxMessagesPerSecond', 'maxK2kConnections'],
  requirements: ['maxKeyAgeMs', 'minRetentionDays'],
};

/** The object at `where` (validated against SHAPE), or undefined when absent. */
function section(parent: Obj, key: string, where: string): Obj | undefined {
  const v = parent[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new TypeError(`${where}: expected an object but received ${describe(v)}`);
  known(v as Obj, where);
  return v as Obj;
}

function known(o: Obj, where: string): void {
  const allowed = SHAPE[where] ?? [];
  for (const k of Object.keys(o)) if (!allowed.includes(k)) throw new TypeError(`${where === '' ? '' : where + '.'}${k}: unknown setting (expected one of ${allowed.join(', ')})`);
}

function str(o: Obj, key: string, where: string): string | undefined {
  const v = o[key];
  if (v !== undefined && (typeof v !== 'string' || v.length === 0)) throw new TypeError(`${where}.${key}: expected a non-empty string but received ${describe(v)}`);
  return v as string | undefined;
}

function int(o: Obj, key: string, where: string): number | undefined {
  const v = o[key];
  if (v !== undefined && (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)) throw new TypeError(`${where}.${key}: expected a non-negative integer but received ${describe(v)}`);
  return v as number | undefined;
}

function strings(o: Obj, key: string, where: string): string[] | undefined {
  const v = o[key];
  if (v !== undefined && (!Array.isArray(v) || v.some((s) => typeof s !== 'string'))) throw new TypeError(`${where}.${key}: expected an array of strings but received ${describe(v)}`);
  return v as string[] | undefined;
}

/** What loadComplianceConfig built; `close()` releases the audit log and the key material. */
export interface LoadedConfig {
  context: ComplianceContext;
  close(): void;
}

/** Reads and builds a configuration file. Throws with the setting's path for anything wrong. */
export async function loadComplianceConfig(file: string): Promise<LoadedConfig> {
  const text = fs.readFileSync(file, 'utf8');
  let doc: unknown;
  try {
    doc = YAML.parse(text, { uniqueKeys: true, strict: true, maxAliasCount: 100 });
  } catch (err) {
    throw new TypeError(`${file}: not valid JSON or YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new TypeError(`${file}: expected a configuration object but received ${describe(doc)}`);
  const root = doc as Obj;
  known(root, '');
  const base = path.dirname(path.resolve(file));
  const at = (p: string) => path.resolve(base, p);
  const context: ComplianceContext = {};
  const closers: Array<() => void> = [];
  try {
    const audit = section(root, 'audit', 'audit');
    let log: AuditLog | undefined;
    if (audit !== undefined) {
      const auditFile = str(audit, 'file', 'audit');
      const keyFile = str(audit, 'keyFile', 'audit');
      if (auditFile === undefined || keyFile === undefined) throw new TypeError('audit: file and keyFile are required');
      const key = fs.readFileSync(at(keyFile));
      const retention = audit.retentionDays;
      if (retention !== undefined && retention !== 'forever' && int(audit, 'retentionDays', 'audit') === undefined) throw new TypeError('audit.retentionDays: expected days or "forever"');
      // Opened only when present (opening creates a missing file); nothing is ever appended.
      if (fs.existsSync(at(auditFile))) {
        log = new AuditLog({ file: at(auditFile), key });
        closers.push(() => log!.close());
      }
      context.audit = { log, file: at(auditFile), key, retentionDays: retention === 'forever' ? Infinity : (retention as number | undefined) };
    }
    const policyFile = root.policy;
    const gate = section(root, 'gate', 'gate');
    const permits = section(root, 'permits', 'permits');
    if (policyFile !== undefined) {
      if (typeof policyFile !== 'string') throw new TypeError(`policy: expected a file path but received ${describe(policyFile)}`);
      const policy = new PolicyEngine(fs.readFileSync(at(policyFile), 'utf8'));
      const v = gate === undefined ? undefined : section(gate, 'velocity', 'gate.velocity');
      const velocity = v === undefined ? undefined : new VelocityGuard(v as unknown as VelocityGuardOptions);
      const keyring = new Keyring({ keys: { config: crypto.randomBytes(32) }, active: 'config', maxTtlMs: permits && int(permits, 'maxTtlMs', 'permits'), clockToleranceMs: permits && int(permits, 'clockToleranceMs', 'permits') });
      const nonceTtlMs = (gate && int(gate, 'nonceTtlMs', 'gate')) ?? 300_000;
      context.gate = new Gate({ policy, keyring, velocity, audit: log, nonceTtlMs });
    } else if (gate !== undefined || permits !== undefined) {
      throw new TypeError('policy: required when gate or permits are configured');
    }
    const server = section(root, 'server', 'server');
    if (server !== undefined) {
      const socket = str(server, 'socket', 'server');
      if (socket === undefined) throw new TypeError('server.socket: required');
      const mode = str(server, 'socketMode', 'server') ?? '600';
      if (!/^[0-7]{3,4}$/.test(mode)) throw new TypeError(`server.socketMode: expected an octal mode string like "600" but received ${JSON.stringify(mode)}`);
      const tokenFile = str(server, 'authTokenFile', 'server');
      if (tokenFile !== undefined && fs.readFileSync(at(tokenFile), 'utf8').trim().length < 16) throw new TypeError('server.authTokenFile: the token must be at least 16 bytes');
      const secretFile = str(server, 'secretFile', 'server');
      context.server = {
        socketPath: at(socket),
        socketMode: parseInt(mode, 8),
        authEnabled: tokenFile !== undefined,
        secretSource: (str(server, 'secretSource', 'server') ?? 'unset') as 'supplied',
        secretFile: secretFile === undefined ? undefined : at(secretFile),
      };
    }
    if (root.deviceMemory !== undefined) {
      if (typeof root.deviceMemory !== 'boolean') throw new TypeError(`deviceMemory: expected true or false but received ${JSON.stringify(root.deviceMemory)}`);
      context.deviceMemory = root.deviceMemory;
    }
    const me = section(root, 'memoryEncryption', 'memoryEncryption');
    if (me !== undefined) {
      const kdf = section(me, 'kdf', 'memoryEncryption.kdf');
      const options = { algorithm: str(me, 'algorithm', 'memoryEncryption') as 'aes-256-gcm' | undefined, rotateEveryMs: int(me, 'rotateEveryMs', 'memoryEncryption'), maxInvocationsPerKey: int(me, 'maxInvocationsPerKey', 'memoryEncryption'), device: 'cpu' as const };
      const enc = kdf !== undefined ? await MemoryEncryption.fromPassword(crypto.randomBytes(24).toString('base64'), { ...options, kdf: kdf as unknown as PasswordKdf }) : new MemoryEncryption({ ...options, key: crypto.randomBytes(32) });
      closers.push(() => enc.close());
      context.memoryEncryption = enc;
    }
    const sb = section(root, 'sandbox', 'sandbox');
    if (sb !== undefined) {
      const names = strings(sb, 'untrustedKernels', 'sandbox') ?? [];
      const p = section(sb, 'policy', 'sandbox.policy') ?? {};
      const preset = str(p, 'preset', 'sandbox.policy') ?? 'restrictive';
      if (preset !== 'restrictive' && preset !== 'permissive' && preset !== 'closed') throw new TypeError(`sandbox.policy.preset: expected restrictive, permissive or closed but received ${JSON.stringify(preset)}`);
      const policy = preset === 'restrictive' ? SandboxPolicy.restrictive() : preset === 'permissive' ? SandboxPolicy.permissive() : new SandboxPolicy();
      const allow = strings(p, 'k2kAllow', 'sandbox.policy');
      if (allow !== undefined) policy.k2kAllowList(allow);
      const deny = strings(p, 'k2kDeny', 'sandbox.policy');
      if (deny !== undefined) policy.k2kDenyList(deny);
      const topics = strings(p, 'topics', 'sandbox.policy');
      if (topics !== undefined) policy.allowTopics(topics);
      const access = str(p, 'memoryAccess', 'sandbox.policy');
      if (access !== undefined) policy.memoryAccess(access as 'read-only');
      const l = section(sb, 'limits', 'sandbox.limits') ?? {};
      const { preset: limitPreset, ...rest } = l;
      if (limitPreset !== undefined && limitPreset !== 'conservative' && limitPreset !== 'default') throw new TypeError(`sandbox.limits.preset: expected conservative or default but received ${describe(limitPreset)}`);
      const values = Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, v === 'unlimited' ? Infinity : v])) as ResourceLimitsInit;
      const limits = new ResourceLimits({ ...(limitPreset === 'conservative' ? ResourceLimits.conservative().toJSON() : {}), ...values });
      const sandbox = new KernelSandbox(limits, policy);
      for (const n of names) sandbox.registerKernel(n);
      context.sandbox = { sandbox, untrustedKernels: names };
    }
    const req = section(root, 'requirements', 'requirements');
    if (req !== undefined) context.requirements = { maxKeyAgeMs: int(req, 'maxKeyAgeMs', 'requirements'), minRetentionDays: int(req, 'minRetentionDays', 'requirements') };
    if (context.requirements !== undefined) for (const k of Object.keys(context.requirements) as Array<'maxKeyAgeMs'>) if (context.requirements[k] === undefined) delete context.requirements[k];
  } catch (err) {
    for (const c of closers) c();
    throw err;
  }
  return { context, close: () => closers.forEach((c) => c()) };
}
