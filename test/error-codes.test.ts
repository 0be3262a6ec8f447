// Every ERR_* code the library gives a caller (a GuardError's code, or the
// `data.code` of a JSON-RPC error the server sends) is in ErrorCodes, so a
// caller can compare against the constant instead of a string it guessed.
// Found by reading the sources: a new code that is not added fails here.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { ErrorCodes } from '../lib/index';
import { repoRoot } from './helpers';

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

// Not the library's own codes: the client's names for bare JSON-RPC error
// numbers (lib/ipc/client.ts, documented in docs/ipc.md), and Node's.
const NOT_OURS = new Set(['ERR_PARSE', 'ERR_INVALID_REQUEST', 'ERR_METHOD_NOT_FOUND', 'ERR_INVALID_PARAMS', 'ERR_INTERNAL', 'ERR_APPLICATION', 'ERR_RPC', 'ERR_REQUIRE_ESM']);

describe('ErrorCodes', () => {
  test('holds every ERR_* code in lib/, and each once', () => {
    const known = new Set<string>(Object.values(ErrorCodes));
    expect(known.size).toBe(Object.values(ErrorCodes).length);
    const found = new Map<string, string>();
    for (const file of sources(path.join(repoRoot, 'lib'))) {
      for (const m of fs.readFileSync(file, 'utf8').matchAll(/['"`](ERR_[A-Z_]+)['"`]/g)) found.set(m[1], path.relative(repoRoot, file));
    }
    expect(found.size).toBeGreaterThan(15);
    const missing = [...found].filter(([code]) => !known.has(code) && !NOT_OURS.has(code));
    expect(missing).toEqual([]);
    for (const code of NOT_OURS) expect(known.has(code)).toBe(false);
  });

  test('the socket-level codes are the ones the server sends', () => {
    expect(ErrorCodes).toMatchObject({ LIMIT: 'ERR_LIMIT', DEADLINE: 'ERR_DEADLINE', UNAUTHORIZED: 'ERR_UNAUTHORIZED', AUTH_BLOCKED: 'ERR_AUTH_BLOCKED', AUTH_DISABLED: 'ERR_AUTH_DISABLED' });
  });
});
