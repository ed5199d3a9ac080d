// The simulation service's metrics, on a Registry of its own so tests (and any second app in the same
// process) never share counts through prom-client's global registry. Names, labels and buckets are
// the reference service's, so dashboards and queries written for it keep working.
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const durationBucketsMs = [1, 2, 3, 4, 5, 10, 25, 50, 100, 250, 500, 1000];
export const requestLabelNames = ['method', 'route', 'statusCode'] as const;
export const durationLabelNames = ['method', 'route', 'code'] as const;

export interface SimulationMetrics {
  registry: Registry;
  requests: Counter<'method' | 'route' | 'statusCode'>;
  duration: Histogram<'method' | 'route' | 'code'>;
}

export interface MetricsOptions {
  /** Extra labels on every series (SIMULATION_LABELS, checked by labels.ts); `app` is always simulation. */
  labels?: Record<string, string>;
}

export function createMetrics(options: MetricsOptions = {}): SimulationMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ ...options.labels, app: 'simulation' });
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({
    name: 'simulation_app_requests_total',
    help: 'Total number of requests to the simulation app',
    labelNames: requestLabelNames,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'simulation_app_request_duration_milliseconds',
    help: 'Histogram of request durations for the simulation app in milliseconds',
    labelNames: durationLabelNames,
    buckets: durationBucketsMs,
    registers: [registry],
  });
  return { registry, requests, duration };
}
