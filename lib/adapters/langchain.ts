/**
 * `guardkernel/langchain`: puts the gate in front of LangChain.js tools
 * (`tool()` / `StructuredTool` / `DynamicTool` from `@langchain/core/tools`, v1).
 *
 * LangChain parses a call's arguments with the tool's schema and hands the
 * result to the tool's `_call` (and from there to the function given to
 * `tool()`); the wrapper judges that parsed value and passes it on
 * unchanged, so the gate sees what the tool's function receives (a string
 * input of a `DynamicTool` is `args: { input }`).
 *
 * - allow: the tool runs;
 * - deny: the tool is not run; invoked with a ToolCall (as agents and
 *   `ToolNode` do) it answers a `ToolMessage` with `status: "error"` whose
 *   content is the reason, the model's usual view of a failed tool; invoked
 *   with bare arguments it answers that text;
 * - pending: the call waits for its approval (up to `approvalTimeoutMs`, or
 *   until the call's `signal` aborts), then the gate is asked again: an allow
 *   runs the tool, anything else is a deny as above.
 *
 * `@langchain/core/messages` is loaded only when a denial is answered with
 * a ToolMessage; tools are read by shape.
 */
import { deniedText, makeGuard, type Guard, type GuardToolsOptions } from './guard';

export { ToolDeniedError } from './guard';
export type { GuardToolsOptions, PendingInfo } from './guard';

/**
 * What `guardTools` takes: LangChain tools (read by shape: a `name` and the
 * protected `_call` every StructuredTool has).
 */
export interface LangChainToolLike {
  name: string;
}

/** The inside of a tool the wrapper reaches. */
interface ToolInternals {
  name: string;
  _call: (arg: unknown, runManager?: unknown, config?: unknown) => unknown;
  responseFormat?: string;
}

interface CallConfig {
  signal?: AbortSignal;
  toolCall?: { id?: unknown };
}

function toolMessageClass(): new (fields: Record<string, unknown>) => unknown {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('@langchain/core/messages') as { ToolMessage: new (fields: Record<string, unknown>) => unknown }).ToolMessage;
}

function wrap<T extends ToolInternals>(t: T, guard: Guard): T {
  const name = t.name;
  const wrapper = Object.create(t) as T;
  const originalCall = t._call;
  Object.defineProperty(wrapper, '_call', {
    configurable: true,
    enumerable: false,
    writable: true,
    value: async function (this: T, arg: unknown, runManager?: unknown, config?: CallConfig) {
      const toolCallId = typeof config?.toolCall?.id === 'string' ? config.toolCall.id : undefined;
      const car = guard.carFor(name, arg);
      const d = await guard.decide(name, car, config?.signal, toolCallId);
      if (d.decision === 'allow') return originalCall.call(this, arg, runManager, config);
      const text = deniedText(name, d);
      if (toolCallId === undefined) return this.responseFormat === 'content_and_artifact' ? [text, undefined] : text;
      const ToolMessage = toolMessageClass();
      const message = new ToolMessage({ content: text, tool_call_id: toolCallId, name, status: 'error', artifact: { guardkernel: { decision: d.decision, source: d.source, reason: d.reason, approval_id: d.approval_id } } });
      // A ToolMessage is the tool's output as it is; content_and_artifact wants a pair whose first item it is.
      return this.responseFormat === 'content_and_artifact' ? [message, undefined] : message;
    },
  });
  return wrapper;
}

/**
 * Wraps each tool of `tools` (an array, or a record name → tool) so it runs
 * only after the gate allows. A wrapper inherits everything else from its
 * tool (name, schema, description, callbacks); the originals are not changed.
 */
export function guardTools<T extends LangChainToolLike[] | ReadonlyArray<LangChainToolLike> | Readonly<Record<string, LangChainToolLike>>>(tools: T, options: GuardToolsOptions): T {
  const guard = makeGuard(options, 'guardkernel/langchain');
  const one = (x: LangChainToolLike, where: string): LangChainToolLike => {
    const t = x as ToolInternals;
    if (typeof t !== 'object' || t === null || typeof t.name !== 'string' || typeof t._call !== 'function') throw new TypeError(`guardkernel/langchain: ${where} is not a LangChain tool (name, _call)`);
    return wrap(t, guard);
  };
  if (Array.isArray(tools)) return tools.map((t, i) => one(t, `tools[${i}]`)) as unknown as T;
  if (typeof tools !== 'object' || tools === null) throw new TypeError('guardkernel/langchain: tools must be an array of tools');
  const out: Record<string, LangChainToolLike> = {};
  for (const k of Object.keys(tools)) out[k] = one((tools as Record<string, LangChainToolLike>)[k], `tools.${k}`);
  return out as unknown as T;
}
