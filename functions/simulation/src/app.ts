// The simulation service: a few routes whose traffic the monitoring pipeline watches. createApp only
// builds the request handler (the Express app, counted and timed); server.ts listens and shuts down.
import express, { type ErrorRequestHandler, type Express, type Request } from 'express';
import type { IncomingMessage, RequestListener } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../runtime/src/logger.js';
import type { LatencyRange } from './config.js';
import { drawLatencyMs } from './latency.js';
import type { SimulationMetrics } from './metrics.js';

/** The route label of every request no route matched: random URLs must not mint new series. */
export const UNMATCHED_ROUTE = '<unmatched>';

/**
 * Status label of a request whose client went away before the response was sent (nginx's
 * convention): counting it as the 200 Express had preset would report work that never reached anyone.
 */
export const CLIENT_CLOSED_STATUS = 499;

export interface AppDeps {
  metrics: SimulationMetrics;
  log: Logger;
  latency: LatencyRange;
  /** False once shutdown has begun (lifecycle.accepting), so /readyz sends traffic elsewhere. */
  ready: () => boolean;
  /** Randomness behind the simulated latency; tests may pin it. */
  random?: () => number;
}

export const routes = ['/', '/simulate-requests', '/error', '/metrics', '/healthz', '/readyz'] as const;

export function createApp(deps: AppDeps): RequestListener {
  const { metrics, log } = deps;
  const app = express();
  app.disable('x-powered-by');

  app.get('/', (_req, res) => {
    res.json({ service: 'simulation', routes });
  });

  app.get('/simulate-requests', async (_req, res) => {
    const latencyMs = drawLatencyMs(deps.latency, deps.random);
    log.debug('simulating work', { latencyMs });
    await sleep(latencyMs);
    res.json({ latencyMs });
  });

  app.get('/error', () => {
    // Thrown, not answered: the 500 goes through the same error handler a real fault would.
    throw new Error('simulated failure');
  });

  app.get('/metrics', async (_req, res, next) => {
    try {
      const body = await metrics.registry.metrics();
      // Prometheus 3 refuses a bare text/plain; the registry's type names the exposition version.
      res.set('Content-Type', metrics.registry.contentType).send(body);
    } catch (err) {
      next(err);
    }
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  app.get('/readyz', (_req, res) => {
    if (deps.ready()) res.json({ status: 'ready' });
    else res.status(503).json({ status: 'shutting down' });
  });

  app.use((req, res) => {
    res.status(404).json({ error: `no route for ${req.method} ${req.path}` });
  });

  app.use(handleErrors(log));
  return observeRequests(app, metrics, log);
}

/**
 * Counts and times every request, 404s and errors included, once its response is over. It wraps the
 * Express app rather than being mounted in it as middleware, which would add a layer to every
 * request's walk through the router (with this and performance.now() instead of hrtime.bigint(), the
 * bench's CPU per request went from 1.10-1.11x bare to 1.06-1.08x).
 */
function observeRequests(app: Express, metrics: SimulationMetrics, log: Logger): RequestListener {
  return (req, res) => {
    const start = performance.now();
    // 'close' follows 'finish' for a sent response and also fires alone for an aborted one.
    res.on('close', () => {
      const durationMs = performance.now() - start;
      const route = routeLabel(req);
      const status = String(res.writableFinished ? res.statusCode : CLIENT_CLOSED_STATUS);
      // Node's HTTP parser accepts only a fixed set of methods, so req.method is a bounded label.
      const method = req.method ?? 'UNKNOWN';
      metrics.record(method, route, status, durationMs);
      log.debug('request', { method, route, status: Number(status), durationMs });
    });
    app(req, res);
  };
}

/** The matched route's pattern, never the raw URL (Express leaves the route it matched on the request). */
function routeLabel(req: IncomingMessage | Request): string {
  const route = (req as Partial<Request>).route as { path?: unknown } | undefined;
  if (route?.path === undefined) return UNMATCHED_ROUTE;
  // Express keeps a route's path as declared: a string, a RegExp or an array of them.
  const declared = route.path as string | RegExp | Array<string | RegExp>;
  return ((req as Partial<Request>).baseUrl ?? '') + (Array.isArray(declared) ? declared.map(String).join(',') : String(declared));
}

function handleErrors(log: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, next) => {
    const fields = { method: req.method, route: routeLabel(req), err };
    if (res.headersSent) {
      // Too late for a status; Express's default handler closes the connection.
      log.error('request failed after the response started', fields);
      next(err);
      return;
    }
    const status = clientErrorStatus(err);
    if (status !== undefined) {
      log.warn('request rejected', fields);
      res.status(status).json({ error: (err as Error).message });
      return;
    }
    log.error('request failed', fields);
    // The body hides internals; the log above keeps them.
    res.status(500).json({ error: 'internal server error' });
  };
}

/** The 4xx status Express and its parsers attach to errors caused by the request itself. */
function clientErrorStatus(err: unknown): number | undefined {
  if (!(err instanceof Error)) return undefined;
  const status = (err as { status?: unknown; statusCode?: unknown }).status ?? (err as { statusCode?: unknown }).statusCode;
  return typeof status === 'number' && status >= 400 && status < 500 ? status : undefined;
}
