import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Histogram, Registry } from 'prom-client';
import { durationBucketsMs } from '../src/metrics.js';
import { RequestMetrics } from '../src/request-metrics.js';

const names = {
  requests: 'simulation_app_requests_total',
  requestsHelp: 'Total number of requests to the simulation app',
  duration: 'simulation_app_request_duration_milliseconds',
  durationHelp: 'Histogram of request durations for the simulation app in milliseconds',
};

/** prom-client's own Counter and Histogram, fed the same requests: what the exposition must be. */
function promClient(registry: Registry) {
  const counter = new Counter({
    name: names.requests,
    help: names.requestsHelp,
    labelNames: ['method', 'route', 'statusCode'] as const,
    registers: [registry],
  });
  const histogram = new Histogram({
    name: names.duration,
    help: names.durationHelp,
    labelNames: ['method', 'route', 'code'] as const,
    buckets: durationBucketsMs,
    registers: [registry],
  });
  return (method: string, route: string, status: string, ms: number) => {
    counter.inc({ method, route, statusCode: status });
    histogram.observe({ method, route, code: status }, ms);
  };
}

test('requests are exposed exactly as prom-client exposes its own counter and histogram, default labels included', async () => {
  const ours = new Registry();
  const theirs = new Registry();
  for (const r of [ours, theirs]) r.setDefaultLabels({ team: 'payments', app: 'simulation' });
  const metrics = new RequestMetrics(ours, names, durationBucketsMs);
  const reference = promClient(theirs);
  const requests: Array<[string, string, string, number]> = [
    ['GET', '/', '200', 0.04],
    ['GET', '/simulate-requests', '200', 250],
    ['GET', '/simulate-requests', '200', 250.0001],
    ['GET', '/error', '500', 1000],
    ['POST', '<unmatched>', '404', 1e6],
    ['GET', '/', '499', 0],
    ['GET', '/', '200', 3.5],
    ['GET', 'a "quoted" \\ route\n', '200', 7],
  ];
  for (const [method, route, status, ms] of requests) {
    metrics.record(method, route, status, ms);
    reference(method, route, status, ms);
  }
  assert.equal(await ours.metrics(), await theirs.metrics());
  // As JSON too, but for prom-client's histogram's empty exemplar fields.
  const withoutExemplars = (json: unknown) => JSON.parse(JSON.stringify(json, (key, value: unknown) => (key === 'exemplar' ? undefined : value))) as unknown;
  assert.deepEqual(withoutExemplars(await ours.getMetricsAsJSON()), withoutExemplars(await theirs.getMetricsAsJSON()));
});

test('the prom-client calls of other code (inc, observe, an increase by 0) show the same series', async () => {
  const ours = new Registry();
  const theirs = new Registry();
  const metrics = new RequestMetrics(ours, names, durationBucketsMs);
  const counter = new Counter({ name: names.requests, help: names.requestsHelp, labelNames: ['method', 'route', 'statusCode'] as const, registers: [theirs] });
  const histogram = new Histogram({
    name: names.duration,
    help: names.durationHelp,
    labelNames: ['method', 'route', 'code'] as const,
    buckets: durationBucketsMs,
    registers: [theirs],
  });
  for (const [r, value] of [
    ['/a', 0],
    ['/b', 2],
  ] as const) {
    metrics.requests.inc({ method: 'GET', route: r, statusCode: '200' }, value);
    counter.inc({ method: 'GET', route: r, statusCode: '200' }, value);
  }
  metrics.duration.observe({ method: 'GET', route: '/c', code: '200' }, 12);
  histogram.observe({ method: 'GET', route: '/c', code: '200' }, 12);
  assert.equal(await ours.metrics(), await theirs.metrics());
  assert.throws(() => metrics.requests.inc({ method: 'GET', route: '/a', statusCode: '200' }, -1), /cannot be increased/);
  ours.resetMetrics();
  assert.equal(
    await ours.metrics(),
    `# HELP ${names.requests} ${names.requestsHelp}\n# TYPE ${names.requests} counter\n\n# HELP ${names.duration} ${names.durationHelp}\n# TYPE ${names.duration} histogram\n`,
  );
});
