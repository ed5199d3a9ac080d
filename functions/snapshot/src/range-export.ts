// What a ping asking for a range does: export every raw sample of its window into one object.
//
// The window is the tick's own, (tick - range, tick] with the tick the ping's time floored to the
// range (archive/src/window.ts), reaching back over ticks whose export is missing, up to the
// catch-up bound. The object is keyed by PingSource, range and tick, so every delivery of the ping,
// and any other ping of the same tick, names it: a redelivery finds it, and the next tick can see
// whether it exists. The samples are read only once the window has settled (the last scrapes in it
// are stamped when they start but stored when they end), with one query per part of the split plan
// (split-plan.ts), each answer streamed into the object in order.
import { pipeline } from 'node:stream';
import { createGzip } from 'node:zlib';
import type { CloudEvent } from 'cloudevents';
import {
  formatDuration,
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
import { createSnapshotStoredEvent, type PingEvent, type SnapshotStoredData } from '../../../events/src/index.js';
import type { Logger } from '../../runtime/src/logger.js';
import { RejectedEventError } from './errors.js';
import { countsFromTail, streamExport, type Answer } from './export-stream.js';
import type { PrometheusApi } from './prometheus-api.js';
import type { PrometheusClient } from './prometheus.js';
import { checkRange, type RangeSettings } from './range-config.js';
import type { RangeMetrics } from './range-metrics.js';
import { parseSelector, SelectorError } from './selector.js';
import { partQuery, SplitPlanner, tooManySamples, type Part } from './split-plan.js';
import type { ObjectInfo, SnapshotStore } from './store.js';

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

// Metadata naming the event an object was written for, as instant snapshots keep it.
const META_ID = 'event-id';
const META_SOURCE = 'event-source';
const META_TIME = 'event-time';
const META_START = 'window-start';

/** The range a ping asks for, in ms (0: an instant snapshot); a 400 when it cannot be taken. */
export function requestedRange(ping: PingEvent, settings: RangeSettings): number {
  if (ping.data.range === undefined) return settings.defaultRangeMs;
  const checked = checkRange(ping.data.range, settings.maxRangeMs);
  if ('problem' in checked) throw new RejectedEventError('invalid_event', 400, `data.range ${checked.problem}`);
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

  const existing = await deps.store.head(key);
  if (existing) return alreadyStored(deps, ping, existing, selectors, startedAt, log);

  const settleLeft = tick + settings.settleMs - Date.now();
  if (settleLeft > 0) {
    log.info('waiting for the window to settle', { ms: settleLeft });
    await (deps.range.sleep ?? sleep)(settleLeft);
  }

  const window = exportWindow(tick, rangeMs, settings.catchUpMs, await previousEnd(deps.store, ping, rangeMs, tick, settings.catchUpMs, key));
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
      [META_ID]: encodeURIComponent(ping.id),
      [META_SOURCE]: encodeURIComponent(ping.source),
      [META_TIME]: ping.time,
      [META_START]: iso(window.start),
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

/** The end of the newest export of this PingSource and range before `tick`, within the catch-up bound. */
async function previousEnd(store: SnapshotStore, ping: PingEvent, rangeMs: number, tick: number, catchUpMs: number, key: string): Promise<number | undefined> {
  if (catchUpMs <= 0) return undefined;
  const folder = rangeFolder(ping.namespace, ping.name, rangeMs);
  // Keys are `<folder><instant>.json`: starting after `<folder><instant>` takes that instant's key in.
  const earliest = tick - rangeMs - catchUpMs;
  const last = await store.lastKeyBetween(folder, folder + instantPath(iso(earliest)), key);
  return last === undefined ? undefined : parseRangeKey(last)?.tick;
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
  const start = object.metadata[META_START];
  const counts = countsFromTail(await deps.store.tail(object.key, 256, deps.gzip));
  if (!counts) log.warn('stored range export does not end with its counts', { key: object.key });
  log.info('range export already stored', { bytes: object.bytes, storedFor: decode(object.metadata[META_ID]) });
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
  return createSnapshotStoredEvent({
    source: deps.source,
    id: ping.id,
    time: object.lastModified,
    data: {
      bucket: deps.store.bucket,
      key: object.key,
      bytes: object.bytes,
      series: found.series,
      durationMs: found.durationMs,
      queries: found.selectors,
      time: ping.time,
      range: { range: formatDuration(found.rangeMs), start: iso(found.window.start), end: iso(found.window.end), samples: found.samples },
    },
  });
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function decode(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
