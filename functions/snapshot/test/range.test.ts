// Range exports against a real Prometheus holding a known dataset (backfilled with promtool) and a
// real MinIO: the window's every raw sample is stored, its boundaries are the tick's, redeliveries and
// other pings of the tick find the export, a missed tick is covered by the next one, and a split export
// (by budget, and where Prometheus refuses a part) holds exactly what one query would.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import { CloudEvent, HTTP } from 'cloudevents';
import { rangeKey, readExport, type RangeHeader, type ExportItem } from '../../../archive/src/index.js';
import { PING_EVENT_TYPE, pingSource, type PingData } from '../../../events/src/index.js';
import { startBackfilledPrometheus, type BackfilledPrometheus } from '../../../platform/testing/backfill.js';
import { parseExposition } from '../../../platform/testing/exposition.js';
import { startTcpProxy } from '../../../platform/testing/tcp-proxy.js';
import { serve } from '../../runtime/src/lifecycle.js';
import { createLogger } from '../../runtime/src/logger.js';
import { createApp } from '../src/app.js';
import { InFlight } from '../src/in-flight.js';
import { createMetrics } from '../src/metrics.js';
import { createPrometheusApi } from '../src/prometheus-api.js';
import { createPrometheusClient } from '../src/prometheus.js';
import { rangeDefaults, type RangeSettings } from '../src/range-config.js';
import { createStore } from '../src/store.js';
import { post, startTestMinio, type TestMinio } from './helper.js';

const minute = 60_000;
// The dataset: ten minutes before `base + 10m`, every series sampled every 15 s. Offsets put some
// samples exactly on minute boundaries (where a window's start excludes and its end includes them).
const base = Math.floor(Date.now() / minute) * minute - 30 * minute;
const families: Array<{ name: string; labels: Array<Record<string, string>>; offsetMs: number; stepMs: number; from?: number; until?: number }> = [
  { name: 'range_boundary', labels: [{ i: '0' }], offsetMs: 0, stepMs: 15_000 },
  { name: 'range_gauge', labels: [{ i: '1' }, { i: '2' }, { i: '3' }], offsetMs: 250, stepMs: 15_000 },
  { name: 'range_sparse_total', labels: [{ job: 'x' }], offsetMs: 500, stepMs: 30_000 },
  // Starts and stops inside a window.
  { name: 'range_short', labels: [{ pod: 'p' }], offsetMs: 750, stepMs: 15_000, from: 4 * minute + 20_000, until: 5 * minute + 40_000 },
  { name: 'range_wide', labels: Array.from({ length: 12 }, (_, k) => ({ shard: String(k).padStart(2, '0') })), offsetMs: 250, stepMs: 15_000 },
  // After the ten minutes the other tests read: the label with the most values (a) holds its series
  // unevenly, so ranges of its values are not parts of even size (a="big" alone holds six).
  {
    name: 'range_skewed',
    labels: [...Array.from({ length: 10 }, (_, k) => ({ a: `x${k}`, b: '0' })), ...Array.from({ length: 6 }, (_, k) => ({ a: 'big', b: String(k + 1) }))],
    offsetMs: 500,
    stepMs: 15_000,
    from: 10 * minute,
    until: 12 * minute,
  },
];

interface Sample {
  t: number;
  v: string;
}
type Expected = Map<string, Sample[]>;

const expected: Expected = new Map();
const lines: string[] = [];
for (const [f, family] of families.entries()) {
  for (const [l, labels] of family.labels.entries()) {
    const key = seriesKey({ __name__: family.name, ...labels });
    const samples: Sample[] = [];
    for (let t = base + (family.from ?? 0) + family.offsetMs; t <= base + (family.until ?? 10 * minute); t += family.stepMs) {
      const v = String(((f * 7 + l * 3 + (t - base) / 1000) % 97) / 4);
      samples.push({ t, v });
      // Offsets of 0, 250, 500 and 750 ms are exact in binary: promtool reads them back to the millisecond.
      lines.push(
        `${family.name}{${Object.entries(labels)
          .map(([k, val]) => `${k}="${val}"`)
          .join(',')}} ${v} ${t / 1000}`,
      );
    }
    expected.set(key, samples);
  }
}
const openMetrics = `${lines.join('\n')}\n# EOF\n`;

function seriesKey(metric: Record<string, string>): string {
  return JSON.stringify(Object.entries(metric).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** What the dataset holds in (start, end]. */
function expectedWindow(start: number, end: number): Expected {
  const out: Expected = new Map();
  for (const [key, samples] of expected) {
    const inside = samples.filter((s) => s.t > start && s.t <= end);
    if (inside.length > 0) out.set(key, inside);
  }
  return out;
}

let minio: TestMinio & { stop(): Promise<void> };
let prometheus: BackfilledPrometheus;

before(async () => {
  [minio, prometheus] = await Promise.all([startTestMinio(), startBackfilledPrometheus(openMetrics)]);
});
after(async () => {
  await Promise.all([minio?.stop(), prometheus?.stop()]);
});

interface RangeApp {
  url: string;
  bucket: string;
  ping(time: number, data?: PingData, id?: string): Promise<{ status: number; json: Record<string, unknown> | undefined; ms: number }>;
  /** The export stored at a tick, read back with the archive's reader. */
  read(key: string): Promise<{ header: RangeHeader; queries: string[]; samples: Expected; end: ExportItem | undefined }>;
  metric(name: string, labels?: Record<string, string>): Promise<number | undefined>;
}

async function startRangeApp(
  t: import('node:test').TestContext,
  prometheusUrl: string,
  settings: Partial<RangeSettings> = {},
  hooks: { sleep?: (ms: number) => Promise<void>; maxSeries?: number } = {},
): Promise<RangeApp> {
  const bucket = await minio.bucket();
  const metrics = createMetrics();
  const inFlight = new InFlight();
  const logs: string[] = [];
  const log = createLogger({ level: 'info', write: (line) => logs.push(line) });
  const app = createApp({
    prometheus: createPrometheusClient({ url: prometheusUrl, timeoutMs: 10_000, ...(hooks.maxSeries !== undefined ? { maxSeries: hooks.maxSeries } : {}) }),
    store: createStore({ client: minio.client, bucket }),
    metrics,
    log,
    queries: ['{__name__!=""}'],
    gzip: false,
    source: '/promsnap/snapshot',
    ready: () => true,
    inFlight,
    limits: { allowedQueries: 'any', maxFutureMs: 30_000, retentionMs: 30 * 24 * 3_600_000 },
    range: {
      // The ranges these tests ask for are allowed unless a test says otherwise.
      settings: { ...rangeDefaults, settleMs: 0, allowedRangesMs: [1000, minute, 2 * minute], ...settings },
      api: createPrometheusApi({ url: prometheusUrl, timeoutMs: 10_000 }),
      ...(hooks.sleep ? { sleep: hooks.sleep } : {}),
    },
  });
  const lifecycle = await serve(app, { port: 0, host: '127.0.0.1', log, shutdownGraceMs: 10_000, exitOnSignal: false, drain: () => inFlight.idle() });
  t.after(() => lifecycle.shutdown('test finished'));
  const url = `http://127.0.0.1:${lifecycle.port}`;
  return {
    url,
    bucket,
    async ping(time, data = { range: '1m' }, id) {
      // Built as the PingSource adapter builds it, but unchecked: some tests send data the function must refuse.
      const event = new CloudEvent(
        {
          specversion: '1.0',
          type: PING_EVENT_TYPE,
          source: pingSource('promsnap', 'snapshot-schedule'),
          id: id ?? randomUUID(),
          time: new Date(time).toISOString(),
          datacontenttype: 'application/json',
          data,
        },
        false,
      );
      const started = performance.now();
      const res = await post(url, HTTP.binary(event));
      return { status: res.status, json: res.json, ms: performance.now() - started };
    },
    async read(key) {
      const res = await minio.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      let header: RangeHeader | undefined;
      let end: ExportItem | undefined;
      const queries = new Set<string>();
      const samples: Expected = new Map();
      for await (const item of readExport(res.Body as AsyncIterable<Buffer>)) {
        if (item.type === 'header' && item.header.kind === 'promsnap.range.v1') header = item.header;
        if (item.type === 'end') end = item;
        if (item.type !== 'series') continue;
        queries.add(item.query!);
        const k = seriesKey(item.series.metric);
        const points = (item.series.values ?? []).map(([s, v]) => ({ t: Math.round(s * 1000), v }));
        samples.set(k, [...(samples.get(k) ?? []), ...points]);
      }
      return { header: header!, queries: [...queries], samples, end };
    },
    async metric(name, labels = {}) {
      const samples = parseExposition(await (await fetch(`${url}/metrics`)).text());
      return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
    },
  };
}

const key = (tick: number, rangeMs = minute) => rangeKey({ namespace: 'promsnap', name: 'snapshot-schedule', rangeMs, tick, gzip: false });

test('a range ping stores every raw sample of (tick - range, tick], the tick being its time floored to the range', async (t) => {
  const app = await startRangeApp(t, prometheus.url, { catchUpMs: 0 });
  const tick = base + 5 * minute;
  const res = await app.ping(tick + 400, { range: '1m' });
  assert.equal(res.status, 200, JSON.stringify(res.json));
  assert.equal(res.json!['key'], key(tick));
  const stored = await app.read(key(tick));
  assert.equal(stored.header.start, new Date(tick - minute).toISOString());
  assert.equal(stored.header.end, new Date(tick).toISOString());
  assert.equal(stored.header.range, '1m');
  const want = expectedWindow(tick - minute, tick);
  assert.deepEqual(stored.samples, want);
  const boundary = stored.samples.get(seriesKey({ __name__: 'range_boundary', i: '0' }))!;
  assert.equal(boundary.at(-1)!.t, tick, 'a sample at the tick is in its window');
  assert.ok(boundary[0]!.t > tick - minute, 'a sample at the window start is not');
  const samples = [...want.values()].reduce((n, s) => n + s.length, 0);
  assert.deepEqual(res.json!['range'], { range: '1m', start: new Date(tick - minute).toISOString(), end: new Date(tick).toISOString(), samples });
  assert.equal(res.json!['series'], want.size);
  assert.deepEqual(stored.end, { type: 'end', series: want.size, samples, results: 1 });
});

test('a redelivery, and another ping of the same tick, find the export instead of writing another', async (t) => {
  const app = await startRangeApp(t, prometheus.url);
  const tick = base + 6 * minute;
  const first = await app.ping(tick + 300, { range: '1m' }, 'tick-a');
  assert.equal(first.status, 200);
  const head = () => minio.client.send(new HeadObjectCommand({ Bucket: app.bucket, Key: key(tick) }));
  const { ETag } = await head();
  for (const [time, id] of [
    [tick + 300, 'tick-a'],
    [tick + 20_000, 'tick-b'],
  ] as const) {
    const again = await app.ping(time, { range: '1m' }, id);
    assert.equal(again.status, 200);
    assert.equal(again.json!['key'], key(tick));
    assert.deepEqual(again.json!['range'], first.json!['range'], 'the same window and counts, read back from the object');
  }
  assert.equal((await head()).ETag, ETag, 'the object was not written again');
  assert.deepEqual(await minio.keys(app.bucket), [key(tick)]);
  assert.equal(await app.metric('snapshot_requests_total', { outcome: 'duplicate' }), 2);
});

test('a missed tick is covered by the next export, and no further back than the catch-up bound; the first export covers its own window', async (t) => {
  const app = await startRangeApp(t, prometheus.url, { catchUpMs: 3 * minute });
  const tick = base + 4 * minute;
  // The first export of a PingSource and range has nothing before it to catch up: its own window only,
  // whatever the bound (a sender naming a new PingSource cannot make it read the whole bound).
  assert.equal((await app.ping(tick, { range: '1m' })).status, 200);
  const first = await app.read(key(tick));
  assert.equal(first.header.start, new Date(tick - minute).toISOString());
  assert.deepEqual(first.samples, expectedWindow(tick - minute, tick));
  assert.equal(await app.metric('snapshot_range_windows_caught_up_total'), 0);
  // tick + 1m is missed; tick + 2m covers it.
  const next = await app.ping(tick + 2 * minute, { range: '1m' });
  assert.equal(next.status, 200);
  const caughtUp = await app.read(key(tick + 2 * minute));
  assert.equal(caughtUp.header.start, new Date(tick).toISOString());
  assert.deepEqual(caughtUp.samples, expectedWindow(tick, tick + 2 * minute));
  assert.equal(await app.metric('snapshot_range_windows_caught_up_total'), 1);
  // Six ticks missed: the export reaches back its own range and three minutes, no further.
  const late = await app.ping(tick + 9 * minute, { range: '1m' });
  const bounded = await app.read(key(tick + 9 * minute));
  assert.equal(late.status, 200);
  assert.equal(bounded.header.start, new Date(tick + 5 * minute).toISOString());
  assert.deepEqual(bounded.samples, expectedWindow(tick + 5 * minute, tick + 9 * minute));
  assert.equal(await app.metric('snapshot_range_windows_caught_up_total'), 4);
  // Nothing stored within the bound, but an older export: the bound again, not the export's own window.
  const after = await app.ping(tick + 16 * minute, { range: '1m' });
  assert.equal(after.status, 200);
  assert.equal((await app.read(key(tick + 16 * minute))).header.start, new Date(tick + 12 * minute).toISOString());
});

test('a range other than SNAPSHOT_RANGE or SNAPSHOT_ALLOWED_RANGES is refused: 403 range_not_allowed, counted, before Prometheus is asked, nothing stored', async (t) => {
  const watched = await startTcpProxy({ port: Number(new URL(prometheus.url).port) });
  t.after(() => watched.close());
  const app = await startRangeApp(t, watched.url, { defaultRangeMs: minute, allowedRangesMs: [2 * minute], maxRangeMs: 3_600_000 });
  for (const range of ['1h', '5m', '30s', '59m59s']) {
    const res = await app.ping(base + 5 * minute, { range });
    assert.equal(res.status, 403, `${range}: ${JSON.stringify(res.json)}`);
    assert.equal(res.json!['reason'], 'range_not_allowed');
    assert.equal(res.json!['retryable'], false);
    assert.match(
      String(res.json!['error']),
      new RegExp(`^data.range "${range}" is not a range this function exports: it takes 1m, 2m \\(SNAPSHOT_RANGE, SNAPSHOT_ALLOWED_RANGES\\) or 0`),
    );
  }
  assert.equal(watched.connections, 0, 'Prometheus was never asked');
  assert.deepEqual(await minio.keys(app.bucket), []);
  assert.equal(await app.metric('snapshot_failures_total', { reason: 'range_not_allowed' }), 4);
  assert.equal(await app.metric('snapshot_requests_total', { outcome: 'rejected' }), 4);
  // The default range, an allowed one (in any spelling) and an instant are taken.
  for (const [range, stored] of [
    ['1m', key(base + 5 * minute)],
    ['120s', key(Math.floor((base + 5 * minute) / (2 * minute)) * 2 * minute, 2 * minute)],
  ] as const) {
    const res = await app.ping(base + 5 * minute, { range });
    assert.equal(res.status, 200, `${range}: ${JSON.stringify(res.json)}`);
    assert.equal(res.json!['key'], stored);
  }
  assert.equal((await app.ping(base + 5 * minute, { range: '0' })).status, 200);
});

test('a tick already exported for other selectors: 412 key_conflict, the object untouched, and the next tick catches the window up', async (t) => {
  const app = await startRangeApp(t, prometheus.url, { catchUpMs: 5 * minute });
  const tick = base + 6 * minute;
  assert.equal((await app.ping(tick - minute, { range: '1m' })).status, 200, 'the schedule, with its own selectors');
  // Another ping of the next tick, asking for one metric, stores first.
  const other = await app.ping(tick, { range: '1m', queries: ['range_gauge', 'range_short'] }, 'other');
  assert.equal(other.status, 200, JSON.stringify(other.json));
  const head = () => minio.client.send(new HeadObjectCommand({ Bucket: app.bucket, Key: key(tick) }));
  const { ETag } = await head();
  // The same selectors again, in another order, are the same export: found, not a conflict.
  assert.equal((await app.ping(tick, { range: '1m', queries: ['range_short', 'range_gauge'] }, 'other-again')).status, 200);

  const res = await app.ping(tick, { range: '1m' });
  assert.equal(res.status, 412, JSON.stringify(res.json));
  assert.equal(res.json!['reason'], 'key_conflict');
  assert.equal(res.json!['retryable'], false);
  assert.match(String(res.json!['error']), /already holds this tick's export of other selectors \(for event "other"\)/);
  assert.equal((await head()).ETag, ETag, 'left as it was');
  assert.equal(await app.metric('snapshot_failures_total', { reason: 'key_conflict' }), 1);
  assert.equal(await app.metric('snapshot_requests_total', { outcome: 'duplicate' }), 1);

  // The schedule's next export does not count the other object as its tick's: it covers that window too.
  assert.equal((await app.ping(tick + minute, { range: '1m' })).status, 200);
  const next = await app.read(key(tick + minute));
  assert.equal(next.header.start, new Date(tick - minute).toISOString());
  assert.deepEqual(next.samples, expectedWindow(tick - minute, tick + minute));
  assert.equal(await app.metric('snapshot_range_windows_caught_up_total'), 1);
});

test('an export split into small parts, and by label where one name is too big, holds exactly what one query would', async (t) => {
  const app = await startRangeApp(t, prometheus.url, { partSeries: 3, partSamples: 1_000_000, catchUpMs: 0 });
  const tick = Math.floor((base + 8 * minute) / (2 * minute)) * 2 * minute;
  const res = await app.ping(tick, { range: '2m' });
  assert.equal(res.status, 200, JSON.stringify(res.json));
  const stored = await app.read(key(tick, 2 * minute));
  assert.deepEqual(stored.samples, expectedWindow(tick - 2 * minute, tick));
  assert.ok(stored.queries.length >= 6, `split into parts: ${stored.queries.join(' ')}`);
  assert.ok(
    stored.queries.some((q) => q.includes('shard=~')),
    'range_wide (12 series) is split by its shard label',
  );
  assert.ok(
    stored.queries.every((q) => q.endsWith('[2m]')),
    'every part reads the whole window',
  );
  assert.ok((await app.metric('snapshot_range_queries_total', { kind: 'count' }))! >= 1);
});

test('a label split whose values hold series unevenly is counted and split again, so no part is over SNAPSHOT_MAX_SERIES', async (t) => {
  // Four series an answer at most: a split of range_skewed's 16 series into ranges of its a values
  // puts a="big" (six series) with another value, which Prometheus's answer would refuse (422).
  const app = await startRangeApp(t, prometheus.url, { partSeries: 4, catchUpMs: 0 }, { maxSeries: 4 });
  const tick = Math.floor((base + 12 * minute) / (2 * minute)) * 2 * minute;
  const res = await app.ping(tick, { range: '2m' });
  assert.equal(res.status, 200, JSON.stringify(res.json));
  const stored = await app.read(key(tick, 2 * minute));
  assert.deepEqual(stored.samples, expectedWindow(tick - 2 * minute, tick));
  assert.equal([...stored.samples.keys()].filter((k) => k.includes('"range_skewed"')).length, 16);
  assert.ok(
    stored.queries.some((q) => q.includes('a=~') && q.includes('b=~')),
    `split by a, then by b: ${stored.queries.join(' ')}`,
  );
});

test('a part Prometheus refuses as loading too many samples is split again in its place', async (t) => {
  // 48 samples a minute for range_wide alone: over the limit, as is any group of names.
  const strict = await startBackfilledPrometheus(openMetrics, { flags: ['--query.max-samples=40'] });
  t.after(() => strict.stop());
  const app = await startRangeApp(t, strict.url, { catchUpMs: 0 });
  const tick = base + 7 * minute;
  const res = await app.ping(tick, { range: '1m' });
  assert.equal(res.status, 200, JSON.stringify(res.json));
  const stored = await app.read(key(tick));
  assert.deepEqual(stored.samples, expectedWindow(tick - minute, tick));
  assert.ok((await app.metric('snapshot_range_part_splits_total'))! > 0, 'parts were split');
});

test('a range is refused with a 400 naming the problem: not a duration, not whole seconds, over the maximum, not a selector', async (t) => {
  const app = await startRangeApp(t, prometheus.url, { maxRangeMs: 3_600_000 });
  const cases: Array<[PingData, RegExp]> = [
    [{ range: '5x' }, /range/],
    [{ range: '1500ms' }, /whole number of seconds/],
    [{ range: '2h' }, /longer than 1h/],
    [{ range: '1m', queries: ['rate(range_gauge[5m])'] }, /series selectors/],
  ];
  for (const [data, pattern] of cases) {
    const res = await app.ping(base + 5 * minute, data);
    assert.equal(res.status, 400, JSON.stringify(data));
    assert.match(JSON.stringify(res.json), pattern, JSON.stringify(data));
  }
  assert.deepEqual(await minio.keys(app.bucket), []);
});

test('a ping right at its tick waits for the window to settle before reading it; a settled window is read at once', async (t) => {
  // The wait is the function's sleep hook, given what it computed: until tick + SNAPSHOT_SETTLE.
  const waits: Array<{ ms: number; at: number }> = [];
  const settleMs = 10 * minute;
  const app = await startRangeApp(
    t,
    prometheus.url,
    { settleMs, catchUpMs: 0 },
    {
      sleep: (ms) => {
        waits.push({ ms, at: Date.now() });
        return Promise.resolve();
      },
    },
  );
  const tick = Math.floor(Date.now() / 1000) * 1000;
  const sent = Date.now();
  const res = await app.ping(tick, { range: '1s' });
  assert.equal(res.status, 200, JSON.stringify(res.json));
  assert.equal(waits.length, 1, 'one wait');
  // Computed as tick + settle - now at some instant between the ping's sending and the wait.
  assert.ok(waits[0]!.ms <= tick + settleMs - sent, `waits until the window settles: ${waits[0]!.ms} ms`);
  assert.ok(waits[0]!.ms >= tick + settleMs - waits[0]!.at, `and no longer: ${waits[0]!.ms} ms`);
  assert.deepEqual((await app.read(key(tick, 1000))).samples, new Map(), 'nothing in the backfilled dataset is that recent');
  // A tick whose window settled long ago is read without a wait.
  assert.equal((await app.ping(base + 5 * minute, { range: '1m' })).status, 200);
  assert.equal(waits.length, 1);
});

test('/lastdata serves the newest stored instant, whether an instant snapshot or the tick of a range export', async (t) => {
  const app = await startRangeApp(t, prometheus.url, { catchUpMs: 0 });
  const newest = async () => {
    const res = await fetch(`${app.url}/lastdata`);
    const body = (await res.json()) as { kind: string };
    return { key: res.headers.get('x-snapshot-key'), time: res.headers.get('x-snapshot-time'), kind: body.kind };
  };
  const instant = await app.ping(base + 3 * minute, { range: '0' });
  assert.equal(instant.status, 200);
  assert.deepEqual(await newest(), {
    key: instant.json!['key'],
    time: new Date(base + 3 * minute).toISOString().replace('.000Z', 'Z'),
    kind: 'promsnap.snapshot.v1',
  });
  const range = await app.ping(base + 5 * minute + 200, { range: '1m' });
  assert.deepEqual(await newest(), {
    key: range.json!['key'],
    time: new Date(base + 5 * minute).toISOString().replace('.000Z', 'Z'),
    kind: 'promsnap.range.v1',
  });
  const later = await app.ping(base + 5 * minute + 30_000, { range: '0' });
  assert.equal((await newest()).key, later.json!['key']);
});
