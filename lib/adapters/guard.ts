/**
 * What the agent-SDK adapters (`guardkernel/ai`, `guardkernel/openai-agents`,
 * `guardkernel/langchain`) share: the options, where decisions come from (a
 * Gate in this process or a running `guardkernel serve` through a
 * GuardClient), the CAR of one tool call, and the wait on an approval.
 *
 * Nothing here loads an SDK: each adapter file reads its SDK's objects by
 * shape, so importing guardkernel (or one adapter) never needs another SDK.
 */
import type { Gate } from '../gate/gate';
import type { GateDecision } from '../gate/decision';
import type { ApprovalWaitResult } from '../gate/approvals/types';
import type { GuardClient } from '../ipc/client';
import { sessionCalls, waitInGate } from '../ipc/agent-calls';

export interface GuardToolsOptions {
  /** An in-process gate. Give exactly one of `gate` and `client`. */
  gate?: Gate;
  /** A client of a running `guardkernel serve` (its credential is the agent's). */
  client?: GuardClient;
  /** With `client`: the token to authenticate with (again after a reconnect). */
  authToken?: string;
  /** The CAR's `agent_id`. */
  agentId: string;
  /**
   * The CAR's `action_type`: one string for every tool, or a function of the
   * tool's name. Default: `tool.<name>`.
   */
  actionType?: string | ((toolName: string) => string);
  /** In process: who asks, recorded on approval requests (that name can never approve them). */
  requester?: string;
  /**
   * How long a pending call waits for its approval before it is denied, ms
   * (default 60000). Not used by `guardkernel/openai-agents`, where a pending
   * call interrupts the run instead.
   */
  approvalTimeoutMs?: number;
  /** Called when a call is pending, with its approval request's id (e.g. to tell an operator). */
  onPending?: (info: PendingInfo) => void;
}

export interface PendingInfo {
  approvalId: string;
  tool: string;
  car: Record<string, unknown>;
  /** The SDK's id of the tool call, where the SDK gives one. */
  toolCallId?: string;
}

/** Where decisions come from. */
export interface Decider {
  check(car: Record<string, unknown>): Promise<GateDecision>;
  /** Waits until approval `id` is decided or `timeoutMs` passes (then `timed_out: true`). */
  wait(id: string, timeoutMs: number, signal?: AbortSignal): Promise<ApprovalWaitResult>;
}

function gateDecider(gate: Gate, requester: string | undefined): Decider {
  return {
    check: (car) => gate.checkAsync(requester === undefined ? { car } : { car, requester }),
    wait: (id, timeoutMs, signal) => waitInGate(gate, id, timeoutMs, signal),
  };
}

function clientDecider(client: GuardClient, authToken: string | undefined): Decider {
  const calls = sessionCalls(client, authToken);
  return {
    check: (car) => calls(() => client.gateCheck({ car })),
    wait: (id, timeoutMs, signal) => calls(() => client.waitForApproval(id, { timeoutMs: Math.max(1, timeoutMs), signal, authToken })),
  };
}

/** A call the gate did not allow; its message is what the model reads. */
export class ToolDeniedError extends Error {
  readonly tool: string;
  readonly decision: GateDecision;
  constructor(tool: string, decision: GateDecision) {
    super(deniedText(tool, decision));
    this.name = 'ToolDeniedError';
    this.tool = tool;
    this.decision = decision;
  }
}

/** The text a model reads for a call that was not allowed. */
export function deniedText(tool: string, d: GateDecision): string {
  const what = d.decision === 'pending' ? `is waiting for approval ${d.approval_id ?? ''}`.trimEnd() : 'was denied';
  return `guardkernel: the call to tool "${tool}" ${what}: ${d.reason}`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export interface Guard {
  readonly agentId: string;
  readonly decider: Decider;
  readonly approvalTimeoutMs: number;
  readonly onPending: ((info: PendingInfo) => void) | undefined;
  /**
   * The CAR of a call to `tool` with `args`, the very value the tool's own
   * function receives (a non-object, e.g. a string input, is `{ input }`;
   * no arguments: no `args`). The CAR holds references into `args`: the
   * caller passes that same value on, unchanged.
   */
  carFor(tool: string, args: unknown): Record<string, unknown>;
  /** One gate check; an error is a deny (`source: 'error'`). */
  check(car: Record<string, unknown>): Promise<GateDecision>;
  /**
   * The final word on a call: allow or deny. A pending decision waits for its
   * approval (up to approvalTimeoutMs), then asks the gate again (a grant
   * allows exactly one call). An abort of `signal` while waiting rejects
   * with the abort's error.
   */
  decide(tool: string, car: Record<string, unknown>, signal?: AbortSignal, toolCallId?: string): Promise<GateDecision>;
}

function errorDecision(reason: string): GateDecision {
  return { decision: 'deny', source: 'error', reason, car_hash: null, policy_version: 0, trust_score: 0, confidence: 1 };
}

export function makeGuard(options: GuardToolsOptions, who: string): Guard {
  if (typeof options !== 'object' || options === null) throw new TypeError(`${who}: guardTools needs options ({ gate | client, agentId })`);
  const { agentId, actionType } = options;
  if (typeof agentId !== 'string' || agentId.length === 0) throw new TypeError(`${who}: agentId must be a non-empty string`);
  if ((options.gate === undefined) === (options.client === undefined)) throw new TypeError(`${who}: give exactly one of gate and client`);
  if (actionType !== undefined && typeof actionType !== 'function' && (typeof actionType !== 'string' || actionType.length === 0)) {
    throw new TypeError(`${who}: actionType must be a non-empty string or a function (toolName) => string`);
  }
  const approvalTimeoutMs = options.approvalTimeoutMs ?? 60_000;
  if (!Number.isSafeInteger(approvalTimeoutMs) || approvalTimeoutMs <= 0) throw new TypeError(`${who}: approvalTimeoutMs must be a positive integer (ms)`);
  if (options.onPending !== undefined && typeof options.onPending !== 'function') throw new TypeError(`${who}: onPending must be a function`);
  const decider = options.gate !== undefined ? gateDecider(options.gate, options.requester) : clientDecider(options.client as GuardClient, options.authToken);
  const onPending = options.onPending;

  const actionOf = (tool: string): string => {
    if (actionType === undefined) return `tool.${tool}`;
    if (typeof actionType === 'string') return actionType;
    const a = actionType(tool);
    if (typeof a !== 'string' || a.length === 0) throw new TypeError(`${who}: actionType("${tool}") must return a non-empty string`);
    return a;
  };

  const check = async (car: Record<string, unknown>): Promise<GateDecision> => {
    try {
      return await decider.check(car);
    } catch (err) {
      return errorDecision(`guardkernel could not decide: ${(err as Error)?.message ?? String(err)}`);
    }
  };

  return {
    agentId,
    decider,
    approvalTimeoutMs,
    onPending,
    carFor(tool, args) {
      const car: Record<string, unknown> = { action_type: actionOf(tool), agent_id: agentId, tool };
      if (args !== undefined) car.args = isPlainObject(args) ? args : { input: args };
      return car;
    },
    check,
    async decide(tool, car, signal, toolCallId) {
      const d = await check(car);
      if (d.decision !== 'pending') return d;
      const id = d.approval_id;
      if (id === undefined) return { ...d, decision: 'deny', reason: `${d.reason} (no approval request to wait on)` };
      if (onPending !== undefined) {
        try {
          onPending(toolCallId === undefined ? { approvalId: id, tool, car } : { approvalId: id, tool, car, toolCallId });
        } catch {
          // A failing listener must not decide the call.
        }
      }
      let w: ApprovalWaitResult;
      try {
        w = await decider.wait(id, approvalTimeoutMs, signal);
      } catch (err) {
        if (signal?.aborted) throw err; // the caller gave up on the call: not a decision for the model to read
        return { ...d, decision: 'deny', source: 'approval', reason: `waiting for approval ${id} failed: ${(err as Error)?.message ?? String(err)}` };
      }
      if (w.status === 'granted') {
        // The grant is spent by this check: exactly one call runs.
        const again = await check(car);
        if (again.decision === 'pending') return { ...again, decision: 'deny', reason: `approval ${id} was granted but no longer fits this call: ${again.reason}` };
        return again;
      }
      if (w.status === 'pending') return { ...d, decision: 'deny', source: 'approval', reason: `approval ${id} was not decided within ${approvalTimeoutMs} ms` };
      const why = w.reason;
      return { ...d, decision: 'deny', source: 'approval', reason: `approval ${id} was ${w.status}${why ? `: ${why}` : ''}` };
    },
  };
}
