// The two Node contenders of the snapshot comparison, each a real process of its own: promsnap's
// snapshot function (compiled server.js, pinged like Knative's PingSource pings it) and the naive
// baseline (naive.js). Each is warmed with a one-series snapshot first, so the measured run sees
// loaded modules and JIT-compiled code, as a min-scale-1 pod does; its peak RSS is then reset and
// read again once the measured snapshot is stored.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { HTTP } from 'cloudevents';
import { createPingEvent, type PingData, type SnapshotStoredData } from '../events/src/index.js';
import { freePort } from '../platform/tools/ports.js';
import { startProcess } from '../platform/tools/process.js';
import { peakRssBytes, resetPeakRss, rssBytes } from './procfs.js';
import { msSince } from './stats.js';

/** A query of one series: exercises every step of a snapshot at almost no cost. */
export const WARM_UP_QUERY = 'vector(1)';

export interface StoreSettings {
  endpoint: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export interface ContenderRun {
  ms: number;
  peakRss: number;
  /** RSS just before the measured snapshot (loaded and warmed): what the peak grew from. */
  idleRss: number;
  /** Bytes of the object stored. */
  bytes: number;
  /** Object keys written (the measured one and the warm-up's), for the caller to delete. */
  keys: string[];
}

export interface FunctionRun extends ContenderRun {
  /** Series the function reported storing. */
  series: number;
  /** Samples, for a range export. */
  samples: number | undefined;
  /** Another process's RSS just before the measured ping and its peak during it (watchPid). */
  watched: { idleRss: number; peakRss: number } | undefined;
}

/** A range export instead of an instant snapshot: the ping's range, and a selector matching nothing to warm up with. */
export const WARM_UP_SELECTOR = '{__name__="promsnap_bench_warm_up"}';

async function ping(url: string, time: string, id: string, data?: PingData, name = 'snapshot-schedule'): Promise<SnapshotStoredData> {
  const event = createPingEvent({ namespace: 'promsnap', name, time, id, ...(data ? { data } : {}) });
  const message = HTTP.binary(event);
  const res = await fetch(url, { method: 'POST', headers: message.headers as Record<string, string>, body: message.body as string });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`snapshot answered ${res.status}: ${text.slice(0, 500)}`);
  return JSON.parse(text) as SnapshotStoredData;
}

/** One snapshot by promsnap's function: spawn, warm up, reset the peak, ping, read the peak, stop. */
export async function runSnapshotFunction(options: {
  node: string;
  serverJs: string;
  prometheusUrl: string;
  store: StoreSettings;
  time: string;
  runId: string;
  /** Extra Node options, e.g. --cpu-prof. */
  nodeArgs?: string[];
  /** The image's environment (NODE_OPTIONS and the like). */
  env: Record<string, string>;
  /** Export every sample of this range (a Prometheus duration) ending at `time`, instead of the instant. */
  range?: string;
  /** A process (Prometheus) whose peak RSS to take over the measured ping. */
  watchPid?: number;
}): Promise<FunctionRun> {
  const port = await freePort();
  const fn = await startProcess({
    name: 'snapshot',
    command: options.node,
    args: [...(options.nodeArgs ?? []), options.serverJs],
    env: {
      ...process.env,
      ...options.env,
      PORT: String(port),
      PROMETHEUS_URL: options.prometheusUrl,
      S3_ENDPOINT: options.store.endpoint,
      S3_BUCKET: options.store.bucket,
      AWS_ACCESS_KEY_ID: options.store.accessKeyId,
      AWS_SECRET_ACCESS_KEY: options.store.secretAccessKey,
      // A loaded 2-core machine can stretch a 1M-series query well past the 30 s default.
      PROMETHEUS_TIMEOUT_MS: '600000',
      SHUTDOWN_GRACE_MS: '610000',
      // The warm-up ping names its own query, which the function takes from events only when allowed;
      // and datasets of any --sizes are snapshotted whole.
      SNAPSHOT_ALLOWED_QUERIES: JSON.stringify([WARM_UP_QUERY, WARM_UP_SELECTOR]),
      SNAPSHOT_MAX_SERIES: '100000000',
      // A range export reads exactly its own window, at once: the dataset is complete and old. Its
      // range comes with the ping, which the function takes only when allowed.
      ...(options.range ? { SNAPSHOT_ALLOWED_RANGES: options.range } : {}),
      SNAPSHOT_CATCH_UP: '0s',
      SNAPSHOT_SETTLE: '0s',
    },
    readyUrl: `http://127.0.0.1:${port}/readyz`,
  });
  try {
    const url = `http://127.0.0.1:${port}/`;
    // The warm-up goes through the same code path at almost no cost: a range export (of another
    // PingSource, so another key) of a selector that matches nothing, or a one-series snapshot.
    const warm = options.range
      ? await ping(url, options.time, `${options.runId}-warm-up`, { range: options.range, queries: [WARM_UP_SELECTOR] }, 'bench-warm-up')
      : await ping(url, options.time, `${options.runId}-warm-up`, { queries: [WARM_UP_QUERY] });
    const idleRss = await rssBytes(fn.pid);
    await resetPeakRss(fn.pid);
    const watchedIdle = options.watchPid === undefined ? undefined : await rssBytes(options.watchPid);
    if (options.watchPid !== undefined) await resetPeakRss(options.watchPid);
    const start = process.hrtime.bigint();
    const stored = await ping(url, options.time, options.runId, options.range ? { range: options.range } : undefined);
    const ms = msSince(start);
    const peakRss = await peakRssBytes(fn.pid);
    const watched = options.watchPid === undefined ? undefined : { idleRss: watchedIdle!, peakRss: await peakRssBytes(options.watchPid) };
    return { ms, peakRss, idleRss, bytes: stored.bytes, series: stored.series, samples: stored.range?.samples, watched, keys: [warm.key, stored.key] };
  } catch (err) {
    throw new Error(`${(err as Error).message}\nsnapshot function output:\n${fn.recentOutput()}`, { cause: err });
  } finally {
    await fn.stop('SIGTERM', 10_000);
  }
}

/** One snapshot by the naive baseline, measured the same way. */
export async function runNaive(options: {
  node: string;
  naiveJs: string;
  prometheusUrl: string;
  store: StoreSettings;
  query: string;
  time: string;
  runId: string;
  nodeArgs?: string[];
  /** The same image environment as the function's: the baseline is another way to write it. */
  env: Record<string, string>;
}): Promise<ContenderRun> {
  const child = spawn(options.node, [...(options.nodeArgs ?? []), options.naiveJs], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: {
      ...process.env,
      ...options.env,
      PROMETHEUS_URL: options.prometheusUrl,
      S3_ENDPOINT: options.store.endpoint,
      S3_BUCKET: options.store.bucket,
      AWS_ACCESS_KEY_ID: options.store.accessKeyId,
      AWS_SECRET_ACCESS_KEY: options.store.secretAccessKey,
    },
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const exited = once(child, 'exit');
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<{ ready?: boolean; ok?: boolean; bytes?: number; error?: string }> => {
    const line = await Promise.race([lines.next(), exited.then(() => ({ done: true, value: undefined }))]);
    if (line.done || line.value === undefined) throw new Error(`naive process exited early: ${stderr}`);
    return JSON.parse(line.value) as { ready?: boolean; ok?: boolean; bytes?: number; error?: string };
  };
  const job = async (query: string, key: string) => {
    child.stdin.write(`${JSON.stringify({ query, time: options.time, key })}\n`);
    const answer = await next();
    if (!answer.ok) throw new Error(`naive snapshot failed: ${answer.error}`);
    return answer.bytes!;
  };
  try {
    if (!(await next()).ready) throw new Error('naive process did not say ready');
    const keys = [`naive/${options.runId}-warm-up.json`, `naive/${options.runId}.json`];
    await job(WARM_UP_QUERY, keys[0]!);
    const idleRss = await rssBytes(child.pid!);
    await resetPeakRss(child.pid!);
    const start = process.hrtime.bigint();
    const bytes = await job(options.query, keys[1]!);
    const ms = msSince(start);
    const peakRss = await peakRssBytes(child.pid!);
    return { ms, peakRss, idleRss, bytes, keys };
  } finally {
    child.stdin.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}
