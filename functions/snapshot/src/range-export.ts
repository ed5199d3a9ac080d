// What a ping asking for a range does: export every raw sample of its window into one object.
//
// The window is the tick's own, (tick - range, tick] with the tick the ping's time floored to the
// range (archive/src/window.ts), reaching back over ticks whose export is missing, up to the
// catch-up bound. The object is keyed by PingSource, range and tick, so every delivery of the ping,
// and any other ping of the same tick, names it: a redelivery finds it, and the next tick can see
// whether it exists. The key names no selectors, so the object records them (metadata, and its
// header): a ping of the tick asking for other selectors finds the key taken (412 key_conflict), and
// the next tick does not count such an object as covering its window. The samples are read only once the window has settled (the last scrapes in it
// are stamped when they start but stored when they end), with one query per part of the split plan
// (split-plan.ts), each answer streamed into the object in order.
import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream';
import { createGunzip, createGzip } from 'node:zlib';
import type { CloudEvent } from 'cloudevents';
import {
  ExportReader,
  formatDuration,
  NotAnExportError,
  RANGE_KIND,
  rangeFolder,
  rangeKey,
  instantPath,
  parseRangeKey,
  exportWindow,
  tickOf,
  windowsCaughtUp,
  type Window,
} from '../../../archive/src/index.js';
import type { PingEvent, SnapshotStoredData } from '../../../events/src/index.js';
import type { Logger } from '../../runtime/src/logger.js';
import { RejectedEventError, RetryableError } from './errors.js';
import { countsFromTail, streamExport, type Answer } from './export-stream.js';
import type { PrometheusApi } from './prometheus-api.js';
import type { PrometheusClient } from './prometheus.js';
import { checkRange, rangeAllowed, type RangeSettings } from './range-config.js';
import type { RangeMetrics } from './range-metrics.js';
import { parseSelector, SelectorError } from './selector.js';
import { partQuery, SplitPlanner, tooManySamples, type Part } from './split-plan.js';
import type { ObjectInfo, SnapshotStore } from './store.js';
import { eventMetadata, storedFor, storedReply } from './stored-object.js';

export interface RangeDeps {
  settings: RangeSettings;
  api: PrometheusApi;
  metrics: RangeMetrics;
  /** Waits before reading a window that has not settled; tests replace it. */
  sleep?: (ms: number) => Promise<void>;
}

export interface RangeExportDeps {
  prometheus: PrometheusClient;
  store: SnapshotStore;
  gzip: boolean;
  source: string;
  log: Logger;
  range: RangeDeps;
}

export interface RangeExportResult {
  reply: CloudEvent<SnapshotStoredData>;
  created: boolean;
}

// Metadata beyond the event's (stored-object.ts): where the window starts, as catch-up made it.
const META_START = 'window-start';
// What the export is of beyond its key: a digest of its selectors (metadata values are short and ASCII).
const META_SELECTORS = 'selectors-sha256';

/** The selectors' digest: the same set, in any order and with repeats, gives the same one. */
export function selectorsDigest(selectors: readonly string[]): string {
  return createHash('sha256')
    .update(JSON.stringify([...new Set(selectors)].sort()))
    .digest('hex');
}

/**
 * The range a ping asks for, in ms (0: an instant snapshot): a 400 when it is no range, a 403 when it
 * is one the operator has not allowed (SNAPSHOT_RANGE, SNAPSHOT_ALLOWED_RANGES).
 */
export function requestedRange(ping: PingEvent, settings: RangeSettings): number {
  if (ping.data.range === undefined) return settings.defaultRangeMs;
  const checked = checkRange(ping.data.range, settings.maxRangeMs);
  if ('problem' in checked) throw new RejectedEventError('invalid_event', 400, `data.range ${checked.problem}`);
  if (!rangeAllowed(checked.ms, settings)) {
    const allowed = [...new Set([settings.defaultRangeMs, ...settings.allowedRangesMs].filter((ms) => ms > 0))].map(formatDuration);
    throw new RejectedEventError(
      'range_not_allowed',
      403,
      `data.range ${JSON.stringify(ping.data.range)} is not a range this function exports: ${allowed.length ? `it takes ${allowed.join(', ')} (SNAPSHOT_RANGE, SNAPSHOT_ALLOWED_RANGES)` : 'it takes none from events (SNAPSHOT_RANGE and SNAPSHOT_ALLOWED_RANGES are unset)'} or 0 for an instant snapshot`,
    );
  }
  return checked.ms;
}

export async function exportRange(deps: RangeExportDeps, ping: PingEvent, rangeMs: number, selectors: string[], startedAt: number): Promise<RangeExportResult> {
  const { settings, metrics } = deps.range;
  const bases = selectors.map((selector) => {
    try {
      return parseSelector(selector);
    } catch (err) {
      if (!(err instanceof SelectorError)) throw err;
      throw new RejectedEventError('invalid_event', 400, `a range export takes series selectors, whose raw samples it stores: ${err.message}`);
    }
  });
  const tick = tickOf(Date.parse(ping.time), rangeMs);
  const key = rangeKey({ namespace: ping.namespace, name: ping.name, rangeMs, tick, gzip: deps.gzip });
  const log = deps.log.child({ eventId: ping.id, key });

  const digest = selectorsDigest(selectors);
  const existing = await deps.store.head(key);
  if (existing) return alreadyStored(deps, ping, existing, selectors, startedAt, log);

  const settleLeft = tick + settings.settleMs - Date.now();
  if (settleLeft > 0) {
    log.info('waiting for the window to settle', { ms: settleLeft });
    await (deps.range.sleep ?? sleep)(settleLeft);
  }

  const window = exportWindow(tick, rangeMs, settings.catchUpMs, await previousEnd(deps, ping, rangeMs, tick, key, digest));
  const caughtUp = windowsCaughtUp(window, rangeMs);
  if (caughtUp > 0) log.warn('covering missed ticks', { windows: caughtUp, start: iso(window.start) });

  // The plan is made, and the first part asked for, before anything is written: an unreachable
  // Prometheus or a refused query fails the delivery without a single request to the store.
  // A part never holds more series than one answer may (SNAPSHOT_MAX_SERIES, Prometheus's `limit`).
  const maxSeries = deps.prometheus.maxSeries ?? Number.POSITIVE_INFINITY;
  const planner = new SplitPlanner(countingApi(deps.range.api, metrics), { series: Math.min(settings.partSeries, maxSeries), samples: settings.partSamples });
  async function* parts(): AsyncGenerator<Part> {
    for (const base of bases) yield* planner.plan(base, window);
  }
  const answers = answerParts(deps, parts(), window, planner, metrics);
  const first = await answers.next();
  async function* inOrder(): AsyncGenerator<Answer> {
    try {
      if (first.done) return;
      yield first.value;
      for (let next = await answers.next(); !next.done; next = await answers.next()) yield next.value;
    } finally {
      await answers.return(undefined);
    }
  }

  const exported = streamExport({
    header: {
      kind: RANGE_KIND,
      id: ping.id,
      source: ping.source,
      time: ping.time,
      prometheus: deps.prometheus.url,
      selectors,
      range: formatDuration(rangeMs),
      start: iso(window.start),
      end: iso(window.end),
    },
    answers: inOrder(),
    maxSeries: deps.prometheus.maxSeries,
  });
  const body = deps.gzip ? pipeline(exported.stream, createGzip(), () => {}) : exported.stream;
  const result = await deps.store.writeOnce(key, body, {
    contentType: deps.gzip ? 'application/gzip' : 'application/json',
    metadata: {
      ...eventMetadata(ping),
      [META_START]: iso(window.start),
      [META_SELECTORS]: digest,
    },
  });
  if (!result.created) return alreadyStored(deps, ping, result.object, selectors, startedAt, log);

  const counts = { series: exported.series(), samples: exported.samples() };
  metrics.caughtUp.inc(caughtUp);
  metrics.lastSamples.set(counts.samples);
  metrics.lastParts.set(exported.queries());
  log.info('range export stored', {
    bytes: result.object.bytes,
    ...counts,
    parts: exported.queries(),
    start: iso(window.start),
    end: iso(window.end),
    caughtUp,
    ...planner.stats,
  });
  return {
    created: true,
    reply: reply(deps, ping, result.object, { ...counts, selectors, rangeMs, window, durationMs: Date.now() - startedAt }),
  };
}

/**
 * The answers of the parts in order. While one answer streams into the object, the next part is
 * planned and asked for: Prometheus evaluates it on its own cores meanwhile, instead of waiting to be
 * read and then making the function wait, so at most two parts are in Prometheus's memory at once. A
 * part Prometheus refuses as too large is split in its place.
 */
async function* answerParts(
  deps: RangeExportDeps,
  parts: AsyncIterable<Part>,
  window: Window,
  planner: SplitPlanner,
  metrics: RangeMetrics,
): AsyncGenerator<Answer> {
  const split: Part[] = [];
  const planned = parts[Symbol.asyncIterator]();
  const time = iso(window.end);
  const next = async (): Promise<Answer | undefined> => {
    for (;;) {
      let part = split.shift();
      if (part === undefined) {
        const step = await planned.next();
        if (step.done) return undefined;
        part = step.value;
      }
      const query = partQuery(part, window);
      try {
        metrics.queries.inc({ kind: 'part' });
        return { query, answer: await deps.prometheus.query(query, time) };
      } catch (err) {
        const smaller = tooManySamples(err) ? await planner.split(part, window) : undefined;
        if (!smaller) throw err;
        metrics.splits.inc();
        deps.log.info('part split: Prometheus refused it as too large', { query: query.slice(0, 300), into: smaller.length });
        split.unshift(...smaller);
      }
    }
  };
  let ahead = next();
  try {
    for (;;) {
      const current = await ahead;
      if (!current) return;
      ahead = next();
      // A failure of the part asked ahead surfaces when it is reached, not as an unhandled rejection.
      ahead.catch(() => undefined);
      yield current;
    }
  } finally {
    // Stopped early (the upload failed): the part asked ahead is cancelled, not left to stream.
    void ahead.then(
      (answer) => answer?.answer.destroy(),
      () => undefined,
    );
  }
}

/**
 * The end of the newest export of this PingSource, range and selectors before `tick`, within the
 * catch-up bound; the bound itself when the folder holds only older exports (ticks were missed
 * beyond it); undefined when it holds none before this tick (the first export: its own window). An
 * object of other selectors at a tick does not hold that tick's samples of these, so it is passed over.
 */
async function previousEnd(deps: RangeExportDeps, ping: PingEvent, rangeMs: number, tick: number, key: string, digest: string): Promise<number | undefined> {
  const { store } = deps;
  const catchUpMs = deps.range.settings.catchUpMs;
  if (catchUpMs <= 0) return undefined;
  const folder = rangeFolder(ping.namespace, ping.name, rangeMs);
  // Keys are `<folder><instant>.json`: starting after `<folder><instant>` takes that instant's key in.
  const earliest = tick - rangeMs - catchUpMs;
  const bound = folder + instantPath(iso(earliest));
  const keys = await store.keysBetween(folder, bound, key);
  for (const candidate of keys.reverse()) {
    const object = await store.head(candidate);
    if (object && (await storedDigest(deps, object)) === digest) return parseRangeKey(candidate)?.tick;
  }
  const first = await store.firstKey(folder);
  return first !== undefined && first < bound ? earliest : undefined;
}

/** The digest of the selectors a stored export holds: from its metadata, or its header for one written without it. */
async function storedDigest(deps: RangeExportDeps, object: ObjectInfo): Promise<string | undefined> {
  const recorded = object.metadata[META_SELECTORS];
  if (recorded !== undefined) return recorded;
  const opened = await deps.store.open(object.key);
  if (!opened) return undefined;
  const body = object.key.endsWith('.gz') ? opened.body.pipe(createGunzip()) : opened.body;
  if (body !== opened.body) opened.body.on('error', (err) => body.destroy(err));
  const reader = new ExportReader();
  try {
    for await (const chunk of body) {
      for (const item of reader.push(chunk as Buffer)) {
        if (item.type === 'header') return item.header.kind === RANGE_KIND ? selectorsDigest(item.header.selectors) : undefined;
      }
    }
    return undefined;
  } catch (err) {
    // Not an export this version reads (or not gzip): it holds nothing of these selectors either.
    const code = (err as { code?: unknown }).code;
    if (err instanceof NotAnExportError || (typeof code === 'string' && code.startsWith('Z_'))) return undefined;
    throw new RetryableError('storage_unavailable', 503, `reading the header of ${object.key} failed: ${(err as Error).message}`, { cause: err });
  } finally {
    opened.body.destroy();
    body.destroy();
  }
}

/** Answers through the planner's API, counted by kind. */
function countingApi(api: PrometheusApi, metrics: RangeMetrics): PrometheusApi {
  return {
    labelValues: (label, ...rest) => {
      metrics.queries.inc({ kind: label === '__name__' ? 'names' : 'labels' });
      return api.labelValues(label, ...rest);
    },
    labelNames: (...args) => {
      metrics.queries.inc({ kind: 'labels' });
      return api.labelNames(...args);
    },
    countQuery: (...args) => {
      metrics.queries.inc({ kind: 'count' });
      return api.countQuery(...args);
    },
  };
}

async function alreadyStored(
  deps: RangeExportDeps,
  ping: PingEvent,
  object: ObjectInfo,
  selectors: string[],
  startedAt: number,
  log: Logger,
): Promise<RangeExportResult> {
  const parts = parseRangeKey(object.key)!;
  const stored = await storedDigest(deps, object);
  if (stored !== selectorsDigest(selectors)) {
    // Another ping of this tick exported other selectors first: this one's samples are not in it, and
    // no retry can change which object the key names. It is left as it is.
    throw new RejectedEventError(
      'key_conflict',
      412,
      `object ${object.key} already holds this tick's export of other selectors (for event ${JSON.stringify(storedFor(object).id)}); this ping asks for ${JSON.stringify(selectors)}`,
    );
  }
  const start = object.metadata[META_START];
  const counts = countsFromTail(await deps.store.tail(object.key, 256, deps.gzip));
  if (!counts) log.warn('stored range export does not end with its counts', { key: object.key });
  log.info('range export already stored', { bytes: object.bytes, storedFor: storedFor(object).id });
  return {
    created: false,
    reply: reply(deps, ping, object, {
      series: counts?.series ?? 0,
      samples: counts?.samples ?? 0,
      selectors,
      rangeMs: parts.rangeMs,
      window: { start: start && !Number.isNaN(Date.parse(start)) ? Date.parse(start) : parts.tick - parts.rangeMs, end: parts.tick },
      durationMs: Date.now() - startedAt,
    }),
  };
}

function reply(
  deps: RangeExportDeps,
  ping: PingEvent,
  object: ObjectInfo,
  found: { series: number; samples: number; selectors: string[]; rangeMs: number; window: Window; durationMs: number },
): CloudEvent<SnapshotStoredData> {
  return storedReply({ source: deps.source, bucket: deps.store.bucket }, ping, object, {
    series: found.series,
    queries: found.selectors,
    durationMs: found.durationMs,
    range: { range: formatDuration(found.rangeMs), start: iso(found.window.start), end: iso(found.window.end), samples: found.samples },
  });
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
