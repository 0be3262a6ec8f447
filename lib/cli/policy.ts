/**
 * `guardkernel policy check|test`: policy tooling for the person who writes
 * the policy (docs/policy-tooling.md). check validates a file as `serve`
 * would load it; test runs example CARs through it.
 */
import { flagValue } from './args';
import { checkPolicyFile, formatProblems, locate, serverVersion, type CheckResult, type PolicyProblem } from './policy-check';
import { CasesError, formatReport, readCases, runCases } from './policy-test';
import { safeJson, safeText } from './approvals';
import { defaultSocket } from './serve';

export const POLICY_USAGE = `Usage: guardkernel policy <command> [options]

Commands:
  check FILE [--socket PATH] [--auth-token-file F] [--json]
                    Validate a policy file as guardkernel serve loads it (YAML syntax, duplicate keys,
                    the schema, patterns and regexes). Each problem is shown with its path, line and
                    column, the line with a caret, and "did you mean" for a misspelled field. With
                    --socket, also compare its version with the running server's (serve only loads a
                    newer version; reading it needs the operator credential, --auth-token-file).
  test FILE CASES [--json]
                    Decide each case of CASES (a YAML list of { name?, car, expect: allow|deny|pending,
                    reason?: substring or /regex/ }) with the policy in FILE, each on a fresh engine;
                    report the failures and the rules no case reached.

Options:
  --socket PATH           a running server (check; default as guardkernel serve's socket when
                          --auth-token-file is given)
  --auth-token-file FILE  authenticate with the token in FILE (the operator's)
  --json                  print the result as JSON
  --help                  this text

Exit status: 0 when the file is valid (check) or every case passes (test); 1 when the file is invalid,
its version is not newer than the server's, or a case fails; 2 on bad usage, an unreadable or invalid
CASES file, an invalid policy given to test, or a server that does not answer.
`;

export interface PolicyArgs {
  command: 'check' | 'test';
  file: string;
  cases?: string;
  socket?: string;
  authTokenFile?: string;
  json: boolean;
}

/** Parses policy's arguments; throws an Error naming the problem. */
export function parsePolicyArgs(argv: string[]): PolicyArgs | 'help' {
  if (argv.length === 0 || argv[0] === 'help' || argv.some((a) => a === '--help' || a === '-h')) return 'help';
  const [command, ...rest] = argv;
  if (command !== 'check' && command !== 'test') throw new Error(`unknown command ${JSON.stringify(command.slice(0, 64))} (check or test)`);
  const positional: string[] = [];
  const out: Partial<PolicyArgs> = { command, json: false };
  const seen = new Set<string>();
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (!a.startsWith('-') || a === '-') {
      positional.push(a);
      continue;
    }
    if (seen.has(a)) throw new Error(`${a} given twice`);
    seen.add(a);
    if (a === '--json') out.json = true;
    else if (a === '--socket' && command === 'check') out.socket = flagValue(rest, i++, a);
    else if (a === '--auth-token-file' && command === 'check') out.authTokenFile = flagValue(rest, i++, a);
    else if (a === '--socket' || a === '--auth-token-file') throw new Error(`${a} is not an option of ${command}`);
    else throw new Error(`unknown option ${JSON.stringify(a.slice(0, 64))}`);
  }
  const want = command === 'check' ? 1 : 2;
  if (positional.length < want) throw new Error(command === 'check' ? 'check needs the policy FILE' : 'test needs the policy FILE and the CASES file');
  if (positional.length > want) throw new Error(`${command} takes ${want === 1 ? 'one file' : 'two files'}, got ${positional.length} arguments`);
  out.file = positional[0];
  if (command === 'test') out.cases = positional[1];
  if (out.authTokenFile !== undefined && out.socket === undefined) out.socket = defaultSocket();
  return out as PolicyArgs;
}

interface Io {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
}

function jsonProblems(problems: PolicyProblem[]) {
  return problems.map(({ frame: _frame, ...p }) => p);
}

function jsonCheck(r: CheckResult) {
  return { file: r.file, valid: r.valid, version: r.version, mode: r.mode, rules: r.rules, problems: jsonProblems(r.problems) };
}

/** `policy check`; resolves to the exit status. */
export async function runPolicyCheck(args: PolicyArgs, io: Io): Promise<number> {
  let result: CheckResult;
  try {
    result = checkPolicyFile(args.file);
  } catch (err) {
    io.stderr(`guardkernel policy check: ${safeText((err as Error).message)}\n`);
    return 2;
  }
  let server: Awaited<ReturnType<typeof serverVersion>> | undefined;
  let code = result.valid ? 0 : 1;
  if (result.valid && args.socket !== undefined) {
    server = await serverVersion(args.socket, args.authTokenFile);
    if (server.version !== undefined && result.version! <= server.version) {
      const problem: PolicyProblem = {
        kind: 'version',
        path: 'version',
        message: `${result.version} is not newer than the version the server at ${args.socket} runs (${server.version}): serve would not load this file; bump version to ${server.version + 1} or more`,
      };
      if (result.text !== undefined) locate(result.text, problem);
      result.problems.push(problem);
      result.valid = false;
      code = 1;
    } else if (server.error !== undefined && server.errorExit === 2) code = 2;
  }
  if (args.json) {
    io.stdout(safeJson({ ...jsonCheck(result), server: server === undefined ? undefined : { socket: server.socket, version: server.version, error: server.error } }) + '\n');
    return code;
  }
  if (result.problems.length > 0) io.stderr(formatProblems(result));
  if (server?.error !== undefined) io.stderr(`guardkernel policy check: ${safeText(server.error)}\n`);
  if (result.valid) {
    const rules = result.rules!.length;
    const newer = server?.version === undefined ? '' : `; newer than the server's version ${server.version}`;
    io.stdout(`${safeText(args.file)}: valid (version ${result.version}, ${result.mode} mode, ${rules} rule${rules === 1 ? '' : 's'}${newer})\n`);
  }
  return code;
}

/** `policy test`; resolves to the exit status. */
export function runPolicyTest(args: PolicyArgs, io: Io): number {
  let result: CheckResult;
  try {
    result = checkPolicyFile(args.file);
  } catch (err) {
    io.stderr(`guardkernel policy test: ${safeText((err as Error).message)}\n`);
    return 2;
  }
  if (!result.valid) {
    if (args.json) io.stdout(safeJson({ policy: jsonCheck(result) }) + '\n');
    else io.stderr(`guardkernel policy test: the policy is invalid (guardkernel policy check ${safeText(args.file)}):\n${formatProblems(result)}`);
    return 2;
  }
  let cases;
  try {
    cases = readCases(args.cases!);
  } catch (err) {
    const w = err instanceof CasesError ? err.where : undefined;
    const at = w === undefined ? '' : `:${w.line}:${w.column}`;
    if (args.json) io.stdout(safeJson({ cases_error: { file: args.cases, line: w?.line, column: w?.column, message: (err as Error).message } }) + '\n');
    else io.stderr(`guardkernel policy test: ${safeText(args.cases!)}${at}: ${safeText((err as Error).message)}\n${w === undefined ? '' : w.frame + '\n'}`);
    return 2;
  }
  const report = runCases(result.document!, cases);
  io.stdout(args.json ? safeJson({ policy: args.file, version: result.version, ...report }) + '\n' : formatReport(report, args.cases!));
  return report.failed === 0 ? 0 : 1;
}

/** The command: parses, runs, sets the exit status. Returns the status, or -1 while running. */
export function policyCommand(argv: string[]): number {
  let args: ReturnType<typeof parsePolicyArgs>;
  try {
    args = parsePolicyArgs(argv);
  } catch (err) {
    process.stderr.write(`guardkernel policy: ${safeText((err as Error).message)}\n\n${POLICY_USAGE}`);
    return 2;
  }
  if (args === 'help') {
    process.stdout.write(POLICY_USAGE);
    return 0;
  }
  const io: Io = { stdout: (s) => process.stdout.write(s), stderr: (s) => process.stderr.write(s) };
  if (args.command === 'test') return runPolicyTest(args, io);
  runPolicyCheck(args, io).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.stderr.write(`guardkernel policy check: ${safeText((err as Error).message)}\n`);
      process.exitCode = 2;
    },
  );
  return -1;
}
