/**
 * `guardkernel approvals`: an operator lists, reads, approves and denies the
 * approval requests of a running server (the approval_* methods over its
 * socket). The approver is whoever this connection authenticates as; the
 * server takes it from the connection, never from us.
 */
import { connectFailure } from './no-server';
import { flagValue, readAuthTokenFile } from './args';
import { APPROVAL_ID_PATTERN, GuardClient, RpcCallError, type ApprovalRequest, type ApprovalStatus } from '../ipc/client';
import { defaultSocket } from './serve';

const STATUSES: readonly ApprovalStatus[] = ['pending', 'granted', 'denied', 'expired', 'used'];

export const APPROVALS_USAGE = `Usage: guardkernel approvals <command> [options]

Human approvals on a running server. A gate check whose policy rule has require_approval answers
"pending" and opens a request; an operator approves it (the same action by the same agent is then
allowed once, before the request expires) or denies it. The server records the approver from the
connection's credential, and refuses an approver who is the requesting agent's own credential.

Commands:
  list [--status STATUS] [--json]   the requests: id, status, agent, action, rule, expiry, CAR hash
  show ID [--json]                  one request, with the CAR the agent asked for (fields the policy
                                    redacts appear as sha256: digests)
  approve ID [--reason TEXT]        approve the request (a grant once the rule's min_approvals
                                    distinct approvers have approved); prints its status after
  deny ID [--reason TEXT]           deny the request; prints its status after

Options:
  --status STATUS         only requests in this status: ${STATUSES.join(', ')}
  --json                  print the server's answer as JSON
  --reason TEXT           why, recorded with the decision
  --socket PATH           the server's socket (default $XDG_RUNTIME_DIR/guardkernel/core.sock, else
                          <state-dir>/core.sock, as guardkernel serve)
  --auth-token-file FILE  authenticate first with the token in FILE (the operator's token for a server
                          started with --operator-token-file or --auth-token-file)
  --help                  this text

ID is the request's id as the pending decision gave it (approval_id): apr_ and 22 characters.

Exit status: 0 when done; 1 when the server refused (unknown id, request no longer pending,
forbidden, authentication refused), its message on standard error; 2 on bad usage or when the
server cannot be reached.
`;

export type ApprovalsCommand = 'list' | 'show' | 'approve' | 'deny';

export interface ApprovalsArgs {
  command: ApprovalsCommand;
  /** show, approve, deny. */
  id?: string;
  /** list. */
  status?: ApprovalStatus;
  /** list, show. */
  json: boolean;
  /** approve, deny. */
  reason?: string;
  socket?: string;
  authTokenFile?: string;
}

/** The options each command takes besides --socket, --auth-token-file and --help. */
const COMMAND_FLAGS: Record<ApprovalsCommand, readonly string[]> = {
  list: ['--status', '--json'],
  show: ['--json'],
  approve: ['--reason'],
  deny: ['--reason'],
};

/** Parses approvals' arguments; throws an Error naming the problem. */
export function parseApprovalsArgs(argv: string[]): ApprovalsArgs | 'help' {
  if (argv.some((a) => a === '--help' || a === '-h') || argv[0] === 'help') return 'help';
  const [command, ...rest] = argv;
  if (command === undefined) throw new Error('missing command (list, show, approve or deny)');
  if (!Object.hasOwn(COMMAND_FLAGS, command)) throw new Error(`unknown command ${JSON.stringify(command)} (list, show, approve or deny)`);
  const cmd = command as ApprovalsCommand;
  const out: ApprovalsArgs = { command: cmd, json: false };
  const positional: string[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (!a.startsWith('-') || a === '-') {
      positional.push(a);
      continue;
    }
    if (!['--socket', '--auth-token-file', ...COMMAND_FLAGS[cmd]].includes(a)) {
      const known = Object.values(COMMAND_FLAGS).some((flags) => flags.includes(a));
      throw new Error(known ? `${a} is not an option of ${cmd}` : `unknown option ${JSON.stringify(a)}`);
    }
    if (seen.has(a)) throw new Error(`${a} given twice`);
    seen.add(a);
    switch (a) {
      case '--json':
        out.json = true;
        break;
      case '--status': {
        const s = flagValue(rest, i++, a);
        if (!(STATUSES as readonly string[]).includes(s)) throw new Error(`--status must be one of ${STATUSES.join(', ')}, not ${JSON.stringify(s)}`);
        out.status = s as ApprovalStatus;
        break;
      }
      case '--reason': {
        const r = flagValue(rest, i++, a);
        if (r.trim() === '') throw new Error('--reason needs some text');
        out.reason = r;
        break;
      }
      case '--socket':
        out.socket = flagValue(rest, i++, a);
        break;
      case '--auth-token-file':
        out.authTokenFile = flagValue(rest, i++, a);
        break;
    }
  }
  if (cmd === 'list') {
    if (positional.length > 0) throw new Error(`list takes no arguments, got ${JSON.stringify(positional[0])}`);
    return out;
  }
  if (positional.length === 0) throw new Error(`${cmd} needs the request's ID`);
  if (positional.length > 1) throw new Error(`${cmd} takes one ID, got ${positional.length} arguments`);
  const id = positional[0];
  if (!APPROVAL_ID_PATTERN.test(id)) throw new Error(`${JSON.stringify(id.slice(0, 64))} is not an approval id (apr_ and 22 characters of A-Z a-z 0-9 _ -)`);
  out.id = id;
  return out;
}

/** The socket `guardkernel serve` listens on by default (as `report` finds it). */
// Text an agent chose (its id, action type, CAR fields) reaches the operator's
// terminal: control, format and bidirectional characters are shown escaped so
// that none can recolour, hide or reorder what the operator approves.
// DEL and C1 controls, soft hyphen, bidi marks and isolates, zero-width and other invisible format characters:
const INVISIBLE = String.raw`\u007f-\u009f\u00ad\u061c\u115f\u1160\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\ufff9-\ufffb`;
const UNSAFE_CHARS = new RegExp(String.raw`[\u0000-\u001f${INVISIBLE}]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]`, 'g');
// JSON.stringify escapes C0 controls and lone surrogates itself (and its own line breaks must stay).
const UNSAFE_IN_JSON = new RegExp(`[${INVISIBLE}]`, 'g');
const escapeChar = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/** A value as one line of plain text with every unsafe character escaped. */
export function safeText(value: unknown): string {
  return String(value).replace(UNSAFE_CHARS, escapeChar);
}

/** Indented JSON text (still valid JSON, of the same value) with the characters JSON.stringify leaves raw escaped too. */
export function safeJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(UNSAFE_IN_JSON, escapeChar);
}

/** A duration for humans: 42s, 14m05s, 3h12m, 2d04h. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const pad = (n: number) => String(n).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86400)}d${pad(Math.floor((s % 86400) / 3600))}h`;
}

function cell(value: unknown, max: number): string {
  const text = safeText(value ?? '-');
  return text.length > max ? text.slice(0, max - 1) + '…' : text;
}

function expiresIn(r: ApprovalRequest, now: number): string {
  if (r.status === 'used' || r.status === 'expired' || typeof r.expires_at !== 'number' || r.expires_at <= now) return '-';
  return formatDuration(r.expires_at - now);
}

function shortHash(h: unknown): string {
  return typeof h === 'string' && h.startsWith('sha256:') ? h.slice(0, 'sha256:'.length + 12) : cell(h, 19);
}

/** The table `approvals list` prints. */
export function formatApprovalTable(approvals: ApprovalRequest[], now: number, status?: ApprovalStatus): string {
  if (approvals.length === 0) return `no ${status === undefined ? '' : status + ' '}approval requests\n`;
  const header = ['ID', 'STATUS', 'AGENT', 'ACTION', 'RULE', 'EXPIRES IN', 'CAR HASH'];
  const rows = approvals.map((r) => [cell(r.id, 26), cell(r.status, 8), cell(r.agent_id, 32), cell(r.action_type, 32), cell(r.rule, 32), expiresIn(r, now), shortHash(r.car_hash)]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cols: string[]) => cols.map((c, i) => (i === cols.length - 1 ? c : c.padEnd(widths[i]))).join('  ') + '\n';
  return line(header) + rows.map(line).join('');
}

function when(ms: unknown, now: number): string {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '-';
  const iso = new Date(ms).toISOString();
  return ms >= now ? `${iso} (in ${formatDuration(ms - now)})` : `${iso} (${formatDuration(now - ms)} ago)`;
}

/** What `approvals show` prints. */
export function formatApproval(r: ApprovalRequest, now: number): string {
  const votes = Array.isArray(r.approvals) ? r.approvals : [];
  const rows: Array<[string, string]> = [
    ['id', safeText(r.id)],
    ['status', safeText(r.status)],
    ['agent', safeText(r.agent_id)],
    ['action', safeText(r.action_type)],
    ['rule', safeText(r.rule)],
    ['policy version', safeText(r.policy_version)],
    ['session', r.session_id == null ? '-' : safeText(r.session_id)],
    ['requester', r.requester == null ? '-' : safeText(r.requester)],
    ['requested', when(r.requested_at, now)],
    ['expires', when(r.expires_at, now)],
    ['approvers', r.approvers == null ? 'any operator' : r.approvers.map(safeText).join(', ')],
    ['approvals', `${votes.length} of ${safeText(r.min_approvals)} needed`],
    ...votes.map((v): [string, string] => ['', `${safeText(v.approver)} at ${when(v.at, now)}${v.reason == null ? '' : `: ${safeText(v.reason)}`}`]),
    ['decided by', r.decided_by == null ? '-' : `${safeText(r.decided_by)} at ${when(r.decided_at, now)}`],
    ['reason', r.reason == null ? '-' : safeText(r.reason)],
    ['used', r.used_at == null ? '-' : when(r.used_at, now)],
    ['car hash', safeText(r.car_hash)],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  const head = rows.map(([k, v]) => `${k.padEnd(width)}  ${v}\n`).join('');
  return `${head}car (redacted fields are sha256: digests of their value):\n${safeJson(r.car)}\n`;
}

/** The line approve and deny print: the request's status after the vote. */
export function formatOutcome(r: ApprovalRequest): string {
  const id = safeText(r.id);
  if (r.status === 'pending') {
    const votes = Array.isArray(r.approvals) ? r.approvals.length : 0;
    return `${id}: pending (${votes} of ${safeText(r.min_approvals)} approvals)\n`;
  }
  return `${id}: ${safeText(r.status)}${r.decided_by == null ? '' : ` by ${safeText(r.decided_by)}`}\n`;
}


// JSON-RPC's own errors: the request, not the server's decision, was wrong.
const PROTOCOL_ERRORS = new Set([-32700, -32600, -32601, -32602, -32603]);

/** Runs one approvals command against the server; resolves to the exit status. */
export async function runApprovals(args: ApprovalsArgs, io: { stdout: (s: string) => void; stderr: (s: string) => void }, now: () => number = Date.now): Promise<number> {
  const fail = (code: number, message: string) => {
    io.stderr(`guardkernel approvals: ${message}\n`);
    return code;
  };
  const socket = args.socket ?? defaultSocket();
  let token: string | undefined;
  if (args.authTokenFile !== undefined) {
    try {
      token = readAuthTokenFile(args.authTokenFile);
    } catch (err) {
      return fail(2, (err as Error).message);
    }
  }
  let client: GuardClient;
  try {
    client = await GuardClient.connect(socket);
  } catch (err) {
    return fail(2, connectFailure(socket, err));
  }
  const what = args.id === undefined ? args.command : `${args.command} ${args.id}`;
  try {
    if (token !== undefined) await client.auth(token);
    switch (args.command) {
      case 'list': {
        const { approvals } = await client.approvalList(args.status);
        if (!Array.isArray(approvals)) return fail(2, 'the server answered approval_list without an approvals list');
        io.stdout(args.json ? safeJson({ approvals }) + '\n' : formatApprovalTable(approvals, now(), args.status));
        return 0;
      }
      case 'show': {
        const r = await client.approvalGet(args.id!);
        io.stdout(args.json ? safeJson(r) + '\n' : formatApproval(r, now()));
        return 0;
      }
      case 'approve':
      case 'deny': {
        const r = args.command === 'approve' ? await client.approvalApprove(args.id!, args.reason) : await client.approvalDeny(args.id!, args.reason);
        io.stdout(formatOutcome(r));
        return 0;
      }
    }
  } catch (err) {
    if (err instanceof RpcCallError) {
      const code = (err.data as { code?: unknown } | undefined)?.code;
      const tag = typeof code === 'string' ? ` (${safeText(code)})` : '';
      if (err.rpcCode === -32601) return fail(2, `${what}: the server at ${socket} does not know approval_${args.command === 'show' ? 'get' : args.command} (${safeText(err.message)}); is it older than this command?`);
      if (PROTOCOL_ERRORS.has(err.rpcCode)) return fail(2, `${what}: ${safeText(err.message)}${tag}`);
      const hint = code === 'ERR_UNAUTHORIZED' ? '; pass --auth-token-file with the operator token' : '';
      return fail(1, `${what}: ${safeText(err.message)}${tag}${hint}`);
    }
    const message = err instanceof Error ? err.message : String(err);
    if (message === 'connection closed') return fail(2, `${what}: the server at ${socket} closed the connection before answering`);
    return fail(2, `${what}: ${safeText(message)}`);
  } finally {
    client.close();
  }
}

/** The command: parses, runs, sets the exit status. Returns at once for help and bad usage, -1 while running. */
export function approvalsCommand(argv: string[]): number {
  let args: ReturnType<typeof parseApprovalsArgs>;
  try {
    args = parseApprovalsArgs(argv);
  } catch (err) {
    process.stderr.write(`guardkernel approvals: ${(err as Error).message}\n\n${APPROVALS_USAGE}`);
    return 2;
  }
  if (args === 'help') {
    process.stdout.write(APPROVALS_USAGE);
    return 0;
  }
  runApprovals(args, { stdout: (s) => process.stdout.write(s), stderr: (s) => process.stderr.write(s) }).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.stderr.write(`guardkernel approvals: ${(err as Error).message}\n`);
      process.exitCode = 2;
    },
  );
  return -1;
}
