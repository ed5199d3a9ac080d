// Validation against the JSON Schemas this folder publishes. The schema is the one source of truth:
// the same object is exported for other tools and compiled here, and every problem is reported at
// once (allErrors) so a sender fixes its event in one round trip, not one field at a time.
import { createRequire } from 'node:module';
import type { Ajv, ErrorObject, SchemaObject, ValidateFunction } from 'ajv';

export type Validated<T> = { ok: true; value: T } | { ok: false; problems: string[] };

/** Thrown by builders (createPingEvent, ...) given input that would produce an invalid event. */
export class EventValidationError extends Error {
  constructor(
    what: string,
    readonly problems: string[],
  ) {
    super(`invalid ${what}:\n  - ${problems.join('\n  - ')}`);
    this.name = 'EventValidationError';
  }
}

let ajv: Ajv | undefined;

/** ajv itself is loaded with the first check too (about 20 ms); its package is CommonJS, so require() keeps checks synchronous. */
function loadAjv(): Ajv {
  const { Ajv: AjvClass } = createRequire(import.meta.url)('ajv') as typeof import('ajv');
  return new AjvClass({ allErrors: true, strict: true });
}

/**
 * Compiles a schema on its first check, once; the check names each problem by its path under `root`.
 * Not at import: compiling this folder's schemas took about 45 ms of a function's 300 ms start-up,
 * for events that arrive only once it is ready. (A schema that ajv refuses fails its first check, so
 * each schema's tests in events/test catch it.)
 */
export function schemaChecker(schema: SchemaObject, root: string): (value: unknown) => string[] {
  let validate: ValidateFunction | undefined;
  return (value) => {
    validate ??= (ajv ??= loadAjv()).compile(schema);
    return validate(value) ? [] : (validate.errors ?? []).map((error) => describe(error, root));
  };
}

function describe(error: ErrorObject, root: string): string {
  const where = root + error.instancePath.replace(/\/([^/]*)/g, (_, part: string) => (/^\d+$/.test(part) ? `[${part}]` : `.${part}`));
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return `${where}.${String(params['missingProperty'])} is required`;
    case 'additionalProperties':
      return `${where} has unknown property ${JSON.stringify(params['additionalProperty'])}`;
    case 'type':
      return `${where} must be of type ${String(params['type'])}`;
    default:
      return `${where} ${error.message ?? 'is invalid'}`;
  }
}
