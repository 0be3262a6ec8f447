// JSON-RPC 2.0 framing and dispatch (the pieces the IPC server is built on).
import { isUtf8 } from 'node:buffer';
import { describe, expect, test } from 'vitest';
import { GuardError } from '../lib/errors';
import { JsonRpcDispatcher, RpcFault, type MethodSpec } from '../lib/ipc/jsonrpc';
import { LineReader } from '../lib/ipc/line-reader';
import { randomInt, rng } from './helpers';

const calls: string[] = [];
const methods: Record<string, MethodSpec<{ user: string }>> = {
  ping: { handler: () => 'pong' },
  echo: { params: { text: { type: 'string', required: true }, times: { type: 'integer' } }, handler: (p) => String(p.text).repeat((p.times as number) ?? 1) },
  note: { params: { text: { type: 'string', required: true } }, handler: (p, ctx) => void calls.push(`${ctx.user}:${p.text as string}`) },
  slow: { handler: async () => new Promise((r) => setTimeout(() => r({ done: true }), 5)) },
  slowFail: { handler: async () => { throw new GuardError('ERR_CAR_INVALID', 'async bad'); } },
  guard: { handler: () => { throw new GuardError('ERR_CAR_INVALID', 'car.x: bad'); } },
  crash: { handler: () => { throw new Error('secret internal detail'); } },
  range: { handler: () => { throw new RangeError('ttl_ms out of range'); } },
  fault: { handler: () => { throw new RpcFault(-32001, 'custom', { why: 1 }); } },
};
const d = new JsonRpcDispatcher(methods);
const ask = async (line: string) => {
  const out = await d.handleLine(line, { user: 'u' });
  return out === null ? null : JSON.parse(out);
};

describe('JSON-RPC 2.0', () => {
  test('sync handlers answer synchronously (no promise per request); async ones with a promise', async () => {
    const sync = d.handleLine('{"jsonrpc":"2.0","id":1,"method":"ping"}', { user: 'u' });
    expect(typeof sync).toBe('string');
    expect(d.handleLine('{"jsonrpc":"2.0","id":1,"method":"guard"}', { user: 'u' })).toContain('-32000');
    const pending = d.handleLine('{"jsonrpc":"2.0","id":1,"method":"slow"}', { user: 'u' });
    expect(pending).toBeInstanceOf(Promise);
    expect(JSON.parse((await pending) as string)).toEqual({ jsonrpc: '2.0', id: 1, result: { done: true } });
    // A rejected async handler maps to the same error codes as a throwing sync one.
    expect(await ask('{"jsonrpc":"2.0","id":3,"method":"slowFail"}')).toEqual({ jsonrpc: '2.0', id: 3, error: { code: -32000, message: 'async bad', data: { code: 'ERR_CAR_INVALID' } } });
    // A batch mixing both answers in order.
    expect(await ask('[{"jsonrpc":"2.0","id":1,"method":"slow"},{"jsonrpc":"2.0","id":2,"method":"ping"}]')).toEqual([
      { jsonrpc: '2.0', id: 1, result: { done: true } },
      { jsonrpc: '2.0', id: 2, result: 'pong' },
    ]);
  });

  test('requests and results', async () => {
    expect(await ask('{"jsonrpc":"2.0","id":1,"method":"ping"}')).toEqual({ jsonrpc: '2.0', id: 1, result: 'pong' });
    expect(await ask('{"jsonrpc":"2.0","id":"a","method":"echo","params":{"text":"ab","times":2}}')).toEqual({ jsonrpc: '2.0', id: 'a', result: 'abab' });
    expect(await ask('{"jsonrpc":"2.0","id":null,"method":"slow"}')).toEqual({ jsonrpc: '2.0', id: null, result: { done: true } });
    expect(await ask('{"jsonrpc":"2.0","id":2,"method":"note","params":{"text":"x"}}')).toEqual({ jsonrpc: '2.0', id: 2, result: null });
  });

  test('notifications get no reply, but the work is done', async () => {
    calls.length = 0;
    expect(await ask('{"jsonrpc":"2.0","method":"note","params":{"text":"n1"}}')).toBeNull();
    expect(await ask('{"jsonrpc":"2.0","method":"nope"}')).toBeNull();
    expect(calls).toEqual(['u:n1']);
  });

  test('parse error (-32700) with id null', async () => {
    for (const bad of ['{', 'nope', '{"jsonrpc":"2.0",}', '']) expect(await ask(bad)).toEqual({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } });
  });

  test('invalid requests (-32600)', async () => {
    for (const bad of ['1', '"x"', 'null', '{}', '{"jsonrpc":"1.0","id":1,"method":"ping"}', '{"jsonrpc":"2.0","id":1,"method":5}', '{"jsonrpc":"2.0","id":{},"method":"ping"}']) {
      const r = await ask(bad);
      expect(r.error.code).toBe(-32600);
    }
    expect((await ask('{"jsonrpc":"1.0","id":7,"method":"ping"}')).id).toBe(7);
    expect((await ask('{"jsonrpc":"2.0","id":[1],"method":"ping"}')).id).toBeNull();
  });

  test('batches: empty is one -32600, mixed entries answered in order, notifications omitted', async () => {
    expect(await ask('[]')).toEqual({ jsonrpc: '2.0', id: null, error: { code: -32600, message: 'Invalid Request: empty batch' } });
    const r = await ask('[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"note","params":{"text":"b"}},1,{"jsonrpc":"2.0","id":3,"method":"nope"}]');
    expect(r).toEqual([
      { jsonrpc: '2.0', id: 1, result: 'pong' },
      { jsonrpc: '2.0', id: null, error: { code: -32600, message: 'Invalid Request' } },
      { jsonrpc: '2.0', id: 3, error: { code: -32601, message: 'Method not found: nope' } },
    ]);
    expect(await ask('[{"jsonrpc":"2.0","method":"ping"}]')).toBeNull();
  });

  test('unknown method (-32601), including inherited names', async () => {
    for (const m of ['nope', 'toString', '__proto__', 'constructor']) {
      expect((await ask(JSON.stringify({ jsonrpc: '2.0', id: 1, method: m }))).error.code).toBe(-32601);
    }
  });

  test('invalid params (-32602) name the field', async () => {
    const cases: Array<[string, string]> = [
      ['{"jsonrpc":"2.0","id":1,"method":"echo"}', 'text'],
      ['{"jsonrpc":"2.0","id":1,"method":"echo","params":{"text":5}}', 'text'],
      ['{"jsonrpc":"2.0","id":1,"method":"echo","params":{"text":"a","times":1.5}}', 'times'],
      ['{"jsonrpc":"2.0","id":1,"method":"echo","params":{"text":"a","extra":1}}', 'extra'],
      ['{"jsonrpc":"2.0","id":1,"method":"echo","params":["a"]}', 'params'],
    ];
    for (const [line, field] of cases) {
      const r = await ask(line);
      expect(r.error.code).toBe(-32602);
      expect(r.error.data).toEqual({ field });
      expect(r.error.message).toContain(field);
    }
  });

  test('application errors carry data.code; internal errors leak nothing', async () => {
    expect(await ask('{"jsonrpc":"2.0","id":1,"method":"guard"}')).toEqual({ jsonrpc: '2.0', id: 1, error: { code: -32000, message: 'car.x: bad', data: { code: 'ERR_CAR_INVALID' } } });
    const crash = await ask('{"jsonrpc":"2.0","id":2,"method":"crash"}');
    expect(crash).toEqual({ jsonrpc: '2.0', id: 2, error: { code: -32603, message: 'Internal error' } });
    expect(JSON.stringify(crash)).not.toContain('secret');
    expect((await ask('{"jsonrpc":"2.0","id":3,"method":"range"}')).error).toMatchObject({ code: -32602, message: 'Invalid params: ttl_ms out of range' });
    expect((await ask('{"jsonrpc":"2.0","id":4,"method":"fault"}')).error).toEqual({ code: -32001, message: 'custom', data: { why: 1 } });
  });
});

describe('LineReader', () => {
  function collect(max: number) {
    const lines: string[] = [];
    const overflows: number[] = [];
    const r = new LineReader(max, { line: (l) => lines.push(l), overflow: (n) => overflows.push(n), invalid: () => lines.push(INVALID) });
    return { r, lines, overflows };
  }
  const INVALID = '<not UTF-8>';

  test('strict UTF-8: a line with any invalid sequence is reported invalid, never decoded with U+FFFD', () => {
    const bad: Array<[string, number[]]> = [
      ['a stray 0xFF', [0xff]],
      ['a stray 0xFE', [0xfe]],
      ['a lone continuation byte', [0x80]],
      ['a truncated 2-byte sequence', [0xc3]],
      ['a truncated 3-byte sequence', [0xe2, 0x82]],
      ['an overlong "."', [0xc0, 0xae]],
      ['an overlong "/" in 3 bytes', [0xe0, 0x80, 0xaf]],
      ['an encoded high surrogate (CESU-8)', [0xed, 0xa0, 0x80]],
      ['an encoded low surrogate', [0xed, 0xb0, 0x80]],
      ['a code point past U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
      ['a 5-byte form', [0xf8, 0x88, 0x80, 0x80, 0x80]],
    ];
    for (const [what, bytes] of bad) {
      for (const chunked of [false, true]) {
        const { r, lines } = collect(1 << 20);
        const line = Buffer.concat([Buffer.from('{"car":{"resource":"/srv/data/'), Buffer.from(bytes), Buffer.from('"}}\nok\n')]);
        if (chunked) for (const b of line) r.push(Buffer.from([b]));
        else r.push(line);
        expect({ what, chunked, lines }).toEqual({ what, chunked, lines: [INVALID, 'ok'] });
      }
    }
    // Valid multi-byte text, split anywhere, is fine.
    const { r, lines } = collect(1 << 20);
    for (const b of Buffer.from('é€😀\uFFFD\n')) r.push(Buffer.from([b]));
    expect(lines).toEqual(['é€😀\uFFFD']);
  });

  test('splits lines across and within chunks, strips CR, keeps UTF-8 split across chunks intact', () => {
    const { r, lines } = collect(1024);
    const euro = Buffer.from('€');
    r.push(Buffer.from('one\ntw'));
    r.push(Buffer.from('o\r\nthree '));
    r.push(euro.subarray(0, 1));
    r.push(Buffer.concat([euro.subarray(1), Buffer.from('\n\n')]));
    expect(lines).toEqual(['one', 'two', 'three €', '']);
    expect(r.buffered).toBe(0);
  });

  test('an oversized line overflows once, and memory stays bounded', () => {
    const { r, lines, overflows } = collect(1 << 20);
    const mib = Buffer.alloc(256 * 1024, 0x61);
    for (let i = 0; i < 40; i++) {
      r.push(mib); // 10 MiB with no newline
      expect(r.buffered).toBeLessThanOrEqual(1 << 20);
    }
    expect(overflows).toHaveLength(1);
    expect(overflows[0]).toBeGreaterThan(1 << 20);
    expect(r.overflowed).toBe(true);
    r.push(Buffer.from('\n{"jsonrpc":"2.0"}\n'));
    expect(lines).toEqual([]); // nothing after an overflow is read
  });

  test('a line of exactly the limit is fine; one byte more is not', () => {
    const ok = collect(10);
    ok.r.push(Buffer.from('0123456789\n'));
    expect(ok.lines).toEqual(['0123456789']);
    const over = collect(10);
    over.r.push(Buffer.from('0123456789A\n'));
    expect(over.overflows).toEqual([11]);
  });

  test('rejects a bad limit', () => {
    expect(() => new LineReader(0, { line: () => {}, overflow: () => {}, invalid: () => {} })).toThrow(RangeError);
  });

  test('any chunking of any stream gives the lines a line-by-line reference gives (2,000 random streams)', () => {
    // Pieces include invalid UTF-8 (a lone lead byte, 0xff), multi-byte characters
    // that chunking splits, CR before LF, and empty lines.
    const PIECES = [Buffer.from('a'), Buffer.from('{"x":1}'), Buffer.from('€'), Buffer.from('😀'), Buffer.from([0xc3]), Buffer.from([0xff]), Buffer.from('\r'), Buffer.from('\n'), Buffer.from('\n'), Buffer.from('\r\n')];
    const next = rng(0x11e5);
    for (let round = 0; round < 2000; round++) {
      const parts: Buffer[] = [];
      for (let i = randomInt(next, 0, 60); i > 0; i--) parts.push(PIECES[randomInt(next, 0, PIECES.length - 1)]);
      const stream = Buffer.concat(parts);
      const limit = next() < 0.5 ? randomInt(next, 1, 24) : 1 << 20;
      // Reference: split the whole stream's bytes; the first line past the limit ends reading.
      const want: string[] = [];
      let wantOverflow = false;
      const pieces: Buffer[] = [];
      for (let start = 0; ; ) {
        const nl = stream.indexOf(0x0a, start);
        pieces.push(stream.subarray(start, nl === -1 ? stream.length : nl));
        if (nl === -1) break;
        start = nl + 1;
      }
      for (let i = 0; i < pieces.length; i++) {
        const complete = i < pieces.length - 1;
        if (pieces[i].length > limit) {
          wantOverflow = true;
          break;
        }
        if (complete) {
          const text = pieces[i].toString('utf8');
          want.push(!isUtf8(pieces[i]) ? INVALID : text.endsWith('\r') ? text.slice(0, -1) : text);
        }
      }
      const { r, lines, overflows } = collect(limit);
      for (let at = 0; at < stream.length; ) {
        const n = randomInt(next, 1, 40);
        r.push(stream.subarray(at, at + n));
        at += n;
      }
      expect({ round, lines, overflowed: overflows.length === 1 }).toEqual({ round, lines: want, overflowed: wantOverflow });
    }
  });
});
