/**
 * The IPC methods of the contract, by name, over one Gate and its parts.
 * Params are snake_case by name; each method declares them, so a missing or
 * ill-typed field is -32602 naming it.
 */
import { AuditLog, type AuditAnchor, type AuditAnchorState } from '../audit/log';
import { carHash, isCarHash } from '../canonical/car';
import { ComplianceReporter } from '../compliance/reporter';
import type { ComplianceContext } from '../compliance/types';
import { ErrorCodes, GuardError } from '../errors';
import type { Gate } from '../gate/gate';
import { backends } from '../native/loader';
import { VERSION } from '../version';
import type { MethodSpec } from './jsonrpc';
import { RawJson, RpcErrors, RpcFault } from './jsonrpc';
import { decisionJson } from './decision-json';
import type { ApprovalRequest } from '../gate/approvals/types';
import { MAX_WAIT_MS } from '../gate/approvals/book';

export interface ServiceContext {
  gate: Gate;
  /** The audit log's file and key, for audit_verify. */
  auditFile?: string;
  auditKey?: Uint8Array;
  /** Where the log's head is also kept (serve --audit-anchor, or Redis in fleet mode): audit_verify checks the log against it. */
  auditAnchor?: AuditAnchor;
  /** Counters kept by the server. */
  metrics: Record<string, number>;
  /** Policy file the server watches, if any (policy_reload with no params reads it). */
  policyFile?: string;
  readFile?: (file: string) => string;
  /** What compliance_report inspects: the server's live objects and settings (guardkernel serve fills it in). */
  compliance?: ComplianceContext;
  /**
   * The client of the call being answered (set by the server just before a
   * handler runs; handlers read it synchronously): request nonces count
   * against its share of the nonce store.
   */
  client?: string;
  /** The caller's credential (`token:<role>`, else `uid:N`, else `connection:N`): a gate check's requester, an approval's approver. Set with client. */
  identity?: string;
  /** The caller's role. Set with client. */
  role?: 'agent' | 'operator';
  /**
   * Lets the reply to this call come later than the replies after it (an
   * approval_wait must not hold up the connection's other calls); false when
   * the connection or server already has as many waits as it may. Set with client.
   */
  detach?: () => boolean;
}

function needApprovals(ctx: ServiceContext) {
  if (ctx.gate.approvals === null) throw new GuardError(ErrorCodes.INVALID_ARGUMENT, 'Approvals are disabled on this server');
  return ctx.gate.approvals;
}

/**
 * The agent role may read and wait on the requests its own credential made;
 * any other is refused (audited), as an operator method would be.
 */
function checkOwner(ctx: ServiceContext, r: ApprovalRequest, method: string): ApprovalRequest {
  if (ctx.role === 'operator' || (r.requester !== null && r.requester === ctx.identity)) return r;
  ctx.gate.audit?.append('access_denied', 'warning', { method, approval_id: r.id, client: ctx.client ?? null, role: ctx.role ?? null, why: 'not the credential that made the request' });
  throw new GuardError(ErrorCodes.FORBIDDEN, `Forbidden: ${method} on a request another credential made needs the operator role`);
}

/** An approve or deny over the socket: the approver is the caller's credential; a refused vote is audited. */
function vote(ctx: ServiceContext, method: 'approve' | 'deny', p: Record<string, unknown>): Promise<ApprovalRequest> {
  const book = needApprovals(ctx);
  const approver = ctx.identity ?? 'operator';
  const run = async () => {
    try {
      return await book[method](p.id as string, { approver, reason: p.reason as string | undefined });
    } catch (err) {
      if (err instanceof GuardError && err.code === ErrorCodes.FORBIDDEN) {
        ctx.gate.audit?.append('approval_refused', 'warning', { approval_id: p.id, approver, op: method, why: err.message });
      }
      throw err;
    }
  };
  return run();
}

function hashFrom(p: Record<string, unknown>): string {
  if (p.car !== undefined && p.car_hash !== undefined) throw new RpcFault(RpcErrors.INVALID_PARAMS, 'Invalid params: give car or car_hash, not both', { field: 'car_hash' });
  if (p.car !== undefined) return carHash(p.car as Record<string, unknown>);
  if (!isCarHash(p.car_hash)) throw new RpcFault(RpcErrors.INVALID_PARAMS, 'Invalid params: car or car_hash ("sha256:" + 64 hex) is required', { field: 'car_hash' });
  return p.car_hash;
}

function needKeyring(ctx: ServiceContext) {
  if (ctx.gate.keyring === undefined) throw new GuardError(ErrorCodes.PERMIT_INVALID, 'No keyring is configured on this server');
  return ctx.gate.keyring;
}

function needCache(ctx: ServiceContext) {
  if (ctx.gate.cache === null) throw new GuardError(ErrorCodes.INVALID_ARGUMENT, 'The decision cache is disabled on this server');
  return ctx.gate.cache;
}

/**
 * Fleet mode: the reply waits until the change is in Redis (every server then
 * applies it), and says so in `fleet_synced`; false means it applies here and
 * is queued until Redis is back.
 */
function fleetSynced<T extends object>(ctx: ServiceContext, record: T): T | Promise<T & { fleet_synced: boolean }> {
  if (!ctx.gate.quarantine.fleet) return record;
  return ctx.gate.quarantine.sync().then(
    () => ({ ...record, fleet_synced: true }),
    () => ({ ...record, fleet_synced: false }),
  );
}

const carOrHash = { car: { type: 'object' }, car_hash: { type: 'string' } } as const;

export const SERVICE_METHODS: Readonly<Record<string, MethodSpec<ServiceContext>>> = Object.freeze({
  ping: { handler: () => 'pong' },
  version: { handler: () => ({ version: VERSION, protocol: '2.0', backends: backends() }) },
  hash_car: { params: { car: { type: 'object', required: true } }, handler: (p) => ({ car_hash: carHash(p.car as Record<string, unknown>) }) },
  cache_get: {
    params: { car_hash: { type: 'string', required: true } },
    handler: (p, ctx) => {
      const e = needCache(ctx).get(p.car_hash as string, ctx.gate.policy.version);
      return e === undefined ? { hit: false } : { hit: true, decision: e.decision, reason: e.reason, policy_version: e.policyVersion, expires_at: e.expiresAt };
    },
  },
  cache_put: {
    params: { car_hash: { type: 'string', required: true }, decision: { type: 'string', required: true }, ttl_ms: { type: 'integer' }, reason: { type: 'string' } },
    handler: (p, ctx) => {
      const cache = needCache(ctx);
      const entry = { decision: p.decision as 'allow', reason: p.reason as string | undefined, policyVersion: ctx.gate.policy.version, ttlMs: p.ttl_ms as number | undefined };
      cache.checkPut(p.car_hash as string, entry); // refuse bad input before the record says it happened
      // Audit first: a put whose record the log refuses is not made.
      ctx.gate.audit?.append('cache_changed', 'info', { op: 'put', via: 'ipc', car_hash: p.car_hash, decision: entry.decision, policy_version: entry.policyVersion, ttl_ms: entry.ttlMs ?? null });
      cache.put(p.car_hash as string, entry);
      return { ok: true };
    },
  },
  cache_invalidate: {
    params: { car_hash: { type: 'string' } },
    handler: (p, ctx) => {
      const cache = needCache(ctx);
      if (p.car_hash !== undefined && !isCarHash(p.car_hash)) throw new RpcFault(RpcErrors.INVALID_PARAMS, 'Invalid params: car_hash must be "sha256:" + 64 hex', { field: 'car_hash' });
      // Audit first: an invalidation whose record the log refuses is not made.
      ctx.gate.audit?.append('cache_changed', 'info', { op: 'invalidate', via: 'ipc', car_hash: p.car_hash ?? null });
      // Fleet mode: every server on the Redis prefix drops it too.
      if (ctx.gate.store !== null) return ctx.gate.invalidateCache(p.car_hash as string | undefined).then((removed) => ({ removed }));
      return { removed: p.car_hash === undefined ? cache.clear() : cache.invalidate(p.car_hash as string) ? 1 : 0 };
    },
  },
  cache_stats: { handler: (_p, ctx) => needCache(ctx).stats() },
  create_permit: {
    params: { ...carOrHash, agent_id: { type: 'string', required: true }, ttl_ms: { type: 'integer', required: true }, use: { type: 'string' } },
    handler: (p, ctx) => {
      const carHash = hashFrom(p);
      const r = needKeyring(ctx).issue({ carHash, agentId: p.agent_id as string, ttlMs: p.ttl_ms as number, use: p.use as 'once' | undefined });
      // A permit is a bearer token that exists once it is handed out: it is
      // handed out only after its record is accepted (else it is dropped unseen).
      ctx.gate.audit?.append('permit_issued', 'info', { via: 'ipc', jti: r.jti, agent_id: p.agent_id, car_hash: carHash, use: p.use ?? 'once', expires_at: r.expiresAt });
      return { permit: r.permit, jti: r.jti, expires_at: r.expiresAt };
    },
  },
  verify_permit: {
    params: { permit: { type: 'string', required: true }, ...carOrHash },
    handler: (p, ctx) => {
      const r = needKeyring(ctx).verify(p.permit as string, { carHash: hashFrom(p), consume: false });
      return r.valid ? { valid: true, claims: r.claims } : { valid: false, reason: r.reason };
    },
  },
  check_replay: {
    params: { nonce: { type: 'string', required: true }, ttl_ms: { type: 'integer', required: true } },
    handler: (p, ctx) => {
      const ttl = p.ttl_ms as number;
      if (ttl < 1 || ttl > 7 * 24 * 3600 * 1000) throw new RpcFault(RpcErrors.INVALID_PARAMS, 'Invalid params: ttl_ms must be in [1, 604800000]', { field: 'ttl_ms' });
      const replay = ctx.gate.replay;
      if (replay.fleet !== null) return replay.checkAsync(p.nonce as string, Date.now() + ttl).then((status) => ({ status }));
      return { status: replay.check(p.nonce as string, Date.now() + ttl) };
    },
  },
  replay_stats: {
    handler: (_p, ctx) => {
      const s = ctx.gate.replay.stats();
      return { size: s.size, capacity: s.capacity, replays: s.replays, saturated: s.saturated };
    },
  },
  gate_check: {
    params: { car: { type: 'object', required: true }, permit: { type: 'string' }, nonce: { type: 'string' }, session_id: { type: 'string' } },
    handler: (p, ctx) => {
      ctx.metrics.gate_checks = (ctx.metrics.gate_checks ?? 0) + 1;
      const request = { car: p.car as Record<string, unknown>, permit: p.permit as string | undefined, nonce: p.nonce as string | undefined, sessionId: p.session_id as string | undefined, client: ctx.client, requester: ctx.identity };
      return ctx.gate.store === null ? new RawJson(decisionJson(ctx.gate.check(request))) : ctx.gate.checkAsync(request).then((d) => new RawJson(decisionJson(d)));
    },
  },
  gate_check_batch: {
    params: { requests: { type: 'array', required: true } },
    cost: (p) => (Array.isArray(p.requests) ? p.requests.length : 1),
    handler: (p, ctx) => {
      const reqs = p.requests as unknown[];
      if (reqs.length > 10_000) throw new RpcFault(RpcErrors.INVALID_PARAMS, 'Invalid params: at most 10000 requests per batch', { field: 'requests' });
      ctx.metrics.gate_checks = (ctx.metrics.gate_checks ?? 0) + reqs.length;
      const requests = reqs.map((r) => {
        const o = (typeof r === 'object' && r !== null ? r : {}) as Record<string, unknown>;
        return { car: o.car as Record<string, unknown>, permit: o.permit as string | undefined, nonce: o.nonce as string | undefined, sessionId: o.session_id as string | undefined, client: ctx.client, requester: ctx.identity };
      });
      if (ctx.gate.store !== null) return ctx.gate.checkBatchAsync(requests).then((decisions) => ({ decisions }));
      return { decisions: ctx.gate.checkBatch(requests) };
    },
  },
  approval_list: {
    params: { status: { type: 'string' }, limit: { type: 'integer' } },
    handler: (p, ctx) => {
      // Bounded reply: each request carries its CAR (up to 64 KiB). The newest `limit` (default 1000), oldest first.
      const limit = (p.limit as number | undefined) ?? 1000;
      if (limit < 1 || limit > 10_000) throw new RpcFault(RpcErrors.INVALID_PARAMS, 'Invalid params: limit must be in [1, 10000]', { field: 'limit' });
      return Promise.resolve(needApprovals(ctx).list(p.status === undefined ? undefined : { status: p.status as 'pending' })).then((all) => ({ approvals: all.slice(-limit), total: all.length }));
    },
  },
  approval_get: {
    params: { id: { type: 'string', required: true } },
    handler: (p, ctx) => Promise.resolve(needApprovals(ctx).get(p.id as string)).then((r) => checkOwner(ctx, r, 'approval_get')),
  },
  approval_approve: { params: { id: { type: 'string', required: true }, reason: { type: 'string' } }, handler: (p, ctx) => vote(ctx, 'approve', p) },
  approval_deny: { params: { id: { type: 'string', required: true }, reason: { type: 'string' } }, handler: (p, ctx) => vote(ctx, 'deny', p) },
  approval_wait: {
    params: { id: { type: 'string', required: true }, timeout_ms: { type: 'integer' } },
    handler: (p, ctx) => {
      const book = needApprovals(ctx);
      const id = p.id as string;
      const timeoutMs = p.timeout_ms as number | undefined;
      if (timeoutMs !== undefined && (timeoutMs < 0 || timeoutMs > MAX_WAIT_MS)) throw new RpcFault(RpcErrors.INVALID_PARAMS, `Invalid params: timeout_ms must be in [0, ${MAX_WAIT_MS}]`, { field: 'timeout_ms' });
      if (ctx.detach !== undefined && !ctx.detach()) throw new RpcFault(RpcErrors.APPLICATION_ERROR, 'Too many approval waits open on this connection or server: wait on fewer at once', { code: ErrorCodes.LIMIT });
      // Ownership first (and the id checked), then the wait, off the connection's order.
      return Promise.resolve(book.get(id))
        .then((r) => checkOwner(ctx, r, 'approval_wait'))
        .then((r) => {
          if (r.status !== 'pending' || timeoutMs === 0) return r.status === 'pending' ? { ...r, timed_out: true } : r;
          return book.wait(id, { timeoutMs });
        });
    },
  },
  // What the MCP proxy needs of the policy, and all an agent may read of it:
  // how one server's tool calls are named (the policy's `mcp` section).
  mcp_tool_actions: {
    params: { server_id: { type: 'string', required: true } },
    handler: (p, ctx) => ({ version: ctx.gate.policy.version, tools: ctx.gate.policy.mcpToolActions(p.server_id as string) }),
  },
  policy_get: { handler: (_p, ctx) => ({ version: ctx.gate.policy.version, mode: ctx.gate.policy.mode, document: ctx.gate.policy.document }) },
  policy_reload: {
    params: { policy: { type: 'any' } },
    handler: (p, ctx) => {
      let input = p.policy;
      if (input === undefined) {
        if (ctx.policyFile === undefined || ctx.readFile === undefined) throw new RpcFault(RpcErrors.INVALID_PARAMS, 'Invalid params: policy is required (the server watches no file)', { field: 'policy' });
        input = ctx.readFile(ctx.policyFile);
      }
      if (typeof input !== 'string' && (typeof input !== 'object' || input === null || Array.isArray(input))) {
        throw new RpcFault(RpcErrors.INVALID_PARAMS, 'Invalid params: policy must be a document or YAML/JSON text', { field: 'policy' });
      }
      try {
        // Audited before the swap (the engine's audit log is the gate's).
        const version = ctx.gate.policy.load(input as string | Record<string, unknown>, { via: 'ipc' });
        // Decisions of the old version can never be served again (the key
        // carries the version); clearing frees their memory at once.
        ctx.gate.cache?.clear();
        return { version };
      } catch (err) {
        ctx.gate.audit?.append('policy_reloaded', 'error', { ok: false, error: (err as Error).message, via: 'ipc', active_version: ctx.gate.policy.version });
        throw err;
      }
    },
  },
  quarantine: {
    params: { agent_id: { type: 'string', required: true }, reason: { type: 'string', required: true }, isolation: { type: 'any' }, forensic: { type: 'string' } },
    handler: (p, ctx) => fleetSynced(ctx, ctx.gate.quarantine.quarantine(p.agent_id as string, p.reason as string, { isolation: p.isolation as 'full' | undefined, forensic: p.forensic as 'none' | undefined })),
  },
  quarantine_list: { handler: (_p, ctx) => ({ agents: ctx.gate.quarantine.list() }) },
  sandbox_profile: {
    params: { agent_id: { type: 'string', required: true } },
    handler: (p, ctx) => {
      const profile = ctx.gate.sandboxFor(p.agent_id as string);
      // The quarantine's free-text reason is for operators; an agent learns only what confines it.
      return ctx.role === 'agent' ? { ...profile, reason: undefined } : profile;
    },
  },
  quarantine_recover: { params: { agent_id: { type: 'string', required: true }, reason: { type: 'string' } }, handler: (p, ctx) => fleetSynced(ctx, ctx.gate.quarantine.recover(p.agent_id as string, p.reason as string | undefined)) },
  quarantine_terminate: { params: { agent_id: { type: 'string', required: true }, reason: { type: 'string' } }, handler: (p, ctx) => fleetSynced(ctx, ctx.gate.quarantine.terminate(p.agent_id as string, p.reason as string | undefined)) },
  audit_verify: {
    handler: (_p, ctx) => {
      if (ctx.auditFile === undefined || ctx.auditKey === undefined) throw new GuardError(ErrorCodes.AUDIT_UNAVAILABLE, 'No audit log on this server');
      ctx.gate.audit?.flush();
      const file = ctx.auditFile;
      const key = ctx.auditKey;
      const run = (anchor: AuditAnchorState | null) => {
        const { lastMac: _m, ...r } = AuditLog.verify(file, key, { anchor }) as ReturnType<typeof AuditLog.verify> & { lastMac?: string };
        return r;
      };
      if (ctx.auditAnchor === undefined) return run(null);
      // The log's own anchor first takes what was just flushed, then is read back.
      // An anchor that cannot be read leaves the check incomplete: not ok, and why.
      return Promise.resolve(ctx.gate.audit?.syncAnchor())
        .then(() => ctx.auditAnchor!.read())
        .then(run, (err: unknown) => ({ ...run(null), ok: false, reason: 'anchor_unavailable', anchorError: err instanceof Error ? err.message : String(err) }));
    },
  },
  compliance_report: {
    params: { standard: { type: 'string', required: true } },
    handler: (p, ctx) => {
      if (ctx.compliance === undefined) throw new GuardError(ErrorCodes.INVALID_ARGUMENT, 'This server was started without a compliance context');
      const reporter = new ComplianceReporter(ctx.compliance);
      if (!reporter.standards().includes(p.standard as string)) {
        throw new RpcFault(RpcErrors.INVALID_PARAMS, `Invalid params: standard must be one of ${reporter.standards().join(', ')}`, { field: 'standard' });
      }
      return reporter.generate(p.standard as string);
    },
  },
  metrics: {
    handler: (_p, ctx) => ({
      ...ctx.metrics,
      cache: ctx.gate.cache?.stats() ?? null,
      replay: ctx.gate.replay.stats(),
      velocity: ctx.gate.velocity?.stats() ?? null,
      audit: ctx.gate.audit ? { healthy: ctx.gate.audit.healthy, seq: ctx.gate.audit.seq } : null,
      policy_version: ctx.gate.policy.version,
      store: ctx.gate.store?.status() ?? { kind: 'memory' },
    }),
  },
});

