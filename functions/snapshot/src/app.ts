// The snapshot function's HTTP surface. createApp only builds the Express app; server.ts listens.
//   POST /              ping events in (binary or structured mode), stored-snapshot event out
//   POST /dead-letters  Knative's dead-letter sink: keeps each event under dead-letters/
//   GET  /lastdata      the newest snapshot, streamed from the bucket
//   GET  /snapshots     snapshots in time order, paginated (?limit=&after=<key>)
//   GET  /metrics, /healthz, /readyz
import express, { type ErrorRequestHandler, type Express, type Request, type RequestHandler, type Response } from 'express';
import { HTTP, type Headers } from 'cloudevents';
import { encodeAttributeHeaders, receiveEvent } from '../../../events/src/index.js';
import type { Logger } from '../../runtime/src/logger.js';
import { storeDeadLetter } from './dead-letters.js';
import { BadRequestError, RejectedEventError, bodyRefusal, errorHandler, failureReason } from './errors.js';
import { takeSnapshot, type EventLimits } from './handler.js';
import { parseSnapshotKey } from './key.js';
import { InFlight } from './in-flight.js';
import { readRoutes, type SnapshotMetrics } from './metrics.js';
import type { PrometheusClient } from './prometheus.js';
import { createPrometheusApi } from './prometheus-api.js';
import { rangeDefaults } from './range-config.js';
import type { RangeDeps } from './range-export.js';
import { createRangeMetrics } from './range-metrics.js';
import type { SnapshotStore } from './store.js';

export interface AppDeps {
  prometheus: PrometheusClient;
  store: SnapshotStore;
  metrics: SnapshotMetrics;
  log: Logger;
  queries: string[];
  gzip: boolean;
  /** CloudEvents source of the replies. */
  source: string;
  /** What an event may ask for: queries, and how far ahead or back its instant may be. */
  limits: EventLimits;
  /** False once shutdown has begun (lifecycle.accepting), so /readyz sends traffic elsewhere. */
  ready: () => boolean;
  /** Snapshots in progress; server.ts waits on it during shutdown. */
  inFlight?: InFlight;
  /** Range exports (range-export.ts); by default rangeDefaults, planned through the same Prometheus. */
  range?: Partial<Omit<RangeDeps, 'metrics'>>;
}

export const maxEventBytes = '1mb';
const maxPageSize = 1000;
const defaultPageSize = 100;

export function createApp(deps: AppDeps): Express {
  const { metrics, log, store } = deps;
  const inFlight = deps.inFlight ?? new InFlight();
  const range: RangeDeps = {
    settings: rangeDefaults,
    api: createPrometheusApi({ url: deps.prometheus.url, timeoutMs: 30_000 }),
    ...deps.range,
    metrics: createRangeMetrics(metrics.registry),
  };
  const app = express();
  app.disable('x-powered-by');
  // Events arrive with any content type (binary mode carries the data's own); the SDK reads the text.
  const readText = express.text({ type: () => true, limit: maxEventBytes });
  const eventBody: RequestHandler = (req, res, next) => readText(req, res, (err?: unknown) => next(err === undefined ? undefined : bodyRefusal(err)));

  // Every failed delivery is counted here, one the body parser refused before the handler ran too.
  const countFailedDelivery: ErrorRequestHandler = (err, _req, _res, next) => {
    metrics.failures.inc({ reason: failureReason(err) });
    metrics.requests.inc({ outcome: err instanceof RejectedEventError ? 'rejected' : 'failed' });
    next(err);
  };

  const deliver: RequestHandler = async (req, res) => {
    const startedAt = Date.now();
    const received = receiveEvent(messageOf(req));
    if (!received.ok) throw new RejectedEventError('invalid_event', 400, 'the request is not a valid CloudEvent', received.problems);
    const result = await inFlight.run(() => takeSnapshot({ ...deps, range }, received.value.event, startedAt));
    metrics.duration.observe((Date.now() - startedAt) / 1000);
    const data = result.reply.data!;
    metrics.requests.inc({ outcome: result.created ? 'stored' : 'duplicate' });
    metrics.lastBytes.set(data.bytes);
    metrics.lastSeries.set(data.series);
    metrics.lastSuccess.set(Date.now() / 1000);
    const message = HTTP.binary(result.reply);
    // The reply's id is the ping's, which may hold any character: encoded as the HTTP binding says.
    res.status(200).set(encodeAttributeHeaders(message.headers)).send(message.body);
  };

  app.post('/', eventBody, deliver, countFailedDelivery);

  // A dead letter the sink cannot keep is the last trace of an event: never only a log line either.
  const countFailedDeadLetter: ErrorRequestHandler = (err, _req, _res, next) => {
    metrics.deadLetterFailures.inc({ reason: failureReason(err) });
    next(err);
  };

  const keepDeadLetter: RequestHandler = async (req, res) => {
    const received = receiveEvent(messageOf(req));
    if (!received.ok) throw new RejectedEventError('invalid_event', 400, 'the request is not a valid CloudEvent', received.problems);
    const stored = await inFlight.run(() => storeDeadLetter(store, received.value.event, new Date()));
    if (stored.created) metrics.deadLetters.inc();
    log.error('dead letter received', {
      key: stored.key,
      created: stored.created,
      eventId: received.value.event.id,
      eventType: received.value.event.type,
      eventSource: received.value.event.source,
      error: stored.record.error,
    });
    res.status(202).json({ bucket: store.bucket, key: stored.key, created: stored.created });
  };

  app.post('/dead-letters', eventBody, keepDeadLetter, countFailedDeadLetter);

  // Reads refused for their parameters are counted by route; they never reach the store.
  const countBadRequest =
    (route: (typeof readRoutes)[number]): ErrorRequestHandler =>
    (err, _req, _res, next) => {
      if (err instanceof BadRequestError) metrics.badRequests.inc({ route });
      next(err);
    };

  const lastData: RequestHandler = async (req, res) => {
    queryParameters(req, []);
    // A snapshot for a later instant than an event may name (one stored before such events were
    // refused) is passed over: the newest is the newest of the instants that have come.
    const bound = new Date(Date.now() + deps.limits.maxFutureMs);
    // The newest stored instant, whether an instant snapshot's or a range export's tick.
    const [snapshot, range] = await Promise.all([store.newestSnapshot(bound), store.newestRangeExport(bound)]);
    const newest = range && (!snapshot || range.time > snapshot.time) ? range : snapshot;
    const opened = newest && (await store.open(newest.key));
    if (!opened) {
      res.status(404).json({ error: `no snapshot stored in bucket ${store.bucket} yet` });
      return;
    }
    // setHeader, not res.set: the stored type goes out as stored (Express would append a charset).
    res.status(200);
    res.setHeader('Content-Type', opened.info.contentType ?? 'application/json');
    res.setHeader('Content-Length', String(opened.info.bytes));
    res.setHeader('Last-Modified', opened.info.lastModified.toUTCString());
    res.setHeader('X-Snapshot-Key', opened.info.key);
    res.setHeader('X-Snapshot-Time', newest.time);
    await streamTo(opened.body, res, log);
  };

  app.get('/lastdata', lastData, countBadRequest('/lastdata'));

  const listSnapshots: RequestHandler = async (req, res) => {
    const params = queryParameters(req, ['limit', 'after']);
    const problems: string[] = [];
    const limitText = params['limit'];
    const limit = limitText === undefined ? defaultPageSize : /^\d{1,4}$/.test(limitText) ? Number(limitText) : NaN;
    if (!(limit >= 1 && limit <= maxPageSize)) problems.push(`limit must be a whole number from 1 to ${maxPageSize}, not ${JSON.stringify(limitText)}`);
    const after = params['after'];
    // Only a key this function writes, as a previous page's `next` gives it: never text the store
    // would read as a path of its own (`..`) or refuse.
    if (after !== undefined && parseSnapshotKey(after) === undefined) {
      problems.push(`after ${JSON.stringify(after.slice(0, 100))} must be a snapshot key as a previous page's next gives it (YYYY/MM/DD/HHmmssZ-<id>.json)`);
    }
    if (problems.length > 0) throw new BadRequestError(problems);
    const page = await store.listSnapshots({ limit, ...(after !== undefined ? { after } : {}) });
    res.json({ bucket: store.bucket, items: page.items, next: page.next });
  };

  app.get('/snapshots', listSnapshots, countBadRequest('/snapshots'));

  app.get('/metrics', async (_req, res) => {
    try {
      const body = await metrics.registry.metrics();
      // Prometheus 3 refuses a bare text/plain; the registry's type names the exposition version.
      res.set('Content-Type', metrics.registry.contentType).send(body);
    } catch (err) {
      log.error('metrics collection failed', { err });
      res.status(500).send('metrics collection failed');
    }
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  // Ready means "send me events": false while draining. Dependencies are not checked here: a pod
  // taken out of rotation because MinIO blinked would only turn retryable 503s into routing errors.
  app.get('/readyz', (_req, res) => {
    const ready = deps.ready();
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'shutting down', inFlight: inFlight.size });
  });

  app.use((req: Request, res: Response) => {
    res.status(404).json({ error: `no route for ${req.method} ${req.path}` });
  });
  app.use(errorHandler(log));
  return app;
}

/**
 * The query parameters of a read, each given once and each one it knows; anything else is refused,
 * so a mistyped parameter is an answer, not silently the default.
 */
function queryParameters(req: Request, known: readonly string[]): Record<string, string> {
  const problems: string[] = [];
  const params: Record<string, string> = {};
  for (const [name, value] of new URLSearchParams(req.originalUrl.split('?')[1] ?? '')) {
    if (!known.includes(name))
      problems.push(
        `unknown parameter ${JSON.stringify(name.slice(0, 100))}${known.length > 0 ? ` (known: ${known.join(', ')})` : ` (${req.path} takes none)`}`,
      );
    else if (Object.hasOwn(params, name)) problems.push(`parameter ${name} is given more than once`);
    else params[name] = value;
  }
  if (problems.length > 0) throw new BadRequestError([...new Set(problems)]);
  return params;
}

function messageOf(req: Request): { headers: Headers; body: string } {
  return { headers: req.headers, body: typeof req.body === 'string' ? req.body : '' };
}

/** Streams body into res; a failure half-way can only cut the response (its status is already sent). */
async function streamTo(body: NodeJS.ReadableStream & { destroy(err?: Error): void }, res: Response, log: Logger): Promise<void> {
  await new Promise<void>((resolve) => {
    body.on('error', (err: Error) => {
      log.error('streaming an object failed', { err });
      res.destroy(err);
      resolve();
    });
    res.on('close', () => {
      body.destroy();
      resolve();
    });
    body.pipe(res);
  });
}
