// The round trip, every piece real: a Prometheus holding a known dataset (backfilled with promtool) is
// exported by the snapshot function (its own process, configured by environment) over several ticks
// into MinIO, with a missed tick, a late retry of it after the next tick caught it up, and an instant
// snapshot among the range exports; `npm run restore` (its own process) builds TSDB blocks from the
// bucket and serves them, and the restored Prometheus must answer exactly as the original: the same
// series, timestamps and values, raw and through query_range. Then the same samples pushed into a
// running Prometheus's remote-write receiver, and restore's refusals, each with its exit code.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { HTTP } from 'cloudevents';
import { createS3Client } from '../../archive/src/index.js';
import { createPingEvent, type PingData } from '../../events/src/index.js';
import { startBackfilledPrometheus, type BackfilledPrometheus } from '../../platform/testing/backfill.js';
import { runCommand } from '../../platform/tools/command.js';
import { startMinio, type RunningMinio } from '../../platform/tools/minio.js';
import { freePort } from '../../platform/tools/ports.js';
import { startProcess, type ManagedProcess } from '../../platform/tools/process.js';
import { startPrometheus } from '../../platform/tools/prometheus.js';
import { roundTripDataset, type Dataset } from './dataset.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const minute = 60_000;
const credentials = { accessKeyId: 'promsnap-restore', secretAccessKey: 'promsnap-restore-secret' };
const bucket = 'snapshots';

// Ticks a minute apart; the data runs from base to base + 8m.
const base = Math.floor(Date.now() / minute) * minute - 20 * minute;
const dataset: Dataset = roundTripDataset(base, 8);
const period = { from: base - 2 * minute, to: base + 9 * minute };

let work: string;
let original: BackfilledPrometheus;
let minio: RunningMinio;
let s3: S3Client;
let fn: ManagedProcess;
let fnUrl: string;
const pinged: Array<{ time: number; data: PingData; status: number; key: string }> = [];
// An instant snapshot of what README recommends instants for, PromQL that is not a selector: series
// without a metric name and a scalar, which restore cannot write back, beside a selector, which it does.
const aggregateQueries = ['sum by (code) (rt_requests_total)', 'rt_requests_total', 'scalar(sum(rt_latency_seconds_count))'];
const aggregatePing = (p: { data: PingData }) => p.data.queries !== undefined;

async function ping(time: number, data: PingData): Promise<void> {
  const message = HTTP.binary(createPingEvent({ namespace: 'promsnap', name: 'snapshot-schedule', time: new Date(time), data }));
  const res = await fetch(fnUrl, { method: 'POST', headers: message.headers as Record<string, string>, body: message.body as string });
  const body = (await res.json()) as { key?: string };
  pinged.push({ time, data, status: res.status, key: body.key ?? JSON.stringify(body) });
  assert.equal(res.status, 200, `ping at ${new Date(time).toISOString()} ${JSON.stringify(data)}: ${JSON.stringify(body)}`);
}

before(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'promsnap-round-trip-'));
  [original, minio] = await Promise.all([startBackfilledPrometheus(dataset.openMetrics), startMinio({ dataDir: path.join(work, 'minio'), credentials })]);
  s3 = createS3Client({ endpoint: minio.endpoint, region: 'us-east-1', ...credentials });
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const port = await freePort();
  fnUrl = `http://127.0.0.1:${port}/`;
  fn = await startProcess({
    name: 'snapshot',
    command: process.execPath,
    args: ['--import', 'tsx', 'functions/snapshot/src/server.ts'],
    cwd: repoRoot,
    env: {
      PATH: process.env['PATH'] ?? '',
      PORT: String(port),
      PROMETHEUS_URL: original.url,
      S3_ENDPOINT: minio.endpoint,
      S3_BUCKET: bucket,
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      // Every ping is a range export of a minute unless it says otherwise; the first, at the data's
      // start, covers its own minute only, and a missed tick is caught up within two minutes; parts are
      // kept small so the export is split, rt_wide by label.
      SNAPSHOT_RANGE: '1m',
      SNAPSHOT_CATCH_UP: '2m',
      SNAPSHOT_SETTLE: '0s',
      SNAPSHOT_PART_SERIES: '4',
      // The aggregate snapshot below names its queries.
      SNAPSHOT_ALLOWED_QUERIES: JSON.stringify(aggregateQueries),
      LOG_LEVEL: 'warn',
    },
    readyUrl: `http://127.0.0.1:${port}/readyz`,
  });

  // The schedule: a ping a minute from the data's start, the one at base + 4m missed; base + 5m covers
  // it, and then the missed ping's late retry lands too. An instant snapshot between base + 6m and base + 7m.
  for (const k of [0, 1, 2, 3, 5]) await ping(base + k * minute + 350, {});
  await ping(base + 4 * minute + 200, {});
  await ping(base + 6 * minute + 30_000, { range: '0' });
  await ping(base + 2 * minute + 30_000, { range: '0', queries: aggregateQueries });
  for (const k of [6, 7, 8]) await ping(base + k * minute + 120, {});
});

after(async () => {
  await fn?.stop();
  s3?.destroy();
  await Promise.all([original?.stop(), minio?.stop()]);
  if (work) await rm(work, { recursive: true, force: true });
});

interface RestoreRun {
  code: number;
  stdout: string;
  stderr: string;
}

const restoreEnv = (overrides: Record<string, string> = {}) => ({
  ...process.env,
  S3_ENDPOINT: minio.endpoint,
  S3_BUCKET: bucket,
  AWS_ACCESS_KEY_ID: credentials.accessKeyId,
  AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
  ...overrides,
});

/** `npm run restore -- args` as its script runs it, to completion. */
async function restore(args: string[], env: Record<string, string> = {}): Promise<RestoreRun> {
  const result = await runCommand(process.execPath, ['--import', 'tsx', 'restore/src/main.ts', ...args], {
    cwd: repoRoot,
    env: restoreEnv(env),
    allowFailure: true,
    timeoutMs: 120_000,
  });
  return { code: result.code, stdout: result.stdout, stderr: result.stderr };
}

/** `npm run restore` serving what it restored: resolves once it prints the Prometheus API line. */
async function restoreAndServe(args: string[]): Promise<{ url: string; summary: Record<string, number>; process: ManagedProcess }> {
  let url: string | undefined;
  let summary: Record<string, number> | undefined;
  const child = await startProcess({
    name: 'restore',
    command: process.execPath,
    args: ['--import', 'tsx', 'restore/src/main.ts', ...args],
    cwd: repoRoot,
    env: restoreEnv(),
    onLine: (line, stream) => {
      if (stream !== 'stdout') return;
      const api = /^Prometheus API (http:\/\/\S+)$/.exec(line);
      if (api) url = api[1];
      if (line.startsWith('{')) summary = JSON.parse(line) as Record<string, number>;
    },
    readyCheck: { what: 'restore to print "Prometheus API http://…"', check: () => url !== undefined },
    readyTimeoutMs: 120_000,
  });
  return { url: url!, summary: summary!, process: child };
}

type Matrix = Array<{ metric: Record<string, string>; values: Array<[number, string]> }>;

async function matrix(url: string, path_: '/api/v1/query' | '/api/v1/query_range', params: Record<string, string>): Promise<Matrix> {
  const res = await fetch(`${url}${path_}`, { method: 'POST', body: new URLSearchParams(params) });
  const body = (await res.json()) as { status: string; data: { resultType: string; result: Matrix }; error?: string };
  assert.equal(body.status, 'success', body.error);
  assert.equal(body.data.resultType, 'matrix');
  return body.data.result.sort((a, b) => (JSON.stringify(a.metric) < JSON.stringify(b.metric) ? -1 : 1));
}

const everything = `{__name__!=""}[${(period.to - period.from) / 1000}s]`;
const at = String(period.to / 1000);

/** Compares two matrices point by point; returns [points compared, mismatches]. */
function compare(restored: Matrix, source: Matrix): [number, string[]] {
  const mismatches: string[] = [];
  let points = 0;
  const index = new Map(source.map((s) => [JSON.stringify(s.metric), s.values]));
  for (const series of restored) if (!index.has(JSON.stringify(series.metric))) mismatches.push(`extra series ${JSON.stringify(series.metric)}`);
  for (const [metric, values] of index) {
    const got = restored.find((s) => JSON.stringify(s.metric) === metric)?.values ?? [];
    points += values.length;
    if (got.length !== values.length) mismatches.push(`${metric}: ${got.length} points, the original has ${values.length}`);
    for (const [i, [t, v]] of values.entries()) {
      if (got[i]?.[0] !== t || got[i]?.[1] !== v)
        mismatches.push(`${metric} point ${i}: ${JSON.stringify(got[i])}, the original has ${JSON.stringify([t, v])}`);
    }
  }
  return [points, mismatches];
}

test('the original holds exactly the known dataset', async () => {
  const held = await matrix(original.url, '/api/v1/query', { query: everything, time: at });
  const known: Matrix = dataset.series.map((s) => ({ metric: s.labels, values: s.samples.map(({ t, v }): [number, string] => [t / 1000, v]) }));
  const normal = (m: Matrix) => m.map((s) => ({ metric: s.metric, values: s.values.map(([t, v]) => [t, Number(v)]) }));
  const sorted = (m: ReturnType<typeof normal>) =>
    m.sort((a, b) => (JSON.stringify(Object.entries(a.metric).sort()) < JSON.stringify(Object.entries(b.metric).sort()) ? -1 : 1));
  assert.deepEqual(sorted(normal(held)), sorted(normal(known)));
  assert.equal(
    held.reduce((n, s) => n + s.values.length, 0),
    dataset.samples,
  );
});

test('the exports over the ticks, restored into a fresh Prometheus, answer exactly as the original', async (t) => {
  const keys = pinged.map((p) => p.key);
  assert.equal(new Set(keys).size, keys.length, `one object per tick, one instant snapshot: ${keys.join(' ')}`);
  const dataDir = path.join(work, 'restored');
  const restored = await restoreAndServe([
    '--from',
    new Date(period.from).toISOString(),
    '--to',
    new Date(period.to).toISOString(),
    '--data-dir',
    dataDir,
    '--json',
  ]);
  t.after(() => restored.process.stop('SIGTERM', 10_000));
  const { summary } = restored;
  t.diagnostic(`restore: ${JSON.stringify(summary)}`);
  assert.equal(summary['rangeExports'], 9, 'the eight ticks pinged and the late retry');
  assert.equal(summary['instantsLeftOut'], 1, 'the instant snapshot of the same queries falls in a range export');
  assert.equal(summary['instantSnapshots'], 1, 'the aggregate snapshot asked for more than the ranges hold: it is read');
  assert.equal(summary['unnamedSeries'], 2, 'sum by (code): one series a code, without a name');
  assert.equal(summary['notSeriesAnswers'], 1, 'the scalar');
  assert.deepEqual(summary['skippedQueries'], [aggregateQueries[0], aggregateQueries[2]]);
  assert.ok(summary['duplicates']! > 0, 'the late retry overlaps the export that caught its tick up');
  assert.equal(summary['samples'], dataset.samples, 'every sample once');

  const [rawPoints, rawMismatches] = compare(
    await matrix(restored.url, '/api/v1/query', { query: everything, time: at }),
    await matrix(original.url, '/api/v1/query', { query: everything, time: at }),
  );
  const range = { query: '{__name__!=""}', start: String(period.from / 1000), end: String(period.to / 1000), step: '1s' };
  const [rangePoints, rangeMismatches] = compare(
    await matrix(restored.url, '/api/v1/query_range', range),
    await matrix(original.url, '/api/v1/query_range', range),
  );
  t.diagnostic(
    `raw samples compared: ${rawPoints}, mismatches: ${rawMismatches.length}; query_range points compared: ${rangePoints}, mismatches: ${rangeMismatches.length}`,
  );
  assert.equal(rawPoints, dataset.samples);
  assert.deepEqual(rawMismatches, []);
  assert.ok(rangePoints > rawPoints, 'query_range at 1 s steps gives more points than the raw samples');
  assert.deepEqual(rangeMismatches, []);
});

test('an instant snapshot restores as the instant it captured', async (t) => {
  const instant = pinged.find((p) => p.data.range === '0')!;
  const dataDir = path.join(work, 'restored-instant');
  const run = await restore(['--prefix', instant.key, '--data-dir', dataDir, '--no-serve', '--json']);
  assert.equal(run.code, 0, run.stderr);
  const summary = JSON.parse(run.stdout) as Record<string, number>;
  assert.equal(summary['instantSnapshots'], 1);
  const prometheus = await startPrometheus({ config: 'global:\n  scrape_interval: 1m\n', dataDir, retention: '100y' });
  t.after(() => prometheus.stop());
  const time = String(instant.time / 1000);
  const answer = async (url: string) => {
    const res = await fetch(`${url}/api/v1/query`, { method: 'POST', body: new URLSearchParams({ query: '{__name__!=""}', time }) });
    return ((await res.json()) as { data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } }).data.result.sort((a, b) =>
      JSON.stringify(a.metric) < JSON.stringify(b.metric) ? -1 : 1,
    );
  };
  const restoredAnswer = await answer(prometheus.url);
  assert.equal(summary['samples'], restoredAnswer.length);
  assert.deepEqual(restoredAnswer, await answer(original.url), 'at its instant, the restored snapshot answers as the original did');
});

test('an instant snapshot of aggregations restores its selector series, and says what it left out', async (t) => {
  const aggregate = pinged.find(aggregatePing)!;
  const dataDir = path.join(work, 'restored-aggregate');
  const json = await restore(['--prefix', aggregate.key, '--data-dir', dataDir, '--no-serve', '--json']);
  assert.equal(json.code, 0, json.stderr);
  const summary = JSON.parse(json.stdout) as Record<string, unknown>;
  assert.deepEqual(
    [summary['samples'], summary['series'], summary['unnamedSeries'], summary['notSeriesAnswers'], summary['skippedQueries']],
    [2, 2, 2, 1, [aggregateQueries[0], aggregateQueries[2]]],
  );
  const prometheus = await startPrometheus({ config: 'global:\n  scrape_interval: 1m\n', dataDir, retention: '100y' });
  t.after(() => prometheus.stop());
  const time = String(aggregate.time / 1000);
  const answer = async (url: string, query: string) => {
    const res = await fetch(`${url}/api/v1/query`, { method: 'POST', body: new URLSearchParams({ query, time }) });
    return ((await res.json()) as { data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } }).data.result.sort((a, b) =>
      JSON.stringify(a.metric) < JSON.stringify(b.metric) ? -1 : 1,
    );
  };
  assert.deepEqual(await answer(prometheus.url, '{__name__!=""}'), await answer(original.url, 'rt_requests_total'), 'the selector series, exactly');

  // The text summary names the queries left out.
  const text = await restore(['--prefix', aggregate.key, '--data-dir', path.join(work, 'restored-aggregate-text'), '--no-serve']);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /2 series without a metric name left out, 1 scalar or string answers left out/);
  assert.ok(text.stdout.includes(`left out, as a TSDB keeps series by metric name: ${aggregateQueries[0]}; ${aggregateQueries[2]}`), text.stdout);
});

test('restore can push the samples into a running Prometheus through its remote-write receiver', async (t) => {
  const receiver = await startPrometheus({
    // Samples this old are out of order for a fresh head: the window lets the TSDB take them.
    config: 'global:\n  scrape_interval: 1m\nstorage:\n  tsdb:\n    out_of_order_time_window: 2d\n',
    dataDir: path.join(work, 'receiver'),
    flags: ['--web.enable-remote-write-receiver'],
  });
  t.after(() => receiver.stop());
  const run = await restore([
    '--from',
    new Date(period.from).toISOString(),
    '--to',
    new Date(period.to).toISOString(),
    '--remote-write',
    `${receiver.url}/api/v1/write`,
    '--json',
  ]);
  assert.equal(run.code, 0, run.stderr);
  assert.equal((JSON.parse(run.stdout) as Record<string, number>)['samples'], dataset.samples);
  const [points, mismatches] = compare(
    await matrix(receiver.url, '/api/v1/query', { query: everything, time: at }),
    await matrix(original.url, '/api/v1/query', { query: everything, time: at }),
  );
  assert.equal(points, dataset.samples);
  assert.deepEqual(mismatches, []);
});

test('restore refuses clearly, with its exit codes: nothing in range, no bucket, bad credentials, not an export, bad flags', async () => {
  const dataDir = () => path.join(work, `refused-${Math.random().toString(36).slice(2)}`);
  const cases: Array<{ args: string[]; env?: Record<string, string>; code: number; says: RegExp }> = [
    { args: ['--day', '2020-01-01', '--no-serve'], code: 3, says: /holds no export from 2020-01-01T00:00:00.000Z/ },
    {
      args: ['--day', new Date(base).toISOString().slice(0, 10), '--no-serve'],
      env: { S3_BUCKET: 'no-such-bucket' },
      code: 4,
      says: /bucket no-such-bucket at .* does not exist/,
    },
    {
      args: ['--day', new Date(base).toISOString().slice(0, 10), '--no-serve'],
      env: { AWS_SECRET_ACCESS_KEY: 'wrong' },
      code: 5,
      says: /refused the credentials/,
    },
    { args: ['--prefix', 'notes/', '--no-serve'], code: 6, says: /notes\/readme.json is not a promsnap export: its first field is "title", not "kind"/ },
    { args: ['--prefix', 'ranges/promsnap/forged/', '--no-serve'], code: 6, says: /is not a promsnap export: it does not start with a JSON object/ },
    // Objects that read as exports until their content goes wrong: the object's fault, never the store's.
    {
      args: ['--prefix', 'broken/', '--no-serve'],
      code: 6,
      says: /broken\/sample.json is not a promsnap export: series up has a sample that is not \[time, "value"\]/,
    },
    {
      args: ['--prefix', 'truncated/', '--no-serve'],
      code: 1,
      says: /restore could not read truncated\/cut.json: it ends after \d+ bytes, before its document does/,
    },
    { args: ['--from', 'yesterday', '--no-serve'], code: 2, says: /--from "yesterday" is not a time/ },
    { args: ['--no-serve'], code: 2, says: /say what to restore/ },
  ];
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'notes/readme.json', Body: '{"title":"not an export"}' }));
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'ranges/promsnap/forged/1m/2026/01/01/000000Z.json', Body: 'hello' }));
  const exportText = JSON.stringify({
    kind: 'promsnap.snapshot.v1',
    id: 'x',
    source: '/apis/v1/namespaces/promsnap/pingsources/snapshot-schedule',
    time: '2026-01-01T00:00:00Z',
    prometheus: 'http://prometheus:9090',
    queries: ['up'],
    results: [
      {
        query: 'up',
        response: { status: 'success', data: { resultType: 'vector', result: [{ metric: { __name__: 'up' }, value: [1767225600, '0x10'] }] } },
        series: 1,
      },
    ],
    series: 1,
  });
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'broken/sample.json', Body: exportText }));
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'truncated/cut.json', Body: exportText.replace('0x10', '1').slice(0, -20) }));
  for (const { args, env, code, says } of cases) {
    const run = await restore([...args, '--data-dir', dataDir()], env);
    assert.equal(run.code, code, `${args.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, /^error: /m, args.join(' '));
    assert.match(run.stderr, says, args.join(' '));
    assert.doesNotMatch(run.stderr, /object store failed/, args.join(' '));
  }
});
