/**
 * `guardkernel/openai-agents`: puts the gate in front of OpenAI Agents JS
 * function tools (`tool()` from `@openai/agents`, 0.14).
 *
 * - allow: the tool's own function runs;
 * - deny: the tool is not run; its result, which the model reads, is the
 *   reason (`guardkernel: the call to tool "x" was denied: ...`);
 * - pending: the tool's `needsApproval` answers true, so the run stops with
 *   an interruption (`result.interruptions`). The app finds the approval
 *   request with `approvalIdOf(interruption)` (or the `onPending` option),
 *   has it decided through `gate.approvals.approve/deny` (or the socket's
 *   `approval_approve`), then resumes as the SDK expects
 *   (`result.state.approve(interruption)`; `run(agent, result.state)`). On
 *   resume the gate is asked again: the tool runs only if it allows now (a
 *   grant allows exactly one call); otherwise the model reads the reason.
 *   `state.reject(interruption)` never runs the tool.
 *
 * What is judged: the SDK does not show a tool's parsed input before it
 * calls the function; its runner hands the tool a callback that the tool
 * calls with that input right before the function. On a tool's first call
 * the CAR's `args` are the call's JSON arguments, and the callback checks
 * that the parsed input is that very value (same canonical JSON). When the
 * tool's schema changed it (unknown keys stripped, nulls of optional fields
 * dropped, defaults filled), the function is not run then: the parsed value
 * is judged as a CAR of its own (pending: waited on), and on an allow the
 * tool is invoked again, its function receiving only a value equal to that
 * one. Once a tool was seen to call back, later calls run its parse alone
 * first (the callback stops it before the function) and are judged on the
 * parsed value from the start, in needsApproval too. The check needs the
 * SDK's runner (`run()`): a tool invoked outside it is refused.
 *
 * Nothing from `@openai/agents` is loaded here: tools are read by shape.
 */
import { canonicalizeJson } from '../canonical/car';
import { deniedText, makeGuard, type Guard, type GuardToolsOptions } from './guard';
import type { GateDecision } from '../gate/decision';

export { ToolDeniedError } from './guard';
export type { GuardToolsOptions, PendingInfo } from './guard';

/** The part of an `@openai/agents` FunctionTool this wrapper reads. */
export interface FunctionToolLike {
  type: 'function';
  name: string;
  invoke: (runContext: any, input: string, details?: any) => Promise<unknown>;
  needsApproval?: (runContext: any, input: any, callId?: string) => Promise<boolean>;
  [key: string]: unknown;
}

/** The SDK's key (a Symbol) for the callback it calls with the parsed input, right before the tool's function. */
const PARSED_INPUT_HOOK = 'openai.agents.functionToolParsedInputCallback';

/** Open approval requests of interrupted calls: `${tool}\0${callId}` → approval id (bounded). */
const pendingApprovals = new Map<string, string>();
const MAX_REMEMBERED = 4096;

function remember<K, V>(map: Map<K, V>, key: K, value: V): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > MAX_REMEMBERED) map.delete(map.keys().next().value as K);
}

/**
 * The approval request behind an interruption that a guarded tool caused (a
 * `RunToolApprovalItem` from `result.interruptions`, or its raw function
 * call), or undefined when the interruption is not one of ours.
 */
export function approvalIdOf(interruption: unknown): string | undefined {
  const i = interruption as { rawItem?: { name?: unknown; callId?: unknown }; name?: unknown; callId?: unknown } | null;
  if (typeof i !== 'object' || i === null) return undefined;
  const raw = typeof i.rawItem === 'object' && i.rawItem !== null ? i.rawItem : i;
  if (typeof raw.name !== 'string' || typeof raw.callId !== 'string') return undefined;
  return pendingApprovals.get(`${raw.name}\0${raw.callId}`);
}

function canonicalOf(v: unknown): string | null {
  try {
    return canonicalizeJson(v === undefined ? null : v);
  } catch {
    return null;
  }
}

function parseArguments(input: unknown): { ok: true; value: unknown } | { ok: false } {
  if (typeof input !== 'string') return { ok: true, value: input };
  try {
    return { ok: true, value: JSON.parse(input) };
  } catch {
    return { ok: false };
  }
}

/** The decision `needsApproval` made for a call, for `invoke` of the same call (one gate check per call). */
interface Remembered {
  canonical: string;
  decision: GateDecision;
}

function wrap(t: FunctionToolLike, guard: Guard): FunctionToolLike {
  const name = t.name;
  const originalInvoke = t.invoke;
  const originalNeedsApproval = t.needsApproval;
  const decided = new Map<string, Remembered>();
  /**
   * The SDK's parsed-input key, once this tool was seen to call it right
   * before its function: from then on the tool's own parse can be run alone
   * (the key's callback stops it), so a call is judged on its parsed value
   * from the start.
   */
  let verifiedHook: symbol | undefined;

  /** The tool's own parse of `input`, its function never reached; undefined before verifiedHook is known. */
  const parseOnly = async (runContext: unknown, input: string): Promise<{ ok: true; value: unknown } | { ok: false } | undefined> => {
    const hook = verifiedHook;
    if (hook === undefined) return undefined;
    const stop = new Error('guardkernel: parse only');
    stop.name = 'AbortError'; // the SDK passes an abort on as it is, without the tool's errorFunction
    const ac = new AbortController();
    ac.abort(stop);
    let captured: { value: unknown } | undefined;
    const details: Record<PropertyKey, unknown> = {
      signal: ac.signal,
      [hook]: (value: unknown) => {
        captured = { value };
        throw stop;
      },
    };
    try {
      await originalInvoke.call(t, runContext, input, details);
    } catch {
      // `stop`, or the tool's own failure to parse: either way its function did not run.
    }
    return captured === undefined ? { ok: false } : { ok: true, value: captured.value };
  };

  const needsApproval = async (runContext: unknown, input: unknown, callId?: string): Promise<boolean> => {
    const own = typeof originalNeedsApproval === 'function' ? await originalNeedsApproval.call(t, runContext, input, callId) : false;
    let text: string | undefined;
    try {
      text = JSON.stringify(input);
    } catch {
      text = undefined;
    }
    const p = text === undefined ? undefined : await parseOnly(runContext, text);
    const car = guard.carFor(name, p?.ok === true ? p.value : input);
    const d = await guard.check(car);
    const canonical = canonicalOf(car.args);
    if (callId !== undefined && canonical !== null) remember(decided, callId, { canonical, decision: d });
    if (d.decision === 'pending') {
      if (d.approval_id !== undefined && callId !== undefined) {
        remember(pendingApprovals, `${name}\0${callId}`, d.approval_id);
        if (guard.onPending !== undefined) {
          try {
            guard.onPending({ approvalId: d.approval_id, tool: name, car, toolCallId: callId });
          } catch {
            // A failing listener must not decide the call.
          }
        }
      }
      return true;
    }
    // A deny needs no person: invoke answers it. An allow keeps the tool's own approval policy.
    return d.decision === 'allow' && own === true;
  };

  const invoke = async (runContext: unknown, input: string, details?: Record<PropertyKey, unknown>): Promise<unknown> => {
    const callId = (details?.toolCall as { callId?: unknown } | undefined)?.callId;
    const hook = details === undefined || details === null ? undefined : Reflect.ownKeys(details).find((k): k is symbol => typeof k === 'symbol' && k.description === PARSED_INPUT_HOOK);
    if (hook === undefined) {
      return `guardkernel: the call to tool "${name}" was refused: a guarded tool runs only through the @openai/agents runner, which shows the guard the parsed arguments`;
    }
    const parsed = (hook === verifiedHook ? await parseOnly(runContext, input) : undefined) ?? parseArguments(input);
    // Unparseable arguments: the tool itself answers (its function never runs), but only ever on what was judged.
    const args = parsed.ok ? parsed.value : undefined;
    const car = guard.carFor(name, args);
    const canonical = canonicalOf(car.args);
    let d: GateDecision;
    const before = typeof callId === 'string' ? decided.get(callId) : undefined;
    if (typeof callId === 'string') decided.delete(callId);
    if (before !== undefined && canonical !== null && before.canonical === canonical && before.decision.decision !== 'pending') {
      d = before.decision; // decided moments ago by needsApproval for this very call
    } else if (parsed.ok) {
      d = await guard.check(car);
    } else {
      d = { decision: 'allow', source: 'validation', reason: 'unparseable arguments: the tool reports them', car_hash: null, policy_version: 0, trust_score: 0, confidence: 1 };
    }
    if (typeof callId === 'string') pendingApprovals.delete(`${name}\0${callId}`);
    if (d.decision !== 'allow') return deniedText(name, d);
    const sdkHook = details![hook] as ((value: unknown) => void) | undefined;
    let changed: { value: unknown } | undefined;
    /** Runs the tool; its function only ever receives a value whose canonical JSON is `expected`. */
    const attempt = async (expected: string | null): Promise<unknown> => {
      changed = undefined;
      details![hook] = (value: unknown) => {
        // The SDK calls this with the input it is about to hand to the tool's function.
        verifiedHook = hook;
        if (expected === null || canonicalOf(value) !== expected) {
          changed = { value };
          throw new Error(`guardkernel: the arguments of tool "${name}" changed in the tool's schema; they are judged again`);
        }
        if (typeof sdkHook === 'function') sdkHook(value);
      };
      try {
        return await originalInvoke.call(t, runContext, input, details);
      } catch (err) {
        if (changed === undefined) throw err;
        return undefined;
      } finally {
        details![hook] = sdkHook;
      }
    };
    const first = await attempt(parsed.ok ? canonical : null);
    if (changed === undefined) return first;
    // The tool's schema changes what was sent (strips keys or nulls, fills
    // defaults, transforms): the function did not run. Judge the value it
    // would receive, then run it on exactly that value.
    const value = (changed as { value: unknown }).value;
    const car2 = guard.carFor(name, value);
    const canonical2 = canonicalOf(car2.args);
    if (canonical2 === null) return `guardkernel: the call to tool "${name}" was refused: its schema turns the arguments into values that are not JSON, which the gate cannot judge`;
    const d2 = await guard.decide(name, car2, details!.signal as AbortSignal | undefined, typeof callId === 'string' ? callId : undefined);
    if (d2.decision !== 'allow') return deniedText(name, d2);
    const second = await attempt(canonical2);
    if (changed !== undefined) return `guardkernel: the call to tool "${name}" was refused: its schema does not parse the same arguments the same way twice`;
    return second;
  };

  const copy = Object.create(Object.getPrototypeOf(t), Object.getOwnPropertyDescriptors(t)) as FunctionToolLike;
  Object.defineProperty(copy, 'invoke', { value: invoke, writable: true, enumerable: true, configurable: true });
  Object.defineProperty(copy, 'needsApproval', { value: needsApproval, writable: true, enumerable: true, configurable: true });
  return copy;
}

/**
 * Wraps each function tool of `tools` so its function runs only after the
 * gate allows; a pending call interrupts the run for approval. Other tools
 * (hosted tools, computer, shell) are returned as they are. The originals
 * are not changed.
 */
export function guardTools<T extends ReadonlyArray<{ type: string }>>(tools: T, options: GuardToolsOptions): T {
  const guard = makeGuard(options, 'guardkernel/openai-agents');
  if (!Array.isArray(tools)) throw new TypeError('guardkernel/openai-agents: tools must be an array of tools');
  return tools.map((t, i) => {
    if (typeof t !== 'object' || t === null) throw new TypeError(`guardkernel/openai-agents: tools[${i}] is not a tool`);
    const f = t as unknown as FunctionToolLike;
    if (f.type !== 'function') return t;
    if (typeof f.name !== 'string' || typeof f.invoke !== 'function') throw new TypeError(`guardkernel/openai-agents: tools[${i}] is not a function tool (name, invoke)`);
    return wrap(f, guard);
  }) as unknown as T;
}
