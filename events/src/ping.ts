// The scheduled event that triggers a snapshot: Knative's PingSource event, exactly as its adapter
// (knative.dev/eventing cmd/mtping, pkg/adapter/mtping/runner.go) sends it. The adapter sets type and
// source, a fresh UUID id per tick, the send time, and spec.data verbatim with spec.contentType as
// datacontenttype (no data and no datacontenttype when spec.data is empty), in binary content mode.
import { randomUUID } from 'node:crypto';
import { CloudEvent, type CloudEventV1 } from 'cloudevents';
import { cloudEventProblems } from './receive.js';
import { EventValidationError, schemaChecker, type Validated } from './validation.js';
import { encodeId as eventIdInKey } from '../../archive/src/keys.js';

export const PING_EVENT_TYPE = 'dev.knative.sources.ping';

/**
 * Longest id accepted, counted as it appears in an object key (eventIdInKey): the id is part of a
 * snapshot's key, whose last path segment MinIO limits to 255 bytes (`HHmmssZ-<id>.json.gz`), and
 * whose whole length S3 limits to 1024. A UUID takes 36.
 */
export const MAX_EVENT_ID_LENGTH = 200;

/** An event id as it appears in an object key; the archive's key format (archive/src/keys.ts) defines it. */
export { encodeId as eventIdInKey } from '../../archive/src/keys.js';

/** What a PingSource's spec.data may say to the snapshot function. */
export interface PingData {
  /** PromQL instant queries to capture; replaces the function's configured SNAPSHOT_QUERIES. */
  queries?: string[];
  /**
   * Export every sample of a window of this length (a Prometheus duration such as 5m) instead of one
   * instant; `0` asks for an instant snapshot. Replaces the function's configured SNAPSHOT_RANGE.
   */
  range?: string;
}

export const pingDataSchema = {
  $id: 'https://promsnap.dev/schemas/ping-data.json',
  title: 'promsnap PingSource data',
  description: 'JSON in a PingSource spec.data, delivered as the data of dev.knative.sources.ping events.',
  type: 'object',
  additionalProperties: false,
  properties: {
    queries: {
      description: 'PromQL instant queries evaluated at the event time; replaces the configured default list.',
      type: 'array',
      minItems: 1,
      maxItems: 20,
      items: { type: 'string', minLength: 1, maxLength: 8192, pattern: '\\S' },
    },
    range: {
      description: 'Export every raw sample of the window (tick - range, tick], the tick being the event time floored to the range; 0 for an instant snapshot.',
      type: 'string',
      pattern: '^(0|(\\d+y)?(\\d+w)?(\\d+d)?(\\d+h)?(\\d+m)?(\\d+s)?(\\d+ms)?)$',
      minLength: 1,
      maxLength: 32,
    },
  },
} as const;

const checkPingData = schemaChecker(pingDataSchema, 'data');

/** A ping event that passed validation, with the PingSource's identity taken from its source. */
export interface PingEvent {
  id: string;
  source: string;
  namespace: string;
  name: string;
  /** RFC 3339 instant the ping was sent: the instant the snapshot captures. */
  time: string;
  data: PingData;
}

// Kubernetes names: a namespace is a DNS label, a PingSource name a DNS subdomain.
const sourcePattern = /^\/apis\/v1\/namespaces\/([a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?)\/pingsources\/([a-z0-9](?:[-.a-z0-9]{0,251}[a-z0-9])?)$/;

export function pingSource(namespace: string, name: string): string {
  return `/apis/v1/namespaces/${namespace}/pingsources/${name}`;
}

/** The namespace and name in a PingSource event source, or undefined when it is not one. */
export function parsePingSource(source: string): { namespace: string; name: string } | undefined {
  const match = sourcePattern.exec(source);
  return match ? { namespace: match[1]!, name: match[2]! } : undefined;
}

/** Every problem with an event that should be a ping, or the typed ping. */
export function validatePingEvent(event: CloudEventV1<unknown>): Validated<PingEvent> {
  const problems: string[] = [];
  if (event.type !== PING_EVENT_TYPE) {
    problems.push(`type ${JSON.stringify(event.type)} is not accepted here: expected ${PING_EVENT_TYPE}`);
  }
  const origin = typeof event.source === 'string' ? parsePingSource(event.source) : undefined;
  if (!origin) {
    problems.push(`source ${JSON.stringify(event.source)} is not a PingSource: expected /apis/v1/namespaces/<namespace>/pingsources/<name>`);
  }
  if (typeof event.id !== 'string' || event.id.length === 0) {
    problems.push('id is required');
  } else if (eventIdInKey(event.id).length > MAX_EVENT_ID_LENGTH) {
    const length = eventIdInKey(event.id).length;
    problems.push(
      `id is too long for an object key: it takes ${length} characters there (each character other than A-Z, a-z, 0-9 and ._~- takes 3 per UTF-8 byte): at most ${MAX_EVENT_ID_LENGTH} are accepted`,
    );
  }
  if (event.time === undefined) {
    problems.push('time is required: the snapshot is taken at the event time, so a redelivery captures the same instant');
  }
  const data = readJsonData(event, problems);
  if (data !== undefined) problems.push(...checkPingData(data));
  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    value: {
      id: event.id,
      source: event.source,
      namespace: origin!.namespace,
      name: origin!.name,
      time: event.time!,
      data: data ?? {},
    },
  };
}

/** The event's data as parsed JSON; undefined when it carries none (a PingSource without data). */
function readJsonData(event: CloudEventV1<unknown>, problems: string[]): unknown {
  const contentType = event.datacontenttype?.split(';')[0]?.trim().toLowerCase();
  const json = contentType === undefined || contentType === 'application/json' || contentType.endsWith('+json');
  if (event.data === undefined || event.data === null || event.data === '') return undefined;
  if (!json) {
    problems.push(`datacontenttype ${JSON.stringify(event.datacontenttype)} is not accepted: the ping data must be application/json`);
    return undefined;
  }
  if (typeof event.data === 'string') {
    // Binary mode with a content type the SDK has no parser for (parameters, +json) leaves the text.
    try {
      return JSON.parse(event.data) as unknown;
    } catch (err) {
      problems.push(`data is not valid JSON: ${(err as Error).message}`);
      return undefined;
    }
  }
  if (event.data instanceof Uint8Array || Buffer.isBuffer(event.data)) {
    problems.push('data must be JSON, not binary data');
    return undefined;
  }
  return event.data;
}

export interface PingEventInput {
  namespace: string;
  name: string;
  /** The PingSource's spec.data; omitted means a ping without data, as PingSource sends it. */
  data?: PingData;
  /** Defaults to now, as the adapter stamps the send time. */
  time?: Date | string;
  /** Defaults to a random UUID, as the adapter gives every tick a new one. */
  id?: string;
  /** spec.ceOverrides.extensions: extra attributes the adapter adds to every event. */
  extensions?: Record<string, string>;
}

/** A ping event as Knative's PingSource adapter builds it; send it with HTTP.binary as the adapter does. */
export function createPingEvent(input: PingEventInput): CloudEvent<PingData> {
  const time = input.time === undefined ? new Date() : new Date(input.time);
  if (Number.isNaN(time.getTime())) {
    throw new EventValidationError('ping event', [`time ${JSON.stringify(String(input.time))} is not a valid date`]);
  }
  const event = new CloudEvent<PingData>(
    {
      ...input.extensions,
      specversion: '1.0',
      type: PING_EVENT_TYPE,
      source: pingSource(input.namespace, input.name),
      id: input.id ?? randomUUID(),
      time: time.toISOString(),
      ...(input.data === undefined ? {} : { datacontenttype: 'application/json', data: input.data }),
    },
    // Validated below with every problem reported, rather than the SDK's first-failure throw.
    false,
  );
  const checked = validatePingEvent(event);
  const problems = [...cloudEventProblems(event), ...(checked.ok ? [] : checked.problems)];
  if (problems.length > 0) throw new EventValidationError('ping event', problems);
  return event;
}
