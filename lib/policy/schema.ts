/**
 * Policy documents checked against their JSON Schema (./policy-schema.ts)
 * by a validator Ajv generated ahead of time. Errors are reported with dotted
 * paths (`actions.file_read.constraints.resource.glob`).
 */
import type { ErrorObject, ValidateFunction } from 'ajv';
import validatePolicy from './policy-schema.validate';

export { POLICY_SCHEMA } from './policy-schema';

const validate = validatePolicy as unknown as ValidateFunction;

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
  if (e.propertyName !== undefined) {
    const what = path.startsWith('mcp') ? 'a tool or server name of 1 to 256 characters' : 'a valid field path (dotted names)';
    return { path: `${path}.${e.propertyName}`, message: `is not ${what}` };
  }
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
