// The snapshot function's own metrics, on a private Registry (never prom-client's global one). Names
// are the contract's, which the alert rules in platform/monitoring/promsnap.rules.yml query.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { failureReasons, type FailureReason } from './errors.js';

export const outcomes = ['stored', 'duplicate', 'rejected', 'failed'] as const;
export type Outcome = (typeof outcomes)[number];

/** The reasons a dead letter can fail for: the sink never queries Prometheus. */
export const deadLetterFailureReasons = ['invalid_event', 'too_large', 'storage_unavailable', 'internal'] as const satisfies readonly FailureReason[];

/** The routes that read the bucket: the `route` label of snapshot_bad_requests_total. */
export const readRoutes = ['/lastdata', '/snapshots'] as const;

export interface SnapshotMetrics {
  registry: Registry;
  duration: Histogram;
  lastBytes: Gauge;
  lastSeries: Gauge;
  lastSuccess: Gauge;
  failures: Counter<'reason'>;
  requests: Counter<'outcome'>;
  deadLetters: Counter;
  deadLetterFailures: Counter<'reason'>;
  badRequests: Counter<'route'>;
}

export function createMetrics(): SnapshotMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ app: 'snapshot' });
  collectDefaultMetrics({ register: registry });
  const metrics: SnapshotMetrics = {
    registry,
    duration: new Histogram({
      name: 'snapshot_duration_seconds',
      help: 'Time from receiving a ping to replying, for snapshots stored or found already stored',
      // From a small Prometheus (tens of ms) to a million series (about 10 s) and a slow store.
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers: [registry],
    }),
    lastBytes: new Gauge({
      name: 'snapshot_last_bytes',
      help: 'Size in bytes of the object holding the last successful snapshot',
      registers: [registry],
    }),
    lastSeries: new Gauge({
      name: 'snapshot_last_series',
      help: 'Number of series in the last successful snapshot',
      registers: [registry],
    }),
    lastSuccess: new Gauge({
      name: 'snapshot_last_success_timestamp_seconds',
      help: 'Unix time of the last successful snapshot (0 until one succeeds in this process)',
      registers: [registry],
    }),
    failures: new Counter({
      name: 'snapshot_failures_total',
      help: 'Snapshot deliveries that failed, by reason',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    requests: new Counter({
      name: 'snapshot_requests_total',
      help: 'Ping deliveries by outcome: stored, duplicate (already stored), rejected (4xx) or failed (5xx)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    deadLetters: new Counter({
      name: 'snapshot_dead_letters_total',
      help: 'Events received by the dead-letter sink (Knative gave up delivering them)',
      registers: [registry],
    }),
    deadLetterFailures: new Counter({
      name: 'snapshot_dead_letter_failures_total',
      help: 'Dead letters the sink could not store, by reason; once Knative stops retrying them they are lost',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    badRequests: new Counter({
      name: 'snapshot_bad_requests_total',
      help: 'Reads of the bucket (GET /lastdata, /snapshots) refused for their parameters (400), by route',
      labelNames: ['route'] as const,
      registers: [registry],
    }),
  };
  // Every series exists from the start, so rate() and increase() see the first failure as a change.
  for (const reason of failureReasons) metrics.failures.inc({ reason } satisfies { reason: FailureReason }, 0);
  for (const outcome of outcomes) metrics.requests.inc({ outcome }, 0);
  for (const reason of deadLetterFailureReasons) metrics.deadLetterFailures.inc({ reason }, 0);
  for (const route of readRoutes) metrics.badRequests.inc({ route }, 0);
  return metrics;
}
