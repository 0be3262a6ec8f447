// guardkernel/langchain against the real LangChain core (`@langchain/core` 1)
// with its fake chat model (no network): a tool call the model makes is
// invoked as agents do (tool.invoke(toolCall)); the tool runs only after an
// allow; a deny is a ToolMessage with status "error" carrying the reason; a
// pending call waits for its approval; the CAR holds what the tool's function
// receives after LangChain's schema parsing.
import { afterEach, describe, expect, test } from 'vitest';
import { AIMessage, AIMessageChunk, HumanMessage, ToolMessage, type BaseMessage } from '@langchain/core/messages';
import { DynamicTool, tool, type StructuredToolInterface } from '@langchain/core/tools';
import { FakeStreamingChatModel } from '@langchain/core/utils/testing';
import { z } from 'zod';
import { guardTools } from '../lib/adapters/langchain';
import { AGENT, recordingGate, served } from './adapters-fixtures';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function tools() {
  const runs: Array<{ name: string; input: unknown }> = [];
  return {
    runs,
    readFile: tool(
      async (input) => {
        runs.push({ name: 'read_file', input });
        return `contents of ${input.path}`;
      },
      { name: 'read_file', description: 'read a file', schema: z.object({ path: z.string(), mode: z.string().default('r') }) },
    ),
    shell: tool(
      async (input) => {
        runs.push({ name: 'shell', input });
        return `ran ${input.cmd}`;
      },
      { name: 'shell', description: 'run a command', schema: z.object({ cmd: z.string() }) },
    ),
  };
}

/**
 * One agent step as LangChain agents take it: the (fake) model answers with
 * a tool call; the tool is invoked with that ToolCall; its ToolMessage is
 * what the model reads next.
 */
async function step(toolSet: StructuredToolInterface[], name: string, args: Record<string, unknown>, signal?: AbortSignal): Promise<ToolMessage> {
  const model = new FakeStreamingChatModel({ chunks: [new AIMessageChunk({ content: '', tool_calls: [{ id: 'call-1', name, args, type: 'tool_call' }] })] });
  const messages: BaseMessage[] = [new HumanMessage('go')];
  const ai = (await model.bindTools(toolSet).invoke(messages)) as AIMessage;
  const call = ai.tool_calls![0];
  const chosen = toolSet.find((t) => t.name === call.name)!;
  const out = await chosen.invoke({ ...call, type: 'tool_call' }, signal === undefined ? undefined : { signal });
  expect(out).toBeInstanceOf(ToolMessage);
  return out as ToolMessage;
}

describe('guardkernel/langchain (in-process gate)', () => {
  test('allowed: the tool runs once; its ToolMessage (status success) is what the model reads', async () => {
    const { gate, cars } = recordingGate();
    const t = tools();
    const msg = await step(guardTools([t.readFile, t.shell], { gate, agentId: AGENT }), 'read_file', { path: '/srv/data/a.txt' });
    expect(t.runs).toEqual([{ name: 'read_file', input: { path: '/srv/data/a.txt', mode: 'r' } }]);
    expect(msg).toMatchObject({ content: 'contents of /srv/data/a.txt', status: 'success', tool_call_id: 'call-1' });
    expect(cars).toEqual([{ action_type: 'tool.read_file', agent_id: AGENT, tool: 'read_file', args: { path: '/srv/data/a.txt', mode: 'r' } }]);
  });

  test('denied: the function never runs; a ToolMessage with status "error" carries the reason', async () => {
    const { gate } = recordingGate();
    const t = tools();
    const msg = await step(guardTools([t.readFile], { gate, agentId: AGENT }), 'read_file', { path: '/etc/passwd' });
    expect(t.runs).toEqual([]);
    expect(msg.status).toBe('error');
    expect(msg.tool_call_id).toBe('call-1');
    expect(msg.content).toMatch(/^guardkernel: the call to tool "read_file" was denied: .*args\.path/);
    expect(msg.artifact).toMatchObject({ guardkernel: { decision: 'deny', source: 'policy' } });
    // Invoked with bare arguments (no tool call), the answer is the same text.
    const [g] = guardTools([t.readFile], { gate, agentId: AGENT });
    expect(await g.invoke({ path: '/etc/passwd' })).toMatch(/was denied/);
    expect(t.runs).toEqual([]);
  });

  test('pending, then approved through gate.approvals: the tool runs exactly once; the grant is used', async () => {
    const { gate, book } = recordingGate();
    const t = tools();
    const ids: string[] = [];
    const guarded = guardTools([t.shell], {
      gate,
      agentId: AGENT,
      onPending: ({ approvalId, toolCallId }) => {
        ids.push(approvalId);
        expect(toolCallId).toBe('call-1');
        setTimeout(() => book.approve(approvalId, { approver: 'alice' }), 20);
      },
    });
    const msg = await step(guarded, 'shell', { cmd: 'ls' });
    expect(t.runs).toEqual([{ name: 'shell', input: { cmd: 'ls' } }]);
    expect(msg).toMatchObject({ content: 'ran ls', status: 'success' });
    expect(book.get(ids[0])).toMatchObject({ status: 'used' });
  });

  test('pending, then the timeout or an operator deny or an abort: the tool never runs; the model reads why', async () => {
    const { gate, book } = recordingGate();
    const t = tools();
    const timedOut = await step(guardTools([t.shell], { gate, agentId: AGENT, approvalTimeoutMs: 100 }), 'shell', { cmd: 'rm -rf /' });
    expect(timedOut).toMatchObject({ status: 'error' });
    expect(timedOut.content).toMatch(/approval apr_\S+ was not decided within 100 ms/);
    const denied = await step(guardTools([t.shell], { gate, agentId: AGENT, onPending: ({ approvalId }) => setTimeout(() => book.deny(approvalId, { approver: 'bob', reason: 'no' }), 10) }), 'shell', { cmd: 'curl evil' });
    expect(denied.content).toMatch(/approval apr_\S+ was denied: no/);
    const ac = new AbortController();
    const aborted = step(guardTools([t.shell], { gate, agentId: AGENT, onPending: () => setTimeout(() => ac.abort(), 10) }), 'shell', { cmd: 'sleep' }, ac.signal);
    await expect(aborted).rejects.toThrow(/abort/i);
    expect(t.runs).toEqual([]);
  });

  test('attack: extra keys, a "name" key and a default: the CAR holds exactly what the function receives', async () => {
    const { gate, cars } = recordingGate();
    const t = tools();
    await step(guardTools([t.readFile, t.shell], { gate, agentId: AGENT }), 'read_file', { path: '/srv/data/a', name: 'shell', cmd: 'rm -rf /' });
    expect(t.runs).toHaveLength(1);
    expect(cars[0]).toEqual({ action_type: 'tool.read_file', agent_id: AGENT, tool: 'read_file', args: t.runs[0].input });
    expect(cars[0].args).toEqual({ path: '/srv/data/a', mode: 'r' });
    const msg = await step(guardTools([t.readFile], { gate, agentId: AGENT }), 'read_file', { path: '/srv/data/a', mode: 'w' });
    expect(msg.status).toBe('error');
    expect(t.runs).toHaveLength(1);
  });

  test('a string-input DynamicTool is judged as args.input; content_and_artifact tools keep their shape; originals unchanged', async () => {
    const { gate, cars } = recordingGate();
    let ran = 0;
    const echo = new DynamicTool({ name: 'shell', description: 'run', func: async (s: string) => `ran ${s}${String(++ran)}` });
    const [g] = guardTools([echo], { gate, agentId: AGENT, approvalTimeoutMs: 50 });
    expect(await g.invoke('ls')).toMatch(/was denied: approval apr_\S+ was not decided/);
    expect(ran).toBe(0);
    expect(cars[0]).toEqual({ action_type: 'tool.shell', agent_id: AGENT, tool: 'shell', args: { input: 'ls' } });
    const withArtifact = tool(async () => ['text', { raw: 1 }], { name: 'read_file', description: 'read', schema: z.object({ path: z.string() }), responseFormat: 'content_and_artifact' });
    const [ga] = guardTools([withArtifact], { gate, agentId: AGENT });
    const denied = (await ga.invoke({ id: 'c2', name: 'read_file', args: { path: '/srv/data/x' }, type: 'tool_call' })) as ToolMessage;
    expect(denied).toMatchObject({ status: 'error', tool_call_id: 'c2' });
    expect(echo._call).not.toBe(g._call);
    expect(await echo.invoke('ls')).toBe('ran ls1');
  });
});

describe('guardkernel/langchain through a GuardClient (guardkernel serve)', () => {
  test('allowed, denied, and pending-then-approved by the server side', async () => {
    const s = await served();
    cleanups.push(() => s.close());
    const t = tools();
    const guarded = guardTools([t.readFile, t.shell], { client: s.client, authToken: s.authToken, agentId: AGENT, onPending: ({ approvalId }) => setTimeout(() => s.book.approve(approvalId, { approver: 'alice' }), 20) });
    expect((await step(guarded, 'read_file', { path: '/srv/data/a.txt' })).status).toBe('success');
    const no = await step(guarded, 'read_file', { path: '/etc/shadow' });
    expect(no.status).toBe('error');
    expect(no.content).toMatch(/args\.path/);
    expect((await step(guarded, 'shell', { cmd: 'ls' })).content).toBe('ran ls');
    expect(t.runs).toEqual([
      { name: 'read_file', input: { path: '/srv/data/a.txt', mode: 'r' } },
      { name: 'shell', input: { cmd: 'ls' } },
    ]);
  });
});
