// The event the snapshot function replies with once a snapshot is durably stored. Our own type:
// reverse-DNS named and versioned, so a breaking change to its data gets a new type (…v2) rather than
// surprising consumers of v1.
import { CloudEvent, type CloudEventV1 } from 'cloudevents';
import { EventValidationError, schemaChecker, type Validated } from './validation.js';

export const SNAPSHOT_STORED_TYPE = 'dev.promsnap.snapshot.stored.v1';

export interface SnapshotStoredData {
  /** Bucket holding the snapshot. */
  bucket: string;
  /** Object key, `YYYY/MM/DD/HHmmssZ-<id>.json` (`.json.gz` when compressed). */
  key: string;
  /** Size of the stored object in bytes (compressed size when gzipped). */
  bytes: number;
  /** Number of series in the answers (vector and matrix results). */
  series: number;
  /** Time this delivery took, from receiving the ping to replying. */
  durationMs: number;
  /** The PromQL queries captured, in the order stored. */
  queries: string[];
  /** The instant captured: the ping event's time. */
  time: string;
  /** For a range export: the window of raw samples it holds, and how many. */
  range?: SnapshotStoredRange;
}

export interface SnapshotStoredRange {
  /** The range asked for (a Prometheus duration). */
  range: string;
  /** The window: start excluded, end (the tick) included; it starts earlier when it covers missed ticks. */
  start: string;
  end: string;
  samples: number;
}

export const snapshotStoredDataSchema = {
  $id: 'https://promsnap.dev/schemas/snapshot-stored-data.json',
  title: 'promsnap snapshot stored',
  description: `Data of ${SNAPSHOT_STORED_TYPE} events.`,
  type: 'object',
  additionalProperties: false,
  required: ['bucket', 'key', 'bytes', 'series', 'durationMs', 'queries', 'time'],
  properties: {
    bucket: { type: 'string', minLength: 3, maxLength: 63 },
    key: { type: 'string', minLength: 1, maxLength: 1024 },
    bytes: { type: 'integer', minimum: 0 },
    series: { type: 'integer', minimum: 0 },
    durationMs: { type: 'number', minimum: 0 },
    queries: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
    time: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?(Z|[+-]\\d{2}:\\d{2})$' },
    range: {
      type: 'object',
      additionalProperties: false,
      required: ['range', 'start', 'end', 'samples'],
      properties: {
        range: { type: 'string', minLength: 1 },
        start: { type: 'string', minLength: 1 },
        end: { type: 'string', minLength: 1 },
        samples: { type: 'integer', minimum: 0 },
      },
    },
  },
} as const;

const checkData = schemaChecker(snapshotStoredDataSchema, 'data');

export interface SnapshotStoredInput {
  /** Who stored it, e.g. `/promsnap/snapshot`. */
  source: string;
  /** The ping's id: a redelivered ping gets an identical reply, which consumers can deduplicate. */
  id: string;
  /** When the object was written (its Last-Modified), so repeated replies agree. */
  time: Date | string;
  data: SnapshotStoredData;
}

export function createSnapshotStoredEvent(input: SnapshotStoredInput): CloudEvent<SnapshotStoredData> {
  const problems = checkData(input.data);
  if (problems.length > 0) throw new EventValidationError('snapshot stored event', problems);
  return new CloudEvent<SnapshotStoredData>({
    specversion: '1.0',
    type: SNAPSHOT_STORED_TYPE,
    source: input.source,
    id: input.id,
    time: new Date(input.time).toISOString(),
    subject: input.data.key,
    datacontenttype: 'application/json',
    data: input.data,
  });
}

export function validateSnapshotStoredEvent(event: CloudEventV1<unknown>): Validated<CloudEventV1<SnapshotStoredData>> {
  const problems: string[] = [];
  if (event.type !== SNAPSHOT_STORED_TYPE) problems.push(`type ${JSON.stringify(event.type)} is not ${SNAPSHOT_STORED_TYPE}`);
  let data = event.data;
  if (typeof data === 'string') {
    try {
      data = JSON.parse(data) as unknown;
      problems.push(...checkData(data));
    } catch (err) {
      problems.push(`data is not valid JSON: ${(err as Error).message}`);
    }
  } else {
    problems.push(...checkData(data));
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, value: { ...event, data: data as SnapshotStoredData } };
}
