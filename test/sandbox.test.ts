// K2K sandbox: policy edge cases, limits, violations, audit events and bad
// input, on every CPU backend this run has.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { AuditLog, ErrorCodes, GuardError, KernelSandbox, ResourceLimits, SandboxPolicy, SandboxVerdict, VERDICT_NAMES, backends } from '../lib';
import { LIMIT_MAXIMA, NATIVE_MIN_BATCH, compileNamePattern } from '../lib/k2k';
import type { ResourceLimitsInit } from '../lib/k2k';
import { core } from './helpers';

const BACKENDS = core !== null ? (['js', 'native'] as const) : (['js'] as const);
const UNLIMITED: ResourceLimitsInit = { maxMemoryBytes: Infinity, maxExecutionMs: Infinity, maxMessagesPerSecond: Infinity, maxK2kConnections: Infinity };

interface Msg {
  src: string;
  dst: string;
  topic?: string;
  bytes?: number;
}

/** Sends named messages through `box` on `backend`; returns verdict names. */
function send(box: KernelSandbox, backend: 'js' | 'native', msgs: Msg[], now = 1000): string[] {
  const n = msgs.length;
  const batch = { src: new Uint32Array(n), dst: new Uint32Array(n), topic: new Uint32Array(n), bytes: new Uint32Array(n) };
  msgs.forEach((m, i) => {
    batch.src[i] = box.registerKernel(m.src);
    batch.dst[i] = box.registerKernel(m.dst);
    batch.topic[i] = box.registerTopic(m.topic ?? 'public.events');
    batch.bytes[i] = m.bytes ?? 0;
  });
  const r = box.checkMessages(batch, now, { backend });
  expect(r.backend).toBe(backend);
  return Array.from(r.verdicts, (v) => VERDICT_NAMES[v]);
}

function tmpAudit(): { log: AuditLog; file: string; key: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-sandbox-'));
  const file = path.join(dir, 'audit.jsonl');
  const key = 'k'.repeat(32);
  return { log: new AuditLog({ file, key }), file, key };
}

test('SandboxVerdict maps each name to its documented code and is frozen', () => {
  expect(SandboxVerdict).toEqual({
    allow: 0,
    unauthorized_k2k: 1,
    topic_denied: 2,
    connection_limit: 3,
    rate_limited: 4,
    memory_exceeded: 5,
    write_denied: 6,
    unknown_kernel: 7,
  });
  expect(Object.isFrozen(SandboxVerdict)).toBe(true);
  expect(VERDICT_NAMES.map((n) => SandboxVerdict[n])).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
});

test('name patterns: * matches any run (also empty), the rest is literal and anchored', () => {
  const cases: [string, string, boolean][] = [
    ['external_*', 'external_a', true],
    ['external_*', 'external_', true],
    ['external_*', 'my_external_a', false],
    ['*_admin', 'proc_admin', true],
    ['*_admin', 'proc_admin2', false],
    ['proc*1', 'proc_1', true],
    ['proc*1', 'proc1', true],
    ['proc*1', 'proc_12', false],
    ['public.*', 'public.x', true],
    ['public.*', 'publicXx', false], // "." is a dot, not "any character"
    ['a*b*c', 'aXbYc', true],
    ['a*b*c', 'acb', false],
    ['*', '', true],
    ['(x)+', '(x)+', true],
  ];
  for (const [pattern, name, expected] of cases) expect(compileNamePattern(pattern).test(name), `${pattern} ~ ${name}`).toBe(expected);
});

describe.each(BACKENDS)('policy on the %s backend', (backend) => {
  test('deny wins over allow, with wildcards at the start, middle and end', () => {
    const policy = new SandboxPolicy().k2kAllowList(['proc_*', 'agg*tor', '*_sink']).k2kDenyList(['proc_admin', '*_audit_sink', 'agg*x*tor']);
    const box = new KernelSandbox(UNLIMITED, policy);
    const verdicts = send(box, backend, [
      { src: 'a', dst: 'proc_1' },
      { src: 'a', dst: 'proc_admin' },
      { src: 'a', dst: 'aggregator' },
      { src: 'a', dst: 'aggxtor' },
      { src: 'a', dst: 'data_sink' },
      { src: 'a', dst: 'main_audit_sink' },
      { src: 'a', dst: 'other' },
    ]);
    expect(verdicts).toEqual(['allow', 'unauthorized_k2k', 'allow', 'unauthorized_k2k', 'allow', 'unauthorized_k2k', 'unauthorized_k2k']);
  });

  test('deny wins over allowAllK2k and permissive()', () => {
    for (const policy of [new SandboxPolicy().allowAllK2k().denyK2kTo(['admin_kernel', 'external_*']), SandboxPolicy.permissive().denyK2kTo(['admin_kernel', 'external_*'])]) {
      const box = new KernelSandbox(UNLIMITED, policy);
      expect(send(box, backend, [{ src: 'a', dst: 'admin_kernel' }, { src: 'a', dst: 'external_x' }, { src: 'a', dst: 'worker' }])).toEqual([
        'unauthorized_k2k',
        'unauthorized_k2k',
        'allow',
      ]);
    }
  });

  test('a kernel registered after the policy, and after earlier batches, is resolved against it', () => {
    const box = new KernelSandbox(UNLIMITED, new SandboxPolicy().k2kAllowList(['late_*']));
    expect(send(box, backend, [{ src: 'a', dst: 'a' }])).toEqual(['unauthorized_k2k']);
    // late_1 does not exist yet: its id is unknown to the sandbox.
    const a = box.registerKernel('a');
    const unknown = box.checkMessages({ src: Uint32Array.of(a), dst: Uint32Array.of(5), topic: Uint32Array.of(0), bytes: Uint32Array.of(0) }, 1000, { backend });
    expect(VERDICT_NAMES[unknown.verdicts[0]]).toBe('unknown_kernel');
    expect(send(box, backend, [{ src: 'a', dst: 'late_1' }, { src: 'a', dst: 'later' }])).toEqual(['allow', 'unauthorized_k2k']);
  });

  test('restrictive() refuses K2K, topics and writes until widened; permissive() allows them', () => {
    const strict = new KernelSandbox(UNLIMITED, SandboxPolicy.restrictive());
    expect(send(strict, backend, [{ src: 'a', dst: 'b' }])).toEqual(['unauthorized_k2k']);
    const widened = new KernelSandbox(UNLIMITED, SandboxPolicy.restrictive().k2kAllowList(['b']));
    expect(send(widened, backend, [{ src: 'a', dst: 'b', topic: 't' }])).toEqual(['topic_denied']);
    const topics = new KernelSandbox(UNLIMITED, SandboxPolicy.restrictive().k2kAllowList(['b']).allowTopics(['public.*']));
    expect(send(topics, backend, [{ src: 'a', dst: 'b', topic: 'public.x', bytes: 0 }, { src: 'a', dst: 'b', topic: 'public.x', bytes: 1 }, { src: 'a', dst: 'b', topic: 'private.x' }])).toEqual([
      'allow',
      'write_denied',
      'topic_denied',
    ]);
    const open = new KernelSandbox(UNLIMITED, SandboxPolicy.permissive());
    expect(send(open, backend, [{ src: 'a', dst: 'b', topic: 'anything', bytes: 1 << 20 }])).toEqual(['allow']);
  });

  test('new SandboxPolicy() is closed to K2K until an allow or deny list opens it', () => {
    expect(send(new KernelSandbox(UNLIMITED, new SandboxPolicy()), backend, [{ src: 'a', dst: 'b' }])).toEqual(['unauthorized_k2k']);
    expect(send(new KernelSandbox(UNLIMITED, new SandboxPolicy().k2kDenyList(['x'])), backend, [{ src: 'a', dst: 'b' }, { src: 'a', dst: 'x' }])).toEqual(['allow', 'unauthorized_k2k']);
    expect(send(KernelSandbox.withPolicy(UNLIMITED, SandboxPolicy.permissive()), backend, [{ src: 'a', dst: 'b' }])).toEqual(['allow']);
    // A sandbox without a policy gets restrictive().
    expect(send(new KernelSandbox(UNLIMITED), backend, [{ src: 'a', dst: 'b' }])).toEqual(['unauthorized_k2k']);
  });

  test('an allow list narrows permissive(); allowAllK2k() called last widens again', () => {
    expect(send(new KernelSandbox(UNLIMITED, SandboxPolicy.permissive().k2kAllowList(['b'])), backend, [{ src: 'a', dst: 'b' }, { src: 'a', dst: 'c' }])).toEqual(['allow', 'unauthorized_k2k']);
    expect(send(new KernelSandbox(UNLIMITED, new SandboxPolicy().k2kAllowList(['b']).allowAllK2k()), backend, [{ src: 'a', dst: 'c' }])).toEqual(['allow']);
  });

  test('read-only memory access refuses messages with a payload, not zero-byte ones', () => {
    const box = new KernelSandbox(UNLIMITED, SandboxPolicy.permissive().memoryAccess('read-only'));
    expect(send(box, backend, [{ src: 'a', dst: 'b', bytes: 0 }, { src: 'a', dst: 'b', bytes: 1 }, { src: 'a', dst: 'b', bytes: 4096 }])).toEqual(['allow', 'write_denied', 'write_denied']);
    const rw = new KernelSandbox(UNLIMITED, SandboxPolicy.restrictive().allowAllK2k().allowTopics(['*']).memoryAccess('read-write'));
    expect(send(rw, backend, [{ src: 'a', dst: 'b', bytes: 4096 }])).toEqual(['allow']);
  });
});

describe.each(BACKENDS)('limits on the %s backend', (backend) => {
  const open = (): SandboxPolicy => SandboxPolicy.permissive();

  test('connection limit: the first N distinct destinations in order, and those stay open', () => {
    const box = new KernelSandbox({ ...UNLIMITED, maxK2kConnections: 2 }, open());
    expect(send(box, backend, [{ src: 'a', dst: 'b' }, { src: 'a', dst: 'c' }, { src: 'a', dst: 'b' }, { src: 'a', dst: 'd' }, { src: 'x', dst: 'd' }, { src: 'a', dst: 'c' }])).toEqual([
      'allow',
      'allow',
      'allow',
      'connection_limit',
      'allow',
      'allow',
    ]);
    // Carried into the next batch.
    expect(send(box, backend, [{ src: 'a', dst: 'e' }, { src: 'a', dst: 'b' }], 5000)).toEqual(['connection_limit', 'allow']);
    expect(box.usage('a').connections).toBe(2);
  });

  test('maxK2kConnections(0) refuses every message', () => {
    const box = new KernelSandbox(new ResourceLimits(UNLIMITED).maxK2kConnections(0), open());
    expect(send(box, backend, [{ src: 'a', dst: 'b' }])).toEqual(['connection_limit']);
  });

  test('rate: integer milli-tokens, exact refill with the remainder carried (3 msg/s)', () => {
    const box = new KernelSandbox({ ...UNLIMITED, maxMessagesPerSecond: 3 }, open());
    const burst = (n: number, now: number): string[] => send(box, backend, Array.from({ length: n }, () => ({ src: 'a', dst: 'b' })), now);
    expect(burst(4, 10_000)).toEqual(['allow', 'allow', 'allow', 'rate_limited']);
    // 333 ms refill 999 milli-tokens: not yet one message.
    expect(burst(1, 10_333)).toEqual(['rate_limited']);
    // One more ms: 1002; the 2 left over are carried.
    expect(burst(2, 10_334)).toEqual(['allow', 'rate_limited']);
    expect(box.usage('a').tokens).toBe(0);
    // 2 + 332 * 3 = 998: still short; 1001 one ms later.
    expect(burst(1, 10_666)).toEqual(['rate_limited']);
    expect(burst(1, 10_667)).toEqual(['allow']);
    // A long pause refills to one second's worth, no more.
    expect(burst(5, 100_000)).toEqual(['allow', 'allow', 'allow', 'rate_limited', 'rate_limited']);
    // A clock that goes back refills nothing.
    expect(burst(1, 50_000)).toEqual(['rate_limited']);
  });

  test('rate: each source has its own bucket; 0 msg/s refuses all', () => {
    const box = new KernelSandbox({ ...UNLIMITED, maxMessagesPerSecond: 1 }, open());
    expect(send(box, backend, [{ src: 'a', dst: 'c' }, { src: 'a', dst: 'c' }, { src: 'b', dst: 'c' }])).toEqual(['allow', 'rate_limited', 'allow']);
    const none = new KernelSandbox({ ...UNLIMITED, maxMessagesPerSecond: 0 }, open());
    expect(send(none, backend, [{ src: 'a', dst: 'c' }])).toEqual(['rate_limited']);
  });

  test('memory: bytes in flight plus recorded usage against the limit; release frees', () => {
    const box = new KernelSandbox({ ...UNLIMITED, maxMemoryBytes: 1000 }, open());
    expect(send(box, backend, [{ src: 'a', dst: 'b', bytes: 600 }, { src: 'a', dst: 'b', bytes: 500 }, { src: 'a', dst: 'b', bytes: 400 }, { src: 'a', dst: 'b', bytes: 1 }])).toEqual([
      'allow',
      'memory_exceeded',
      'allow',
      'memory_exceeded',
    ]);
    expect(box.usage('a').inFlightBytes).toBe(1000);
    box.release('a', 600);
    expect(send(box, backend, [{ src: 'a', dst: 'b', bytes: 600 }])).toEqual(['allow']);
    box.release('a', 10_000); // never below zero
    expect(box.usage('a').inFlightBytes).toBe(0);
    box.recordUsage('a', { memoryBytes: 900 });
    expect(send(box, backend, [{ src: 'a', dst: 'b', bytes: 101 }, { src: 'a', dst: 'b', bytes: 100 }])).toEqual(['memory_exceeded', 'allow']);
  });

  test('rules apply in order: a rate-limited message still opened its connection; a memory refusal still spent a token', () => {
    const box = new KernelSandbox({ ...UNLIMITED, maxK2kConnections: 1, maxMessagesPerSecond: 1, maxMemoryBytes: 10 }, open());
    expect(send(box, backend, [{ src: 'a', dst: 'b', bytes: 11 }, { src: 'a', dst: 'b', bytes: 1 }, { src: 'a', dst: 'c' }])).toEqual([
      'memory_exceeded',
      'rate_limited',
      'connection_limit',
    ]);
    expect(box.usage('a').connections).toBe(1);
  });
});

describe.each(BACKENDS)('violations on the %s backend', (backend) => {
  test('checkViolations returns typed violations once, and usage over a limit while it lasts', () => {
    const limits = new ResourceLimits().maxMemoryBytes(100).maxExecutionTime(50).maxMessagesPerSecond(1).maxK2kConnections(1);
    const box = new KernelSandbox(limits, SandboxPolicy.restrictive().k2kAllowList(['ok*']).allowTopics(['public.*']).memoryAccess('read-write'));
    send(box, backend, [
      { src: 'a', dst: 'admin' },
      { src: 'a', dst: 'ok1', topic: 'secret' },
      { src: 'a', dst: 'ok1', bytes: 200 },
      { src: 'a', dst: 'ok1' },
      { src: 'a', dst: 'ok2' },
    ]);
    box.recordUsage('a', { executionMs: 75 });
    const v = box.checkViolations('a');
    expect(v).toEqual(
      expect.arrayContaining([
        { type: 'UnauthorizedK2K', kernel: 'a', target: 'admin', count: 1 },
        { type: 'TopicDenied', kernel: 'a', topic: 'secret', count: 1 },
        { type: 'MemoryExceeded', kernel: 'a', used: 200, limit: 100, count: 1 },
        { type: 'RateLimitExceeded', kernel: 'a', rate: 1, count: 1 },
        { type: 'ConnectionLimitExceeded', kernel: 'a', limit: 1, count: 1 },
        { type: 'ExecutionTimeout', kernel: 'a', elapsed: 75, limit: 50, count: 0 },
      ]),
    );
    expect(v).toHaveLength(6);
    // Message refusals are reported once; the execution overrun lasts.
    expect(box.checkViolations('a')).toEqual([{ type: 'ExecutionTimeout', kernel: 'a', elapsed: 75, limit: 50, count: 0 }]);
    box.recordUsage('a', { executionMs: 10, memoryBytes: 101 });
    expect(box.checkViolations(box.kernelId('a') as number)).toEqual([{ type: 'MemoryExceeded', kernel: 'a', used: 101, limit: 100, count: 0 }]);
    expect(box.checkViolations('ok1')).toEqual([]);
  });

  test('each violation is a sandbox_violation event in an attached audit log, which verifies', async () => {
    const { log, file, key } = tmpAudit();
    const box = new KernelSandbox({ ...UNLIMITED, maxExecutionMs: 10 }, SandboxPolicy.permissive().denyK2kTo(['admin']), { audit: log });
    send(box, backend, [{ src: 'a', dst: 'admin' }, { src: 'a', dst: 'admin' }, { src: 'b', dst: 'admin' }, { src: 'a', dst: 'c' }]);
    send(box, backend, [{ src: 'a', dst: 'c' }]); // nothing new
    box.recordUsage('c', { executionMs: 11 });
    log.close();
    const records = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(records.filter((r) => r.type === 'sandbox_violation').map((r) => ({ kernel: r.kernel, kind: r.violation, severity: r.severity, count: r.count }))).toEqual([
      { kernel: 'a', kind: 'UnauthorizedK2K', severity: 'critical', count: 2 },
      { kernel: 'b', kind: 'UnauthorizedK2K', severity: 'critical', count: 1 },
      { kernel: 'c', kind: 'ExecutionTimeout', severity: 'warning', count: 0 },
    ]);
    expect(AuditLog.verify(file, key).ok).toBe(true);
  });
});

test('ResourceLimits: builder and plain forms agree; conservative() is tighter than the defaults', () => {
  const built = new ResourceLimits().maxMemoryBytes(1 << 20).maxExecutionTime(5000).maxMessagesPerSecond(100).maxK2kConnections(3);
  expect(built.toJSON()).toEqual(new ResourceLimits({ maxMemoryBytes: 1 << 20, maxExecutionMs: 5000, maxMessagesPerSecond: 100, maxK2kConnections: 3 }).toJSON());
  const d = new ResourceLimits().toJSON();
  const c = ResourceLimits.conservative().toJSON();
  expect(d).toEqual({ maxMemoryBytes: 1024 ** 3, maxExecutionMs: 60_000, maxMessagesPerSecond: 10_000, maxK2kConnections: 10 });
  for (const k of Object.keys(d) as (keyof typeof d)[]) expect(c[k]).toBeLessThan(d[k]);
  // The sandbox keeps a copy: editing the builder later changes nothing.
  const limits = new ResourceLimits().maxMessagesPerSecond(1);
  const box = new KernelSandbox(limits, SandboxPolicy.permissive());
  limits.maxMessagesPerSecond(1000);
  expect(box.limits.toJSON().maxMessagesPerSecond).toBe(1);
});

describe('rejects bad input', () => {
  test('limits', () => {
    for (const bad of [-1, 1.5, NaN, '10', null, -Infinity]) expect(() => new ResourceLimits().maxMessagesPerSecond(bad as number)).toThrow(RangeError);
    expect(() => new ResourceLimits().maxMessagesPerSecond(LIMIT_MAXIMA.maxMessagesPerSecond + 1)).toThrow(RangeError);
    expect(() => new ResourceLimits({ maxMemory: 1 } as unknown as ResourceLimitsInit)).toThrow(/Unknown resource limit "maxMemory"/);
    expect(() => new ResourceLimits([] as unknown as ResourceLimitsInit)).toThrow(TypeError);
    expect(() => new KernelSandbox({ maxK2kConnections: 2.5 })).toThrow(RangeError);
  });

  test('policies', () => {
    expect(() => new SandboxPolicy().k2kAllowList('proc_*' as unknown as string[])).toThrow(TypeError);
    expect(() => new SandboxPolicy().k2kDenyList([''])).toThrow(TypeError);
    expect(() => new SandboxPolicy().allowTopics(['x'.repeat(257)])).toThrow(TypeError);
    expect(() => new SandboxPolicy().memoryAccess('write-only' as 'read-only')).toThrow(TypeError);
    expect(() => new KernelSandbox({}, {} as SandboxPolicy)).toThrow(TypeError);
  });

  test('names and kernels', () => {
    const box = new KernelSandbox({}, SandboxPolicy.permissive());
    for (const bad of ['', 'x'.repeat(257), 5, null]) expect(() => box.registerKernel(bad as string)).toThrow(TypeError);
    expect(() => box.registerTopic('' as string)).toThrow(TypeError);
    expect(box.registerKernel('a')).toBe(box.registerKernel('a'));
    for (const bad of ['nope', 7, -1, 0.5]) {
      const err = (() => {
        try {
          box.recordUsage(bad, { memoryBytes: 1 });
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(GuardError);
      expect((err as GuardError).code).toBe(ErrorCodes.INVALID_ARGUMENT);
    }
    expect(() => box.recordUsage('a', { memoryBytes: -1 })).toThrow(RangeError);
    expect(() => box.recordUsage('a', { executionMs: 1.5 })).toThrow(RangeError);
    expect(() => box.recordUsage('a', null as unknown as object)).toThrow(TypeError);
    expect(() => box.release('a', -5)).toThrow(RangeError);
  });

  test('batches, clocks, backends and output arrays', () => {
    const box = new KernelSandbox({}, SandboxPolicy.permissive());
    const ok = { src: new Uint32Array(2), dst: new Uint32Array(2), topic: new Uint32Array(2), bytes: new Uint32Array(2) };
    expect(() => box.checkMessages(null as unknown as typeof ok, 0)).toThrow(TypeError);
    expect(() => box.checkMessages({ ...ok, src: new Int32Array(2) } as unknown as typeof ok, 0)).toThrow(/batch.src/);
    expect(() => box.checkMessages({ ...ok, bytes: [0, 0] } as unknown as typeof ok, 0)).toThrow(/batch.bytes/);
    expect(() => box.checkMessages({ ...ok, topic: new Uint32Array(3) }, 0)).toThrow(RangeError);
    for (const now of [-1, 1.5, NaN, 2 ** 53]) expect(() => box.checkMessages(ok, now)).toThrow(RangeError);
    expect(() => box.checkMessages(ok, 0, { backend: 'gpu' as 'cuda' })).toThrow(TypeError);
    expect(() => box.checkMessages(ok, 0, { out: new Uint8Array(1) })).toThrow(TypeError);
    const out = new Uint8Array(10).fill(9);
    const r = box.checkMessages(ok, 0, { out });
    expect(r.verdicts.length).toBe(2);
    expect(out[0]).toBe(SandboxVerdict.unknown_kernel); // no kernels registered yet
    expect(out[2]).toBe(9);
  });

  test('an unavailable backend is a GuardError, never a silent fallback', () => {
    const box = new KernelSandbox({}, SandboxPolicy.permissive());
    const ok = { src: new Uint32Array(1), dst: new Uint32Array(1), topic: new Uint32Array(1), bytes: new Uint32Array(1) };
    if (backends().gpu.kind !== 'cuda') {
      expect(() => box.checkMessages(ok, 0, { backend: 'cuda' })).toThrow(expect.objectContaining({ code: ErrorCodes.GPU_UNAVAILABLE }));
    }
    if (core === null) {
      expect(() => box.checkMessages(ok, 0, { backend: 'native' })).toThrow(expect.objectContaining({ code: ErrorCodes.NATIVE_UNAVAILABLE }));
    }
    // 'auto': the TypeScript loop for small batches, native from NATIVE_MIN_BATCH on.
    expect(box.checkMessages(ok, 0).backend).toBe('js');
    const big = { src: new Uint32Array(NATIVE_MIN_BATCH), dst: new Uint32Array(NATIVE_MIN_BATCH), topic: new Uint32Array(NATIVE_MIN_BATCH), bytes: new Uint32Array(NATIVE_MIN_BATCH) };
    expect(box.checkMessages(big, 0).backend).toBe(core === null ? 'js' : 'native');
  });
});
