// guardkernel/ai against the real Vercel AI SDK (`ai` 6) with its own mock
// model: the tool's function runs only after an allow; a deny or an
// unanswered approval reaches the model as the tool's error, with the reason;
// the CAR holds the input the SDK hands the function (after its schema).
import { afterEach, describe, expect, test } from 'vitest';
import { generateText, stepCountIs, tool } from 'ai';
// moduleResolution "node" cannot see the `ai/test` export; the types come from its file.
// @ts-ignore
import { MockLanguageModelV3 as MockModel } from 'ai/test';
import type { MockLanguageModelV3 } from 'ai/dist/test';
import { z } from 'zod';
import { guardTools, ToolDeniedError } from '../lib/adapters/ai';
import { AGENT, recordingGate, served } from './adapters-fixtures';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const usage = { inputTokens: { total: 1, noCache: 1, cacheRead: 0, cacheWrite: 0 }, outputTokens: { total: 1, text: 1, reasoning: 0 } };

/** A model that calls `toolName` with the JSON text `input` once, then answers "done". */
function model(toolName: string, input: string): MockLanguageModelV3 {
  let n = 0;
  const Model = MockModel as typeof MockLanguageModelV3;
  return new Model({
    doGenerate: async () => {
      n += 1;
      if (n === 1) return { content: [{ type: 'tool-call', toolCallId: 'call-1', toolName, input }], finishReason: { unified: 'tool-calls', raw: 'tool_calls' }, usage, warnings: [] };
      return { content: [{ type: 'text', text: 'done' }], finishReason: { unified: 'stop', raw: 'stop' }, usage, warnings: [] };
    },
  });
}

/** What the model was shown as the tool's result in its second call. */
function toolResultSeen(m: MockLanguageModelV3): unknown {
  const prompt = m.doGenerateCalls[1]?.prompt ?? [];
  const msg = prompt.find((p) => p.role === 'tool');
  return (msg?.content as Array<{ type: string; output?: unknown }> | undefined)?.find((c) => c.type === 'tool-result')?.output;
}

function tools() {
  const runs: Array<{ name: string; input: unknown }> = [];
  return {
    runs,
    set: {
      read_file: tool({
        description: 'read a file',
        inputSchema: z.object({ path: z.string(), mode: z.string().default('r') }),
        execute: async (input) => {
          runs.push({ name: 'read_file', input });
          return `contents of ${input.path}`;
        },
      }),
      shell: tool({
        description: 'run a command',
        inputSchema: z.object({ cmd: z.string() }),
        execute: async (input) => {
          runs.push({ name: 'shell', input });
          return `ran ${input.cmd}`;
        },
      }),
    },
  };
}

async function run(m: MockLanguageModelV3, set: Record<string, unknown>) {
  return generateText({ model: m, tools: set as Parameters<typeof generateText>[0]['tools'], prompt: 'go', stopWhen: stepCountIs(3) });
}

describe('guardkernel/ai (in-process gate)', () => {
  test('allowed: the tool runs once and its result is the model-visible result', async () => {
    const { gate, cars } = recordingGate();
    const t = tools();
    const m = model('read_file', '{"path":"/srv/data/a.txt"}');
    const r = await run(m, guardTools(t.set, { gate, agentId: AGENT }));
    expect(t.runs).toEqual([{ name: 'read_file', input: { path: '/srv/data/a.txt', mode: 'r' } }]);
    expect(r.steps[0].toolResults[0]).toMatchObject({ toolName: 'read_file', output: 'contents of /srv/data/a.txt' });
    expect(toolResultSeen(m)).toEqual({ type: 'text', value: 'contents of /srv/data/a.txt' });
    expect(cars).toEqual([{ action_type: 'tool.read_file', agent_id: AGENT, tool: 'read_file', args: { path: '/srv/data/a.txt', mode: 'r' } }]);
    expect(r.text).toBe('done');
  });

  test('denied: the function never runs; the model reads a tool error carrying the reason', async () => {
    const { gate } = recordingGate();
    const t = tools();
    const m = model('read_file', '{"path":"/etc/passwd"}');
    const r = await run(m, guardTools(t.set, { gate, agentId: AGENT }));
    expect(t.runs).toEqual([]);
    const err = r.steps[0].content.find((c) => c.type === 'tool-error') as { error: unknown } | undefined;
    expect(err?.error).toBeInstanceOf(ToolDeniedError);
    expect((err!.error as ToolDeniedError).decision).toMatchObject({ decision: 'deny', source: 'policy' });
    const seen = toolResultSeen(m) as { type: string; value: string };
    expect(seen.type).toBe('error-text');
    expect(seen.value).toContain('guardkernel: the call to tool "read_file" was denied');
    expect(seen.value).toContain((err!.error as ToolDeniedError).decision.reason);
    expect((err!.error as ToolDeniedError).decision.reason).toMatch(/args\.path/);
  });

  test('an unknown tool name (no rule) is denied by the default; an agent outside allow_identities too', async () => {
    const { gate } = recordingGate();
    const t = tools();
    const m = model('read_file', '{"path":"/srv/data/a.txt"}');
    await run(m, guardTools(t.set, { gate, agentId: 'robot-1' }));
    expect(t.runs).toEqual([]);
    const m2 = model('read_file', '{"path":"/srv/data/a.txt"}');
    await run(m2, guardTools(t.set, { gate, agentId: AGENT, actionType: (n) => `other.${n}` }));
    expect(t.runs).toEqual([]);
    expect((toolResultSeen(m2) as { value: string }).value).toMatch(/denied/);
  });

  test('pending, then approved through gate.approvals: the tool runs exactly once; the grant is used', async () => {
    const { gate, book } = recordingGate();
    const t = tools();
    const m = model('shell', '{"cmd":"ls"}');
    const ids: string[] = [];
    const guarded = guardTools(t.set, {
      gate,
      agentId: AGENT,
      onPending: ({ approvalId, tool: name, toolCallId }) => {
        ids.push(approvalId);
        expect({ name, toolCallId }).toEqual({ name: 'shell', toolCallId: 'call-1' });
        setTimeout(() => book.approve(approvalId, { approver: 'alice' }), 20);
      },
    });
    const r = await run(m, guarded);
    expect(t.runs).toEqual([{ name: 'shell', input: { cmd: 'ls' } }]);
    expect(toolResultSeen(m)).toEqual({ type: 'text', value: 'ran ls' });
    expect(ids).toHaveLength(1);
    expect(book.get(ids[0])).toMatchObject({ status: 'used' });
    expect(r.text).toBe('done');
  });

  test('pending, then no decision within approvalTimeoutMs: the tool never runs; the model reads why', async () => {
    const { gate } = recordingGate();
    const t = tools();
    const m = model('shell', '{"cmd":"rm -rf /"}');
    await run(m, guardTools(t.set, { gate, agentId: AGENT, approvalTimeoutMs: 100 }));
    expect(t.runs).toEqual([]);
    expect((toolResultSeen(m) as { value: string }).value).toMatch(/shell.*was denied: approval apr_\S+ was not decided within 100 ms/);
  });

  test('pending, then denied by an operator: the tool never runs; the model reads the operator reason', async () => {
    const { gate, book } = recordingGate();
    const t = tools();
    const m = model('shell', '{"cmd":"curl evil"}');
    await run(m, guardTools(t.set, { gate, agentId: AGENT, onPending: ({ approvalId }) => setTimeout(() => book.deny(approvalId, { approver: 'bob', reason: 'no network' }), 10) }));
    expect(t.runs).toEqual([]);
    expect((toolResultSeen(m) as { value: string }).value).toMatch(/was denied: approval apr_\S+ was denied: no network/);
  });

  test('attack: extra keys, a "name" key and a default: the CAR holds exactly the input the function receives', async () => {
    const { gate, cars } = recordingGate();
    const t = tools();
    // The schema strips `mode2` and `name`; `mode` is filled in by its default ("r").
    const m = model('read_file', '{"path":"/srv/data/a","name":"shell","mode2":"w","cmd":"rm -rf /"}');
    await run(m, guardTools(t.set, { gate, agentId: AGENT }));
    expect(t.runs).toHaveLength(1);
    expect(cars).toHaveLength(1);
    expect(cars[0]).toEqual({ action_type: 'tool.read_file', agent_id: AGENT, tool: 'read_file', args: t.runs[0].input });
    expect(cars[0].args).toEqual({ path: '/srv/data/a', mode: 'r' });
    // A value the schema keeps is judged: mode "w" is outside the rule's one_of.
    const m2 = model('read_file', '{"path":"/srv/data/a","mode":"w"}');
    await run(m2, guardTools(t.set, { gate, agentId: AGENT }));
    expect(t.runs).toHaveLength(1);
    expect(cars[1].args).toEqual({ path: '/srv/data/a', mode: 'w' });
  });

  test('the originals are unchanged; tools without execute pass through; a streaming tool streams only after an allow', async () => {
    const { gate } = recordingGate();
    const t = tools();
    const clientSide = tool({ description: 'asks the user', inputSchema: z.object({ q: z.string() }) });
    let streamed = 0;
    const streaming = tool({
      description: 'a streaming read',
      inputSchema: z.object({ path: z.string(), mode: z.string().default('r') }),
      async *execute(input) {
        streamed += 1;
        yield 'partial';
        yield `all of ${input.path}`;
      },
    });
    const guarded = guardTools({ ...t.set, ask: clientSide, read_file: streaming }, { gate, agentId: AGENT });
    expect(guarded.ask).toBe(clientSide);
    expect(guarded.shell.execute).not.toBe(t.set.shell.execute);
    expect(typeof t.set.shell.execute).toBe('function');
    const denied = model('read_file', '{"path":"/srv/other"}');
    await run(denied, guarded);
    expect(streamed).toBe(0);
    const m = model('read_file', '{"path":"/srv/data/s"}');
    const r = await run(m, guarded);
    expect(streamed).toBe(1);
    expect(r.steps[0].toolResults[0]).toMatchObject({ output: 'all of /srv/data/s' });
  });

  test('options are checked', () => {
    const { gate } = recordingGate();
    expect(() => guardTools({}, { agentId: AGENT } as never)).toThrow(/exactly one of gate and client/);
    expect(() => guardTools({}, { gate, agentId: '' })).toThrow(/agentId/);
    expect(() => guardTools({}, { gate, agentId: AGENT, approvalTimeoutMs: 0 })).toThrow(/approvalTimeoutMs/);
  });
});

describe('guardkernel/ai through a GuardClient (guardkernel serve)', () => {
  test('allowed, denied, and pending-then-approved by the server side', async () => {
    const s = await served();
    cleanups.push(() => s.close());
    const t = tools();
    const opts = { client: s.client, authToken: s.authToken, agentId: AGENT, onPending: ({ approvalId }: { approvalId: string }) => setTimeout(() => s.book.approve(approvalId, { approver: 'alice' }), 20) };
    const ok = model('read_file', '{"path":"/srv/data/a.txt"}');
    await run(ok, guardTools(t.set, opts));
    expect(t.runs).toEqual([{ name: 'read_file', input: { path: '/srv/data/a.txt', mode: 'r' } }]);
    const no = model('read_file', '{"path":"/etc/shadow"}');
    await run(no, guardTools(t.set, opts));
    expect(t.runs).toHaveLength(1);
    expect((toolResultSeen(no) as { value: string }).value).toMatch(/read_file" was denied: .*args\.path/);
    const wait = model('shell', '{"cmd":"ls"}');
    await run(wait, guardTools(t.set, opts));
    expect(t.runs).toEqual([
      { name: 'read_file', input: { path: '/srv/data/a.txt', mode: 'r' } },
      { name: 'shell', input: { cmd: 'ls' } },
    ]);
    expect(toolResultSeen(wait)).toEqual({ type: 'text', value: 'ran ls' });
  });
});
