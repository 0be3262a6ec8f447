/**
 * What a quarantined agent may still run (`gate.sandboxFor(agentId)`): the
 * quarantine's isolation level as a process sandbox profile.
 *
 * - not quarantined, or recovered: no restriction;
 * - isolation 'network': network 'none';
 * - isolation 'filesystem': read-only (no write paths);
 * - isolation 'full', or terminated: nothing may run;
 * - a list of action-type patterns: the strictest runnable profile (network
 *   'none' and read-only): a command's effects cannot be sorted into action types.
 * While 'analyzing', the isolation still holds (as it does for the gate).
 */
import type { SandboxProfile } from '../sandbox/types';
import type { Quarantine } from './quarantine';

export function sandboxProfileFor(quarantine: Quarantine, agentId: string): SandboxProfile {
  const q = quarantine.get(agentId);
  if (q === undefined || q.status === 'recovered') return { allowed: true };
  if (q.status === 'terminated') return { allowed: false, reason: `agent "${agentId}" is terminated` };
  const iso = q.isolation;
  if (iso === 'full') return { allowed: false, reason: `agent "${agentId}" is quarantined (isolation full): ${q.reason}` };
  if (iso === 'network') return { allowed: true, network: 'none', reason: `quarantined (isolation network): ${q.reason}` };
  if (iso === 'filesystem') return { allowed: true, readOnly: true, reason: `quarantined (isolation filesystem): ${q.reason}` };
  return { allowed: true, network: 'none', readOnly: true, reason: `quarantined (isolation ${JSON.stringify(iso)}): ${q.reason}` };
}
