/**
 * The policy document's JSON Schema. Checked by a validator generated from it
 * ahead of time (./policy-schema.validate.ts, by scripts/gen-validators.js):
 * compiling it at run time would need code generation from strings, which
 * hardened runtimes (--disallow-code-generation-from-strings) refuse.
 */

const constraint = {
  type: 'object',
  minProperties: 1,
  additionalProperties: false,
  properties: {
    equals: {},
    one_of: { type: 'array', minItems: 1 },
    prefix: { type: 'string', minLength: 1 },
    glob: { type: 'string', minLength: 1 },
    regex: { type: 'string', minLength: 1 },
    range: {
      type: 'object',
      minProperties: 1,
      additionalProperties: false,
      properties: { min: { type: 'number' }, max: { type: 'number' } },
    },
    max_length: { type: 'integer', minimum: 0 },
  },
} as const;

/** A duration: integer milliseconds, or a string with a unit (`90s`, `15m`, `2h`, `1d`, `500ms`). */
const duration = {
  anyOf: [
    { type: 'integer', minimum: 1000, maximum: 604800000 },
    { type: 'string', pattern: '^[1-9][0-9]{0,8}(ms|s|m|h|d)$' },
  ],
} as const;

/** Dotted CAR field paths (as constraint keys). */
const fieldPaths = { type: 'array', maxItems: 256, items: { type: 'string', pattern: '^[A-Za-z0-9_$-]+(\\.[A-Za-z0-9_$-]+)*$' } } as const;

/** MCP tool name -> the action type its calls are judged as (`guardkernel mcp`, guardMcp). */
const toolActions = {
  type: 'object',
  maxProperties: 4096,
  propertyNames: { minLength: 1, maxLength: 256 },
  additionalProperties: { type: 'string', minLength: 1, maxLength: 256 },
} as const;

const rule = {
  type: 'object',
  additionalProperties: false,
  properties: {
    min_trust: { type: 'number', minimum: 0, maximum: 1 },
    allow_identities: { type: 'array', items: { type: 'string', minLength: 1 } },
    deny_identities: { type: 'array', items: { type: 'string', minLength: 1 } },
    constraints: {
      type: 'object',
      propertyNames: { pattern: '^[A-Za-z0-9_$-]+(\\.[A-Za-z0-9_$-]+)*$' },
      additionalProperties: constraint,
    },
    require_approval: { type: 'boolean' },
    /** Who may approve this rule's requests (identity globs over approver credentials); default any operator. */
    approvers: { type: 'array', minItems: 1, maxItems: 256, items: { type: 'string', minLength: 1 } },
    min_approvals: { type: 'integer', minimum: 1, maximum: 16 },
    approval_ttl: duration,
    redact: fieldPaths,
    on_violation: { enum: ['block', 'quarantine', 'warn', 'allow'] },
  },
} as const;

export const POLICY_SCHEMA = {
  type: 'object',
  required: ['version', 'mode'],
  additionalProperties: false,
  properties: {
    version: { type: 'integer', minimum: 1 },
    mode: { enum: ['enforce', 'audit', 'permissive'] },
    default: { enum: ['allow', 'deny'] },
    trust: {
      type: 'object',
      additionalProperties: false,
      properties: {
        base: { type: 'number', minimum: 0, maximum: 1 },
        identities: {
          type: 'array',
          items: {
            type: 'object',
            required: ['match', 'adjust'],
            additionalProperties: false,
            properties: { match: { type: 'string', minLength: 1 }, adjust: { type: 'number', minimum: -1, maximum: 1 } },
          },
        },
        violation_penalty: { type: 'number', minimum: 0, maximum: 1 },
        recovery_per_hour: { type: 'number', minimum: 0 },
      },
    },
    /** How long an approval request (and its grant) stands. Default 15 min. */
    approval_ttl: duration,
    /** CAR fields an approver sees only as digests. */
    redact: fieldPaths,
    actions: { type: 'object', additionalProperties: rule },
    /**
     * How the MCP guard proxy names tool calls: `tools` maps a tool name to an
     * action type for every server, `servers.<server_id>.tools` for one server
     * (it wins). Unmapped tools are `mcp.tool.<name>`.
     */
    mcp: {
      type: 'object',
      additionalProperties: false,
      properties: {
        tools: toolActions,
        servers: {
          type: 'object',
          maxProperties: 256,
          propertyNames: { minLength: 1, maxLength: 256 },
          additionalProperties: { type: 'object', additionalProperties: false, properties: { tools: toolActions } },
        },
      },
    },
  },
} as const;
