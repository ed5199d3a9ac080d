// The simulation's `/` route in the same Express set-up without instrumentation (no request counting,
// no prom-client), served by the same runtime: the "bare" side of the instrumentation
// overhead ratio. Everything else is kept equal so the difference is the instrumentation alone.
import express from 'express';
import { serve, type Lifecycle } from '../functions/runtime/src/lifecycle.js';
import { createLogger } from '../functions/runtime/src/logger.js';
import { routes } from '../functions/simulation/src/app.js';

const port = Number(process.env['PORT'] ?? 8080);
const log = createLogger({ level: 'warn', fields: { service: 'bench-bare' } });
let lifecycle: Lifecycle | undefined;

const app = express();
app.disable('x-powered-by');
app.get('/', (_req, res) => {
  res.json({ service: 'simulation', routes });
});
app.get('/readyz', (_req, res) => {
  if (lifecycle?.accepting ?? true) res.json({ status: 'ready' });
  else res.status(503).json({ status: 'shutting down' });
});
app.use((req, res) => {
  res.status(404).json({ error: `no route for ${req.method} ${req.path}` });
});
lifecycle = await serve(app, { port, log, shutdownGraceMs: 5_000 });
