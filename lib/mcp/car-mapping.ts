/**
 * How an MCP request becomes a CAR, and which tools a policy can never allow
 * an agent (for `hideDenied`).
 *
 * The CAR is built from the very object the proxy forwards (the transport
 * parsed the line once; nothing re-reads the raw text): `args` is the
 * `arguments` member the upstream server will receive, `tool` is `params.name`
 * (never a `name` inside the arguments), so a call is judged on what runs.
 */
import { IdentityMatcher } from '../policy/compile';

/** The methods the proxy gates; everything else passes through. */
export const GATED_METHODS: ReadonlySet<string> = new Set(['tools/call', 'resources/read', 'prompts/get']);

export interface CarContext {
  agentId: string;
  serverId: string;
  /** Tool name → action type, overriding `mcp.tool.<name>`. */
  toolActions?: Readonly<Record<string, string>>;
  /** The policy's own mapping (its `mcp` section), which wins over `toolActions`. */
  policyToolAction?: (name: string) => string | undefined;
}

/** A gated request turned into a CAR, or why it cannot be one (a JSON-RPC invalid-params error). */
export type CarResult = { car: Record<string, unknown> } | { invalid: string };

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The action type of a call of tool `name`: the policy's mapping, else `toolActions`, else `mcp.tool.<name>`. */
export function toolActionType(name: string, ctx: CarContext): string {
  const fromPolicy = ctx.policyToolAction?.(name);
  if (fromPolicy !== undefined) return fromPolicy;
  const mapped = ctx.toolActions !== undefined && Object.hasOwn(ctx.toolActions, name) ? ctx.toolActions[name] : undefined;
  return mapped ?? `mcp.tool.${name}`;
}

/**
 * The CAR of a gated request's params. `params` is the object that will be
 * forwarded; the CAR holds references into it (the caller must not change it
 * between the check and the send).
 */
export function carFor(method: string, params: unknown, ctx: CarContext): CarResult {
  const base = { agent_id: ctx.agentId, server_id: ctx.serverId };
  if (!isPlainObject(params)) return { invalid: `${method} needs params` };
  switch (method) {
    case 'tools/call': {
      const { name, arguments: args } = params;
      if (typeof name !== 'string' || name.length === 0) return { invalid: 'tools/call needs params.name (a non-empty string)' };
      if (args !== undefined && !isPlainObject(args)) return { invalid: 'tools/call params.arguments must be an object' };
      const car: Record<string, unknown> = { action_type: toolActionType(name, ctx), ...base, tool: name };
      if (args !== undefined) car.args = args;
      return { car };
    }
    case 'resources/read': {
      const { uri } = params;
      if (typeof uri !== 'string') return { invalid: 'resources/read needs params.uri (a string)' };
      return { car: { action_type: 'mcp.resource.read', ...base, resource: uri } };
    }
    case 'prompts/get': {
      const { name, arguments: args } = params;
      if (typeof name !== 'string' || name.length === 0) return { invalid: 'prompts/get needs params.name (a non-empty string)' };
      if (args !== undefined && !isPlainObject(args)) return { invalid: 'prompts/get params.arguments must be an object' };
      const car: Record<string, unknown> = { action_type: 'mcp.prompt.get', ...base, prompt: name };
      if (args !== undefined) car.args = args;
      return { car };
    }
    default:
      return { invalid: `${method} is not gated` };
  }
}

/**
 * Whether a policy document can never allow `agentId` the action type, for
 * any arguments: enforce mode and either no rule with a deny default, or a
 * blocking rule whose identity lists exclude the agent. Everything that
 * depends on the call or on state (constraints, min_trust, approvals,
 * quarantine, rate limits) keeps the tool listed; the gate still judges each
 * call. Read from the document, not by evaluating a CAR: an evaluation of a
 * bare CAR would count as a violation against the agent's trust.
 */
export function neverAllowed(document: Readonly<Record<string, unknown>> | null, agentId: string, actionType: string): boolean {
  if (document === null) return true; // no policy: the gate denies everything
  if (document.mode !== 'enforce') return false;
  const actions = isPlainObject(document.actions) ? document.actions : {};
  const rule = Object.hasOwn(actions, actionType) ? actions[actionType] : undefined;
  if (!isPlainObject(rule)) return document.default !== 'allow';
  const onViolation = rule.on_violation ?? 'block';
  if (onViolation !== 'block' && onViolation !== 'quarantine') return false;
  const ids = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : null);
  const deny = ids(rule.deny_identities);
  if (deny !== null && new IdentityMatcher(deny).matches(agentId)) return true;
  const allow = ids(rule.allow_identities);
  return allow !== null && !new IdentityMatcher(allow).matches(agentId);
}
