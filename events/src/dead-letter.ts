// Dead letters: events Knative gave up delivering (retries exhausted, or a non-retryable answer) and
// sent to the Trigger's deadLetterSink instead. Knative adds three extension attributes saying why
// (knative.dev/eventing pkg/kncloudevents/attributes/knative_error.go): knativeerrorcode (the last HTTP
// status), knativeerrordest (where delivery failed) and knativeerrordata (the last response body,
// base64, at most 1024 characters). A dead letter is kept as a record holding the whole event.
import type { CloudEventV1 } from 'cloudevents';
import { schemaChecker } from './validation.js';

export const KNATIVE_ERROR_CODE = 'knativeerrorcode';
export const KNATIVE_ERROR_DEST = 'knativeerrordest';
export const KNATIVE_ERROR_DATA = 'knativeerrordata';

export interface KnativeError {
  /** HTTP status of the last attempt (Knative uses 500 when the request itself failed). */
  code: number | null;
  /** The URL delivery failed to. */
  destination: string | null;
  /** The last response body as Knative sent it (base64, truncated to 1024 characters). */
  data: string | null;
  /** That body decoded as UTF-8 text, when it is text. */
  body: string | null;
}

export interface DeadLetterRecord {
  kind: 'promsnap.dead-letter.v1';
  /** When the sink received it. */
  receivedAt: string;
  error: KnativeError;
  /** The event as delivered to the sink: every attribute (knativeerror* included) and its data. */
  event: Record<string, unknown>;
}

export const deadLetterRecordSchema = {
  $id: 'https://promsnap.dev/schemas/dead-letter-record.json',
  title: 'promsnap dead letter',
  description: 'A dead-lettered CloudEvent as stored under dead-letters/ in the snapshot bucket.',
  type: 'object',
  additionalProperties: false,
  required: ['kind', 'receivedAt', 'error', 'event'],
  properties: {
    kind: { const: 'promsnap.dead-letter.v1' },
    receivedAt: { type: 'string' },
    error: {
      type: 'object',
      additionalProperties: false,
      required: ['code', 'destination', 'data', 'body'],
      properties: {
        code: { type: ['integer', 'null'] },
        destination: { type: ['string', 'null'] },
        data: { type: ['string', 'null'] },
        body: { type: ['string', 'null'] },
      },
    },
    event: {
      type: 'object',
      required: ['specversion', 'id', 'source', 'type'],
      properties: {
        specversion: { type: 'string' },
        id: { type: 'string' },
        source: { type: 'string' },
        type: { type: 'string' },
      },
    },
  },
} as const;

export const checkDeadLetterRecord = schemaChecker(deadLetterRecordSchema, 'record');

/** Knative's error attributes on a dead-lettered event, decoded where they are encoded. */
export function knativeError(event: CloudEventV1<unknown>): KnativeError {
  const text = (name: string) => {
    const value = event[name];
    if (value === undefined || value === null || value === '') return null;
    if (typeof value === 'string') return value;
    if (typeof value === 'number' || typeof value === 'boolean') return String(value);
    return JSON.stringify(value) ?? null;
  };
  const code = text(KNATIVE_ERROR_CODE);
  const data = text(KNATIVE_ERROR_DATA);
  return {
    code: code !== null && /^\d+$/.test(code) ? Number(code) : null,
    destination: text(KNATIVE_ERROR_DEST),
    data,
    body: data === null ? null : decodeBody(data),
  };
}

export function deadLetterRecord(event: CloudEventV1<unknown>, receivedAt: Date): DeadLetterRecord {
  const attributes: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(event)) {
    if (value !== undefined) attributes[name] = value instanceof Uint8Array ? Buffer.from(value).toString('base64') : value;
  }
  return { kind: 'promsnap.dead-letter.v1', receivedAt: receivedAt.toISOString(), error: knativeError(event), event: attributes };
}

function decodeBody(base64: string): string | null {
  // Knative truncates the base64 text, so a trailing partial quantum is dropped before decoding.
  const whole = base64.slice(0, base64.length - (base64.length % 4));
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(whole)) return null;
  // A cut in the middle of a multi-byte character leaves one replacement character at the end.
  const text = new TextDecoder('utf-8', { fatal: false }).decode(Buffer.from(whole, 'base64')).replace(/\uFFFD$/, '');
  // Binary bodies stay undecoded: text with replacement characters or control bytes says nothing useful.
  return [...text].some(isUnprintable) ? null : text;
}

/** The replacement character, or a C0 control other than tab, newline, vertical tab, form feed and carriage return. */
function isUnprintable(character: string): boolean {
  const code = character.codePointAt(0)!;
  return code === 0xfffd || code <= 0x08 || (code >= 0x0e && code <= 0x1f);
}
