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
    actions: { type: 'object', additionalProperties: rule },
  },
} as const;
