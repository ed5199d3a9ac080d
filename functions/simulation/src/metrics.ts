// The simulation service's metrics, on a Registry of its own so tests (and any second app in the same
// process) never share counts through prom-client's global registry. Names, labels and buckets are
// the reference service's, so dashboards and queries written for it keep working.
import { Registry, collectDefaultMetrics } from 'prom-client';
import { RequestMetrics, type DurationLabels, type RequestLabels } from './request-metrics.js';

export const durationBucketsMs = [1, 2, 3, 4, 5, 10, 25, 50, 100, 250, 500, 1000];
export const requestLabelNames = ['method', 'route', 'statusCode'] as const;
export const durationLabelNames = ['method', 'route', 'code'] as const;

export interface SimulationMetrics {
  registry: Registry;
  requests: { inc(labels: RequestLabels, value?: number): void };
  duration: { observe(labels: DurationLabels, value: number): void };
  /** Counts and times one request (both metrics at once): what every request does. */
  record(method: string, route: string, status: string, durationMs: number): void;
}

export interface MetricsOptions {
  /** Extra labels on every series (SIMULATION_LABELS, checked by labels.ts); `app` is always simulation. */
  labels?: Record<string, string>;
}

export function createMetrics(options: MetricsOptions = {}): SimulationMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ ...options.labels, app: 'simulation' });
  collectDefaultMetrics({ register: registry });
  const request = new RequestMetrics(
    registry,
    {
      requests: 'simulation_app_requests_total',
      requestsHelp: 'Total number of requests to the simulation app',
      duration: 'simulation_app_request_duration_milliseconds',
      durationHelp: 'Histogram of request durations for the simulation app in milliseconds',
    },
    durationBucketsMs,
  );
  return { registry, requests: request.requests, duration: request.duration, record: (m, r, s, d) => request.record(m, r, s, d) };
}
