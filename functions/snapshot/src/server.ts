// Wiring only: read the configuration, build the clients and the app, serve until SIGTERM
// (functions/runtime), and let an in-flight snapshot reach the bucket before the process exits.
import { runFunction } from '../../runtime/src/contract.js';
import { createApp } from './app.js';
import { loadConfig } from './config.js';
import { InFlight } from './in-flight.js';
import { createMetrics } from './metrics.js';
import { createPrometheusClient } from './prometheus.js';
import { createPrometheusApi } from './prometheus-api.js';
import { createS3Client, createStore } from './store.js';

const inFlight = new InFlight();
await runFunction({
  name: 'snapshot',
  loadConfig,
  start: ({ config, log, ready }) => ({
    handler: createApp({
      prometheus: createPrometheusClient(config.prometheus),
      store: createStore({ client: createS3Client(config.s3), bucket: config.s3.bucket }),
      metrics: createMetrics(),
      log,
      queries: config.queries,
      gzip: config.gzip,
      range: { settings: config.range, api: createPrometheusApi({ url: config.prometheus.url, timeoutMs: config.prometheus.timeoutMs }) },
      source: `/promsnap/${config.service ?? 'snapshot'}`,
      limits: { ...config.events, retentionMs: config.prometheus.retentionMs },
      ready,
      inFlight,
    }),
    drain: () => inFlight.idle(),
    readyFields: {
      prometheus: config.prometheus.url,
      s3: { endpoint: config.s3.endpoint, bucket: config.s3.bucket, region: config.s3.region },
      queries: config.queries,
      gzip: config.gzip,
      range: config.range,
      allowedQueries: config.events.allowedQueries,
      maxSeries: config.prometheus.maxSeries,
      retention: config.prometheus.retention,
      maxFutureMs: config.events.maxFutureMs,
    },
  }),
});
