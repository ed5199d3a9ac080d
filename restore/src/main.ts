// `npm run restore -- ...`: exports from the bucket back into a Prometheus. Wiring only: parse the
// command line, run the restore (restore.ts), serve the blocks until Ctrl-C, and print any failure as
// one or two lines with the exit code scripts branch on (errors.ts).
import { openBucket } from './bucket.js';
import { holdsTsdb, serveTsdb, tsdbDir } from './blocks.js';
import { exitCodes, formatError, RestoreError, usageError } from './errors.js';
import { helpText, parseCommandLine, type RestoreOptions } from './options.js';
import { restore, type RestoreResult } from './restore.js';

const out = (text: string) => void process.stdout.write(text);
const err = (text: string) => void process.stderr.write(text);

function summary(result: RestoreResult, options: RestoreOptions, json: boolean): string {
  const { counts } = result;
  const ranges = result.plan.exports.filter((e) => e.kind === 'range').length;
  const rate = Math.round(counts.samples / result.seconds);
  if (json) {
    return `${JSON.stringify({
      exports: result.plan.exports.length,
      rangeExports: ranges,
      instantSnapshots: result.plan.exports.length - ranges,
      instantsLeftOut: result.plan.coveredInstants.length,
      ...counts,
      skippedQueries: result.skippedQueries,
      bytesRead: result.bytesRead,
      seconds: Number(result.seconds.toFixed(3)),
      samplesPerSecond: rate,
      ...(options.remoteWrite
        ? { remoteWrite: options.remoteWrite, requests: result.requests }
        : { tsdb: tsdbDir(options.dataDir), openMetricsFiles: result.files.length }),
    })}\n`;
  }
  const dropped = [`${counts.duplicates} duplicates dropped`];
  if (counts.outsideRange) dropped.push(`${counts.outsideRange} outside the range`);
  if (counts.nativeHistograms) dropped.push(`${counts.nativeHistograms} native histogram samples left out`);
  if (counts.unnamedSeries) dropped.push(`${counts.unnamedSeries} series without a metric name left out`);
  if (counts.notSeriesAnswers) dropped.push(`${counts.notSeriesAnswers} scalar or string answers left out`);
  const skipped = result.skippedQueries.length ? `\nleft out, as a TSDB keeps series by metric name: ${result.skippedQueries.join('; ')}` : '';
  const where = options.remoteWrite ? `pushed to ${options.remoteWrite} in ${result.requests} requests` : `TSDB blocks in ${tsdbDir(options.dataDir)}`;
  return (
    `restored ${counts.samples} samples of ${counts.series} series from ${result.plan.exports.length} exports (${ranges} range, ${result.plan.exports.length - ranges} instant) ` +
    `in ${result.seconds.toFixed(1)} s, ${rate} samples/s; ${dropped.join(', ')}${skipped}\n${where}\n`
  );
}

/** Serves the data dir until SIGINT or SIGTERM. */
async function serve(options: RestoreOptions): Promise<number> {
  const prometheus = await serveTsdb(options.dataDir, options.port);
  out(`Prometheus API ${prometheus.url}\n`);
  err('serving until Ctrl-C; add it to Grafana as a Prometheus data source with this URL\n');
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const stop = (s: NodeJS.Signals) => resolve(s);
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    void prometheus.process.exited.then(() => resolve('SIGCHLD'));
  });
  if (signal === 'SIGCHLD') {
    throw new RestoreError([`Prometheus stopped on its own:\n${prometheus.process.recentOutput()}`], exitCodes.failed);
  }
  await prometheus.stop();
  return exitCodes.ok;
}

async function main(argv: readonly string[]): Promise<number> {
  const parsed = parseCommandLine(argv);
  if (parsed.help) {
    out(helpText);
    return exitCodes.ok;
  }
  const options = parsed;
  if (options.serveOnly) {
    if (!(await holdsTsdb(options.dataDir))) throw usageError(`${options.dataDir} holds no restored TSDB to serve`);
    return serve(options);
  }
  if (!options.remoteWrite && (await holdsTsdb(options.dataDir))) {
    throw usageError(`${tsdbDir(options.dataDir)} already holds a TSDB: restore into another --data-dir, or serve this one with --serve-only`);
  }
  const bucket = openBucket(options.s3);
  let result: RestoreResult;
  try {
    result = await restore(options, { bucket, log: (line) => err(`${line}\n`) });
  } finally {
    bucket.close();
  }
  out(summary(result, options, options.json));
  if (options.remoteWrite || !options.serve) return exitCodes.ok;
  return serve(options);
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  const restoreError =
    error instanceof RestoreError ? error : new RestoreError([`unexpected failure: ${(error as Error)?.stack ?? String(error)}`], exitCodes.failed);
  err(formatError(restoreError));
  process.exitCode = restoreError.exitCode;
}
