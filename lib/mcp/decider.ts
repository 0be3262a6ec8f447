/**
 * Where the proxy's decisions come from: a Gate in this process, or a
 * running `guardkernel serve` through a GuardClient (whose connection
 * credential is the agent's). Both check a CAR, wait on an approval request,
 * and (for hideDenied) show the policy document.
 */
import type { Gate } from '../gate/gate';
import type { GateDecision } from '../gate/decision';
import type { ApprovalWaitResult } from '../gate/approvals/types';
import type { GuardClient } from '../ipc/client';
import { sessionCalls, waitInGate } from '../ipc/agent-calls';
import type { SandboxProfile } from '../sandbox';

export interface Decider {
  check(car: Record<string, unknown>): Promise<GateDecision>;
  /** Waits until approval `id` is decided or `timeoutMs` passes (then `timed_out: true`). */
  wait(id: string, timeoutMs: number, signal: AbortSignal): Promise<ApprovalWaitResult>;
  /** The policy document, for hideDenied (null when there is none to read). */
  policyDocument(): Promise<Readonly<Record<string, unknown>> | null>;
  /** The action type the policy's `mcp` section gives tool `name` of this server (undefined: not mapped). */
  policyToolAction(name: string): string | undefined;
  /**
   * The policy version the mapping was read under (null: read live, never
   * stale), and a re-read for when a decision names another version.
   */
  mappingVersion(): number | null;
  refreshMapping(): Promise<void>;
  /** The process-sandbox profile the agent's quarantine state requires (for a sandboxed upstream). */
  sandboxProfile(agentId: string): Promise<SandboxProfile>;
  close(): Promise<void>;
}

export function gateDecider(gate: Gate, serverId: string, requester?: string): Decider {
  return {
    policyToolAction: (name) => gate.policy.mcpToolAction(serverId, name),
    mappingVersion: () => null,
    refreshMapping: async () => {},
    sandboxProfile: async (agentId) => gate.sandboxFor(agentId),
    check: (car) => gate.checkAsync(requester === undefined ? { car } : { car, requester }),
    wait: (id, timeoutMs, signal) => waitInGate(gate, id, timeoutMs, signal),
    policyDocument: async () => gate.policy.document,
    close: async () => {},
  };
}

export interface ClientDeciderOptions {
  /** The token to authenticate with (again after a reconnect): the agent's. */
  authToken?: string;
  /** Close the client with the proxy (true when the proxy opened it). */
  owned?: boolean;
  onLog?: (line: string) => void;
}

export function clientDecider(client: GuardClient, serverId: string, options: ClientDeciderOptions = {}): Decider {
  const { authToken, owned = false, onLog = () => {} } = options;
  // The server's mapping for this server id, read at start and again when a
  // decision names a newer policy. Map lookups only (tool names are hostile:
  // `__proto__` must find nothing).
  let mapping = new Map<string, string>();
  let version: number | null = null;
  const retryUnauthorized = sessionCalls(client, authToken);
  return {
    policyToolAction: (name) => mapping.get(name),
    mappingVersion: () => version,
    sandboxProfile: (agentId) => retryUnauthorized(() => client.sandboxProfile(agentId)),
    async refreshMapping() {
      try {
        const r = await retryUnauthorized(() => client.mcpToolActions(serverId));
        mapping = new Map(Object.entries(r.tools ?? {}).filter((e): e is [string, string] => typeof e[1] === 'string'));
        version = r.version;
      } catch (err) {
        // A server without the method: only --tool-action and the default apply.
        onLog(`could not read the policy's MCP tool mapping: ${(err as Error).message}`);
        version = -1;
      }
    },
    check: (car) => retryUnauthorized(() => client.gateCheck({ car })),
    wait: (id, timeoutMs, signal) => retryUnauthorized(() => client.waitForApproval(id, { timeoutMs: Math.max(1, timeoutMs), signal, authToken })),
    async policyDocument() {
      const p = await retryUnauthorized(() => client.policyGet());
      return p.document;
    },
    async close() {
      if (owned) await client.close();
    },
  };
}
