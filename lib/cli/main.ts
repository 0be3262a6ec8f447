#!/usr/bin/env node
/** The `guardkernel` command. */
import fs from 'node:fs';
import { AuditLog, FileAuditAnchor } from '../audit/log';
import { approvalsCommand } from './approvals';
import { execCommand } from './exec';
import { mcpCommand } from './mcp';
import { policyCommand } from './policy';
import { reportCommand } from './report';
import { doctorReport } from './doctor';
import { fleetDoctor, formatFleetDoctor } from '../fleet/doctor';
import { flagValue } from './args';
import { SERVE_USAGE, parseServeArgs, startServe } from './serve';
import { backends } from '../native/loader';
import { VERSION } from '../version';

const USAGE = `Usage: guardkernel <command> [options]

Commands:
  serve [options]   Run the gate as a JSON-RPC server on a Unix socket (serve --help for options)
  doctor [--json] [--redis URL [--redis-prefix P]]
                    Show the active backends, why any fallback is used, and the GPU devices found;
                    with --redis, whether the fleet store answers (exit 1 if it does not)
  audit verify <file> [--key-file F] [--allow-missing-head] [--anchor-file A] [--chain older...]
                    Verify an audit log: the chain from its genesis, MACs, canonical lines and
                    the head checkpoint (a missing head fails unless --allow-missing-head). The
                    key comes from --key-file (raw bytes) or GUARDKERNEL_AUDIT_KEY (base64).
                    Rotated files <file> continues are found beside it; with --chain, the files
                    given after it (oldest first) are verified before <file> instead. With
                    --anchor-file, a log behind that anchor (rolled back) fails; without an
                    anchor a rollback of log and head together cannot be seen.
                    Exit 0 if intact, 1 if not, 3 if the key is not the log's, 2 on bad usage.
  report --standard S [--format json|html|markdown|pdf] [--out FILE] [--socket PATH | --config FILE]
                    A compliance report (soc2, gdpr, hipaa, pci-dss, iso27001, fedramp, nist-csf) from a
                    running server or a configuration file (report --help for options). Exit 0 if no
                    check is non-compliant, 1 if some are, 2 on bad usage or failure.
  approvals list|show ID|approve ID|deny ID [--socket PATH] [--auth-token-file FILE]
                    List, read, approve or deny a running server's approval requests (approvals
                    --help for options). Exit 0 if done, 1 if the server refused, 2 on bad usage or
                    when no server answers.
  mcp [--policy FILE | --socket PATH] [--agent-id ID] [--server-id ID] [--approval-timeout MS] [--hide-denied] -- COMMAND [ARGS...]
                    An MCP guard proxy on stdio: starts COMMAND (an MCP server) and checks each tools/call,
                    resources/read and prompts/get with the gate first (mcp --help for options)
  policy check FILE [--socket PATH] [--auth-token-file F] [--json]
                    Validate a policy file as serve loads it: each problem with its path, line and column,
                    a code frame and "did you mean"; with --socket, whether its version is newer than the
                    running server's. Exit 0 if valid, 1 if not, 2 on bad usage or an unreadable file.
  policy test FILE CASES [--json]
                    Decide the example CARs of CASES with the policy in FILE; report the cases that fail
                    and the rules no case reached (policy --help for the CASES format). Exit 0 if all
                    pass, 1 if some fail, 2 on bad usage or an invalid file.
  exec [--memory BYTES] [--cpu-ms N] [--wall-ms N] [--processes N] [--read PATH]... [--write PATH]...
       [--network none|loopback|host] [--json] [--agent ID] -- COMMAND [ARGS...]
                    Run COMMAND confined by the OS process sandbox (exec --help for options). Exit
                    status: the command's, or 125 with a one-line reason when the sandbox stopped
                    or refused it
  version           Print the version
  help              Show this help
`;

function serveCommand(args: string[]): number {
  let parsed: ReturnType<typeof parseServeArgs>;
  try {
    parsed = parseServeArgs(args);
  } catch (err) {
    process.stderr.write(`guardkernel serve: ${(err as Error).message}\n\n${SERVE_USAGE}`);
    return 2;
  }
  if (parsed === 'help') {
    process.stdout.write(SERVE_USAGE);
    return 0;
  }
  // Signal handlers go in before anything starts: a SIGTERM that arrives
  // while the server is still starting must still end in a clean exit 0.
  let running: Awaited<ReturnType<typeof startServe>> | null = null;
  let stopRequested = false;
  let stopping = false;
  const stop = () => {
    stopRequested = true;
    if (running === null || stopping) return;
    stopping = true;
    running.stop().then(
      () => process.exit(0),
      (err) => {
        process.stderr.write(`guardkernel serve: shutdown failed: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  startServe(parsed, (line) => process.stdout.write(line + '\n')).then(
    (r) => {
      running = r;
      if (stopRequested) stop();
    },
    (err) => {
      process.stderr.write(`guardkernel serve: ${(err as Error).message}\n`);
      process.exit(1);
    },
  );
  return -1; // keeps running; exits from the signal handlers
}

function doctorCommand(args: string[]): number {
  let json = false;
  let redis: string | undefined;
  let prefix: string | undefined;
  try {
    for (let i = 0; i < args.length; i++) {
      if (args[i] === '--json') json = true;
      else if (args[i] === '--redis') redis = flagValue(args, i++, '--redis');
      else if (args[i] === '--redis-prefix') prefix = flagValue(args, i++, '--redis-prefix');
      else throw new Error(`unknown option ${args[i]}`);
    }
    if (prefix !== undefined && redis === undefined) throw new Error('--redis-prefix needs --redis');
  } catch (err) {
    process.stderr.write(`guardkernel doctor: ${(err as Error).message}\n`);
    return 2;
  }
  if (redis === undefined) {
    process.stdout.write((json ? JSON.stringify(backends(), null, 2) : doctorReport()) + '\n');
    return 0;
  }
  fleetDoctor(redis, prefix).then(
    (fleet) => {
      if (json) process.stdout.write(JSON.stringify({ ...backends(), fleet }, null, 2) + '\n');
      else process.stdout.write(`${doctorReport()}\n\n${formatFleetDoctor(fleet)}\n`);
      process.exitCode = fleet.ok ? 0 : 1;
    },
    (err: Error) => {
      process.stderr.write(`guardkernel doctor: ${err.message}\n`);
      process.exitCode = 2;
    },
  );
  return -1; // exits when the check is done
}

export function main(argv: string[]): number {
  const [command, ...rest] = argv;
  switch (command) {
    case 'doctor':
      return doctorCommand(rest);
    case 'audit':
      return auditCommand(rest);
    case 'serve':
      return serveCommand(rest);
    case 'report':
      return reportCommand(rest);
    case 'approvals':
      return approvalsCommand(rest);
    case 'mcp':
      return mcpCommand(rest);
    case 'policy':
      return policyCommand(rest);
    case 'exec':
      return execCommand(rest);
    case 'version':
    case '--version':
    case '-v':
      process.stdout.write(`${VERSION}\n`);
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(`guardkernel: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

function auditCommand(args: string[]): number {
  const usage = (msg: string) => {
    process.stderr.write(`guardkernel audit: ${msg}\n\n${USAGE}`);
    return 2;
  };
  if (args[0] !== 'verify') return usage(args[0] === undefined ? 'missing subcommand' : `unknown subcommand "${args[0]}"`);
  let file: string | undefined;
  let keyFile: string | undefined;
  let anchorFile: string | undefined;
  let allowMissingHead = false;
  const older: string[] = [];
  let inChain = false;
  for (let i = 1; i < args.length; i++) {
    const a = args[i];
    if (a === '--key-file') {
      keyFile = args[++i];
      if (keyFile === undefined) return usage('--key-file needs a path');
    } else if (a === '--anchor-file') {
      anchorFile = args[++i];
      if (anchorFile === undefined) return usage('--anchor-file needs a path');
    } else if (a === '--allow-missing-head') {
      allowMissingHead = true;
    } else if (a === '--chain') {
      inChain = true;
    } else if (a.startsWith('-')) {
      return usage(`unknown option ${a}`);
    } else if (inChain) {
      older.push(a);
    } else if (file === undefined) {
      file = a;
    } else {
      return usage(`unexpected argument ${a}`);
    }
  }
  if (file === undefined) return usage('missing <file>');
  let key: Buffer;
  try {
    if (keyFile !== undefined) key = fs.readFileSync(keyFile);
    else if (process.env.GUARDKERNEL_AUDIT_KEY) key = Buffer.from(process.env.GUARDKERNEL_AUDIT_KEY, 'base64');
    else return usage('no key: pass --key-file or set GUARDKERNEL_AUDIT_KEY (base64)');
    const anchor = anchorFile === undefined ? undefined : new FileAuditAnchor(anchorFile).read();
    if (anchorFile !== undefined && anchor === null) return usage(`no anchor in ${anchorFile}`);
    const options = { allowMissingHead, anchor };
    const result = older.length > 0 ? AuditLog.verifyChain([...older, file], key, options) : AuditLog.verify(file, key, options);
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    if (result.ok) return 0;
    const where = result.firstBad === undefined ? '' : `${result.file ?? file}${result.firstBad.line > 0 ? ` line ${result.firstBad.line}` : ''}${result.firstBad.seq === undefined ? '' : ` (seq ${result.firstBad.seq})`}: `;
    if (result.reason === 'wrong_key') {
      // Not evidence of tampering: the log is sealed with another key.
      process.stderr.write(`guardkernel audit verify: wrong key: ${file} was written with key id ${result.keyId}, the key given has id ${AuditLog.keyId(key)}\n`);
      return 3;
    }
    process.stderr.write(`guardkernel audit verify: NOT INTACT (${result.reason}): ${where}${result.firstBad?.reason ?? ''}; ${result.records} record(s) verify, up to seq ${result.lastGoodSeq}\n`);
    return 1;
  } catch (err) {
    process.stderr.write(`guardkernel audit verify: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
}

if (require.main === module) {
  const code = main(process.argv.slice(2));
  if (code >= 0) process.exitCode = code;
}
