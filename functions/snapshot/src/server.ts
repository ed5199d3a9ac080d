// Wiring only: read the configuration, build the clients and the app, serve until SIGTERM, and let an
// in-flight snapshot reach the bucket before the process exits.
import { ConfigError } from '../../runtime/src/env.js';
import { serve, type Lifecycle } from '../../runtime/src/lifecycle.js';
import { createLogger } from '../../runtime/src/logger.js';
import { createApp } from './app.js';
import { loadConfig, type SnapshotConfig } from './config.js';
import { InFlight } from './in-flight.js';
import { createMetrics } from './metrics.js';
import { createPrometheusClient } from './prometheus.js';
import { createS3Client, createStore } from './store.js';

let config: SnapshotConfig;
try {
  config = loadConfig();
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`snapshot: ${err.message}\n`);
  process.exit(1);
}

const service = config.service ?? 'snapshot';
const log = createLogger({
  level: config.logLevel,
  fields: {
    service: 'snapshot',
    ...(config.service ? { kService: config.service } : {}),
    ...(config.revision ? { kRevision: config.revision } : {}),
  },
});

const inFlight = new InFlight();
let lifecycle: Lifecycle | undefined;
const app = createApp({
  prometheus: createPrometheusClient(config.prometheus),
  store: createStore({ client: createS3Client(config.s3), bucket: config.s3.bucket }),
  metrics: createMetrics(),
  log,
  queries: config.queries,
  gzip: config.gzip,
  source: `/promsnap/${service}`,
  ready: () => lifecycle?.accepting ?? false,
  inFlight,
});
lifecycle = await serve(app, {
  port: config.port,
  log,
  shutdownGraceMs: config.shutdownGraceMs,
  drain: () => inFlight.idle(),
});
log.info('snapshot ready', {
  prometheus: config.prometheus.url,
  s3: { endpoint: config.s3.endpoint, bucket: config.s3.bucket, region: config.s3.region },
  queries: config.queries,
  gzip: config.gzip,
  shutdownGraceMs: config.shutdownGraceMs,
});
