// Metrics of range exports, on the function's registry beside its other metrics (metrics.ts).
import { Counter, Gauge, type Registry } from 'prom-client';

export const rangeQueryKinds = ['names', 'count', 'labels', 'part'] as const;

export interface RangeMetrics {
  queries: Counter<'kind'>;
  splits: Counter;
  caughtUp: Counter;
  lastSamples: Gauge;
  lastParts: Gauge;
}

export function createRangeMetrics(registry: Registry): RangeMetrics {
  const metrics: RangeMetrics = {
    queries: new Counter({
      name: 'snapshot_range_queries_total',
      help: 'Requests range exports made to Prometheus, by kind: names and labels (index only), count (planning), part (samples exported)',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    splits: new Counter({
      name: 'snapshot_range_part_splits_total',
      help: 'Parts of range exports split again because Prometheus refused them as loading too many samples',
      registers: [registry],
    }),
    caughtUp: new Counter({
      name: 'snapshot_range_windows_caught_up_total',
      help: 'Windows of missed ticks that a later range export covered',
      registers: [registry],
    }),
    lastSamples: new Gauge({
      name: 'snapshot_last_samples',
      help: 'Samples in the last range export stored (0 until one is)',
      registers: [registry],
    }),
    lastParts: new Gauge({
      name: 'snapshot_last_parts',
      help: 'Queries (parts) the last range export stored was split into',
      registers: [registry],
    }),
  };
  for (const kind of rangeQueryKinds) metrics.queries.inc({ kind }, 0);
  return metrics;
}
