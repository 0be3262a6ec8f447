/**
 * JSON-RPC 2.0 (one JSON value per line): requests, notifications, batches and
 * the standard error codes. Params are by name; each method declares its
 * fields, and a missing or ill-typed one is -32602 naming the field.
 * `GuardError`s from a method become application errors (-32000) carrying
 * `data.code`; anything else is -32603 without internal details.
 */
import { ErrorCodes, GuardError } from '../errors';

export const RpcErrors = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32603,
  APPLICATION_ERROR: -32000,
} as const;

export type ParamType = 'string' | 'number' | 'integer' | 'boolean' | 'object' | 'array' | 'any';

export interface ParamSpec {
  type: ParamType;
  required?: boolean;
}

export interface MethodSpec<C> {
  params?: Record<string, ParamSpec>;
  handler(params: Record<string, unknown>, context: C): unknown | Promise<unknown>;
  /**
   * The work one call asks for, in decisions (default 1): a batch method
   * counts its items, so the per-line bound holds however the work is packed.
   */
  cost?(params: Record<string, unknown>): number;
}

/** Bounds on the work one line may ask for. */
export interface LineLimits {
  /** Most requests in one JSON-RPC batch array. */
  maxBatch: number;
  /** Most work units (see MethodSpec.cost) in one line, batch or not. */
  maxWork: number;
}

export const DEFAULT_LINE_LIMITS: Readonly<LineLimits> = Object.freeze({ maxBatch: 1000, maxWork: 10_000 });

export type RpcId = string | number | null;

export interface RpcError {
  code: number;
  message: string;
  data?: unknown;
}

export interface RpcResponse {
  jsonrpc: '2.0';
  id: RpcId;
  result?: unknown;
  error?: RpcError;
}

/**
 * A handler's result already serialized as JSON text (for hot methods whose
 * result has a fixed shape): sent as it is, in place of JSON.stringify's.
 * The handler answers for the text being one valid JSON value.
 */
export class RawJson {
  constructor(readonly text: string) {}
}

/** The line for one response: JSON.stringify's text, with a RawJson result spliced in. */
export function responseText(r: RpcResponse): string {
  if (!(r.result instanceof RawJson)) return JSON.stringify(r);
  const id = typeof r.id === 'number' ? '' + r.id : JSON.stringify(r.id); // a finite number prints as JSON.stringify prints it (-0 too)
  return '{"jsonrpc":"2.0","id":' + id + ',"result":' + r.result.text + '}';
}

/** Thrown by a handler to answer with a specific JSON-RPC error. */
export class RpcFault extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
  }
}

function typeMatches(v: unknown, t: ParamType): boolean {
  switch (t) {
    case 'any':
      return true;
    case 'integer':
      return typeof v === 'number' && Number.isSafeInteger(v);
    case 'object':
      return typeof v === 'object' && v !== null && !Array.isArray(v);
    case 'array':
      return Array.isArray(v);
    default:
      return typeof v === t;
  }
}

function isId(v: unknown): v is RpcId {
  return v === null || typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));
}

const errorResponse = (id: RpcId, code: number, message: string, data?: unknown): RpcResponse =>
  data === undefined ? { jsonrpc: '2.0', id, error: { code, message } } : { jsonrpc: '2.0', id, error: { code, message, data } };

export class JsonRpcDispatcher<C> {
  /**
   * `authorize(method, context)` runs before a known method's params are
   * checked and throws (an RpcFault) to refuse the call: a caller without the
   * right learns nothing of the method's params.
   */
  constructor(
    private readonly methods: Readonly<Record<string, MethodSpec<C>>>,
    private readonly limits: Readonly<LineLimits> = DEFAULT_LINE_LIMITS,
    private readonly authorize?: (method: string, context: C) => void,
  ) {}

  /** The work one request asks for (1 for anything malformed: it is answered with an error). */
  #cost(message: unknown): number {
    if (typeof message !== 'object' || message === null) return 1;
    const m = message as Record<string, unknown>;
    const spec = typeof m.method === 'string' && Object.hasOwn(this.methods, m.method) ? this.methods[m.method] : undefined;
    const params = m.params;
    if (spec?.cost === undefined || typeof params !== 'object' || params === null || Array.isArray(params)) return 1;
    const c = spec.cost(params as Record<string, unknown>);
    return Number.isSafeInteger(c) && c >= 1 ? c : 1;
  }

  /** The error line for a line asking for more than the limits allow, or null. Checked before any work. */
  #overLimit(message: unknown): string | null {
    const { maxBatch, maxWork } = this.limits;
    if (Array.isArray(message)) {
      if (message.length > maxBatch) return JSON.stringify(errorResponse(null, RpcErrors.INVALID_REQUEST, `Invalid Request: a batch holds at most ${maxBatch} requests`, { code: ErrorCodes.LIMIT, limit: maxBatch }));
      let work = 0;
      for (let i = 0; i < message.length; i++) work += this.#cost(message[i]);
      if (work > maxWork) return JSON.stringify(errorResponse(null, RpcErrors.INVALID_REQUEST, `Invalid Request: a line asks for at most ${maxWork} decisions`, { code: ErrorCodes.LIMIT, limit: maxWork }));
      return null;
    }
    return null;
  }

  /**
   * Answers one line: the response text (a single response or a batch array),
   * or null when nothing is to be sent (notifications only). Synchronous when
   * every handler it calls is (the common case): no promise per request.
   */
  handleLine(line: string, context: C): string | null | Promise<string | null> {
    let message: unknown;
    try {
      message = JSON.parse(line);
    } catch {
      return JSON.stringify(errorResponse(null, RpcErrors.PARSE_ERROR, 'Parse error'));
    }
    if (Array.isArray(message)) {
      if (message.length === 0) return JSON.stringify(errorResponse(null, RpcErrors.INVALID_REQUEST, 'Invalid Request: empty batch'));
      const refused = this.#overLimit(message);
      if (refused !== null) return refused;
      return Promise.all(message.map((m) => this.handle(m, context))).then((answers) => {
        const sent = answers.filter((a): a is RpcResponse => a !== null);
        return sent.length === 0 ? null : '[' + sent.map(responseText).join(',') + ']';
      });
    }
    const answer = this.handle(message, context);
    if (answer instanceof Promise) return answer.then((a) => (a === null ? null : responseText(a)));
    return answer === null ? null : responseText(answer);
  }

  /** One request object: its response, or null for a notification (a promise only for async handlers). */
  handle(message: unknown, context: C): RpcResponse | null | Promise<RpcResponse | null> {
    if (typeof message !== 'object' || message === null || Array.isArray(message)) {
      return errorResponse(null, RpcErrors.INVALID_REQUEST, 'Invalid Request');
    }
    const m = message as Record<string, unknown>;
    const hasId = Object.hasOwn(m, 'id');
    if (m.jsonrpc !== '2.0' || typeof m.method !== 'string' || (hasId && !isId(m.id))) {
      return errorResponse(hasId && isId(m.id) ? m.id : null, RpcErrors.INVALID_REQUEST, 'Invalid Request');
    }
    const id = hasId ? (m.id as RpcId) : undefined;
    const reply = (r: RpcResponse): RpcResponse | null => (id === undefined ? null : r);
    const spec = Object.hasOwn(this.methods, m.method) ? this.methods[m.method] : undefined;
    if (spec === undefined) return reply(errorResponse(id ?? null, RpcErrors.METHOD_NOT_FOUND, `Method not found: ${m.method}`));
    if (this.authorize !== undefined) {
      try {
        this.authorize(m.method, context);
      } catch (err) {
        return reply(failure(id ?? null, err));
      }
    }
    let params: Record<string, unknown>;
    if (m.params === undefined) params = {};
    else if (typeof m.params === 'object' && m.params !== null && !Array.isArray(m.params)) params = m.params as Record<string, unknown>;
    else return reply(errorResponse(id ?? null, RpcErrors.INVALID_PARAMS, 'Invalid params: params must be an object (by name)', { field: 'params' }));
    const specParams = spec.params;
    if (specParams !== undefined) {
      for (const name in specParams) {
        const p = specParams[name];
        const v = Object.hasOwn(params, name) ? params[name] : undefined;
        if (v === undefined) {
          if (p.required) return reply(errorResponse(id ?? null, RpcErrors.INVALID_PARAMS, `Invalid params: ${name} is required`, { field: name }));
        } else if (!typeMatches(v, p.type)) {
          return reply(errorResponse(id ?? null, RpcErrors.INVALID_PARAMS, `Invalid params: ${name} must be ${p.type === 'integer' ? 'an integer' : `a ${p.type}`}`, { field: name }));
        }
      }
    }
    for (const name of Object.keys(params)) {
      if (specParams === undefined || !Object.hasOwn(specParams, name)) {
        return reply(errorResponse(id ?? null, RpcErrors.INVALID_PARAMS, `Invalid params: unknown field ${name}`, { field: name }));
      }
    }
    let result: unknown;
    try {
      result = spec.handler(params, context);
    } catch (err) {
      return reply(failure(id ?? null, err));
    }
    if (result instanceof Promise) {
      return result.then(
        (r: unknown) => reply({ jsonrpc: '2.0', id: id ?? null, result: r === undefined ? null : r }),
        (err: unknown) => reply(failure(id ?? null, err)),
      );
    }
    return reply({ jsonrpc: '2.0', id: id ?? null, result: result === undefined ? null : result });
  }
}

/** The response line for an exception a handler threw. */
export function failureText(id: RpcId, err: unknown): string {
  return responseText(failure(id, err));
}

/** The JSON-RPC error for an exception thrown by a handler. */
function failure(id: RpcId, err: unknown): RpcResponse {
  if (err instanceof RpcFault) return errorResponse(id, err.code, err.message, err.data);
  if (err instanceof GuardError) return errorResponse(id, RpcErrors.APPLICATION_ERROR, err.message, err.path === undefined ? { code: err.code } : { code: err.code, path: err.path });
  if (err instanceof TypeError || err instanceof RangeError) return errorResponse(id, RpcErrors.INVALID_PARAMS, `Invalid params: ${err.message}`);
  return errorResponse(id, RpcErrors.INTERNAL_ERROR, 'Internal error');
}
