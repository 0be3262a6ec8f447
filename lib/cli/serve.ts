/**
 * `guardkernel serve`: the gate behind a Unix socket, with usable defaults.
 * No default secret exists: the HMAC secret comes from GUARD_HMAC_SECRET
 * (base64), or a key file generated once into the state directory (0600).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AuditLog, FileAuditAnchor, type AuditAnchor, type AuditAnchorState } from '../audit/log';
import { flagValue } from './args';
import type { ComplianceContext } from '../compliance/types';
import { RedisAuditAnchor } from '../fleet/audit-anchor';
import { FleetStore } from '../fleet/store';
import { Gate } from '../gate/gate';
import { GuardServer } from '../ipc/server';
import { Keyring, MAX_PERMIT_TTL_MS } from '../permits/keyring';
import { PolicyEngine } from '../policy/engine';

export const SERVE_USAGE = `Usage: guardkernel serve [options]

Runs the gate as a JSON-RPC 2.0 server on a Unix socket (one JSON value per line).

Options:
  --socket PATH           socket path (default $XDG_RUNTIME_DIR/guardkernel/core.sock, else <state-dir>/core.sock)
  --policy FILE           policy document, YAML or JSON, hot-reloaded on change (default: the bundled example policy)
  --state-dir DIR         where the generated secrets and the audit log live (default $XDG_STATE_HOME/guardkernel
                          or ~/.local/state/guardkernel), created with mode 0700
  --audit FILE            audit log file (default <state-dir>/audit.log)
  --audit-anchor FILE     also keep the audit log's head (seq and MAC) in FILE, outside the state dir, so a
                          rollback of log and head together is caught (audit verify --anchor-file FILE);
                          with --redis the head is also kept in Redis
  --auth-token-file FILE  require clients to call auth with the token in this file (at least 16 bytes)
                          (the operator role's token; the same as --operator-token-file)
  --operator-token-file FILE  the token of the operator role (mint permits, reload policy, write the
                          cache, quarantine, audit, approvals); with any token file, clients must call auth first
  --agent-token-file FILE the token of the agent role (gate_check, gate_check_batch, hash_car,
                          verify_permit, check_replay, ping, version, auth; approval_get and
                          approval_wait on its own requests)
  --operator-uid UID      peers with this uid (as the kernel reports it) are operators; repeatable.
                          Without token files, the server's own uid is operator and any other uid an agent
  --socket-mode MODE      socket file mode, octal (default 600)
  --audit-retention-days N  delete rotated audit files older than N days (each deletion is audited);
                          reported by compliance_report (default: delete nothing)
  --redis URL             fleet mode: share nonces, permit ids, rate budgets, quarantines, the policy version
                          and cache invalidations with every server on this Redis (redis:// or rediss://);
                          all servers of a fleet need the same permit secret (GUARD_HMAC_SECRET or hmac.key):
                          policy documents and quarantine records in Redis are signed with a key derived from it
  --redis-prefix P        namespace of the keys and events channel in Redis (default guardkernel:)
  --on-store-error MODE   when Redis cannot answer: deny (default, fail closed) or local (this server's
                          in-process stores decide; a store_unavailable event is audited)
  --approval-webhook URL  POST each new approval request and each resolution to URL (http or https) as
                          JSON, signed: header guardkernel-signature: t=<unix s>,v1=<hex HMAC-SHA256 of
                          "<t>.<body>">; retried with backoff; failures are counted and audited
  --approval-webhook-secret-file FILE  the webhook's signing secret (>= 32 bytes; default
                          GUARD_WEBHOOK_SECRET (base64) or <state-dir>/webhook.key, generated with mode 0600)
  --max-per-agent N       rate limit: N checks per agent per --rate-window-ms (default: no limit)
  --rate-window-ms MS     the rate limit window (default 60000)
  --nonce-ttl MS          how long request nonces are remembered, so a replay within it is refused (default
                          300000, 5 min)
  --permit-max-ttl MS     the longest lifetime a permit minted or accepted here may have (default: the
                          --nonce-ttl, so a permit never outlives the memory of the requests that used it)
  --help                  this text

Approvals: a rule with require_approval answers pending and opens an approval request (guardkernel
approvals list|show|approve|deny). Open requests and decisions are kept in <state-dir>/approvals.jsonl
(with --redis, in Redis) and survive a restart.
Secrets: the permit HMAC secret is GUARD_HMAC_SECRET (base64, >= 32 bytes) or <state-dir>/hmac.key,
generated on first start with mode 0600; the audit key is <state-dir>/audit.key, likewise.
SIGINT/SIGTERM: stop accepting, finish in-flight requests, flush the audit log, remove the socket, exit 0.
`;

export interface ServeArgs {
  socket?: string;
  policy?: string;
  stateDir?: string;
  audit?: string;
  auditAnchor?: string;
  authTokenFile?: string;
  operatorTokenFile?: string;
  agentTokenFile?: string;
  operatorUids?: number[];
  socketMode?: number;
  auditRetentionDays?: number;
  redis?: string;
  redisPrefix?: string;
  onStoreError?: 'deny' | 'local';
  maxPerAgent?: number;
  rateWindowMs?: number;
  permitMaxTtlMs?: number;
  nonceTtlMs?: number;
  approvalWebhook?: string;
  approvalWebhookSecretFile?: string;
}

/** The request-nonce window serve keeps by default (and so the longest permit it accepts by default), ms. */
const DEFAULT_NONCE_TTL_MS = 300_000;

function positiveInt(v: string, flag: string, max: number): number {
  if (!/^[1-9][0-9]*$/.test(v) || Number(v) > max) throw new Error(`${flag} must be a whole number from 1 to ${max}, not ${JSON.stringify(v)}`);
  return Number(v);
}

/** Parses serve's flags; throws an Error with a usage message for anything wrong. */
export function parseServeArgs(argv: string[]): ServeArgs | 'help' {
  const out: ServeArgs = {};
  const value = (i: number, flag: string) => flagValue(argv, i, flag);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case '--help':
      case '-h':
        return 'help';
      case '--socket':
        out.socket = value(i++, a);
        break;
      case '--policy':
        out.policy = value(i++, a);
        break;
      case '--state-dir':
        out.stateDir = value(i++, a);
        break;
      case '--audit':
        out.audit = value(i++, a);
        break;
      case '--audit-anchor':
        out.auditAnchor = value(i++, a);
        break;
      case '--auth-token-file':
        out.authTokenFile = value(i++, a);
        break;
      case '--operator-token-file':
        out.operatorTokenFile = value(i++, a);
        break;
      case '--agent-token-file':
        out.agentTokenFile = value(i++, a);
        break;
      case '--operator-uid': {
        const v = value(i++, a);
        if (!/^(0|[1-9][0-9]{0,9})$/.test(v) || Number(v) > 0xffffffff) throw new Error(`--operator-uid must be a uid (a whole number), not ${JSON.stringify(v)}`);
        (out.operatorUids ??= []).push(Number(v));
        break;
      }
      case '--audit-retention-days': {
        const v = value(i++, a);
        if (!/^[1-9][0-9]{0,5}$/.test(v)) throw new Error(`--audit-retention-days must be a whole number of days (1 to 999999), not ${JSON.stringify(v)}`);
        out.auditRetentionDays = Number(v);
        break;
      }
      case '--redis': {
        const v = value(i++, a);
        if (!/^rediss?:\/\//.test(v)) throw new Error(`--redis must be a redis:// or rediss:// URL, not ${JSON.stringify(v)}`);
        out.redis = v;
        break;
      }
      case '--redis-prefix':
        out.redisPrefix = value(i++, a);
        break;
      case '--on-store-error': {
        const v = value(i++, a);
        if (v !== 'deny' && v !== 'local') throw new Error(`--on-store-error must be deny or local, not ${JSON.stringify(v)}`);
        out.onStoreError = v;
        break;
      }
      case '--approval-webhook': {
        const v = value(i++, a);
        let url: URL | null = null;
        try {
          url = new URL(v);
        } catch {
          url = null;
        }
        if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:')) throw new Error(`--approval-webhook must be an http:// or https:// URL, not ${JSON.stringify(v)}`);
        out.approvalWebhook = v;
        break;
      }
      case '--approval-webhook-secret-file':
        out.approvalWebhookSecretFile = value(i++, a);
        break;
      case '--max-per-agent':
        out.maxPerAgent = positiveInt(value(i++, a), a, 1_000_000);
        break;
      case '--rate-window-ms':
        out.rateWindowMs = positiveInt(value(i++, a), a, 86_400_000);
        break;
      case '--permit-max-ttl':
        out.permitMaxTtlMs = positiveInt(value(i++, a), a, MAX_PERMIT_TTL_MS);
        if (out.permitMaxTtlMs < 1000) throw new Error(`--permit-max-ttl must be at least 1000 (ms), not ${out.permitMaxTtlMs}`);
        break;
      case '--nonce-ttl':
        out.nonceTtlMs = positiveInt(value(i++, a), a, MAX_PERMIT_TTL_MS);
        if (out.nonceTtlMs < 1000) throw new Error(`--nonce-ttl must be at least 1000 (ms), not ${out.nonceTtlMs}`);
        break;
      case '--socket-mode': {
        const v = value(i++, a);
        if (!/^[0-7]{3,4}$/.test(v)) throw new Error(`--socket-mode must be an octal mode like 600, not ${JSON.stringify(v)}`);
        out.socketMode = parseInt(v, 8);
        break;
      }
      default:
        throw new Error(`unknown option ${JSON.stringify(a)}`);
    }
  }
  if (out.redisPrefix !== undefined && out.redis === undefined) throw new Error('--redis-prefix needs --redis');
  if (out.onStoreError !== undefined && out.redis === undefined) throw new Error('--on-store-error needs --redis');
  if (out.approvalWebhookSecretFile !== undefined && out.approvalWebhook === undefined) throw new Error('--approval-webhook-secret-file needs --approval-webhook');
  if (out.rateWindowMs !== undefined && out.maxPerAgent === undefined) throw new Error('--rate-window-ms needs --max-per-agent');
  return out;
}

/** A secret file: read it (refusing one others can read), or create it with mode 0600. */
function secretFile(file: string, bytes = 32): { secret: Buffer; generated: boolean } {
  if (fs.existsSync(file)) {
    const mode = fs.statSync(file).mode & 0o777;
    if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
      throw new Error(`${file} is readable by others (mode ${mode.toString(8)}); run: chmod 600 ${file}`);
    }
    const secret = fs.readFileSync(file);
    if (secret.length < 32) throw new Error(`${file} holds ${secret.length} bytes; at least 32 are required`);
    return { secret, generated: false };
  }
  const secret = crypto.randomBytes(bytes);
  fs.writeFileSync(file, secret, { mode: 0o600, flag: 'wx' });
  return { secret, generated: true };
}

export function defaultStateDir(): string {
  if (process.env.GUARDKERNEL_STATE_DIR) return process.env.GUARDKERNEL_STATE_DIR;
  const base = process.env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state');
  return path.join(base, 'guardkernel');
}

/** Where clients look for the server when no --socket is given: serve's own default. */
export function defaultSocket(): string {
  const runtime = process.env.XDG_RUNTIME_DIR;
  return runtime ? path.join(runtime, 'guardkernel', 'core.sock') : path.join(defaultStateDir(), 'core.sock');
}

export interface RunningServer {
  server: GuardServer;
  stop(): Promise<void>;
  paths: { socket: string; stateDir: string; audit: string; secret: string; auditKey: string; policy: string };
}

export async function startServe(args: ServeArgs, log: (line: string) => void): Promise<RunningServer> {
  const stateDir = path.resolve(args.stateDir ?? defaultStateDir());
  fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const runtime = process.env.XDG_RUNTIME_DIR;
  let socket = args.socket;
  if (socket === undefined) {
    if (runtime) {
      fs.mkdirSync(path.join(runtime, 'guardkernel'), { recursive: true, mode: 0o700 });
      socket = path.join(runtime, 'guardkernel', 'core.sock');
    } else {
      socket = path.join(stateDir, 'core.sock');
    }
  }
  let secret: Buffer;
  let secretSource: string;
  let secretOrigin: { source: 'generated' | 'supplied'; file?: string };
  if (process.env.GUARD_HMAC_SECRET) {
    secret = Buffer.from(process.env.GUARD_HMAC_SECRET, 'base64');
    if (secret.length < 32) throw new Error('GUARD_HMAC_SECRET must decode to at least 32 bytes');
    secretSource = 'GUARD_HMAC_SECRET';
    secretOrigin = { source: 'supplied' };
  } else {
    const file = path.join(stateDir, 'hmac.key');
    const s = secretFile(file);
    secret = s.secret;
    secretSource = `${file}${s.generated ? ' (generated now)' : ''}`;
    // A file found at start was generated by an earlier start or put there by the operator.
    secretOrigin = { source: s.generated ? 'generated' : 'supplied', file };
  }
  const auditKeyFile = path.join(stateDir, 'audit.key');
  const auditKey = secretFile(auditKeyFile).secret;
  const auditPath = path.resolve(args.audit ?? path.join(stateDir, 'audit.log'));
  const policyPath = args.policy ? path.resolve(args.policy) : path.join(__dirname, '..', '..', 'examples', 'policy.yaml');
  if (args.authTokenFile !== undefined && args.operatorTokenFile !== undefined) throw new Error('--auth-token-file and --operator-token-file name the same token: give one');
  const operatorToken = readToken(args.operatorTokenFile ?? args.authTokenFile);
  const agentToken = readToken(args.agentTokenFile);
  if (agentToken !== undefined && operatorToken !== undefined && Buffer.compare(agentToken, operatorToken) === 0) throw new Error('the agent and operator tokens must differ');
  const authToken = operatorToken ?? agentToken;

  // The fleet store is made here (not by the Gate) so the audit log can keep its head in Redis too.
  const signingKey = Buffer.from(crypto.hkdfSync('sha256', secret, Buffer.alloc(0), 'guardkernel fleet signing key v1', 32));
  const fleet = args.redis === undefined ? null : FleetStore.redis({ redis: args.redis, prefix: args.redisPrefix, signingKey });
  const anchors: AuditAnchor[] = [];
  if (args.auditAnchor !== undefined) anchors.push(new FileAuditAnchor(path.resolve(args.auditAnchor)));
  if (fleet !== null) anchors.push(new RedisAuditAnchor(fleet, `${os.hostname()}:${auditPath}`));
  const anchor = anchors.length === 0 ? undefined : anchors.length === 1 ? anchors[0] : new AnchorPair(anchors[0], anchors[1]);
  const audit = new AuditLog({ file: auditPath, key: auditKey, retentionDays: args.auditRetentionDays, anchor });
  const policy = new PolicyEngine(fs.readFileSync(policyPath, 'utf8'), { audit });
  // Reload outcomes of the watched file, on the console too (the audit log records them as well).
  const toStderr = (line: string) => process.stderr.write(line.replace(/[\u0000-\u001f\u007f-\u009f\u2028-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`) + '\n');
  policy.on('reloaded', (version: number, previous: number) => toStderr(`guardkernel: policy reloaded: version ${version} (was ${previous})`));
  policy.on('reload_failed', (err: Error, active: number) => toStderr(`guardkernel: policy file ${policyPath} not loaded: ${err.message}; still serving version ${active}`));
  const stopWatching = args.policy ? policy.watch(policyPath) : () => {};
  // Permits live no longer than nonces are remembered (the report's replay-window check).
  const nonceTtlMs = args.nonceTtlMs ?? DEFAULT_NONCE_TTL_MS;
  const permitMaxTtlMs = args.permitMaxTtlMs ?? nonceTtlMs;
  const keyring = new Keyring({ keys: { k1: secret }, active: 'k1', maxTtlMs: permitMaxTtlMs });
  if (permitMaxTtlMs > nonceTtlMs) log(`guardkernel: WARNING --permit-max-ttl ${permitMaxTtlMs} ms is longer than --nonce-ttl ${nonceTtlMs} ms: a request carrying a still-valid permit can be replayed once its nonce is forgotten`);
  const velocity = args.maxPerAgent === undefined ? undefined : { maxPerAgent: args.maxPerAgent, windowMs: args.rateWindowMs ?? 60_000 };
  // The fleet signing key (above) comes from the permit secret, which every server of
  // a fleet shares anyway (a permit issued by one must verify on the others).
  let webhook: { url: string; secret: Buffer } | undefined;
  let webhookSecretSource = '';
  if (args.approvalWebhook !== undefined) {
    if (args.approvalWebhookSecretFile !== undefined) {
      webhook = { url: args.approvalWebhook, secret: secretFile(path.resolve(args.approvalWebhookSecretFile)).secret };
      webhookSecretSource = path.resolve(args.approvalWebhookSecretFile);
    } else if (process.env.GUARD_WEBHOOK_SECRET) {
      webhook = { url: args.approvalWebhook, secret: Buffer.from(process.env.GUARD_WEBHOOK_SECRET, 'base64') };
      if (webhook.secret.length < 32) throw new Error('GUARD_WEBHOOK_SECRET must decode to at least 32 bytes');
      webhookSecretSource = 'GUARD_WEBHOOK_SECRET';
    } else {
      const file = path.join(stateDir, 'webhook.key');
      const s = secretFile(file);
      webhook = { url: args.approvalWebhook, secret: s.secret };
      webhookSecretSource = `${file}${s.generated ? ' (generated now)' : ''}`;
    }
  }
  // Approval requests: in Redis for a fleet, else journaled in the state directory (they survive a restart).
  const approvalsFile = path.join(stateDir, 'approvals.jsonl');
  const gate = new Gate({ policy, keyring, audit, nonceTtlMs, velocity, store: fleet ?? undefined, onStoreError: args.onStoreError, approvals: fleet === null ? { journal: approvalsFile } : {}, webhook });
  if (gate.store !== null) {
    try {
      await gate.ready(5000);
    } catch (err) {
      // Keep starting: ioredis reconnects by itself, and until then checks fail closed (or fall back).
      log(`guardkernel: WARNING fleet store not ready: ${(err as Error).message}`);
    }
  }
  const socketMode = args.socketMode ?? 0o600;
  const compliance: ComplianceContext = {
    gate,
    server: { socketPath: socket, socketMode, authEnabled: authToken !== undefined, secretSource: secretOrigin.source, secretFile: secretOrigin.file },
    audit: { log: audit, file: auditPath, key: auditKey, retentionDays: args.auditRetentionDays },
    // serve gates requests; it holds no device buffers to encrypt.
    deviceMemory: false,
  };
  const server = new GuardServer({
    socketPath: socket,
    socketMode,
    operatorToken,
    agentToken,
    operatorUids: args.operatorUids,
    context: { gate, metrics: {}, auditFile: auditPath, auditKey, auditAnchor: anchor, policyFile: args.policy ? policyPath : undefined, readFile: (f) => fs.readFileSync(f, 'utf8'), compliance },
  });
  await server.listen();
  log(`guardkernel: listening on ${socket} (mode ${(args.socketMode ?? 0o600).toString(8)})`);
  log(`guardkernel: permit secret from ${secretSource}`);
  log(`guardkernel: audit log ${auditPath} (key ${auditKeyFile})${args.auditAnchor ? `, head anchored in ${path.resolve(args.auditAnchor)}` : ''}${fleet !== null ? ' and in Redis' : ''}`);
  if (gate.store !== null) log(`guardkernel: fleet store redis ${args.redis!.replace(/\/\/[^@/]*@/, '//***@')} (prefix ${gate.store.prefix}, on store error: ${args.onStoreError ?? 'deny'})`);
  log(`guardkernel: policy ${policyPath} (version ${policy.version})${authToken ? '; authentication required' : ''}`);
  log(`guardkernel: approval requests ${fleet === null ? `in ${approvalsFile}` : 'in Redis'}${webhook !== undefined ? `; webhook ${new URL(webhook.url).origin} (secret from ${webhookSecretSource})` : ''}`);
  return {
    server,
    paths: { socket, stateDir, audit: auditPath, secret: secretSource, auditKey: auditKeyFile, policy: policyPath },
    async stop() {
      stopWatching();
      await server.close();
      await gate.close();
      audit.close();
      await audit.syncAnchor(); // the last head reaches the anchor (Redis is asynchronous)
      await fleet?.close();
    },
  };
}

/** A token file's text (trimmed), at least 16 bytes; undefined without a file. */
function readToken(file: string | undefined): Buffer | undefined {
  if (file === undefined) return undefined;
  const token = Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'utf8');
  if (token.length < 16) throw new Error(`${file}: the token must be at least 16 bytes`);
  return token;
}

/** Two anchors kept together (a file and Redis): written to both; read as the one further ahead. */
class AnchorPair implements AuditAnchor {
  constructor(
    private readonly a: AuditAnchor,
    private readonly b: AuditAnchor,
  ) {}

  async write(state: AuditAnchorState): Promise<void> {
    await Promise.all([this.a.write(state), this.b.write(state)]);
  }

  async read(): Promise<AuditAnchorState | null> {
    const [x, y] = await Promise.all([this.a.read(), this.b.read()]);
    if (x === null) return y;
    if (y === null) return x;
    return y.seq > x.seq ? y : x;
  }
}
