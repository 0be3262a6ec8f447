// gate_check replies are built without JSON.stringify: a decision's JSON text
// (lib/ipc/decision-json.ts) and the response around it (RawJson in
// lib/ipc/jsonrpc.ts). Both must be byte for byte what JSON.stringify writes.
import { describe, expect, test } from 'vitest';
import { Gate, type GateDecision } from '../lib/index';
import { decisionJson, decisionTextMemo } from '../lib/ipc/decision-json';
import { JsonRpcDispatcher, RawJson } from '../lib/ipc/jsonrpc';
import { randomInt, rng } from './helpers';

const PIECES = ['a', 'é', '€', '😀', '\u0000', '\u001f', '"', '\\', '\n', '\u2028', '\ud800', '\udfff', '中', '\u007f', ' ', '</'];
const NUMBERS = [0, -0, 1, 0.5, 0.1 + 0.2, 1e21, 1e-7, 123456789012345, -3, 0.8];

function text(next: () => number): string {
  let s = '';
  for (let i = randomInt(next, 0, 10); i > 0; i--) s += PIECES[randomInt(next, 0, PIECES.length - 1)];
  return s;
}

function randomDecision(next: () => number): GateDecision {
  const d: GateDecision = {
    // Mostly the gate's own values (their JSON is looked up), sometimes any text (escaped).
    decision: next() < 0.9 ? (['allow', 'deny', 'pending'] as const)[randomInt(next, 0, 2)] : (text(next) as 'allow'),
    source: next() < 0.9 ? (['policy', 'cache', 'velocity', 'error', 'validation', 'quarantine', 'replay', 'permit'] as const)[randomInt(next, 0, 7)] : (text(next) as 'policy'),
    reason: text(next),
    car_hash: next() < 0.2 ? null : next() < 0.9 ? 'sha256:' + 'ab'.repeat(32) : text(next),
    policy_version: NUMBERS[randomInt(next, 0, NUMBERS.length - 1)],
    trust_score: NUMBERS[randomInt(next, 0, NUMBERS.length - 1)],
    confidence: next() < 0.5 ? 1 : 0.5,
  };
  if (next() < 0.2) d.retry_after_ms = randomInt(next, 0, 60_000);
  return d;
}

describe('decisionJson', () => {
  test('a text remembered for a CAR hash answers only for exactly the same values', () => {
    const base: GateDecision = { decision: 'allow', source: 'cache', reason: 'cached policy decision', car_hash: 'sha256:' + '12'.repeat(32), policy_version: 3, trust_score: 0.8, confidence: 1 };
    expect(decisionJson(base)).toBe(JSON.stringify(base));
    expect(decisionJson({ ...base })).toBe(JSON.stringify(base));
    const changes: Array<Partial<GateDecision>> = [{ decision: 'deny' }, { source: 'policy' }, { reason: 'other' }, { policy_version: 4 }, { trust_score: 0.7 }, { trust_score: -0 }, { confidence: 0.5 }, { retry_after_ms: 5 }, { car_hash: 'sha256:' + '13'.repeat(32) }];
    for (const change of changes) {
      const d = { ...base, ...change };
      expect(decisionJson(d)).toBe(JSON.stringify(d));
      expect(decisionJson(base)).toBe(JSON.stringify(base)); // and back
    }
    // A flood of other hashes (past the table's bound) leaves every answer exact.
    for (let i = 0; i < 5000; i++) {
      const d = { ...base, car_hash: 'sha256:' + i.toString(16).padStart(64, '0'), trust_score: i % 7 };
      expect(decisionJson(d)).toBe(JSON.stringify(d));
    }
    expect(decisionJson(base)).toBe(JSON.stringify(base));
  });

  test('5,000 random decisions, escapes and lone surrogates included: exactly JSON.stringify', () => {
    const next = rng(0xd5);
    for (let i = 0; i < 5000; i++) {
      const d = randomDecision(next);
      expect(decisionJson(d)).toBe(JSON.stringify(d));
    }
  });

  test('off the shape (extra or reordered keys, non-finite numbers, wrong types): still exactly JSON.stringify', () => {
    const base = randomDecision(rng(1));
    const odd: unknown[] = [
      { ...base, extra: 1 },
      { source: base.source, decision: base.decision, reason: base.reason, car_hash: base.car_hash, policy_version: 1, trust_score: 1, confidence: 1 },
      { ...base, trust_score: NaN },
      { ...base, policy_version: Infinity },
      { ...base, reason: 42 },
      { ...base, retry_after_ms: undefined },
    ];
    for (const d of odd) expect(decisionJson(d as GateDecision)).toBe(JSON.stringify(d));
  });

  test('real decisions from every stage of a gate', () => {
    const gate = new Gate({
      policy: { version: 1, mode: 'enforce', default: 'deny', actions: { read: { constraints: { resource: { glob: '/srv/**' } } }, ask: { require_approval: true } } },
      velocity: { maxPerAgent: 3, windowMs: 60_000 },
    });
    const seen = new Set<string>();
    const requests = [
      { car: { action_type: 'read', agent_id: 'a', resource: '/srv/x' } },
      { car: { action_type: 'read', agent_id: 'a', resource: '/srv/x' } },
      { car: { action_type: 'ask', agent_id: 'b "quoted" \u2028' } },
      { car: { action_type: 'read', agent_id: 'c', resource: '/etc/passwd' }, nonce: 'n1' },
      { car: { action_type: 'read', agent_id: 'c', resource: '/srv/y' }, nonce: 'n1' },
      { car: { action_type: 'x' } },
      ...Array.from({ length: 4 }, () => ({ car: { action_type: 'read', agent_id: 'a', resource: '/srv/x' } })),
    ];
    for (const r of requests) {
      const d = gate.check(r as never);
      seen.add(d.source);
      expect(decisionJson(d)).toBe(JSON.stringify(d));
    }
    expect([...seen].sort()).toEqual(['cache', 'policy', 'replay', 'validation', 'velocity']);
  });
});

describe('RawJson results', () => {
  const d = new JsonRpcDispatcher<null>({
    raw: { params: { v: { type: 'any' } }, handler: (p) => new RawJson(JSON.stringify(p.v ?? null)) },
    rawAsync: { handler: async () => new RawJson('{"a":[1,2]}') },
    plain: { params: { v: { type: 'any' } }, handler: (p) => p.v ?? null },
  });

  test('a raw result is spliced in where JSON.stringify would have put the value, for every id form', async () => {
    for (const id of [1, 0, -5, 2.5, 1e21, 'x', 'a"b\\c\u2028', '😀', null]) {
      for (const v of [{ k: 'é' }, [1, null], 'text', 0, null]) {
        const request = JSON.stringify({ jsonrpc: '2.0', id, method: 'raw', params: { v } });
        const plain = JSON.stringify({ jsonrpc: '2.0', id, method: 'plain', params: { v } });
        expect(d.handleLine(request, null)).toBe(d.handleLine(plain, null));
        expect(JSON.parse(d.handleLine(request, null) as string)).toEqual({ jsonrpc: '2.0', id, result: v });
      }
    }
  });

  test('in batches, async, and as a notification (no reply)', async () => {
    const batch = await d.handleLine('[{"jsonrpc":"2.0","id":1,"method":"raw","params":{"v":[3]}},{"jsonrpc":"2.0","id":"b","method":"rawAsync"},{"jsonrpc":"2.0","method":"raw"}]', null);
    expect(batch).toBe('[{"jsonrpc":"2.0","id":1,"result":[3]},{"jsonrpc":"2.0","id":"b","result":{"a":[1,2]}}]');
    expect(await d.handleLine('{"jsonrpc":"2.0","method":"raw"}', null)).toBeNull();
  });
});

describe('the table of recent decision texts', () => {
  const decision = (i: number, reason = 'rule file_read satisfied'): GateDecision => ({
    decision: 'allow', source: 'cache', reason, car_hash: 'sha256:' + i.toString(16).padStart(64, '0'), policy_version: 3, trust_score: 0.8, confidence: 1,
  });

  test('pauses itself (emptied) where decisions seldom repeat, comes back where they do; every text is JSON.stringify\'s throughout', () => {
    // Decisions that never repeat: the table stops keeping texts.
    for (let i = 0; i < 3000; i++) {
      const d = decision(i);
      expect(decisionJson(d)).toBe(JSON.stringify(d));
    }
    expect(decisionTextMemo().size).toBe(0);
    expect(decisionTextMemo().paused).toBeGreaterThan(0);
    // One decision over and over: after the pause, the table keeps it again.
    const same = decision(1, 'the same');
    for (let i = 0; i < 40_000; i++) expect(decisionJson(same)).toBe(JSON.stringify(same));
    expect(decisionTextMemo()).toEqual({ size: 1, paused: 0 });
    // A repeat with any value changed is never served the kept text.
    expect(decisionJson({ ...same, trust_score: 0.7 })).toBe(JSON.stringify({ ...same, trust_score: 0.7 }));
    expect(decisionJson({ ...same, reason: 'other' })).toBe(JSON.stringify({ ...same, reason: 'other' }));
  });
});
