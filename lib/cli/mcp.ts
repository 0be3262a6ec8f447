/**
 * `guardkernel mcp [options] -- COMMAND [ARGS...]`: the MCP guard proxy over
 * stdio. Standard output carries MCP only; diagnostics go to standard error.
 */
import { connectFailure, isConnectError } from './no-server';
import fs from 'node:fs';
import { AuditLog } from '../audit/log';
import { Gate } from '../gate/gate';
import { PolicyEngine } from '../policy/engine';
import { flagValue, readAuthTokenFile } from './args';
import { guardMcp, type GuardMcpOptions, type McpUpstream } from '../mcp/proxy';
import type { SandboxSpawnOptions } from '../sandbox';
import { parseExecArgs } from './exec';

export const MCP_USAGE = `Usage: guardkernel mcp [options] -- COMMAND [ARGS...]
       guardkernel mcp [options] --upstream-url URL

An MCP server on stdio that starts COMMAND (an MCP server on stdio), or talks to a Streamable HTTP
MCP server at URL, and stands between the client and it. Each tools/call, resources/read and
prompts/get is checked by the gate first (CAR action_type mcp.tool.<name>, mcp.resource.read,
mcp.prompt.get; with tool, server_id, agent_id, args, resource, prompt); everything else passes
through unchanged. Denied tool calls get a tool result with isError and the reason; pending ones
wait for an approval, then are forwarded or denied.

Options:
  --policy FILE           decide with a gate in this process, from this policy (YAML or JSON)
  --socket PATH           or decide with a running \`guardkernel serve\` (approvals are given there:
                          guardkernel approvals approve ID)
  --auth-token-file FILE  with --socket: authenticate with the token in FILE (the agent's token)
  --audit FILE            with --policy: audit each decision to FILE (key: --audit-key-file, raw bytes,
                          or GUARDKERNEL_AUDIT_KEY, base64)
  --audit-key-file FILE   the audit log's key
  --agent-id ID           the CAR's agent_id (default mcp-agent)
  --server-id ID          the CAR's server_id (default: COMMAND's base name, or the URL's host)
  --tool-action NAME=TYPE the action type of tool NAME (default mcp.tool.NAME); repeatable
  --approval-timeout MS   how long a pending call waits for its approval (default 60000)
  --hide-denied           leave out of tools/list the tools the policy never allows this agent
                          (needs the policy: --policy, or an operator credential over --socket)
  --upstream-url URL      the upstream is a Streamable HTTP MCP server (instead of -- COMMAND)
  --sandbox               run COMMAND in the process sandbox (as guardkernel exec; docs/sandbox.md), narrowed
                          by the agent's quarantine (network: no network, filesystem: read-only, full: refused);
                          its environment is scrubbed to the sandbox's allow list (add --sandbox-pass-env NAME)
  --sandbox-read PATH, --sandbox-write PATH, --sandbox-network none|loopback|host, --sandbox-memory BYTES,
  --sandbox-cpu-ms N, --sandbox-processes N, --sandbox-open-files N, --sandbox-file-size BYTES,
  --sandbox-pass-env NAME, --sandbox-allow-weaker WHAT, --sandbox-require cgroup
                          the confinement, as exec's flags of the same names (each implies --sandbox)
  --help                  this text

Exit status: 0 when the client closes the connection, 1 when the upstream exits or fails, 2 on bad usage.
`;

export interface McpArgs {
  policy?: string;
  socket?: string;
  authTokenFile?: string;
  audit?: string;
  auditKeyFile?: string;
  agentId: string;
  serverId?: string;
  toolActions: Record<string, string>;
  approvalTimeoutMs?: number;
  hideDenied: boolean;
  upstreamUrl?: string;
  /** exec's flags for the sandboxed upstream (null: not sandboxed). */
  sandbox: string[] | null;
  command?: string;
  args: string[];
}

/** `--sandbox-X` flags that take a value, as exec's `--X`. */
const SANDBOX_FLAGS = new Set(['read', 'write', 'network', 'memory', 'cpu-ms', 'processes', 'open-files', 'file-size', 'pass-env', 'allow-weaker', 'require']);

export function parseMcpArgs(argv: string[]): McpArgs | 'help' {
  const out: McpArgs = { agentId: 'mcp-agent', toolActions: Object.create(null), hideDenied: false, sandbox: null, args: [] };
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      i++;
      break;
    }
    switch (a) {
      case '--help':
      case '-h':
        return 'help';
      case '--policy':
        out.policy = flagValue(argv, i++, a);
        break;
      case '--socket':
        out.socket = flagValue(argv, i++, a);
        break;
      case '--auth-token-file':
        out.authTokenFile = flagValue(argv, i++, a);
        break;
      case '--audit':
        out.audit = flagValue(argv, i++, a);
        break;
      case '--audit-key-file':
        out.auditKeyFile = flagValue(argv, i++, a);
        break;
      case '--agent-id':
        out.agentId = flagValue(argv, i++, a);
        break;
      case '--server-id':
        out.serverId = flagValue(argv, i++, a);
        break;
      case '--tool-action': {
        const v = flagValue(argv, i++, a);
        const eq = v.indexOf('=');
        if (eq <= 0 || eq === v.length - 1) throw new Error(`--tool-action needs NAME=TYPE, not ${JSON.stringify(v)}`);
        out.toolActions[v.slice(0, eq)] = v.slice(eq + 1);
        break;
      }
      case '--approval-timeout': {
        const v = flagValue(argv, i++, a);
        if (!/^[0-9]{1,10}$/.test(v) || Number(v) > 86_400_000) throw new Error(`--approval-timeout must be a whole number of ms up to 86400000, not ${JSON.stringify(v)}`);
        out.approvalTimeoutMs = Number(v);
        break;
      }
      case '--hide-denied':
        out.hideDenied = true;
        break;
      case '--upstream-url':
        out.upstreamUrl = flagValue(argv, i++, a);
        break;
      case '--sandbox':
        out.sandbox ??= [];
        break;
      default: {
        const name = a.startsWith('--sandbox-') ? a.slice('--sandbox-'.length) : '';
        if (!SANDBOX_FLAGS.has(name)) throw new Error(`unknown option ${a}`);
        (out.sandbox ??= []).push(`--${name}`, flagValue(argv, i++, a));
      }
    }
  }
  const rest = argv.slice(i);
  if (rest.length > 0) [out.command, ...out.args] = rest;
  if ((out.policy === undefined) === (out.socket === undefined)) throw new Error('give one of --policy FILE or --socket PATH');
  if ((out.command === undefined) === (out.upstreamUrl === undefined)) throw new Error('give the upstream: -- COMMAND [ARGS...] or --upstream-url URL');
  if (out.upstreamUrl !== undefined && !/^https?:\/\//.test(out.upstreamUrl)) throw new Error('--upstream-url must be an http:// or https:// URL');
  if (out.authTokenFile !== undefined && out.socket === undefined) throw new Error('--auth-token-file needs --socket');
  if ((out.audit !== undefined || out.auditKeyFile !== undefined) && out.policy === undefined) throw new Error('--audit needs --policy (a server audits its own decisions)');
  if (out.agentId.length === 0) throw new Error('--agent-id must not be empty');
  if (out.sandbox !== null && out.command === undefined) throw new Error('--sandbox runs a COMMAND: it cannot confine an --upstream-url server');
  if (out.sandbox !== null) sandboxOptions(out.sandbox); // exec's checks, now
  return out;
}

/** The sandbox options exec's flags describe (its parser and checks; stdio is the proxy's). */
function sandboxOptions(flags: string[]): Omit<SandboxSpawnOptions, 'stdio' | 'cwd' | 'env'> {
  const parsed = parseExecArgs([...flags, '--', 'mcp-server']);
  if (parsed === 'help') throw new Error('--sandbox flags cannot ask for help');
  const { stdio: _stdio, cwd: _cwd, env: _env, ...options } = parsed.options;
  return options;
}

/** The environment the upstream command gets: ours, less guardkernel's own secrets. */
function upstreamEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && k !== 'GUARDKERNEL_AUDIT_KEY' && k !== 'GUARD_HMAC_SECRET' && k !== 'GUARD_WEBHOOK_SECRET') env[k] = v;
  }
  return env;
}

export function mcpCommand(argv: string[]): number {
  let parsed: McpArgs | 'help';
  try {
    parsed = parseMcpArgs(argv);
  } catch (err) {
    process.stderr.write(`guardkernel mcp: ${(err as Error).message}\n\n${MCP_USAGE}`);
    return 2;
  }
  if (parsed === 'help') {
    process.stdout.write(MCP_USAGE);
    return 0;
  }
  const args = parsed;
  let audit: AuditLog | undefined;
  const options: Partial<GuardMcpOptions> = {
    agentId: args.agentId,
    serverId: args.serverId,
    toolActions: args.toolActions,
    approvalTimeoutMs: args.approvalTimeoutMs,
    hideDenied: args.hideDenied,
    onLog: (line) => process.stderr.write(`guardkernel mcp: ${line}\n`),
  };
  try {
    if (args.policy !== undefined) {
      if (args.audit !== undefined) {
        let key: Buffer;
        if (args.auditKeyFile !== undefined) key = fs.readFileSync(args.auditKeyFile);
        else if (process.env.GUARDKERNEL_AUDIT_KEY) key = Buffer.from(process.env.GUARDKERNEL_AUDIT_KEY, 'base64');
        else throw new Error('--audit needs a key: --audit-key-file or GUARDKERNEL_AUDIT_KEY (base64)');
        audit = new AuditLog({ file: args.audit, key });
      }
      const policy = new PolicyEngine(fs.readFileSync(args.policy, 'utf8'), audit === undefined ? {} : { audit });
      options.gate = new Gate(audit === undefined ? { policy } : { policy, audit });
    } else {
      options.socket = args.socket;
      if (args.authTokenFile !== undefined) options.authToken = readAuthTokenFile(args.authTokenFile);
    }
  } catch (err) {
    process.stderr.write(`guardkernel mcp: ${(err as Error).message}\n`);
    return 2;
  }
  let upstream: McpUpstream;
  if (args.upstreamUrl !== undefined) upstream = { url: args.upstreamUrl };
  else if (args.sandbox !== null) upstream = { command: args.command as string, args: args.args, sandbox: sandboxOptions(args.sandbox) };
  else upstream = { command: args.command as string, args: args.args, env: upstreamEnv() };
  options.upstream = upstream;
  const finish = (code: number) => {
    try {
      audit?.close();
    } finally {
      process.exit(code);
    }
  };
  guardMcp(options as GuardMcpOptions).then(
    (proxy) => {
      const stop = () => void proxy.close().then((e) => finish(e.code));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      proxy.closed.then((e) => {
        if (e.code !== 0) process.stderr.write(`guardkernel mcp: ${e.reason}\n`);
        finish(e.code);
      });
    },
    (err: Error) => {
      const why = args.socket !== undefined && isConnectError(err) ? connectFailure(args.socket, err) : err.message;
      process.stderr.write(`guardkernel mcp: ${why}\n`);
      finish(1);
    },
  );
  return -1; // runs until either side goes away
}
