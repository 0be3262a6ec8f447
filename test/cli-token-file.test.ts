// Every command that takes --auth-token-file reads it the same way (lib/cli/args.ts
// readAuthTokenFile): a missing or empty file is named, with the flag, before any
// connection is tried; the exit status is the command's own for bad usage.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { readAuthTokenFile } from '../lib/cli/args';
import { runSync } from './child';
import { cli } from './serve-process';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-tokfile-'));
const socket = path.join(dir, 'none.sock'); // no server: a command that connected first would say "no server at"
const missing = path.join(dir, 'nope');
const empty = path.join(dir, 'empty');
const good = path.join(dir, 'good');
fs.writeFileSync(empty, ' \n\t\n');
fs.writeFileSync(good, '  s3cret-token-0123456789\n');
const policyFile = path.join(dir, 'policy.yaml');
fs.writeFileSync(policyFile, 'version: 1\nmode: enforce\nactions: {}\n');

describe('readAuthTokenFile', () => {
  test('returns the trimmed token', () => {
    expect(readAuthTokenFile(good)).toBe('s3cret-token-0123456789');
  });
  test('rejects bad input: a missing file, a directory, an empty or blank file', () => {
    expect(() => readAuthTokenFile(missing)).toThrow(/^cannot read --auth-token-file .*nope: ENOENT$/);
    expect(() => readAuthTokenFile(dir)).toThrow(/^cannot read --auth-token-file .*: EISDIR$/);
    expect(() => readAuthTokenFile(empty)).toThrow(/^--auth-token-file .*empty is empty$/);
  });
});

const commands: Array<[name: string, args: (file: string) => string[], status: number]> = [
  ['approvals list', (f) => ['approvals', 'list', '--socket', socket, '--auth-token-file', f], 2],
  ['policy check', (f) => ['policy', 'check', policyFile, '--socket', socket, '--auth-token-file', f], 2],
  ['report', (f) => ['report', '--standard', 'soc2', '--socket', socket, '--auth-token-file', f], 2],
  ['mcp', (f) => ['mcp', '--socket', socket, '--auth-token-file', f, '--', process.execPath, '-e', ''], 2],
  ['exec --agent', (f) => ['exec', '--agent', 'a1', '--socket', socket, '--auth-token-file', f, '--', process.execPath, '-e', ''], 125],
];

describe.each(commands)('%s --auth-token-file', (_name, args, status) => {
  test('a missing file is named before connecting', () => {
    const r = runSync(process.execPath, [cli, ...args(missing)], { encoding: 'utf8' });
    expect(r.status).toBe(status);
    expect(r.stderr).toMatch(/cannot read --auth-token-file .*nope: ENOENT/);
    expect(r.stderr).not.toMatch(/no server at/);
  });
  test('an empty file is refused as empty', () => {
    const r = runSync(process.execPath, [cli, ...args(empty)], { encoding: 'utf8' });
    expect(r.status).toBe(status);
    expect(r.stderr).toMatch(/--auth-token-file .*empty is empty/);
  });
});
