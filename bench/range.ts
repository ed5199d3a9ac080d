// Range exports and restore, for one dataset (a Prometheus holding N series with a sample a minute over
// the five minutes before its instant), in one run and interleaved:
//   floor       curl of the whole window as one query, `{__name__!=""}[5m]`, piped into `mc pipe`
//   promsnap    the snapshot function exporting the window (split into parts), ping in to object stored
// Where asked (the largest N), also:
//   Prometheus  its peak RSS growth, each time from a fresh process, while answering the one query
//               (curl to /dev/null) and while promsnap exports the same window in parts
//   restore     `npm run restore` of that export (download, read, OpenMetrics, promtool), in samples per
//               second, against promtool importing the very OpenMetrics file restore wrote
import { DeleteObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCommand } from '../platform/tools/command.js';
import { findTool } from '../platform/tools/find.js';
import { runSnapshotFunction, type StoreSettings } from './contenders.js';
import { SNAPSHOT_QUERY, type Dataset } from './dataset.js';
import { curlToMc, curlToNull, type FloorTools } from './floor.js';
import { peakRssBytes, resetPeakRss, rssBytes } from './procfs.js';
import { median, msSince } from './stats.js';

export const RANGE = '5m';
export const RANGE_SECONDS = 300;

export interface RangeBenchOptions {
  node: string;
  serverJs: string;
  store: StoreSettings;
  s3: S3Client;
  floor: FloorTools;
  runs: number;
  env: Record<string, string>;
  /** Measure Prometheus's memory and restore's throughput for this dataset. */
  deep: boolean;
  repoRoot: string;
  log: (line: string) => void;
}

export interface RangeFigures {
  series: number;
  /** Samples in the window. */
  samples: number;
  /** Bytes of the one-query answer (as curl received it). */
  answerBytes: number;
  curlMcMs: number;
  mcPeakRss: number | undefined;
  promsnap: { ms: number; peakRss: number; idleRss: number; bytes: number };
  prometheus: { idleRss: number; singleGrowth: number; splitGrowth: number; singleMs: number; splitMs: number } | undefined;
  restore: { samples: number; ms: number; promtoolMs: number; openMetricsBytes: number } | undefined;
}

/** The query one request would need for the window: the floor's. */
export const windowQuery = `${SNAPSHOT_QUERY}[${RANGE}]`;

export async function benchRange(dataset: Dataset, options: RangeBenchOptions): Promise<RangeFigures> {
  const { floor, store } = options;
  const url = () => dataset.prometheus.url;
  // The first query after start reads the blocks from disk: keep it out of every contender's figures.
  await curlToNull(floor, url(), windowQuery, dataset.time);
  const samples = {
    curlMc: [] as number[],
    mcRss: [] as number[],
    bytes: [] as number[],
    fnMs: [] as number[],
    fnRss: [] as number[],
    fnIdle: [] as number[],
    fnBytes: [] as number[],
  };
  let kept: string | undefined;
  for (let run = 0; run < options.runs; run++) {
    for (const contender of run % 2 === 0 ? (['floor', 'promsnap'] as const) : (['promsnap', 'floor'] as const)) {
      const runId = `bench-range-${dataset.series}-${run}-${Date.now()}`;
      if (contender === 'floor') {
        const key = `floor/${runId}.json`;
        const r = await curlToMc(floor, url(), windowQuery, dataset.time, `${store.bucket}/${key}`);
        samples.curlMc.push(r.ms);
        samples.bytes.push(r.bytes);
        if (r.mcPeakRss !== undefined) samples.mcRss.push(r.mcPeakRss);
        options.log(`  run ${run + 1} curl | mc pipe    ${(r.ms / 1000).toFixed(2)} s, ${r.bytes} bytes`);
        await options.s3.send(new DeleteObjectCommand({ Bucket: store.bucket, Key: key }));
        continue;
      }
      const r = await runSnapshotFunction({
        node: options.node,
        serverJs: options.serverJs,
        prometheusUrl: url(),
        store,
        time: dataset.time,
        runId,
        env: options.env,
        range: RANGE,
      });
      const expected = dataset.series * dataset.samples;
      if (r.samples !== expected || r.series !== dataset.series) {
        throw new Error(`the range export stored ${r.series} series and ${r.samples} samples, expected ${dataset.series} and ${expected}`);
      }
      samples.fnMs.push(r.ms);
      samples.fnRss.push(r.peakRss);
      samples.fnIdle.push(r.idleRss);
      samples.fnBytes.push(r.bytes);
      options.log(
        `  run ${run + 1} promsnap range    ${(r.ms / 1000).toFixed(2)} s, peak RSS ${(r.peakRss / 2 ** 20).toFixed(0)} MB (idle ${(r.idleRss / 2 ** 20).toFixed(0)}), ${r.bytes} bytes`,
      );
      // The last export is kept for restore; range exports are keyed by tick, so the next run's would
      // find it stored: each is deleted before the next.
      for (const key of r.keys) {
        if (options.deep && run === options.runs - 1 && key === r.keys.at(-1)) kept = key;
        else await options.s3.send(new DeleteObjectCommand({ Bucket: store.bucket, Key: key }));
      }
    }
  }
  const figures: RangeFigures = {
    series: dataset.series,
    samples: dataset.series * dataset.samples,
    answerBytes: median(samples.bytes),
    curlMcMs: median(samples.curlMc),
    mcPeakRss: samples.mcRss.length ? median(samples.mcRss) : undefined,
    promsnap: { ms: median(samples.fnMs), peakRss: median(samples.fnRss), idleRss: median(samples.fnIdle), bytes: median(samples.fnBytes) },
    prometheus: undefined,
    restore: undefined,
  };
  if (!options.deep) return figures;
  if (kept) {
    figures.restore = await restoreThroughput(kept, options);
    // Gone before the next export of the same tick, which would otherwise find it stored.
    await options.s3.send(new DeleteObjectCommand({ Bucket: store.bucket, Key: kept }));
  }
  figures.prometheus = await prometheusMemory(dataset, options);
  return figures;
}

/** Prometheus's peak RSS growth from a fresh process: one query of the window against promsnap's parts. */
async function prometheusMemory(dataset: Dataset, options: RangeBenchOptions): Promise<RangeFigures['prometheus']> {
  const single = { growth: [] as number[], ms: [] as number[], idle: [] as number[] };
  const split = { growth: [] as number[], ms: [] as number[], idle: [] as number[] };
  const runs = Math.max(1, Math.min(options.runs, 3));
  for (let run = 0; run < runs; run++) {
    for (const way of run % 2 === 0 ? (['single', 'split'] as const) : (['split', 'single'] as const)) {
      const prometheus = await dataset.restart();
      if (way === 'single') {
        const idle = await rssBytes(prometheus.process.pid);
        await resetPeakRss(prometheus.process.pid);
        const r = await curlToNull(options.floor, prometheus.url, windowQuery, dataset.time);
        const peak = await peakRssBytes(prometheus.process.pid);
        single.growth.push(peak - idle);
        single.idle.push(idle);
        single.ms.push(r.ms);
        options.log(
          `  Prometheus, one query:        +${((peak - idle) / 2 ** 20).toFixed(0)} MB over ${(idle / 2 ** 20).toFixed(0)} MB idle (${(r.ms / 1000).toFixed(2)} s)`,
        );
      } else {
        const r = await runSnapshotFunction({
          node: options.node,
          serverJs: options.serverJs,
          prometheusUrl: prometheus.url,
          store: options.store,
          time: dataset.time,
          runId: `bench-range-memory-${run}-${Date.now()}`,
          env: options.env,
          range: RANGE,
          watchPid: prometheus.process.pid,
        });
        for (const key of r.keys) await options.s3.send(new DeleteObjectCommand({ Bucket: options.store.bucket, Key: key }));
        const growth = r.watched!.peakRss - r.watched!.idleRss;
        split.growth.push(growth);
        split.idle.push(r.watched!.idleRss);
        split.ms.push(r.ms);
        options.log(
          `  Prometheus, promsnap's parts: +${(growth / 2 ** 20).toFixed(0)} MB over ${(r.watched!.idleRss / 2 ** 20).toFixed(0)} MB idle (${(r.ms / 1000).toFixed(2)} s)`,
        );
      }
    }
  }
  return {
    idleRss: median([...single.idle, ...split.idle]),
    singleGrowth: median(single.growth),
    splitGrowth: median(split.growth),
    singleMs: median(single.ms),
    splitMs: median(split.ms),
  };
}

/** `npm run restore` of one export into blocks, and promtool importing the same OpenMetrics directly. */
async function restoreThroughput(key: string, options: RangeBenchOptions): Promise<RangeFigures['restore']> {
  const runs = Math.max(1, Math.min(options.runs, 2));
  const restoreMs: number[] = [];
  const promtoolMs: number[] = [];
  let restored = 0;
  let openMetricsBytes = 0;
  for (let run = 0; run < runs; run++) {
    const dir = await mkdtemp(path.join(tmpdir(), 'promsnap-bench-restore-'));
    try {
      const start = process.hrtime.bigint();
      const result = await runCommand(
        options.node,
        ['--import', 'tsx', 'restore/src/main.ts', '--prefix', key, '--data-dir', path.join(dir, 'restored'), '--no-serve', '--keep-openmetrics', '--json'],
        {
          cwd: options.repoRoot,
          env: {
            ...process.env,
            S3_ENDPOINT: options.store.endpoint,
            S3_BUCKET: options.store.bucket,
            AWS_ACCESS_KEY_ID: options.store.accessKeyId,
            AWS_SECRET_ACCESS_KEY: options.store.secretAccessKey,
          },
        },
      );
      restoreMs.push(msSince(start));
      restored = (JSON.parse(result.stdout) as { samples: number }).samples;
      // Restore imports in files of 128 MiB while writing the next; the floor imports them all at once.
      const file = path.join(dir, 'floor.om');
      openMetricsBytes = await concatenateOpenMetrics(path.join(dir, 'restored'), file);
      await mkdir(path.join(dir, 'floor'), { recursive: true });
      const floorStart = process.hrtime.bigint();
      await runCommand(findTool('promtool'), ['tsdb', 'create-blocks-from', 'openmetrics', '--quiet', file, path.join(dir, 'floor')]);
      promtoolMs.push(msSince(floorStart));
      options.log(
        `  restore of ${restored} samples: ${(restoreMs.at(-1)! / 1000).toFixed(1)} s; promtool alone on its ${(openMetricsBytes / 2 ** 20).toFixed(0)} MB of OpenMetrics: ${(promtoolMs.at(-1)! / 1000).toFixed(1)} s`,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  return { samples: restored, ms: median(restoreMs), promtoolMs: median(promtoolMs), openMetricsBytes };
}

/** The restore's OpenMetrics files (restore-1.om, restore-2.om, ...) as one, with one `# EOF` at its end. */
async function concatenateOpenMetrics(dir: string, into: string): Promise<number> {
  const files = (await readdir(dir)).filter((f) => /^restore-\d+\.om$/.test(f)).sort((a, b) => Number(/\d+/.exec(a)![0]) - Number(/\d+/.exec(b)![0]));
  const out = createWriteStream(into);
  for (const f of files) {
    const text = await readFile(path.join(dir, f), 'utf8');
    if (!out.write(text.replace(/# EOF\n$/, ''))) await once(out, 'drain');
  }
  out.end('# EOF\n');
  await once(out, 'finish');
  return (await stat(into)).size;
}
