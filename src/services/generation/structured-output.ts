import { createRequire } from 'node:module';
import type { Ajv } from 'ajv';
import { badInput } from '../platform/errors.js';
import type { OutputFormat } from './types.js';

// One validator for JSON Schemas (draft-07, the subset Ollama's grammar reads); strict off so
// keywords other tools add (e.g. "title" extensions) are tolerated. Built on the first schema, not
// at start: most gateways never see one (idle memory). require() keeps checkFormat synchronous.
let validator: Ajv | undefined;
const ajv = () => (validator ??= new (createRequire(import.meta.url)('ajv') as typeof import('ajv')).Ajv({ strict: false, allErrors: false }));

/** Most characters a format's JSON Schema may take (it goes to the model with every request). */
const MAX_SCHEMA_CHARS = 64_000;

/**
 * Checks a `format` before anything reaches the model: `"json"`, or an object that is a valid
 * JSON Schema (Ajv's meta-schema check); anything else is BAD_USER_INPUT naming the problem.
 */
export function checkFormat(format: unknown): OutputFormat | null {
  if (format === undefined || format === null) return null;
  if (format === 'json') return 'json';
  if (typeof format !== 'object' || Array.isArray(format)) {
    throw badInput('format must be "json" or a JSON Schema object.', { field: 'format' });
  }
  if (JSON.stringify(format).length > MAX_SCHEMA_CHARS) throw badInput(`The format's JSON Schema is longer than ${MAX_SCHEMA_CHARS} characters.`, { field: 'format' });
  // Checked against the meta-schema, not compiled: nothing is cached per request.
  const schemas = ajv();
  if (!schemas.validateSchema(format as Record<string, unknown>)) {
    throw badInput(`format is not a valid JSON Schema: ${schemas.errorsText(schemas.errors).slice(0, 300)}`, { field: 'format' });
  }
  return format as Record<string, unknown>;
}
