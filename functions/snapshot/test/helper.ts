// Real servers for the snapshot tests: a MinIO per test file with a fresh bucket per test, and
// helpers to look at what the bucket holds through the S3 API and through mc.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { CreateBucketCommand, ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Gauge, Registry } from 'prom-client';
import { startMinio, type RunningMinio } from '../../../platform/tools/minio.js';
import { freePort } from '../../../platform/tools/ports.js';
import { waitFor } from '../../../platform/tools/wait.js';
import { queryPrometheus, startPrometheus, type RunningPrometheus } from '../../../platform/tools/prometheus.js';
import { parseExposition } from '../../../platform/testing/exposition.js';
import { serve, type Lifecycle } from '../../runtime/src/lifecycle.js';
import { createLogger } from '../../runtime/src/logger.js';
import { createApp } from '../src/app.js';
import type { EventLimits } from '../src/handler.js';
import { defaults, prometheusDurationMs } from '../src/config.js';
import { InFlight } from '../src/in-flight.js';
import { createMetrics, type SnapshotMetrics } from '../src/metrics.js';
import { createPrometheusClient } from '../src/prometheus.js';
import { createS3Client, createStore } from '../src/store.js';

export const credentials = { accessKeyId: 'promsnap-test', secretAccessKey: 'promsnap-test-secret' };

export interface TestMinio {
  minio: RunningMinio;
  client: S3Client;
  dataDir: string;
  /** Creates a bucket with a unique name and returns it. */
  bucket(): Promise<string>;
  keys(bucket: string, prefix?: string): Promise<string[]>;
  /** Multipart uploads started and neither completed nor aborted. */
  pendingUploads(bucket: string): Promise<string[]>;
}

let bucketCount = 0;

/** One MinIO for a whole test file (started in `before`, stopped by the returned function). */
export async function startTestMinio(): Promise<TestMinio & { stop(): Promise<void> }> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'promsnap-snapshot-minio-'));
  const minio = await startMinio({ dataDir, credentials });
  const client = createS3Client({ endpoint: minio.endpoint, region: 'us-east-1', ...credentials });
  return {
    minio,
    client,
    dataDir,
    async bucket() {
      const name = `snapshots-${process.pid}-${++bucketCount}`;
      await client.send(new CreateBucketCommand({ Bucket: name }));
      return name;
    },
    async keys(bucket, prefix) {
      const out: string[] = [];
      let token: string | undefined;
      do {
        const res = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
        out.push(...(res.Contents ?? []).map((o) => o.Key!));
        token = res.IsTruncated ? res.NextContinuationToken : undefined;
      } while (token);
      return out;
    },
    async pendingUploads(bucket) {
      const res = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
      return (res.Uploads ?? []).map((u) => `${u.Key} ${u.UploadId}`);
    },
    async stop() {
      client.destroy();
      await minio.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// A real exporter for Prometheus to scrape: a prom-client registry served over HTTP.

export interface Exporter {
  port: number;
  target: string;
  close(): Promise<void>;
}

/** Serves `series` gauge series (with a label `pad` of about `padding` characters to make answers big). */
export async function startExporter(options: { series: number; padding?: number; name?: string }): Promise<Exporter> {
  const registry = new Registry();
  const gauge = new Gauge({
    name: options.name ?? 'promsnap_test_value',
    help: 'A value per series, for snapshot tests',
    labelNames: ['i', 'pad'] as const,
    registers: [registry],
  });
  // Random hex, so that answers compress about as much as real label values do, not a hundredfold.
  for (let i = 0; i < options.series; i++) gauge.set({ i: String(i), pad: randomBytes(Math.ceil((options.padding ?? 0) / 2)).toString('hex') }, i);
  const server = http.createServer((req, res) => {
    void registry.metrics().then((body) => {
      res.writeHead(200, { 'Content-Type': registry.contentType });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    target: `127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// A real Prometheus scraping exporters, restartable on the same port and data.

export interface TestPrometheus {
  url: string;
  port: number;
  running: RunningPrometheus | undefined;
  stop(): Promise<void>;
  restart(): Promise<void>;
  /** Waits until every job has been scraped successfully at a time after `instant`. */
  scrapedAfter(instant: Date, jobs: string[]): Promise<void>;
  /** The raw JSON answer of an instant query at a time, as Prometheus gives it. */
  query(query: string, time: string): Promise<PrometheusAnswer>;
  dispose(): Promise<void>;
}

export interface PrometheusAnswer {
  status: string;
  data: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> };
}

export async function startTestPrometheus(jobs: Record<string, { target: string; intervalSeconds: number }>): Promise<TestPrometheus> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'promsnap-snapshot-prometheus-'));
  const config = [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    'scrape_configs:',
    ...Object.entries(jobs).flatMap(([job, { target, intervalSeconds }]) => [
      `  - job_name: ${job}`,
      `    scrape_interval: ${intervalSeconds}s`,
      `    scrape_timeout: ${intervalSeconds}s`,
      '    static_configs:',
      `      - targets: ['${target}']`,
    ]),
    '',
  ].join('\n');
  const port = await freePort();
  const start = () => startPrometheus({ dataDir, config, port });
  const tp: TestPrometheus = {
    url: `http://127.0.0.1:${port}`,
    port,
    running: await start(),
    async stop() {
      await tp.running?.stop();
      tp.running = undefined;
    },
    async restart() {
      await tp.stop();
      tp.running = await start();
    },
    async scrapedAfter(instant, names) {
      await waitFor(
        async () => {
          const result = await queryPrometheus<{ metric: { job: string }; value: [number, string] }>(tp.url, 'timestamp(up == 1)');
          const seen = new Map(result.map((s) => [s.metric.job, Number(s.value[1]) * 1000]));
          return names.every((job) => (seen.get(job) ?? 0) > instant.getTime());
        },
        { what: `a scrape of ${names.join(', ')} after ${instant.toISOString()}`, timeoutMs: 60_000, intervalMs: 200 },
      );
    },
    async query(query, time) {
      const res = await fetch(`${tp.url}/api/v1/query`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ query, time }),
      });
      return (await res.json()) as PrometheusAnswer;
    },
    async dispose() {
      await tp.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  return tp;
}

/** Series of an answer in a stable order, to compare two answers regardless of ordering. */
export function sortedResult(answer: PrometheusAnswer): PrometheusAnswer['data']['result'] {
  const keyed = answer.data.result.map((series) => ({ key: JSON.stringify(Object.entries(series.metric).sort()), series }));
  return keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)).map((k) => k.series);
}

// ---------------------------------------------------------------------------------------------
// The snapshot app in this process, on the real serve() lifecycle.

export interface RunningApp {
  url: string;
  metrics: SnapshotMetrics;
  inFlight: InFlight;
  lifecycle: Lifecycle;
  logs: Array<Record<string, unknown>>;
  /** A sample value from /metrics, e.g. metric('snapshot_failures_total', { reason: 'x' }). */
  metric(name: string, labels?: Record<string, string>): Promise<number | undefined>;
}

export async function startApp(
  t: TestContext,
  deps: {
    prometheusUrl: string;
    s3Client: S3Client;
    bucket: string;
    queries?: string[];
    gzip?: boolean;
    timeoutMs?: number;
    prometheusGzip?: boolean;
    maxSeries?: number;
    /** The function's own defaults (config.ts) where not given. */
    limits?: Partial<EventLimits>;
  },
): Promise<RunningApp> {
  const logs: Array<Record<string, unknown>> = [];
  const log = createLogger({ level: 'debug', write: (line) => logs.push(JSON.parse(line) as Record<string, unknown>) });
  const metrics = createMetrics();
  const inFlight = new InFlight();
  let lifecycle: Lifecycle | undefined;
  const app = createApp({
    prometheus: createPrometheusClient({
      url: deps.prometheusUrl,
      timeoutMs: deps.timeoutMs ?? 10_000,
      gzip: deps.prometheusGzip ?? false,
      maxSeries: deps.maxSeries ?? defaults.maxSeries,
    }),
    store: createStore({ client: deps.s3Client, bucket: deps.bucket }),
    metrics,
    log,
    queries: deps.queries ?? ['{__name__!=""}'],
    gzip: deps.gzip ?? false,
    source: '/promsnap/snapshot',
    limits: {
      allowedQueries: [],
      maxFutureMs: defaults.maxFutureMs,
      retentionMs: prometheusDurationMs(defaults.retention)!,
      ...deps.limits,
    },
    ready: () => lifecycle?.accepting ?? false,
    inFlight,
  });
  lifecycle = await serve(app, { port: 0, host: '127.0.0.1', log, shutdownGraceMs: 10_000, exitOnSignal: false, drain: () => inFlight.idle() });
  const running = lifecycle;
  t.after(() => running.shutdown('test finished'));
  const url = `http://127.0.0.1:${running.port}`;
  return {
    url,
    metrics,
    inFlight,
    lifecycle: running,
    logs,
    async metric(name, labels = {}) {
      const res = await fetch(`${url}/metrics`);
      const samples = parseExposition(await res.text());
      const found = samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
      return found?.value;
    },
  };
}

/** POSTs a CloudEvent message and returns status, headers and the parsed JSON body. */
/** A message body as sent on the wire: text and bytes as they are, anything else (an SDK's parsed data) as JSON. */
function bodyOf(body: unknown): string | Uint8Array {
  if (body === undefined) return '';
  if (typeof body === 'string' || body instanceof Uint8Array) return body;
  return JSON.stringify(body);
}

export async function post(url: string, message: { headers: Record<string, unknown>; body: unknown }) {
  const res = await fetch(url, {
    method: 'POST',
    headers: Object.fromEntries(Object.entries(message.headers).map(([k, v]) => [k, String(v)])),
    body: bodyOf(message.body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: Object.fromEntries(res.headers), text, json: json as Record<string, unknown> | undefined };
}
