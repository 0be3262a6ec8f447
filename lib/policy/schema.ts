/**
 * The policy document's JSON Schema, checked with Ajv. Errors are reported
 * with dotted paths (`actions.file_read.constraints.resource.glob`).
 */
import Ajv, { type ErrorObject } from 'ajv';

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

const ajv = new Ajv({ allErrors: false, strict: true });
const validate = ajv.compile(POLICY_SCHEMA);

function dotted(instancePath: string): string {
  return instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .join('.');
}

function describeError(e: ErrorObject): { path: string; message: string } {
  let path = dotted(e.instancePath);
  const params = e.params as Record<string, unknown>;
  if (e.propertyName !== undefined) return { path: `${path}.${e.propertyName}`, message: 'is not a valid field path (dotted names)' };
  if (e.keyword === 'additionalProperties') {
    path = path ? `${path}.${String(params.additionalProperty)}` : String(params.additionalProperty);
    return { path, message: 'is not a known field' };
  }
  if (e.keyword === 'required') {
    path = path ? `${path}.${String(params.missingProperty)}` : String(params.missingProperty);
    return { path, message: 'is required' };
  }
  if (e.keyword === 'enum') return { path, message: `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}` };
  return { path, message: e.message ?? 'is invalid' };
}

/** The first schema violation of `doc`, or null. */
export function schemaError(doc: unknown): { path: string; message: string } | null {
  if (validate(doc)) return null;
  return describeError(validate.errors![0]);
}
