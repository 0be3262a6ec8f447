// `guardkernel policy check` and `policy test` (issue 30, requirement 5),
// run as the installed command would be: problems placed in the file (path,
// line, column, code frame, "did you mean"), hostile files that end fast and
// cleanly, the version compared with a running serve's, the CASES format;
// and serve's console lines for reloads of its watched policy file.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { afterEach, describe, expect, test } from 'vitest';
import { codeFrame } from '../lib/cli/policy-check';
import { parsePolicyArgs } from '../lib/cli/policy';
import { parseCases } from '../lib/cli/policy-test';
import { PolicyEngine } from '../lib/policy/engine';
import { MAX_FLOW_DEPTH, MAX_INDENT, checkNesting, didYouMean, editDistance, knownFields, locatePath, parseWithPositions } from '../lib/policy/source';
import { runSync } from './child';
import { until } from './helpers';
import { cli, startServe } from './serve-process';

const env = { ...process.env, XDG_RUNTIME_DIR: '', GUARD_HMAC_SECRET: '' };

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function tmpdir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gk-policy-cli-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes files into a fresh directory; returns their paths by name. */
function files(contents: Record<string, string>): Record<string, string> {
  const dir = tmpdir();
  const out: Record<string, string> = { dir };
  for (const [name, text] of Object.entries(contents)) {
    out[name] = path.join(dir, name);
    fs.writeFileSync(out[name], text);
  }
  return out;
}

function policy(args: string[], timeout = 60_000) {
  const started = Date.now();
  const r = runSync(process.execPath, [cli, 'policy', ...args], { encoding: 'utf8', env, timeout });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - started };
}

const GOOD = `version: 3
mode: enforce
default: deny
actions:
  file_read:
    allow_identities: ["agent-*"]
    constraints:
      resource: { glob: "/srv/data/**" }
  shell_exec:
    require_approval: true
  net_connect:
    min_trust: 0.9
`;

describe('guardkernel policy check', () => {
  test('a valid file: exit 0 and a summary', () => {
    const f = files({ 'p.yaml': GOOD });
    const r = policy(['check', f['p.yaml']]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('valid (version 3, enforce mode, 3 rules)');
    const j = policy(['check', f['p.yaml'], '--json']);
    expect(j.status).toBe(0);
    expect(JSON.parse(j.stdout)).toMatchObject({ valid: true, version: 3, mode: 'enforce', rules: ['file_read', 'shell_exec', 'net_connect'], problems: [] });
  });

  test('a misspelled key: its path, line and column, a code frame and "did you mean"', () => {
    const f = files({ 'p.yaml': GOOD.replace('    allow_identities', '    alow_identities') });
    const r = policy(['check', f['p.yaml']]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${f['p.yaml']}:6:5: schema error: actions.file_read.alow_identities: is not a known field`);
    expect(r.stderr).toContain('> 6 |     alow_identities: ["agent-*"]\n    |     ^^^^^^^^^^^^^^^\n');
    expect(r.stderr).toContain('  5 |   file_read:\n');
    expect(r.stderr).toContain('did you mean `allow_identities`?');
    const j = JSON.parse(policy(['check', f['p.yaml'], '--json']).stdout);
    expect(j.problems).toEqual([{ kind: 'schema', path: 'actions.file_read.alow_identities', message: 'is not a known field', line: 6, column: 5, suggestion: 'allow_identities' }]);
  });

  test('misspellings at other levels: top level, trust, constraint kinds, enum values', () => {
    const cases: Array<[string, string, string]> = [
      [GOOD.replace('actions:', 'actoins:'), 'actoins', 'actions'],
      [GOOD.replace('default: deny', 'default: deny\ntrust:\n  bsae: 0.5'), 'trust.bsae', 'base'],
      [GOOD.replace('{ glob:', '{ glbo:'), 'actions.file_read.constraints.resource.glbo', 'glob'],
      [GOOD.replace('mode: enforce', 'mode: enforc'), 'mode', 'enforce'],
    ];
    for (const [text, at, suggestion] of cases) {
      const f = files({ 'p.yaml': text });
      const j = JSON.parse(policy(['check', f['p.yaml'], '--json']).stdout);
      expect(j.problems[0]).toMatchObject({ path: at, suggestion });
      expect(j.problems[0].line).toBeGreaterThan(0);
    }
    // Nothing close: no suggestion.
    const f = files({ 'p.yaml': GOOD.replace('    allow_identities', '    zzzzzzzzzzzz') });
    expect(JSON.parse(policy(['check', f['p.yaml'], '--json']).stdout).problems[0].suggestion).toBeUndefined();
  });

  test('a YAML syntax error and a duplicate key: the line and column, with a code frame', () => {
    const syntax = files({ 'p.yaml': 'version: 3\nmode: [enforce\nactions:\n' });
    const r = policy(['check', syntax['p.yaml']]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/p\.yaml:3:1: YAML error: not valid YAML or JSON: Flow sequence .* end with a \]\n/);
    expect(r.stderr).toContain('  2 | mode: [enforce\n> 3 | actions:\n    | ^\n');

    const dup = files({ 'p.yaml': 'version: 3\nmode: enforce\nactions:\n  a: {min_trust: 0.1}\n  a: {min_trust: 0.2}\n' });
    const d = policy(['check', dup['p.yaml']]);
    expect(d.status).toBe(1);
    expect(d.stderr).toContain('p.yaml:5:3: YAML error: not valid YAML or JSON: Map keys must be unique\n');
    expect(d.stderr).toContain('> 5 |   a: {min_trust: 0.2}\n    |   ^\n');
  });

  test('compile errors (a bad regex, a bad glob escape) carry their path and place', () => {
    const f = files({
      're.yaml': 'version: 3\nmode: enforce\nactions:\n  a:\n    constraints:\n      args.x: { regex: "a(b" }\n',
      'glob.yaml': 'version: 3\nmode: enforce\nactions:\n  a:\n    deny_identities: ["CORP\\\\evil"]\n',
    });
    const r = policy(['check', f['re.yaml']]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('re.yaml:6:24: invalid: actions.a.constraints.args.x.regex: is not a valid regular expression');
    expect(r.stderr).toContain('> 6 |       args.x: { regex: "a(b" }\n    |                        ^^^^^\n');
    const g = JSON.parse(policy(['check', f['glob.yaml'], '--json']).stdout);
    expect(g.problems[0]).toMatchObject({ kind: 'compile', path: 'actions.a.deny_identities', line: 5, column: 22 });
  });

  test('a missing required field is shown at the mapping that lacks it', () => {
    const f = files({ 'p.yaml': 'mode: enforce\nactions: {}\n' });
    const j = JSON.parse(policy(['check', f['p.yaml'], '--json']).stdout);
    expect(j.problems[0]).toMatchObject({ kind: 'schema', path: 'version', message: 'is required', line: 1, column: 1 });
  });

  test('an unreadable file or bad usage: exit 2', () => {
    const dir = tmpdir();
    const r = policy(['check', path.join(dir, 'nope.yaml')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/cannot read .*nope\.yaml: ENOENT/);
    const dev = policy(['check', '/dev/zero']); // read up to a bound, never forever
    expect(dev.status).toBe(2);
    expect(dev.stderr).toContain('cannot read /dev/zero: larger than 64 MiB');
    expect(policy(['check', dir]).stderr).toMatch(/cannot read .*: EISDIR/);
    expect(policy(['check']).status).toBe(2);
    expect(policy(['check', 'a', 'b']).status).toBe(2);
    expect(policy(['lint', 'a']).status).toBe(2);
    expect(policy(['test', 'a', '--socket', 's', 'b']).stderr).toContain('--socket is not an option of test');
    expect(policy(['--help']).stdout).toContain('policy <command>');
  });

  test('hostile files end fast and fail cleanly: a 1 MB key, deep nesting, an alias bomb, control characters', () => {
    let bomb = 'version: 3\nmode: enforce\nx0: &a0 [x,x,x,x,x,x,x,x,x,x]\n';
    for (let i = 1; i < 10; i++) bomb += `x${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(',')}]\n`;
    const hostile: Record<string, [string, RegExp]> = {
      'key.yaml': [`version: 3\nmode: enforce\nactions:\n  a:\n    ${'k'.repeat(1 << 20)}: 1\n`, /p?key\.yaml:5:5: YAML error/],
      'flatkey.yaml': [`version: 3\nmode: enforce\n${'alow'.repeat(1 << 18)}: 1\n`, /flatkey\.yaml:3:1: YAML error/],
      'flow.yaml': [`version: 3\nmode: enforce\nx: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`, /flow\.yaml:3:\d+: YAML error: not valid YAML or JSON: nested deeper than 64 flow collections/],
      'block.yaml': [`version: 3\nmode: enforce\nx:\n${Array.from({ length: 2000 }, (_, i) => ' '.repeat(i + 1) + 'a:').join('\n')} 1\n`, /block\.yaml:\d+:1: YAML error: .*deeper than 256 columns/],
      'seq.yaml': [`version: 3\nmode: enforce\nx: ${'- '.repeat(100_000)}1\n`, /seq\.yaml:3:\d+: YAML error: .*block indicators/],
      'bomb.yaml': [bomb, /bomb\.yaml: YAML error: not valid YAML or JSON: Excessive alias count/],
      'ctl.yaml': ['version: 3\nmode: enforce\nactions:\n  a:\n    \u001b[31mx\u202e: 1\n', /ctl\.yaml:5:5: schema error: actions\.a\.\\u001b\[31mx\\u202e: is not a known field/],
    };
    const f = files(Object.fromEntries(Object.entries(hostile).map(([k, [text]]) => [k, text])));
    for (const [name, [, want]] of Object.entries(hostile)) {
      const r = policy(['check', f[name]], 30_000);
      expect(r.status, name).toBe(1);
      expect(r.stderr, name).toMatch(want);
      expect(r.stderr, name).not.toMatch(/FATAL|Maximum call stack|at .*\.js:\d+/);
      expect(r.stderr).not.toMatch(/[\u001b\u202e]/);
      expect(r.stderr.length, name).toBeLessThan(2000); // long lines are cut in the frame
      expect(r.ms, name).toBeLessThan(15_000);
    }
  });
});

describe('the helpers under policy check', () => {
  test('did you mean: close names only, hostile lengths never compared', () => {
    expect(editDistance('alow_identities', 'allow_identities')).toBe(1);
    expect(editDistance('mnio_trust', 'min_trust')).toBe(2);
    expect(editDistance('ab', 'ba')).toBe(1); // a transposition is one edit
    expect(didYouMean('alow_identities', knownFields(['actions', 'file_read']))).toBe('allow_identities');
    expect(didYouMean('Version', knownFields([]))).toBe('version');
    expect(didYouMean('glbo', knownFields(['actions', 'x', 'constraints', 'resource']))).toBe('glob');
    expect(didYouMean('bsae', knownFields(['trust']))).toBe('base');
    expect(didYouMean('mtach', knownFields(['trust', 'identities', '0']))).toBe('match');
    expect(didYouMean('xyz', knownFields([]))).toBeUndefined();
    expect(didYouMean('a'.repeat(65), ['a'.repeat(64)])).toBeUndefined();
    const t = Date.now();
    expect(didYouMean('alow'.repeat(1 << 18), knownFields(['actions', 'x']))).toBeUndefined();
    expect(Date.now() - t).toBeLessThan(100);
  });

  test('a dotted path finds its node even where keys contain dots', () => {
    const text = 'version: 3\nmode: enforce\nactions:\n  mcp.tool.read:\n    constraints:\n      args.path: { glob: "/x/**", nope: 1 }\n';
    const { doc, lines } = parseWithPositions(text);
    const found = locatePath(doc, 'actions.mcp.tool.read.constraints.args.path.nope');
    expect(found.complete).toBe(true);
    expect(found.segments).toEqual(['actions', 'mcp.tool.read', 'constraints', 'args.path', 'nope']);
    expect(lines.linePos(found.keyRange![0])).toEqual({ line: 6, col: 35 });
    const partial = locatePath(doc, 'actions.missing.min_trust');
    expect(partial.complete).toBe(false);
    expect(partial.segments).toEqual(['actions']);
  });

  test('nesting is bounded before the YAML parser recurses, for the server too', () => {
    expect(() => checkNesting('x: ' + '['.repeat(MAX_FLOW_DEPTH) + ']'.repeat(MAX_FLOW_DEPTH))).not.toThrow();
    expect(() => checkNesting('x: ' + '['.repeat(MAX_FLOW_DEPTH + 1) + ']'.repeat(MAX_FLOW_DEPTH + 1))).toThrow(/flow collections/);
    expect(() => checkNesting('x:\n' + ' '.repeat(MAX_INDENT) + 'y: 1\n')).not.toThrow();
    expect(() => checkNesting('x:\n' + ' '.repeat(MAX_INDENT + 1) + 'y: 1\n')).toThrow(/columns/);
    // Inside scalars (quoted, block) brackets and indentation do not count.
    expect(() => checkNesting(`x: "${'['.repeat(1000)}"\ny: |\n${' '.repeat(1000)}deep\nz: 1\n`)).not.toThrow();
    expect(() => PolicyEngine.parse('x: ' + '{a: '.repeat(10_000) + '1' + '}'.repeat(10_000))).toThrow(/nested deeper than 64/);
    // The worst case the bounds let through parses without exhausting the stack.
    const worst = 'x:\n' + Array.from({ length: 250 }, (_, i) => ' '.repeat(i + 1) + 'a:').join('\n') + ' ' + '['.repeat(64) + ']'.repeat(64) + '\n';
    expect(() => PolicyEngine.parse(worst)).not.toThrow();
  });

  test('the code frame escapes control and bidi characters and cuts long lines', () => {
    const text = 'a: 1\nb: \u001b[2Jx\u202ey\n';
    const frame = codeFrame(text, 8, 9);
    expect(frame).toBe('  1 | a: 1\n> 2 | b: \\u001b[2Jx\\u202ey\n    |    ^^^^^^');
    const long = 'k: ' + 'v'.repeat(10_000);
    const cut = codeFrame(long, 5000, 5001);
    expect(cut.length).toBeLessThan(300);
    const [shown, caret] = cut.split('\n');
    expect(shown).toBe(`> 1 | …${'v'.repeat(100)}…`); // a window around column 5001
    expect(caret.indexOf('^')).toBe('> 1 | …'.length + 50);
  });

  test('argument parsing', () => {
    expect(parsePolicyArgs(['check', 'f.yaml', '--json'])).toEqual({ command: 'check', file: 'f.yaml', json: true });
    expect(parsePolicyArgs(['test', 'f.yaml', 'c.yaml'])).toEqual({ command: 'test', file: 'f.yaml', cases: 'c.yaml', json: false });
    expect(parsePolicyArgs(['check', 'f', '--socket', '/s', '--auth-token-file', '/t'])).toMatchObject({ socket: '/s', authTokenFile: '/t' });
    expect(parsePolicyArgs([])).toBe('help');
    expect(() => parsePolicyArgs(['check', 'f', '--json', '--json'])).toThrow(/given twice/);
    expect(() => parsePolicyArgs(['check', 'f', '--socket'])).toThrow(/needs a value/);
  });
});

const CASES = `- name: an agent reads its data
  car: { action_type: file_read, agent_id: agent-1, resource: /srv/data/a.txt }
  expect: allow
  reason: satisfied
- name: outside the data directory
  car: { action_type: file_read, agent_id: agent-1, resource: /etc/passwd }
  expect: deny
  reason: /does not match "\\/srv\\/data\\/\\*\\*"$/
- name: an unknown action falls to the default
  car: { action_type: net, agent_id: agent-1 }
  expect: deny
  reason: /^no rule for action type "net"/
`;

describe('guardkernel policy test', () => {
  test('passing cases: exit 0; the rules no case reached are listed', () => {
    const f = files({ 'p.yaml': GOOD, 'cases.yaml': CASES });
    const r = policy(['test', f['p.yaml'], f['cases.yaml']]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('3 case(s): 3 passed, 0 failed');
    expect(r.stdout).toContain('rules no case reached: shell_exec, net_connect');
    const j = JSON.parse(policy(['test', f['p.yaml'], f['cases.yaml'], '--json']).stdout);
    expect(j).toMatchObject({ cases: 3, passed: 3, failed: 0, unreached_rules: ['shell_exec', 'net_connect'], default_reached: true });
  });

  test('failing cases: exit 1, each named with what it expected and what it got', () => {
    const more = `${CASES}- name: wrong decision
  car: { action_type: file_read, agent_id: bot-1, resource: /srv/data/a.txt }
  expect: allow
- name: right decision, wrong reason
  car: { action_type: shell_exec, agent_id: agent-1 }
  expect: pending
  reason: /^rule shell_exec is denied$/
- car: { action_type: net_connect, agent_id: agent-1 }
  expect: deny
  reason: below 0.9
`;
    const f = files({ 'p.yaml': GOOD, 'cases.yaml': more });
    const r = policy(['test', f['p.yaml'], f['cases.yaml']]);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain(`FAIL wrong decision (${f['cases.yaml']}:13)\n  expected allow\n  got      deny: rule file_read: identity "bot-1" is not in the allow list\n`);
    expect(r.stdout).toContain('FAIL right decision, wrong reason');
    expect(r.stdout).toContain('  expected pending with reason /^rule shell_exec is denied$/\n  got      pending: rule shell_exec requires approval\n');
    expect(r.stdout).toContain('6 case(s): 4 passed, 2 failed');
    expect(r.stdout).toContain('every rule was reached by some case');
    const j = JSON.parse(policy(['test', f['p.yaml'], f['cases.yaml'], '--json']).stdout);
    expect(j.failures.map((x: { name: string }) => x.name)).toEqual(['wrong decision', 'right decision, wrong reason']);
    expect(j.failures[0]).toMatchObject({ index: 3, expected: 'allow', got: 'deny', matched_rule: 'file_read' });
  });

  test('each case runs on a fresh engine: one case\'s violations do not lower trust in the next', () => {
    const p = 'version: 1\nmode: enforce\ntrust: { base: 0.5, violation_penalty: 0.2 }\nactions:\n  a: { min_trust: 0.5, constraints: { x: { equals: 1 } } }\n';
    const c = `- car: { action_type: a, agent_id: ag, x: 2 }\n  expect: deny\n- car: { action_type: a, agent_id: ag, x: 1 }\n  expect: allow\n`;
    const f = files({ 'p.yaml': p, 'c.yaml': c });
    expect(policy(['test', f['p.yaml'], f['c.yaml']]).status).toBe(0);
  });

  test('an invalid CAR is a deny, as the gate answers it', () => {
    const f = files({ 'p.yaml': GOOD, 'c.yaml': '- car: { action_type: file_read }\n  expect: deny\n  reason: invalid CAR\n' });
    expect(policy(['test', f['p.yaml'], f['c.yaml']]).status).toBe(0);
  });

  test('a bad CASES file, a bad policy, an unreadable file: exit 2, placed in the file', () => {
    const f = files({
      'p.yaml': GOOD,
      'typo.yaml': GOOD.replace('min_trust', 'min_trsut'),
      'key.yaml': '- car: { action_type: a, agent_id: b }\n  expct: allow\n',
      'value.yaml': '- car: { action_type: a, agent_id: b }\n  expect: alow\n',
      're.yaml': '- car: { action_type: a, agent_id: b }\n  expect: deny\n  reason: /a(?=b)/\n',
      'notalist.yaml': 'car: {}\n',
      'syntax.yaml': '- car: [\n',
    });
    const key = policy(['test', f['p.yaml'], f['key.yaml']]);
    expect(key.status).toBe(2);
    expect(key.stderr).toContain('key.yaml:2:3: case 1 (expct): is not a known field (name, car, expect, reason); did you mean `expect`?');
    expect(key.stderr).toContain('> 2 |   expct: allow\n    |   ^^^^^\n');
    expect(policy(['test', f['p.yaml'], f['value.yaml']]).stderr).toContain('value.yaml:2:11: case 1 (expect): must be one of allow, deny, pending; did you mean `allow`?');
    // Lookahead is not linear-time: RE2 refuses it (reason patterns never run on a backtracking engine).
    expect(policy(['test', f['p.yaml'], f['re.yaml']]).stderr).toMatch(/re\.yaml:3:11: case 1 \(reason\): not a regular expression RE2 can run/);
    expect(policy(['test', f['p.yaml'], f['notalist.yaml']]).stderr).toContain('expected a list of cases');
    expect(policy(['test', f['p.yaml'], f['syntax.yaml']]).status).toBe(2);
    const bad = policy(['test', f['typo.yaml'], f['key.yaml']]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('actions.net_connect.min_trsut: is not a known field');
    expect(bad.stderr).toContain('did you mean `min_trust`?');
    expect(policy(['test', f['p.yaml'], path.join(f.dir, 'none.yaml')]).status).toBe(2);
  });

  test('a reason regex runs on RE2 in linear time', () => {
    const cases = parseCases(`- car: { action_type: a, agent_id: b }\n  expect: deny\n  reason: /(a+)+$/\n`);
    const t = Date.now();
    expect(cases[0].reason!.test('a'.repeat(50_000) + '!')).toBe(false);
    expect(Date.now() - t).toBeLessThan(1000);
    expect(parseCases(`- car: { action_type: a, agent_id: b }\n  expect: deny\n  reason: /RULE/i\n`)[0].reason!.test('a rule x')).toBe(true);
    expect(parseCases(`- car: { action_type: a, agent_id: b }\n  expect: deny\n  reason: "rule (x"\n`)[0].reason!.test('a rule (x)')).toBe(true); // a substring, not a pattern
  });
});

// ---- Over a real `guardkernel serve` ----------------------------------------

const OPERATOR_TOKEN = 'operator-token-policy-cli-0123456789';
const AGENT_TOKEN = 'agent-token-policy-cli-0123456789';

async function serve(policyText: string) {
  const dir = tmpdir();
  const f = { policy: path.join(dir, 'policy.yaml'), operator: path.join(dir, 'operator.token'), agent: path.join(dir, 'agent.token') };
  fs.writeFileSync(f.policy, policyText);
  fs.writeFileSync(f.operator, OPERATOR_TOKEN + '\n', { mode: 0o600 });
  fs.writeFileSync(f.agent, AGENT_TOKEN + '\n', { mode: 0o600 });
  const s = startServe(['--state-dir', dir, '--policy', f.policy, '--operator-token-file', f.operator, '--agent-token-file', f.agent]);
  cleanups.push(async () => {
    s.child.kill('SIGTERM');
    await s.exited;
  });
  await s.ready;
  return { dir, socket: path.join(dir, 'core.sock'), files: f, serve: s };
}

describe('policy check --socket and serve reloads', () => {
  test('the version is compared with the running server\'s; an agent cannot read it; no server: exit 2', async () => {
    const { dir, socket, files: f } = await serve(GOOD);
    const same = path.join(dir, 'same.yaml');
    fs.writeFileSync(same, GOOD);
    const newer = path.join(dir, 'newer.yaml');
    fs.writeFileSync(newer, GOOD.replace('version: 3', 'version: 4'));

    const r = policy(['check', same, '--socket', socket, '--auth-token-file', f.operator]);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toContain(`same.yaml:1:10: server: version: 3 is not newer than the version the server at ${socket} runs (3): serve would not load this file; bump version to 4 or more`);
    const ok = policy(['check', newer, '--socket', socket, '--auth-token-file', f.operator]);
    expect(ok.stderr).toBe('');
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toContain("valid (version 4, enforce mode, 3 rules; newer than the server's version 3)");
    expect(JSON.parse(policy(['check', same, '--socket', socket, '--auth-token-file', f.operator, '--json']).stdout)).toMatchObject({ valid: false, server: { version: 3 }, problems: [{ kind: 'version', path: 'version', line: 1, column: 10 }] });

    const agent = policy(['check', same, '--socket', socket, '--auth-token-file', f.agent]);
    expect(agent.status, agent.stderr).toBe(0); // the file is valid; the comparison could not be made, and it says so
    expect(agent.stderr).toContain('does not let this credential read its policy (policy_get needs the operator role');
    const anonymous = policy(['check', same, '--socket', socket]);
    expect(anonymous.status, anonymous.stderr).toBe(2);
    expect(anonymous.stderr).toContain('requires authentication: pass --auth-token-file with the operator token');

    const none = policy(['check', same, '--socket', path.join(dir, 'none.sock')]);
    expect(none.status, none.stderr).toBe(2);
    expect(none.stderr).toContain(`no server at ${path.join(dir, 'none.sock')}: start one with "guardkernel serve --socket`);
  });

  test('serve prints each reload outcome of its watched file on stderr', async () => {
    const { files: f, serve: s } = await serve(GOOD);
    const write = async (text: string) => {
      await new Promise((r) => setTimeout(r, 50)); // a new mtime
      fs.writeFileSync(f.policy, text);
    };
    await write(GOOD.replace('version: 3', 'version: 4'));
    await until(() => s.errors().includes('guardkernel: policy reloaded: version 4 (was 3)'), 10_000);

    await write(GOOD.replace('version: 3', 'version: 4').replace('min_trust: 0.9', 'min_trust: 0.8'));
    await until(() => s.errors().includes('not loaded'), 10_000);
    expect(s.errors()).toContain(`guardkernel: policy file ${f.policy} not loaded: version: 4 is not newer than the active version 4; still serving version 4\n`);

    await write(GOOD.replace('version: 3', 'version: 5').replace('    allow_identities', '    alow_identities'));
    await until(() => s.errors().includes('alow_identities'), 10_000);
    expect(s.errors()).toContain(`guardkernel: policy file ${f.policy} not loaded: actions.file_read.alow_identities: is not a known field; still serving version 4\n`);

    await write(GOOD.replace('version: 3', 'version: 5'));
    await until(() => s.errors().includes('version 5 (was 4)'), 10_000);
  });
});

// The helpers read the document the way the server does.
test('parseWithPositions uses the same YAML options as PolicyEngine.parse', () => {
  expect(() => PolicyEngine.parse('a: 1\na: 2\n')).toThrow(/unique/);
  expect(parseWithPositions('a: 1\na: 2\n').doc.errors[0].code).toBe('DUPLICATE_KEY');
  expect(YAML.parse('x: 1')).toEqual({ x: 1 });
});
