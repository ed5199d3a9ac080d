// Wiring only: read the configuration, build the app, serve it until SIGTERM.
import { ConfigError } from '../../runtime/src/env.js';
import { serve, type Lifecycle } from '../../runtime/src/lifecycle.js';
import { createLogger } from '../../runtime/src/logger.js';
import { createApp } from './app.js';
import { loadConfig, type SimulationConfig } from './config.js';
import { createMetrics } from './metrics.js';

let config: SimulationConfig;
try {
  config = loadConfig();
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`simulation: ${err.message}\n`);
  process.exit(1);
}

const log = createLogger({
  level: config.logLevel,
  fields: {
    service: 'simulation',
    ...(config.service ? { kService: config.service } : {}),
    ...(config.revision ? { kRevision: config.revision } : {}),
  },
});

let lifecycle: Lifecycle | undefined;
const app = createApp({
  metrics: createMetrics({ labels: config.labels }),
  log,
  latency: config.latency,
  ready: () => lifecycle?.accepting ?? false,
});
lifecycle = await serve(app, { port: config.port, log, shutdownGraceMs: config.shutdownGraceMs });
log.info('simulation ready', { latency: config.latency, labels: config.labels, shutdownGraceMs: config.shutdownGraceMs });
