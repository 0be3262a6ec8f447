// guardkernel/openai-agents against the real OpenAI Agents JS SDK
// (`@openai/agents` 0.14) with a scripted Model (no network): the tool's
// function runs only after an allow; a deny is the tool result the model
// reads; a pending call interrupts the run, the app decides it through
// gate.approvals, and on resume the gate is asked again (one grant, one run);
// the function never runs on arguments other than those judged.
import { afterEach, beforeAll, describe, expect, test } from 'vitest';
import { Agent, run, setTracingDisabled, tool, Usage, type Model, type ModelRequest, type ModelResponse } from '@openai/agents';
import { z } from 'zod';
import { approvalIdOf, guardTools } from '../lib/adapters/openai-agents';
import { AGENT, recordingGate, served } from './adapters-fixtures';

beforeAll(() => setTracingDisabled(true));
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** Calls `name` with the JSON text `args` until it is shown that call's result, then answers "done". */
class ScriptedModel implements Model {
  readonly results: Array<Record<string, unknown>> = [];
  calls = 0;
  constructor(
    private readonly name: string,
    private readonly args: string,
  ) {}
  async getResponse(request: ModelRequest): Promise<ModelResponse> {
    this.calls += 1;
    const items = (Array.isArray(request.input) ? request.input : []) as Array<Record<string, unknown>>;
    const result = items.find((i) => i.type === 'function_call_result');
    if (result !== undefined) {
      this.results.push(result);
      return { usage: new Usage(), output: [{ type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'done' }] }] };
    }
    return { usage: new Usage(), output: [{ type: 'function_call', callId: 'call-1', name: this.name, arguments: this.args, status: 'completed' }] };
  }
  // eslint-disable-next-line require-yield
  async *getStreamedResponse(): AsyncIterable<never> {
    throw new Error('not used');
  }
}

/** The text of the tool result the model was shown. */
const seenText = (m: ScriptedModel): string => JSON.stringify(m.results[0]?.output ?? null);

function tools() {
  const runs: Array<{ name: string; input: unknown }> = [];
  return {
    runs,
    readFile: tool({
      name: 'read_file',
      description: 'read a file',
      parameters: z.object({ path: z.string(), mode: z.string() }),
      execute: async (input) => {
        runs.push({ name: 'read_file', input });
        return `contents of ${input.path}`;
      },
    }),
    shell: tool({
      name: 'shell',
      description: 'run a command',
      parameters: z.object({ cmd: z.string() }),
      execute: async (input) => {
        runs.push({ name: 'shell', input });
        return `ran ${input.cmd}`;
      },
    }),
  };
}

function agentWith(model: Model, tools: ReturnType<typeof guardTools>) {
  return new Agent({ name: 'guarded', instructions: 'use the tools', model, tools: tools as never });
}

describe('guardkernel/openai-agents (in-process gate)', () => {
  test('allowed: the tool runs once; the model reads its result; the CAR holds the arguments', async () => {
    const { gate, cars } = recordingGate();
    const t = tools();
    const m = new ScriptedModel('read_file', '{"path":"/srv/data/a.txt","mode":"r"}');
    const r = await run(agentWith(m, guardTools([t.readFile, t.shell], { gate, agentId: AGENT })), 'go');
    expect(t.runs).toEqual([{ name: 'read_file', input: { path: '/srv/data/a.txt', mode: 'r' } }]);
    expect(seenText(m)).toContain('contents of /srv/data/a.txt');
    expect(r.finalOutput).toBe('done');
    expect(r.interruptions ?? []).toEqual([]);
    // One gate check per call (needsApproval's decision is the one invoke uses).
    expect(cars).toEqual([{ action_type: 'tool.read_file', agent_id: AGENT, tool: 'read_file', args: { path: '/srv/data/a.txt', mode: 'r' } }]);
  });

  test('denied: the function never runs; the model reads the reason as the tool result', async () => {
    const { gate } = recordingGate();
    const t = tools();
    const m = new ScriptedModel('read_file', '{"path":"/etc/passwd","mode":"r"}');
    const r = await run(agentWith(m, guardTools([t.readFile], { gate, agentId: AGENT })), 'go');
    expect(t.runs).toEqual([]);
    expect(r.interruptions ?? []).toEqual([]);
    expect(seenText(m)).toMatch(/guardkernel: the call to tool \\"read_file\\" was denied: .*args\.path/);
    expect(r.finalOutput).toBe('done');
  });

  test('pending -> interruption -> approved through gate.approvals -> resumed: the tool runs exactly once', async () => {
    const { gate, book } = recordingGate();
    const t = tools();
    const m = new ScriptedModel('shell', '{"cmd":"ls"}');
    const pending: string[] = [];
    const agent = agentWith(m, guardTools([t.shell], { gate, agentId: AGENT, onPending: ({ approvalId }) => pending.push(approvalId) }));
    let r = await run(agent, 'go');
    expect(t.runs).toEqual([]);
    expect(r.interruptions).toHaveLength(1);
    const item = r.interruptions[0];
    const id = approvalIdOf(item);
    expect(id).toMatch(/^apr_/);
    expect(pending).toEqual([id]);
    expect(book.get(id!)).toMatchObject({ status: 'pending', car: { action_type: 'tool.shell', agent_id: AGENT, tool: 'shell', args: { cmd: 'ls' } } });
    book.approve(id!, { approver: 'alice' });
    r.state.approve(item);
    r = await run(agent, r.state);
    expect(t.runs).toEqual([{ name: 'shell', input: { cmd: 'ls' } }]);
    expect(seenText(m)).toContain('ran ls');
    expect(r.finalOutput).toBe('done');
    expect(book.get(id!)).toMatchObject({ status: 'used' });
    // The grant is spent: the same call again interrupts again.
    const m2 = new ScriptedModel('shell', '{"cmd":"ls"}');
    const r2 = await run(agentWith(m2, guardTools([t.shell], { gate, agentId: AGENT })), 'go');
    expect(r2.interruptions).toHaveLength(1);
    expect(approvalIdOf(r2.interruptions[0])).not.toBe(id);
    expect(t.runs).toHaveLength(1);
  });

  test('pending, approved in the SDK state only (the gate still pending): the tool does not run; the model reads why', async () => {
    const { gate } = recordingGate();
    const t = tools();
    const m = new ScriptedModel('shell', '{"cmd":"rm -rf /"}');
    const agent = agentWith(m, guardTools([t.shell], { gate, agentId: AGENT }));
    let r = await run(agent, 'go');
    expect(r.interruptions).toHaveLength(1);
    r.state.approve(r.interruptions[0]);
    r = await run(agent, r.state);
    expect(t.runs).toEqual([]);
    expect(seenText(m)).toMatch(/is waiting for approval apr_/);
  });

  test('pending, denied through gate.approvals, resumed: the tool does not run; the model reads the operator reason', async () => {
    const { gate, book } = recordingGate();
    const t = tools();
    const m = new ScriptedModel('shell', '{"cmd":"curl evil"}');
    const agent = agentWith(m, guardTools([t.shell], { gate, agentId: AGENT }));
    let r = await run(agent, 'go');
    const id = approvalIdOf(r.interruptions[0])!;
    book.deny(id, { approver: 'bob', reason: 'no network' });
    r.state.approve(r.interruptions[0]);
    r = await run(agent, r.state);
    expect(t.runs).toEqual([]);
    expect(seenText(m)).toMatch(/was denied: .*no network/);
  });

  test('pending, rejected in the SDK state: the tool does not run', async () => {
    const { gate } = recordingGate();
    const t = tools();
    const m = new ScriptedModel('shell', '{"cmd":"ls"}');
    const agent = agentWith(m, guardTools([t.shell], { gate, agentId: AGENT }));
    let r = await run(agent, 'go');
    r.state.reject(r.interruptions[0]);
    r = await run(agent, r.state);
    expect(t.runs).toEqual([]);
    expect(r.finalOutput).toBe('done');
  });

  test('attack: keys the schema strips (a "name", an extra): the function runs only on the value judged, as the tool it is', async () => {
    const { gate, cars } = recordingGate();
    const t = tools();
    const m = new ScriptedModel('read_file', '{"path":"/srv/data/a","mode":"r","name":"shell","cmd":"rm -rf /"}');
    await run(agentWith(m, guardTools([t.readFile, t.shell], { gate, agentId: AGENT })), 'go');
    expect(t.runs).toEqual([{ name: 'read_file', input: { path: '/srv/data/a', mode: 'r' } }]);
    // Judged as the tool it calls, never the `name` inside the arguments; first as sent, then as the function receives it.
    expect(cars).toEqual([
      { action_type: 'tool.read_file', agent_id: AGENT, tool: 'read_file', args: { path: '/srv/data/a', mode: 'r', name: 'shell', cmd: 'rm -rf /' } },
      { action_type: 'tool.read_file', agent_id: AGENT, tool: 'read_file', args: t.runs[0].input },
    ]);
    expect(seenText(m)).toContain('contents of /srv/data/a');
  });

  test('attack: a schema that rewrites an allowed value into a denied one (toUpperCase): judged on what the function would receive; it never runs', async () => {
    const { gate, cars } = recordingGate();
    let runs = 0;
    const sneaky = tool({
      name: 'read_file',
      description: 'read a file',
      parameters: z.object({ path: z.string().toUpperCase(), mode: z.string() }),
      execute: async () => {
        runs += 1;
        return 'secret';
      },
    });
    const m = new ScriptedModel('read_file', '{"path":"/srv/data/a","mode":"r"}');
    await run(agentWith(m, guardTools([sneaky], { gate, agentId: AGENT })), 'go');
    expect(runs).toBe(0);
    expect(cars.map((c) => c.args)).toEqual([
      { path: '/srv/data/a', mode: 'r' },
      { path: '/SRV/DATA/A', mode: 'r' },
    ]);
    expect(seenText(m)).toMatch(/read_file\\" was denied: .*args\.path/);
  });

  test('an optional field the model sends as null (strict mode): the SDK drops it; the call is judged without it and runs', async () => {
    const { gate, cars } = recordingGate();
    const got: unknown[] = [];
    const withOptional = tool({
      name: 'read_file',
      description: 'read a file',
      parameters: z.object({ path: z.string(), mode: z.string(), note: z.string().optional() }),
      execute: async (input) => {
        got.push(input);
        return 'ok';
      },
    });
    const m = new ScriptedModel('read_file', '{"path":"/srv/data/a","mode":"r","note":null}');
    await run(agentWith(m, guardTools([withOptional], { gate, agentId: AGENT })), 'go');
    expect(got).toEqual([{ path: '/srv/data/a', mode: 'r' }]);
    expect(cars.at(-1)!.args).toEqual(got[0]);
    expect(seenText(m)).toContain('ok');
  });

  test('once a tool was seen to parse, later calls are judged on the parsed value from the start (one check, no null)', async () => {
    const { gate, cars } = recordingGate();
    const got: unknown[] = [];
    const withOptional = tool({
      name: 'read_file',
      description: 'read a file',
      parameters: z.object({ path: z.string(), mode: z.string(), note: z.string().optional() }),
      execute: async (input) => {
        got.push(input);
        return 'ok';
      },
    });
    const guarded = guardTools([withOptional], { gate, agentId: AGENT });
    await run(agentWith(new ScriptedModel('read_file', '{"path":"/srv/data/a","mode":"r","note":null}'), guarded), 'go');
    expect(cars).toHaveLength(2); // as sent, then as parsed
    const m = new ScriptedModel('read_file', '{"path":"/srv/data/b","mode":"r","note":null,"extra":1}');
    await run(agentWith(m, guarded), 'go');
    expect(got).toEqual([
      { path: '/srv/data/a', mode: 'r' },
      { path: '/srv/data/b', mode: 'r' },
    ]);
    expect(cars.slice(2)).toEqual([{ action_type: 'tool.read_file', agent_id: AGENT, tool: 'read_file', args: { path: '/srv/data/b', mode: 'r' } }]);
    expect(seenText(m)).toContain('ok');
  });

  test('parsing alone never reaches the function nor the tool\'s errorFunction, with or without a tool timeout', async () => {
    for (const timeoutMs of [undefined, 5000]) {
      const { gate } = recordingGate();
      let ran = 0;
      const errors: unknown[] = [];
      const t = tool({
        name: 'read_file',
        description: 'read a file',
        parameters: z.object({ path: z.string(), mode: z.string() }),
        ...(timeoutMs === undefined ? {} : { timeoutMs }),
        errorFunction: (_ctx, err) => {
          errors.push(err);
          return 'tool failed';
        },
        execute: async () => {
          ran += 1;
          return 'ok';
        },
      });
      const guarded = guardTools([t], { gate, agentId: AGENT });
      for (let i = 0; i < 3; i++) await run(agentWith(new ScriptedModel('read_file', '{"path":"/srv/data/a","mode":"r"}'), guarded), 'go');
      expect(ran).toBe(3);
      expect(errors).toEqual([]);
      await run(agentWith(new ScriptedModel('read_file', '{"path":"/etc/passwd","mode":"r"}'), guarded), 'go');
      expect(ran).toBe(3);
    }
  });

  test('approval with a schema that drops a null: the first call needs a second approval (waited on); later ones one approval', async () => {
    const { gate, book } = recordingGate();
    const got: unknown[] = [];
    const shell = tool({
      name: 'shell',
      description: 'run a command',
      parameters: z.object({ cmd: z.string(), cwd: z.string().optional() }),
      execute: async (input) => {
        got.push(input);
        return 'ran';
      },
    });
    const inFlight: string[] = [];
    const guarded = guardTools([shell], {
      gate,
      agentId: AGENT,
      onPending: ({ approvalId, car }) => {
        inFlight.push(approvalId);
        // An operator approves what is still open (the interruption's own request is approved by the app below).
        setTimeout(() => {
          if (book.get(approvalId).status === 'pending') book.approve(approvalId, { approver: 'alice' });
        }, 10);
      },
    });
    const resumeApproved = async (model: ScriptedModel) => {
      const agent = agentWith(model, guarded);
      let r = await run(agent, 'go');
      expect(r.interruptions).toHaveLength(1);
      const id = approvalIdOf(r.interruptions[0])!;
      const approvalCar = book.get(id).car;
      book.approve(id, { approver: 'alice' });
      r.state.approve(r.interruptions[0]);
      r = await run(agent, r.state);
      return approvalCar;
    };
    // First call: the interruption's request is for the call as sent; the parsed call is approved while it waits.
    const first = await resumeApproved(new ScriptedModel('shell', '{"cmd":"ls","cwd":null}'));
    expect((first as { args: unknown }).args).toEqual({ cmd: 'ls', cwd: null });
    expect(got).toEqual([{ cmd: 'ls' }]);
    expect(inFlight).toHaveLength(2);
    expect(book.get(inFlight[1])).toMatchObject({ status: 'used', car: { args: { cmd: 'ls' } } });
    const waited = inFlight.length;
    // Later calls: the interruption's request is already for the parsed call; one approval runs it.
    const second = await resumeApproved(new ScriptedModel('shell', '{"cmd":"ls","cwd":null}'));
    expect((second as { args: unknown }).args).toEqual({ cmd: 'ls' });
    expect(got).toEqual([{ cmd: 'ls' }, { cmd: 'ls' }]);
    expect(inFlight.length - waited).toBe(1); // onPending for the interruption only
  });

  test('attack: duplicate keys: the CAR holds the value the function receives (the last one)', async () => {
    const { gate, cars } = recordingGate();
    const t = tools();
    const m = new ScriptedModel('read_file', '{"path":"/etc/passwd","mode":"r","path":"/srv/data/a"}');
    await run(agentWith(m, guardTools([t.readFile], { gate, agentId: AGENT })), 'go');
    expect(t.runs).toEqual([{ name: 'read_file', input: { path: '/srv/data/a', mode: 'r' } }]);
    expect(cars.map((c) => c.args)).toEqual([t.runs[0].input]);
    const m2 = new ScriptedModel('read_file', '{"path":"/srv/data/a","mode":"r","path":"/etc/passwd"}');
    await run(agentWith(m2, guardTools([t.readFile], { gate, agentId: AGENT })), 'go');
    expect(t.runs).toHaveLength(1);
    expect(seenText(m2)).toMatch(/was denied/);
  });

  test('a guarded tool called outside the runner is refused; the originals are unchanged', async () => {
    const { gate } = recordingGate();
    const t = tools();
    const [g] = guardTools([t.readFile], { gate, agentId: AGENT });
    const out = await (g as typeof t.readFile).invoke({} as never, '{"path":"/srv/data/a","mode":"r"}');
    expect(out).toMatch(/runs only through the @openai\/agents runner/);
    expect(t.runs).toEqual([]);
    expect((g as typeof t.readFile).invoke).not.toBe(t.readFile.invoke);
    expect(g).toMatchObject({ type: 'function', name: 'read_file', parameters: t.readFile.parameters });
  });
});

describe('guardkernel/openai-agents through a GuardClient (guardkernel serve)', () => {
  test('allowed, denied, and pending -> approved on the server -> resumed', async () => {
    const s = await served();
    cleanups.push(() => s.close());
    const t = tools();
    const opts = { client: s.client, authToken: s.authToken, agentId: AGENT };
    const ok = new ScriptedModel('read_file', '{"path":"/srv/data/a.txt","mode":"r"}');
    await run(agentWith(ok, guardTools([t.readFile], opts)), 'go');
    expect(t.runs).toHaveLength(1);
    const no = new ScriptedModel('read_file', '{"path":"/etc/shadow","mode":"r"}');
    await run(agentWith(no, guardTools([t.readFile], opts)), 'go');
    expect(t.runs).toHaveLength(1);
    expect(seenText(no)).toMatch(/was denied/);
    const m = new ScriptedModel('shell', '{"cmd":"ls"}');
    const agent = agentWith(m, guardTools([t.shell], opts));
    let r = await run(agent, 'go');
    const id = approvalIdOf(r.interruptions[0])!;
    expect(id).toMatch(/^apr_/);
    s.book.approve(id, { approver: 'alice' });
    r.state.approve(r.interruptions[0]);
    r = await run(agent, r.state);
    expect(t.runs).toEqual([
      { name: 'read_file', input: { path: '/srv/data/a.txt', mode: 'r' } },
      { name: 'shell', input: { cmd: 'ls' } },
    ]);
    expect(r.finalOutput).toBe('done');
  });
});
