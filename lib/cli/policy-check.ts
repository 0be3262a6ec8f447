/**
 * `guardkernel policy check`: a policy file validated exactly as the server
 * loads it (PolicyEngine.parse, the schema, compilePolicy), each problem
 * reported with its dotted path, its line and column in the file, a code
 * frame, and "did you mean" for a misspelled field name.
 */
import { readAuthTokenFile } from './args';
import { connectFailure } from './no-server';
import fs from 'node:fs';
import { GuardClient } from '../ipc/client';
import { compilePolicy, CompileError } from '../policy/compile';
import { PolicyEngine } from '../policy/engine';
import { schemaError } from '../policy/schema';
import { didYouMean, knownFields, locatePath, parseWithPositions, schemaAt } from '../policy/source';
import { safeText } from './approvals';

export type ProblemKind = 'yaml' | 'schema' | 'compile' | 'version';

export interface PolicyProblem {
  kind: ProblemKind;
  /** Dotted path of the offending node ('' for the whole document or a YAML syntax error). */
  path: string;
  message: string;
  /** 1-based, where the problem could be placed in the file. */
  line?: number;
  column?: number;
  /** The closest known field name (or allowed value) to a misspelled one. */
  suggestion?: string;
  /** The source lines around the problem with a caret under it (text output only). */
  frame?: string;
}

export interface CheckResult {
  file: string;
  valid: boolean;
  version?: number;
  mode?: string;
  rules?: string[];
  problems: PolicyProblem[];
  /** The parsed document when valid. */
  document?: Record<string, unknown>;
  /** The file's text, to place later problems (the version against a server's) in it. */
  text?: string;
}

/** Characters of a long line shown around the column in a code frame. */
const FRAME_WIDTH = 100;

function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  return starts;
}

/** [line, column] (1-based) of an offset. */
function position(starts: number[], offset: number): [number, number] {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid] <= offset) lo = mid;
    else hi = mid - 1;
  }
  return [lo + 1, offset - starts[lo] + 1];
}

/**
 * A code frame: the line before, the line at [start, end) with a caret under
 * it, escaped (no control or bidi character of the file reaches the
 * terminal), long lines cut to a window around the column.
 */
export function codeFrame(text: string, start: number, end: number): string {
  const starts = lineStarts(text);
  const [line, column] = position(starts, Math.min(Math.max(0, start), text.length));
  const lineText = (n: number) => {
    const from = starts[n - 1];
    const to = n < starts.length ? starts[n] - 1 : text.length;
    return text.slice(from, to).replace(/\r$/, '');
  };
  const width = String(line).length;
  const out: string[] = [];
  if (line > 1) {
    const prev = lineText(line - 1);
    out.push(`  ${String(line - 1).padStart(width)} | ${safeText(prev.length > FRAME_WIDTH ? prev.slice(0, FRAME_WIDTH) + '…' : prev)}`);
  }
  const full = lineText(line);
  const col0 = Math.min(column - 1, full.length);
  let from = 0;
  if (col0 > FRAME_WIDTH / 2) from = col0 - FRAME_WIDTH / 2;
  const to = Math.min(full.length, from + FRAME_WIDTH);
  const lead = from > 0 ? '…' : '';
  const shown = lead + safeText(full.slice(from, to)) + (to < full.length ? '…' : '');
  const before = lead + safeText(full.slice(from, col0));
  const spanEnd = Math.min(to, col0 + Math.max(1, Math.min(end, starts[line - 1] + full.length) - start));
  const carets = Math.max(1, safeText(full.slice(col0, spanEnd)).length);
  out.push(`> ${String(line).padStart(width)} | ${shown}`);
  out.push(`  ${' '.repeat(width)} | ${' '.repeat(before.length)}${'^'.repeat(carets)}`);
  return out.join('\n');
}

function place(text: string, problem: PolicyProblem, range: [number, number] | undefined): void {
  if (range === undefined) return;
  const [line, column] = position(lineStarts(text), range[0]);
  problem.line = line;
  problem.column = column;
  problem.frame = codeFrame(text, range[0], range[1]);
}

/** The problem with a path: placed in the file, with a suggestion for a misspelled name or value. */
export function locate(text: string, problem: PolicyProblem): void {
  let src: ReturnType<typeof parseWithPositions>;
  try {
    src = parseWithPositions(text);
  } catch {
    return; // cannot happen after PolicyEngine.parse took it; then only the path is reported
  }
  const found = locatePath(src.doc, problem.path);
  const unknownField = problem.message === 'is not a known field';
  if (unknownField && found.complete) {
    const parent = found.segments.slice(0, -1);
    const name = found.segments[found.segments.length - 1];
    const suggestion = didYouMean(name, knownFields(parent));
    if (suggestion !== undefined) problem.suggestion = suggestion;
    place(text, problem, found.keyRange ?? found.valueRange);
    return;
  }
  if (found.complete && problem.message.startsWith('must be one of')) {
    const allowed = schemaAt(found.segments)?.enum;
    const value = src.doc.getIn(found.segments, false);
    if (Array.isArray(allowed) && typeof value === 'string') {
      const suggestion = didYouMean(value, allowed.filter((v): v is string => typeof v === 'string'));
      if (suggestion !== undefined) problem.suggestion = suggestion;
    }
  }
  // A missing field is shown at the object that lacks it; anything else at its value.
  place(text, problem, found.valueRange ?? found.keyRange);
}

/** Validates policy text as the server would; every problem placed in the file. */
export function checkPolicyText(file: string, text: string): CheckResult {
  const result: CheckResult = { file, valid: false, problems: [] };
  let doc: unknown;
  try {
    doc = PolicyEngine.parse(text);
  } catch (err) {
    const cause = (err as Error).cause as { pos?: unknown; message?: string } | undefined;
    // The line and column are reported apart (and the yaml package's own frame is not kept).
    const problem: PolicyProblem = { kind: 'yaml', path: '', message: (err as Error).message.replace(/ at line \d+, column \d+:?$/, '') };
    const pos = cause?.pos;
    if (Array.isArray(pos) && typeof pos[0] === 'number' && typeof pos[1] === 'number') place(text, problem, [pos[0], pos[1]]);
    result.problems.push(problem);
    return result;
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    result.problems.push({ kind: 'schema', path: '', message: `expected a policy document (a mapping with version and mode) but found ${doc === null ? 'nothing' : Array.isArray(doc) ? 'a list' : typeof doc}` });
    return result;
  }
  const problem = schemaError(doc);
  if (problem !== null) {
    const p: PolicyProblem = { kind: 'schema', path: problem.path, message: problem.message };
    locate(text, p);
    result.problems.push(p);
    return result;
  }
  try {
    compilePolicy(doc as Record<string, unknown>);
  } catch (err) {
    // PolicyEngine.load reports the same; an error that is not a CompileError (e.g. an `equals` value nested too deep) has no policy path.
    const p: PolicyProblem = err instanceof CompileError ? { kind: 'compile', path: err.path, message: err.message } : { kind: 'compile', path: '', message: (err as Error).message };
    if (p.path !== '') locate(text, p);
    result.problems.push(p);
    return result;
  }
  const d = doc as Record<string, unknown>;
  result.valid = true;
  result.version = d.version as number;
  result.mode = d.mode as string;
  result.rules = Object.keys((d.actions ?? {}) as object);
  result.document = d;
  result.text = text;
  return result;
}

/** The most a policy or CASES file may hold here (a device such as /dev/zero would otherwise be read forever). */
export const MAX_FILE_BYTES = 64 * 1024 * 1024;

/** A file's text, read up to MAX_FILE_BYTES; an Error naming the file otherwise. */
export function readTextFile(file: string): string {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(1 << 20);
      const n = fs.readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      total += n;
      if (total > MAX_FILE_BYTES) throw new Error(`larger than ${MAX_FILE_BYTES / 1024 / 1024} MiB`);
      chunks.push(chunk.subarray(0, n));
    }
    return Buffer.concat(chunks, total).toString('utf8');
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Reads and checks a file; an unreadable file is an Error (exit 2). */
export function checkPolicyFile(file: string): CheckResult {
  return checkPolicyText(file, readTextFile(file));
}

/** Problems as text: `FILE:LINE:COL: PATH: MESSAGE`, the code frame, the suggestion. */
export function formatProblems(result: CheckResult): string {
  return result.problems
    .map((p) => {
      const where = p.line === undefined ? safeText(result.file) : `${safeText(result.file)}:${p.line}:${p.column}`;
      const what = p.kind === 'yaml' || p.path === '' ? safeText(p.message) : `${safeText(p.path)}: ${safeText(p.message)}`;
      let s = `${where}: ${p.kind === 'yaml' ? 'YAML error' : p.kind === 'version' ? 'server' : p.kind === 'compile' ? 'invalid' : 'schema error'}: ${what}\n`;
      if (p.frame !== undefined) s += p.frame + '\n';
      if (p.suggestion !== undefined) s += `did you mean \`${safeText(p.suggestion)}\`?\n`;
      return s;
    })
    .join('');
}

export interface ServerVersion {
  socket: string;
  /** The running server's policy version, when it could be read. */
  version?: number;
  /** Why it could not be (no server, not allowed, ...). */
  error?: string;
  /** Exit status the error calls for (2: no server or bad credentials; 0: only a note). */
  errorExit?: number;
}

/** Asks a running server which policy version it serves (policy_get, an operator method). */
export async function serverVersion(socket: string, tokenFile: string | undefined): Promise<ServerVersion> {
  let token: string | undefined;
  if (tokenFile !== undefined) {
    try {
      token = readAuthTokenFile(tokenFile);
    } catch (err) {
      return { socket, error: (err as Error).message, errorExit: 2 };
    }
  }
  let client: GuardClient;
  try {
    client = await GuardClient.connect(socket);
  } catch (err) {
    return { socket, error: connectFailure(socket, err), errorExit: 2 };
  }
  try {
    if (token !== undefined) await client.auth(token);
    const { version } = await client.policyGet();
    if (typeof version !== 'number') return { socket, error: 'the server answered policy_get without a version', errorExit: 2 };
    return { socket, version };
  } catch (err) {
    const code = (err as { data?: { code?: unknown } }).data?.code ?? (err as { code?: unknown }).code;
    if (code === 'ERR_FORBIDDEN') {
      return { socket, error: `the server at ${socket} does not let this credential read its policy (policy_get needs the operator role; pass the operator's --auth-token-file): version not compared`, errorExit: 0 };
    }
    if (code === 'ERR_UNAUTHORIZED') return { socket, error: `the server at ${socket} requires authentication: pass --auth-token-file with the operator token`, errorExit: 2 };
    return { socket, error: `policy_get on ${socket}: ${err instanceof Error ? err.message : String(err)}`, errorExit: 2 };
  } finally {
    client.close();
  }
}
