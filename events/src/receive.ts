// Turning an HTTP request into a CloudEvent with the SDK (HTTP.toEvent, binary and structured modes),
// reporting every problem instead of the SDK's silent repairs: its parser fills a missing id with a
// fresh UUID (structured mode) and replaces a missing or unparsable time with "now", which would make a
// redelivered event look like a new one. Those two are checked on the raw message first.
import { CloudEvent, HTTP, ValidationError, type CloudEventV1, type Headers } from 'cloudevents';
import { decodeAttributeHeaders } from './header-encoding.js';
import type { Validated } from './validation.js';

export interface HttpMessage {
  headers: Headers;
  /** The request body as text (an empty string when there is none). */
  body: string;
}

export type ContentMode = 'binary' | 'structured';

export interface ReceivedEvent {
  mode: ContentMode;
  /** Attributes, extensions and data; `time` is present only when the sender set it. */
  event: CloudEventV1<unknown>;
}

const required = ['specversion', 'id', 'source', 'type'] as const;

// RFC 3339 date-time, as the CloudEvents spec requires for `time`.
const rfc3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$/;

/**
 * Whether text is an RFC 3339 timestamp naming a real instant. JavaScript's Date.parse takes
 * 2026-02-30 as 2 March, where Go (Prometheus, Knative) refuses it; a leap second (:60) is refused too,
 * as Go refuses it, so no event names an instant the rest of the pipeline reads differently.
 */
export function isRfc3339(text: string): boolean {
  const m = rfc3339.exec(text);
  if (!m) return false;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const [offsetHour, offsetMinute] = m[7] === undefined ? [0, 0] : [Number(m[7]), Number(m[8])];
  // Day 0 of the next month is this month's last day (setUTCFullYear, unlike Date.UTC, keeps years 0-99).
  const lastDay = new Date(0);
  lastDay.setUTCFullYear(year, month, 0);
  const inRange = month >= 1 && month <= 12 && day >= 1 && day <= lastDay.getUTCDate() && hour <= 23 && minute <= 59 && second <= 59;
  return inRange && offsetHour <= 23 && offsetMinute <= 59 && !Number.isNaN(Date.parse(text));
}

export function receiveEvent(message: HttpMessage): Validated<ReceivedEvent> {
  // Attribute headers as the HTTP binding encodes them (percent-encoding), decoded before anything reads them.
  const decoded = decodeAttributeHeaders(normalizeContentType(message.headers));
  if (!decoded.ok) return decoded;
  const headers = decoded.value;
  const contentType = header(headers, 'content-type');
  const mode: ContentMode | 'batch' | undefined = contentType?.startsWith('application/cloudevents-batch')
    ? 'batch'
    : contentType?.startsWith('application/cloudevents')
      ? 'structured'
      : header(headers, 'ce-id') !== undefined || header(headers, 'ce-specversion') !== undefined
        ? 'binary'
        : undefined;
  if (mode === undefined) {
    return failed(
      'not a CloudEvent: send it in binary mode (ce-specversion, ce-id, ce-type, ce-source, ce-time headers) ' +
        'or in structured mode (content-type application/cloudevents+json)',
    );
  }
  if (mode === 'batch') return failed('batched CloudEvents are not accepted: send one event per request');

  const problems: string[] = [];
  let rawTime: unknown;
  if (mode === 'structured') {
    let envelope: unknown;
    try {
      envelope = JSON.parse(message.body);
    } catch (err) {
      return failed(`structured event body is not valid JSON: ${(err as Error).message}`);
    }
    if (typeof envelope !== 'object' || envelope === null || Array.isArray(envelope)) {
      return failed('structured event body must be a JSON object');
    }
    const attributes = envelope as Record<string, unknown>;
    for (const name of required) if (attributes[name] === undefined || attributes[name] === '') problems.push(`${name} is required`);
    rawTime = attributes['time'];
  } else {
    for (const name of required) if (header(headers, `ce-${name}`) === undefined) problems.push(`${name} is required`);
    rawTime = header(headers, 'ce-time');
  }
  if (rawTime !== undefined && (typeof rawTime !== 'string' || !isRfc3339(rawTime))) {
    problems.push(`time ${JSON.stringify(rawTime)} is not an RFC 3339 timestamp`);
  }

  let parsed: CloudEventV1<unknown>;
  try {
    // The SDK recognises binary mode by ce-id alone; with it missing (already reported) it would only
    // say "no cloud event detected", so it parses with a stand-in id to find the other problems.
    const sdkHeaders = mode === 'binary' && header(headers, 'ce-id') === undefined ? { ...headers, 'ce-id': 'missing' } : headers;
    const result = HTTP.toEvent<unknown>({ headers: sdkHeaders, body: message.body });
    if (Array.isArray(result)) return failed('batched CloudEvents are not accepted: send one event per request');
    parsed = result;
  } catch (err) {
    return { ok: false, problems: [...problems, ...sdkProblems(err)] };
  }
  problems.push(...cloudEventProblems(parsed));
  if (problems.length > 0) return { ok: false, problems: dedupe(problems) };

  const event: CloudEventV1<unknown> = { ...parsed };
  if (rawTime === undefined) delete event.time;
  return { ok: true, value: { mode, event } };
}

/** What the CloudEvents spec (the SDK's own schema) finds wrong with an event. */
export function cloudEventProblems(event: CloudEventV1<unknown>): string[] {
  if (event.specversion !== '1.0') return [`specversion ${JSON.stringify(event.specversion)} is not supported: expected 1.0`];
  try {
    CloudEvent.prototype.validate.call(event);
    return [];
  } catch (err) {
    return sdkProblems(err);
  }
}

function sdkProblems(err: unknown): string[] {
  if (err instanceof ValidationError) {
    const details = (err.errors ?? []).map((detail) => {
      if (typeof detail === 'string') return detail;
      const where = detail.instancePath.replace(/^\//, '').replace(/\//g, '.') || 'event';
      const missing = (detail.params as { missingProperty?: string }).missingProperty;
      return missing ? `${missing} is required` : `${where} ${detail.message ?? 'is invalid'}`;
    });
    return details.length > 0 ? details : [err.message];
  }
  if (err instanceof SyntaxError) return [`event data is not valid JSON: ${err.message}`];
  if (err instanceof Error) return [err.message];
  return [String(err)];
}

// The SDK picks its data parser by the exact content-type string, so `application/json;charset=UTF-8`
// would leave JSON unparsed and a parameterised structured type would be refused outright. JSON has
// one encoding (UTF-8): the parameters carry nothing, so they are dropped for JSON media types.
function normalizeContentType(headers: Headers): Headers {
  const out: Headers = {};
  for (const [name, value] of Object.entries(headers)) out[name.toLowerCase()] = value;
  const contentType = header(out, 'content-type');
  if (contentType !== undefined) {
    const media = contentType.split(';')[0]!.trim().toLowerCase();
    out['content-type'] = media === 'application/json' || media.endsWith('+json') ? media : contentType;
  }
  return out;
}

function header(headers: Headers, name: string): string | undefined {
  const value = headers[name];
  const text = Array.isArray(value) ? value[0] : value;
  return text === undefined || text === '' ? undefined : text;
}

function failed(problem: string): Validated<never> {
  return { ok: false, problems: [problem] };
}

function dedupe(problems: string[]): string[] {
  return [...new Set(problems)];
}
