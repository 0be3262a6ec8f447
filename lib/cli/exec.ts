/**
 * `guardkernel exec [options] -- COMMAND [ARGS...]`: runs COMMAND in the
 * process sandbox (lib/sandbox) with this terminal's stdio. The exit status is
 * the command's; 125 with a one-line reason on standard error when the
 * sandbox stopped it, refused it, or the options are wrong.
 */
import os from 'node:os';
import { GuardError } from '../errors';
import { GuardClient } from '../ipc/client';
import { ProcessSandbox, applySandboxProfile, type SandboxNetwork, type SandboxSpawnOptions, type SandboxWeakening } from '../sandbox';
import { connectFailure } from './no-server';
import { flagValue, readAuthTokenFile } from './args';
import { defaultSocket } from './serve';

export const EXEC_USAGE = `Usage: guardkernel exec [options] -- COMMAND [ARGS...]

Runs COMMAND confined by the operating system (Linux: rlimits, no_new_privs, seccomp, Landlock,
user + network namespaces; see docs/sandbox.md), with this terminal's stdin, stdout and stderr.
The environment is scrubbed to PATH, HOME, LANG, LC_*, TERM, TZ, USER, LOGNAME, SHELL, TMPDIR
(plus --env and --pass-env).

Options:
  --memory BYTES          memory limit (suffix K, M or G allowed): cgroup v2 memory.max where
                          delegated, else the address-space rlimit (RLIMIT_AS)
  --cpu-ms N              CPU time per process (RLIMIT_CPU, whole seconds, rounded up)
  --wall-ms N             wall-clock limit of the whole run
  --processes N           processes at once (cgroup pids.max, or RLIMIT_NPROC in a user namespace)
  --open-files N          open descriptors per process (RLIMIT_NOFILE)
  --file-size BYTES       largest file written (RLIMIT_FSIZE; suffix K, M or G allowed)
  --read PATH             readable (and executable) tree or file; repeatable. With any --read or
                          --write, everything else is denied (system library trees stay readable)
  --write PATH            readable and writable tree or file; repeatable
  --network MODE          none | loopback | host (default host)
  --env NAME=VALUE        set a variable for the command; repeatable
  --pass-env NAME         copy a variable from this environment; repeatable
  --allow-weaker WHAT     run even where WHAT (seccomp, filesystem, network, processes) cannot be
                          enforced here; repeatable
  --require cgroup        refuse unless memory and processes go through a cgroup v2 leaf
  --agent ID              apply the profile the running server's quarantine gives agent ID
                          (isolation network: no network; filesystem: read-only; full: refused)
  --socket PATH           with --agent: the server's socket (default as for serve)
  --auth-token-file FILE  with --agent: authenticate with the token in FILE
  --json                  after the command ends, print the sandbox result as one JSON line on stderr
  --help                  this text

Exit status: the command's (128 + N when signal N ended it and the sandbox did not); 125 when the
sandbox stopped it (memory, cpu, wall, processes, violation), refused to run it, or on bad usage;
126 when COMMAND cannot be executed, 127 when it is not found.
`;

export interface ExecArgs {
  options: SandboxSpawnOptions;
  agent?: string;
  socket?: string;
  authTokenFile?: string;
  json: boolean;
  command: string;
  args: string[];
}

function positive(v: string, flag: string, suffixes = false): number {
  const m = /^(\d+)([kKmMgG]?)$/.exec(v);
  if (m === null || (!suffixes && m[2] !== '')) throw new Error(`${flag} needs a positive integer${suffixes ? ' (suffix K, M or G allowed)' : ''}, not ${JSON.stringify(v)}`);
  const scale = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g'];
  const n = Number(m[1]) * scale;
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${flag} needs a positive integer, not ${JSON.stringify(v)}`);
  return n;
}

export function parseExecArgs(argv: string[]): ExecArgs | 'help' {
  const limits: NonNullable<SandboxSpawnOptions['limits']> = {};
  const read: string[] = [];
  const write: string[] = [];
  const env: Record<string, string> = {};
  const passEnv: string[] = [];
  const weaker: SandboxWeakening[] = [];
  const options: SandboxSpawnOptions = { stdio: 'inherit' };
  const out: Omit<ExecArgs, 'command'> & { command?: string } = { options, json: false, args: [] };
  let i = 0;
  scan: for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      i++;
      break;
    }
    switch (a) {
      case '--help':
      case '-h':
        return 'help';
      case '--memory': limits.memoryBytes = positive(flagValue(argv, i++, a), a, true); break;
      case '--cpu-ms': limits.cpuMs = positive(flagValue(argv, i++, a), a); break;
      case '--wall-ms': limits.wallMs = positive(flagValue(argv, i++, a), a); break;
      case '--processes': limits.processes = positive(flagValue(argv, i++, a), a); break;
      case '--open-files': limits.openFiles = positive(flagValue(argv, i++, a), a); break;
      case '--file-size': limits.fileSizeBytes = positive(flagValue(argv, i++, a), a, true); break;
      case '--read': read.push(flagValue(argv, i++, a)); break;
      case '--write': write.push(flagValue(argv, i++, a)); break;
      case '--network': {
        const v = flagValue(argv, i++, a);
        if (v !== 'none' && v !== 'loopback' && v !== 'host') throw new Error(`--network must be none, loopback or host, not ${JSON.stringify(v)}`);
        options.network = v as SandboxNetwork;
        break;
      }
      case '--env': {
        const v = flagValue(argv, i++, a);
        const eq = v.indexOf('=');
        if (eq < 1) throw new Error(`--env needs NAME=VALUE, not ${JSON.stringify(v)}`);
        env[v.slice(0, eq)] = v.slice(eq + 1);
        break;
      }
      case '--pass-env': passEnv.push(flagValue(argv, i++, a)); break;
      case '--allow-weaker': {
        const v = flagValue(argv, i++, a);
        if (!['seccomp', 'filesystem', 'network', 'processes'].includes(v)) throw new Error(`--allow-weaker takes seccomp, filesystem, network or processes, not ${JSON.stringify(v)}`);
        weaker.push(v as SandboxWeakening);
        break;
      }
      case '--require': {
        const v = flagValue(argv, i++, a);
        if (v !== 'cgroup') throw new Error(`--require takes cgroup, not ${JSON.stringify(v)}`);
        options.require = ['cgroup'];
        break;
      }
      case '--agent': out.agent = flagValue(argv, i++, a); break;
      case '--socket': out.socket = flagValue(argv, i++, a); break;
      case '--auth-token-file': out.authTokenFile = flagValue(argv, i++, a); break;
      case '--json': out.json = true; break;
      default:
        if (a.startsWith('-')) throw new Error(`unknown option ${a}`);
        // The command may also come without "--" when it is the first bare word.
        break scan;
    }
  }
  out.command = argv[i];
  out.args = argv.slice(i + 1);
  if (out.command === undefined || out.command === '') throw new Error('missing COMMAND (after --)');
  if ((out.socket !== undefined || out.authTokenFile !== undefined) && out.agent === undefined) throw new Error('--socket and --auth-token-file go with --agent');
  if (Object.keys(limits).length > 0) options.limits = limits;
  if (read.length > 0 || write.length > 0) options.filesystem = { read, write };
  if (Object.keys(env).length > 0) options.env = env;
  if (passEnv.length > 0) options.envAllow = passEnv;
  if (weaker.length > 0) options.allowWeaker = weaker;
  if (out.agent !== undefined) options.agentId = out.agent;
  return out as ExecArgs;
}

type Io = { stderr: (s: string) => void };

/** The profile the server gives `agent` applied to the options; a string is the refusal. */
async function withProfile(args: ExecArgs): Promise<SandboxSpawnOptions | string> {
  const socket = args.socket ?? defaultSocket();
  let token: string | undefined;
  if (args.authTokenFile !== undefined) {
    try {
      token = readAuthTokenFile(args.authTokenFile);
    } catch (err) {
      return (err as Error).message;
    }
  }
  let client: GuardClient;
  try {
    client = await GuardClient.connect(socket);
  } catch (err) {
    return `--agent needs a running guardkernel serve: ${connectFailure(socket, err)}`;
  }
  try {
    if (token !== undefined) await client.auth(token);
    const profile = await client.sandboxProfile(args.agent!);
    return applySandboxProfile(args.options, profile);
  } catch (err) {
    return err instanceof GuardError ? err.message : `sandbox_profile for ${args.agent}: ${(err as Error).message}`;
  } finally {
    client.close();
  }
}

/** Runs the command; resolves to the exit status. */
export async function runExec(args: ExecArgs, io: Io): Promise<number> {
  const fail = (message: string): number => {
    io.stderr(`guardkernel exec: ${message.replace(/\s+/g, ' ')}\n`);
    return 125;
  };
  let options = args.options;
  if (args.agent !== undefined) {
    const r = await withProfile(args);
    if (typeof r === 'string') return fail(r);
    options = r;
  }
  const sandbox = new ProcessSandbox();
  let child;
  try {
    child = sandbox.spawn(args.command, args.args, options);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      io.stderr(`guardkernel exec: ${args.command}: command not found\n`);
      return 127;
    }
    if (code === 'EACCES' || code === 'ENOEXEC' || code === 'EPERM') {
      io.stderr(`guardkernel exec: ${args.command}: cannot execute (${code})\n`);
      return 126;
    }
    return fail(err instanceof Error ? err.message : String(err));
  }
  // This process's end must not leave the command running: a signal to us kills it.
  let signalled: NodeJS.Signals | null = null;
  const onSignal = (sig: NodeJS.Signals) => {
    signalled = sig;
    child.kill();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  const r = await child.result;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  process.off('SIGHUP', onSignal);
  if (args.json) io.stderr(JSON.stringify(r) + '\n');
  if (signalled !== null) return 128 + (os.constants.signals[signalled as NodeJS.Signals] ?? 0);
  if (r.reason === 'killed') return 128 + (os.constants.signals.SIGKILL ?? 9);
  if (r.reason !== 'exit') {
    const v = r.violations[0];
    return fail(`stopped: ${r.reason}${v === undefined ? '' : `: ${v.detail}`}`);
  }
  if (r.code !== null) return r.code;
  return 128 + (os.constants.signals[r.signal as NodeJS.Signals] ?? 0);
}

export function execCommand(argv: string[]): number {
  let parsed: ReturnType<typeof parseExecArgs>;
  try {
    parsed = parseExecArgs(argv);
  } catch (err) {
    process.stderr.write(`guardkernel exec: ${(err as Error).message}\n`);
    return 125;
  }
  if (parsed === 'help') {
    process.stdout.write(EXEC_USAGE);
    return 0;
  }
  runExec(parsed, { stderr: (s) => process.stderr.write(s) }).then(
    (code) => {
      process.exitCode = code;
    },
    (err: Error) => {
      process.stderr.write(`guardkernel exec: ${err.message}\n`);
      process.exitCode = 125;
    },
  );
  return -1; // exits when the command has ended
}
