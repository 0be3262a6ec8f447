/**
 * Built-in checks on the gate and the GPU sandbox: rate limits, the policy
 * mode, the request-nonce window against the permit lifetime, and the
 * sandbox policy that untrusted kernels run under.
 */
import { compliant, duration, nonCompliant, notApplicable } from './check-helpers';
import type { CheckDefinition, ComplianceContext } from './types';

const NO_GATE = 'No gate in this configuration.';


const rateLimits: CheckDefinition = {
  id: 'rate-limits',
  name: 'Rate limits are configured',
  description: 'The gate has a VelocityGuard with a per-agent or per-session limit.',
  check(ctx) {
    const gate = ctx.gate;
    if (gate === undefined) return notApplicable(NO_GATE);
    const v = gate.velocity;
    if (v === undefined) return nonCompliant('The gate has no rate limits: one agent can send unbounded requests.', 'Construct the Gate with velocity: new VelocityGuard({ maxPerAgent, windowMs }).');
    const l = v.limits;
    if (l.maxPerAgent === undefined && l.maxPerSession === undefined) {
      return nonCompliant('The VelocityGuard sets neither maxPerAgent nor maxPerSession: it limits nothing.', 'Set maxPerAgent (and maxPerSession if agents use sessions).');
    }
    const parts: string[] = [];
    if (l.maxPerAgent !== undefined) parts.push(`${l.maxPerAgent} per agent`);
    if (l.maxPerSession !== undefined) parts.push(`${l.maxPerSession} per session`);
    return compliant(`${parts.join(' and ')} per ${duration(l.windowMs)} (burst x${l.burst}); ${v.stats().denied} request(s) denied so far.`);
  },
};

const policyEnforce: CheckDefinition = {
  id: 'policy-enforce',
  name: 'Policy is enforced, default deny',
  description: "The gate's active policy is in mode enforce with default deny (zero trust): audit and permissive modes allow everything.",
  check(ctx) {
    const gate = ctx.gate;
    if (gate === undefined) return notApplicable(NO_GATE);
    const p = gate.policy;
    if (p.mode !== 'enforce') {
      return nonCompliant(`The policy (version ${p.version}) is in mode ${p.mode}: violations are reported but allowed.`, 'Set mode: enforce in the policy document and reload it.');
    }
    const doc = p.document as { default?: unknown; actions?: Record<string, unknown> } | null;
    if (doc?.default !== 'deny') {
      return nonCompliant(`The policy (version ${p.version}) allows action types it has no rule for (default: ${String(doc?.default)}).`, 'Set default: deny and write a rule for each action type agents may take.');
    }
    const rules = Object.keys(doc.actions ?? {}).length;
    return compliant(`Policy version ${p.version}: mode enforce, default deny, ${rules} action rule(s).`);
  },
};

const replayWindow: CheckDefinition = {
  id: 'replay-window',
  name: 'Replay window covers permit lifetime',
  description:
    "The gate remembers request nonces at least as long as a permit can stay valid (the keyring's maxTtlMs plus its clock tolerance), so a captured request with a still-valid permit cannot be replayed once its nonce is forgotten.",
  check(ctx) {
    const gate = ctx.gate;
    if (gate === undefined) return notApplicable(NO_GATE);
    const keyring = gate.keyring;
    if (keyring === undefined) return notApplicable('The gate has no keyring: it accepts no permits.');
    const lifetime = keyring.maxTtlMs + keyring.clockToleranceMs;
    const window = gate.nonceTtlMs;
    if (window < lifetime) {
      return nonCompliant(
        `Request nonces are remembered ${duration(window)}, but a permit can be valid for ${duration(lifetime)} (maxTtlMs ${duration(keyring.maxTtlMs)} + tolerance ${duration(keyring.clockToleranceMs)}).`,
        `Give the Keyring maxTtlMs of at most ${window - keyring.clockToleranceMs} ms, or the Gate nonceTtlMs of at least ${lifetime} ms.`,
      );
    }
    return compliant(`Request nonces are remembered ${duration(window)}; permits live at most ${duration(lifetime)} (maxTtlMs ${duration(keyring.maxTtlMs)} + tolerance ${duration(keyring.clockToleranceMs)}); single-use permit ids are kept until their expiry.`);
  },
};

const LIMIT_NAMES: Record<string, string> = {
  maxMemoryBytes: 'memory',
  maxExecutionMs: 'execution time',
  maxMessagesPerSecond: 'message rate',
  maxK2kConnections: 'K2K connections',
};

const sandboxUntrusted: CheckDefinition = {
  id: 'sandbox-untrusted',
  name: 'Untrusted kernels are sandboxed restrictively',
  description:
    "The sandbox that untrusted GPU kernels run in has a restrictive policy: K2K only to allow-listed destinations (no '*'), only allow-listed topics, read-only memory, and every resource limit finite.",
  check(ctx) {
    const s = ctx.sandbox;
    if (s === undefined) return notApplicable('No GPU kernel sandbox in this configuration.');
    const names = s.untrustedKernels;
    if (names.length === 0) return notApplicable('No kernels are marked untrusted.');
    const p = s.sandbox.policy.toJSON() as { allowAllK2k: boolean; k2kAllowList: string[] | null; k2kDenyList: string[]; allowTopics: string[] | null; topicsByDefault: boolean; memoryAccess: string };
    const problems: string[] = [];
    if (p.allowAllK2k) problems.push('K2K is open to every destination (allowAllK2k)');
    else if (p.k2kAllowList === null && p.k2kDenyList.length > 0) problems.push('K2K is open to every destination not on the deny list');
    else if (p.k2kAllowList?.includes('*')) problems.push("the K2K allow list contains '*'");
    if (p.allowTopics === null ? p.topicsByDefault : p.allowTopics.includes('*')) problems.push('every topic is allowed');
    if (p.memoryAccess !== 'read-only') problems.push(`memory access is ${p.memoryAccess}`);
    const limits = s.sandbox.limits.toJSON() as unknown as Record<string, number>;
    for (const [k, v] of Object.entries(limits)) if (v === Infinity) problems.push(`${LIMIT_NAMES[k] ?? k} is unlimited`);
    const subject = `The sandbox of ${names.join(', ')}`;
    if (problems.length > 0) {
      return nonCompliant(`${subject} is not restrictive: ${problems.join('; ')}.`, 'Start from SandboxPolicy.restrictive() and ResourceLimits.conservative(), and allow-list only the destinations and topics these kernels need.');
    }
    const registered = names.filter((n) => s.sandbox.kernelId(n) !== undefined);
    const allow = p.k2kAllowList === null || p.k2kAllowList.length === 0 ? 'no K2K destinations' : `K2K only to ${p.k2kAllowList.join(', ')}`;
    const topics = p.allowTopics === null || p.allowTopics.length === 0 ? 'no topics' : `topics ${p.allowTopics.join(', ')}`;
    const l = limits;
    return compliant(
      `${subject}: ${allow}; ${topics}; read-only memory; limits ${l.maxMemoryBytes} B, ${l.maxExecutionMs} ms, ${l.maxMessagesPerSecond} msg/s, ${l.maxK2kConnections} connections; ${registered.length} of ${names.length} registered.`,
    );
  },
};

export const GATE_CHECKS: readonly CheckDefinition[] = [rateLimits, policyEnforce, replayWindow, sandboxUntrusted];
