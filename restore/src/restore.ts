// One restore: plan which exports to read (plan.ts), read each as it streams from the bucket, keep
// each sample once (samples.ts), and hand the samples to TSDB blocks (promtool, via OpenMetrics
// files) or to a remote-write receiver.
import { mkdir, rm } from 'node:fs/promises';
import { readExport } from '../../archive/src/index.js';
import { importOpenMetrics } from './blocks.js';
import { fromStore, readFailure, type Bucket } from './bucket.js';
import { exitCodes, RestoreError } from './errors.js';
import { OpenMetricsWriter, type OpenMetricsFile } from './openmetrics.js';
import { planRestore, type Plan } from './plan.js';
import type { RestoreOptions } from './options.js';
import { RemoteWriter } from './remote-write.js';
import { SampleFilter, type RestoredSeries, type SampleCounts } from './samples.js';

export interface RestoreResult {
  plan: Plan;
  counts: SampleCounts;
  /** Queries whose answers held series without a metric name, or a scalar or string: left out. */
  skippedQueries: string[];
  /** OpenMetrics files imported (blocks), in order. */
  files: OpenMetricsFile[];
  /** Requests sent (remote write). */
  requests: number;
  bytesRead: number;
  seconds: number;
}

/**
 * How large one OpenMetrics file grows before promtool imports it while the next one is written: small
 * enough that the two overlap, large enough that promtool's start-up is a small part of each import.
 */
const defaultFileBytes = 128 * 1024 * 1024;

export async function restore(options: RestoreOptions, deps: { bucket: Bucket; log: (line: string) => void; fileBytes?: number }): Promise<RestoreResult> {
  const started = performance.now();
  const { bucket, log } = deps;
  await bucket.check();
  const plan = await planRestore(bucket, options);
  if (plan.exports.length === 0) {
    throw new RestoreError(
      [`bucket ${bucket.name} holds no export ${describeSelection(options)}.`, 'List what it holds with `mc ls --recursive`.'],
      exitCodes.nothingToRestore,
    );
  }
  const ranges = plan.exports.filter((e) => e.kind === 'range').length;
  log(
    `reading ${plan.exports.length} exports (${ranges} range, ${plan.exports.length - ranges} instant)${plan.coveredInstants.length ? `; ${plan.coveredInstants.length} instant snapshots left out, their instants are in range exports` : ''}`,
  );

  const filter = new SampleFilter(options.from, options.to);
  let sink: { write(series: RestoredSeries): Promise<void>; end(): Promise<unknown> };
  let files: OpenMetricsFile[] = [];
  let remote: RemoteWriter | undefined;
  if (options.remoteWrite) {
    remote = new RemoteWriter({ url: options.remoteWrite });
    sink = remote;
  } else {
    await mkdir(options.dataDir, { recursive: true });
    const writer = new OpenMetricsWriter(options.dataDir, deps.fileBytes ?? defaultFileBytes, async (file) => {
      log(`promtool: importing ${file.samples} samples (${(file.bytes / 2 ** 20).toFixed(1)} MiB of OpenMetrics)`);
      await importOpenMetrics(file.file, options.dataDir);
      if (!options.keepOpenMetrics) await rm(file.file, { force: true });
    });
    sink = { write: (s) => writer.write(s), end: async () => (files = await writer.end()) };
  }

  let bytesRead = 0;
  for (const selected of plan.exports) {
    const body = await bucket.open(selected.key);
    try {
      for await (const item of readExport(fromStore(body, (n) => (bytesRead += n)))) {
        if (item.type === 'not-series') filter.notSeries(item.query);
        if (item.type !== 'series') continue;
        const series = filter.accept(item.series, item.query);
        if (series) await sink.write(series);
      }
    } catch (err) {
      throw readFailure(err, `bucket ${bucket.name}`, selected.key);
    } finally {
      body.destroy();
    }
  }
  await sink.end();
  if (filter.skippedQueries.size > 0) {
    log(
      `left out ${filter.counts.unnamedSeries} series without a metric name and ${filter.counts.notSeriesAnswers} scalar or string answers, of: ${[...filter.skippedQueries].join('; ')}`,
    );
  }

  const counts = filter.counts;
  if (counts.samples === 0) {
    throw new RestoreError(
      [`the ${plan.exports.length} exports found ${describeSelection(options)} hold no sample inside it.`, 'Widen the time range.'],
      exitCodes.nothingToRestore,
    );
  }
  return {
    plan,
    counts,
    skippedQueries: [...filter.skippedQueries],
    files,
    requests: remote?.requests ?? 0,
    bytesRead,
    seconds: (performance.now() - started) / 1000,
  };
}

function describeSelection(options: RestoreOptions): string {
  const parts: string[] = [];
  if (options.prefix !== undefined) parts.push(`under ${JSON.stringify(options.prefix)}`);
  if (options.from !== undefined) parts.push(`from ${new Date(options.from).toISOString()} to ${new Date(options.to!).toISOString()}`);
  if (options.source !== undefined) parts.push(`of PingSource ${options.source}`);
  if (options.kinds.size === 1) parts.push(`(${[...options.kinds][0]} exports only)`);
  return parts.join(' ');
}
