// Wiring only: read the configuration, build the app, serve it until SIGTERM (functions/runtime).
import { runFunction } from '../../runtime/src/contract.js';
import { createApp } from './app.js';
import { loadConfig } from './config.js';
import { createMetrics } from './metrics.js';

await runFunction({
  name: 'simulation',
  loadConfig,
  start: ({ config, log, ready }) => ({
    handler: createApp({ metrics: createMetrics({ labels: config.labels }), log, latency: config.latency, ready }),
    readyFields: { latency: config.latency, labels: config.labels },
  }),
});
