// What one ping delivery does, apart from HTTP: validate the event, check that it asks for nothing
// beyond what the operator allows (its queries, its instant), name the object after it, and either find
// the snapshot already stored (a redelivery) or query Prometheus at the event's time and stream the
// answer into the bucket. Returns the stored-snapshot event to reply with; throws RejectedEventError
// (4xx) or RetryableError (5xx) otherwise.
import { pipeline } from 'node:stream';
import { createGzip } from 'node:zlib';
import type { CloudEvent, CloudEventV1 } from 'cloudevents';
import { validatePingEvent, type PingEvent, type SnapshotStoredData } from '../../../events/src/index.js';
import type { Logger } from '../../runtime/src/logger.js';
import { createEnvelope, seriesFromTail } from './envelope.js';
import { RejectedEventError } from './errors.js';
import { snapshotKey } from './key.js';
import type { PrometheusClient } from './prometheus.js';
import { exportRange, requestedRange, type RangeDeps } from './range-export.js';
import type { ObjectInfo, SnapshotStore } from './store.js';
import { eventMetadata, storedFor, storedReply } from './stored-object.js';

export interface SnapshotDeps {
  prometheus: PrometheusClient;
  store: SnapshotStore;
  /** Queries captured when the ping's data names none. */
  queries: string[];
  gzip: boolean;
  /** CloudEvents source of the replies, e.g. /promsnap/snapshot. */
  source: string;
  log: Logger;
  /** Range exports: settings, the planning API and their metrics. */
  range: RangeDeps;
  limits: EventLimits;
}

/**
 * What a ping may ask for. Whoever can reach the function can send one, so an event never widens what
 * the function does: no query the operator has not allowed, no instant Prometheus cannot answer for or
 * that would stand as the newest snapshot ahead of the real ones.
 */
export interface EventLimits {
  /** Queries a ping's data.queries may name: an allow-list (empty: none), or 'any'. */
  allowedQueries: 'any' | readonly string[];
  /** How far past this clock a ping's time may be. */
  maxFutureMs: number;
  /** How far back Prometheus keeps data (its retention): older instants have nothing to capture. */
  retentionMs: number;
  /** The clock (milliseconds since the epoch); Date.now by default. */
  now?: () => number;
}

export interface SnapshotResult {
  reply: CloudEvent<SnapshotStoredData>;
  /** False when a previous delivery of the same ping had already stored it. */
  created: boolean;
}

/** Bytes read from an object's end to find its series total on a redelivery. */
const tailBytes = 256;

export async function takeSnapshot(deps: SnapshotDeps, event: CloudEventV1<unknown>, startedAt: number): Promise<SnapshotResult> {
  const checked = validatePingEvent(event);
  if (!checked.ok) {
    throw new RejectedEventError('invalid_event', 400, 'the event is not an acceptable ping', checked.problems);
  }
  const ping = checked.value;
  checkQueriesAllowed(ping.data.queries, deps.limits.allowedQueries);
  checkInstant(ping.time, deps.limits);
  const rangeMs = requestedRange(ping, deps.range.settings);
  if (rangeMs > 0) return exportRange(deps, ping, rangeMs, ping.data.queries ?? deps.queries, startedAt);
  const key = snapshotKey(ping.time, ping.id, deps.gzip);
  const queries = ping.data.queries ?? deps.queries;
  const log = deps.log.child({ eventId: ping.id, key });

  // A redelivery usually finds its snapshot: answer from the store without asking Prometheus again.
  const existing = await deps.store.head(key);
  if (existing) return alreadyStored(deps, ping, existing, queries, startedAt, log);

  // The first answer is awaited before anything is written, so an unreachable Prometheus or a refused
  // query fails the delivery without a single request to the store.
  const first = await deps.prometheus.query(queries[0]!, ping.time);
  const envelope = createEnvelope({
    id: ping.id,
    source: ping.source,
    time: ping.time,
    prometheusUrl: deps.prometheus.url,
    queries,
    answer: (index) => (index === 0 ? Promise.resolve(first) : deps.prometheus.query(queries[index]!, ping.time)),
    maxSeries: deps.prometheus.maxSeries,
  });
  const body = deps.gzip ? pipeline(envelope.stream, createGzip(), () => {}) : envelope.stream;
  let result;
  try {
    result = await deps.store.writeOnce(key, body, {
      contentType: deps.gzip ? 'application/gzip' : 'application/json',
      metadata: eventMetadata(ping),
    });
  } finally {
    first.destroy();
  }
  if (!result.created) return alreadyStored(deps, ping, result.object, queries, startedAt, log);

  const series = envelope.series();
  log.info('snapshot stored', { bytes: result.object.bytes, series, queries: queries.length, time: ping.time });
  return {
    created: true,
    reply: storedReply({ source: deps.source, bucket: deps.store.bucket }, ping, result.object, { series, queries, durationMs: Date.now() - startedAt }),
  };
}

function checkQueriesAllowed(queries: string[] | undefined, allowed: EventLimits['allowedQueries']): void {
  if (queries === undefined || allowed === 'any') return;
  const refused = queries.filter((q) => !allowed.includes(q));
  if (refused.length === 0) return;
  const problems = refused.map((q) => `query ${JSON.stringify(q)} is not allowed`);
  const message =
    allowed.length === 0
      ? 'the event names queries, and this function takes none from events: it runs its configured SNAPSHOT_QUERIES (the operator may allow some with SNAPSHOT_ALLOWED_QUERIES)'
      : 'the event names queries outside SNAPSHOT_ALLOWED_QUERIES';
  throw new RejectedEventError('query_not_allowed', 403, message, problems);
}

/** The instant must be one Prometheus has data for, and not ahead of this clock by more than the skew. */
function checkInstant(time: string, limits: EventLimits): void {
  const now = (limits.now ?? Date.now)();
  const at = Date.parse(time);
  const clock = new Date(now).toISOString();
  if (at > now + limits.maxFutureMs) {
    throw new RejectedEventError(
      'time_in_future',
      422,
      `the event time ${time} is ahead of this function's clock (${clock}) by more than the ${duration(limits.maxFutureMs)} allowed for clock skew (SNAPSHOT_MAX_FUTURE_MS): a snapshot is taken of an instant that has passed`,
    );
  }
  if (at < now - limits.retentionMs) {
    throw new RejectedEventError(
      'time_outside_retention',
      422,
      `the event time ${time} is before what Prometheus keeps (${duration(limits.retentionMs)} back from ${clock}, PROMETHEUS_RETENTION): there is nothing to capture`,
    );
  }
}

/** `15d`, `24h`, `90m`, `30s`, `1.5s`: the largest whole unit, as Prometheus writes durations. */
function duration(ms: number): string {
  if (ms > 0 && ms % 86_400_000 === 0 && ms / 86_400_000 !== 1) return `${ms / 86_400_000}d`;
  if (ms > 0 && ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms > 0 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${ms / 1000}s`;
}

async function alreadyStored(
  deps: SnapshotDeps,
  ping: PingEvent,
  object: ObjectInfo,
  queries: string[],
  startedAt: number,
  log: Logger,
): Promise<SnapshotResult> {
  const { id, source } = storedFor(object);
  if (id !== ping.id || source !== ping.source) {
    // Not this event's snapshot: leave it alone and refuse, since no retry can change which object the key names.
    throw new RejectedEventError(
      'key_conflict',
      412,
      `object ${object.key} already holds a snapshot of another event (id ${JSON.stringify(id)}, source ${JSON.stringify(source)})`,
    );
  }
  const series = seriesFromTail(await deps.store.tail(object.key, tailBytes, deps.gzip));
  if (series === undefined) log.warn('stored snapshot does not end with its series count', { key: object.key });
  log.info('snapshot already stored', { bytes: object.bytes });
  return {
    created: false,
    reply: storedReply({ source: deps.source, bucket: deps.store.bucket }, ping, object, { series: series ?? 0, queries, durationMs: Date.now() - startedAt }),
  };
}
