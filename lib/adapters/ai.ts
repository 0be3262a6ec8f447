/**
 * `guardkernel/ai`: puts the gate in front of Vercel AI SDK tools (`tool()`
 * from the `ai` package, v6).
 *
 * The SDK validates the model's input against the tool's `inputSchema` and
 * calls `execute(input, options)` with the result; the wrapper judges that
 * very `input` and passes it on unchanged, so the gate sees what the tool's
 * function receives (unknown keys the schema strips are not in it; a `name`
 * inside the input is an argument, never the tool's name).
 *
 * - allow: the tool's own `execute` runs;
 * - deny: `execute` throws a ToolDeniedError; the SDK turns it into a
 *   `tool-error` part and the model reads its message (with the reason);
 * - pending: the call waits for its approval (up to `approvalTimeoutMs`),
 *   then the gate is asked again: an allow runs the tool, anything else is a
 *   deny as above.
 *
 * Tools without `execute` (the app runs them) are returned as they are.
 * Nothing from the `ai` package is loaded here: tools are read by shape.
 */
import { makeGuard, ToolDeniedError, type GuardToolsOptions } from './guard';

export { ToolDeniedError } from './guard';
export type { GuardToolsOptions, PendingInfo } from './guard';

/** The part of an AI SDK tool this wrapper reads. */
export interface AiToolLike {
  execute?: (input: any, options: any) => unknown;
  [key: string]: unknown;
}

type Execute = (input: unknown, options: unknown) => unknown;

function isAsyncGeneratorFunction(f: unknown): boolean {
  return Object.prototype.toString.call(f) === '[object AsyncGeneratorFunction]';
}

function isAsyncIterable(v: unknown): v is AsyncIterable<unknown> {
  return v != null && typeof (v as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function';
}

/**
 * Wraps each tool of `tools` (a record name → tool, as `generateText` /
 * `streamText` take them) so its `execute` runs only after the gate allows.
 * The originals are not changed.
 */
export function guardTools<T extends Record<string, AiToolLike>>(tools: T, options: GuardToolsOptions): T {
  const guard = makeGuard(options, 'guardkernel/ai');
  if (typeof tools !== 'object' || tools === null || Array.isArray(tools)) throw new TypeError('guardkernel/ai: tools must be a record of name → tool');
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(tools)) {
    const t = tools[name];
    if (typeof t !== 'object' || t === null) throw new TypeError(`guardkernel/ai: tool "${name}" is not a tool object`);
    const original = t.execute as Execute | undefined;
    if (typeof original !== 'function') {
      out[name] = t;
      continue;
    }
    const gateCall = async (input: unknown, opts: unknown): Promise<void> => {
      const o = (opts ?? {}) as { abortSignal?: AbortSignal; toolCallId?: string };
      const car = guard.carFor(name, input);
      const d = await guard.decide(name, car, o.abortSignal, o.toolCallId);
      if (d.decision !== 'allow') throw new ToolDeniedError(name, d);
    };
    let execute: Execute;
    if (isAsyncGeneratorFunction(original)) {
      // Streaming tools (preliminary results): keep the shape the SDK looks for.
      execute = async function* (this: unknown, input: unknown, opts: unknown) {
        await gateCall(input, opts);
        yield* original.call(this, input, opts) as AsyncIterable<unknown>;
      };
    } else {
      execute = async function (this: unknown, input: unknown, opts: unknown) {
        await gateCall(input, opts);
        const r = await original.call(this, input, opts);
        if (!isAsyncIterable(r)) return r;
        // An iterable from a plain function: the SDK would have streamed it; its last value is the result.
        let last: unknown;
        for await (const v of r) last = v;
        return last;
      };
    }
    out[name] = { ...t, execute };
  }
  return out as T;
}
