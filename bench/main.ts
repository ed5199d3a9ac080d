// npm run bench [-- --quick] [--runs K] [--out FILE] [--sizes 10k,100k] [--parts snapshot,range,instrumentation,startup] [--ref REF] [--profile DIR]
//
// Measures, in one run: snapshot cost against the floor and the naive approach (real Prometheus,
// MinIO, curl, mc), range exports against the floor with Prometheus's memory and restore's
// throughput, instrumentation overhead (hey), and start-up. Prints a Markdown report whose last
// lines are `name value` figures, and writes it to bench/results/<date>.md (and latest.md); a --quick
// run writes bench/results/<date>-quick.md only, so it never replaces the committed full results.
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startMinio, type RunningMinio } from '../platform/tools/minio.js';
import { findTool } from '../platform/tools/find.js';
import { compileFunctions, repoRoot, type Build } from './build.js';
import { formatSummary, summariseDir } from './cpuprofile.js';
import { startDataset } from './dataset.js';
import { describeEnv, readImageEnvs } from './image-env.js';
import { benchInstrumentation } from './instrumentation.js';
import { describeMachine } from './machine.js';
import { gnuTime } from './procfs.js';
import { renderReport, seriesLabel, type BenchResults } from './report.js';
import { benchRange, type RangeFigures } from './range.js';
import { benchSnapshot, type SnapshotFigures } from './snapshot.js';
import type { FloorTools } from './floor.js';
import { benchStartup } from './startup.js';

const usage = `usage: npm run bench -- [--quick] [--runs K] [--out FILE] [--sizes 10k,100k,1m] [--parts snapshot,range,instrumentation,startup] [--ref REF] [--profile DIR]
  --quick   N = 10k and 100k, fewer and shorter runs (a few minutes)
  --runs K  repeats per measurement (default 5, quick 3); figures are medians
  --out     report file (default bench/results/<date>.md and latest.md; quick: <date>-quick.md)
  --sizes   series counts to snapshot and export (default 10k,100k,1m; quick 10k,100k)
  --parts   which parts to run (default all)
  --ref REF compile events/ and functions/ from a git ref (e.g. HEAD) instead of the working tree
  --profile DIR  run the snapshot contenders under node --cpu-prof into DIR and print where the time went
                 (their timings then include profiling: use for diagnosis, not for figures)`;

const allParts = ['snapshot', 'range', 'instrumentation', 'startup'] as const;
type Part = (typeof allParts)[number];

function parseSize(text: string): number {
  const match = /^(\d+)(k|m)?$/i.exec(text.trim());
  if (!match) throw new Error(`--sizes: ${JSON.stringify(text)} is not like 10k, 100k or 1m`);
  return Number(match[1]) * (match[2] ? { k: 1_000, m: 1_000_000 }[match[2].toLowerCase() as 'k' | 'm'] : 1);
}

function options() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      runs: { type: 'string' },
      out: { type: 'string' },
      sizes: { type: 'string' },
      parts: { type: 'string' },
      profile: { type: 'string' },
      ref: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  const quick = values.quick;
  const runs = values.runs === undefined ? (quick ? 3 : 5) : Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a whole number of 1 or more, got ${values.runs}`);
  const sizes = (values.sizes ?? (quick ? '10k,100k' : '10k,100k,1m')).split(',').map(parseSize);
  const parts = (values.parts ?? allParts.join(',')).split(',').map((p) => p.trim());
  for (const p of parts) if (!allParts.includes(p as Part)) throw new Error(`--parts: unknown part ${p} (known: ${allParts.join(', ')})`);
  return {
    quick,
    runs,
    sizes,
    parts: new Set(parts as Part[]),
    out: values.out,
    ref: values.ref,
    profile: values.profile ? path.resolve(values.profile) : undefined,
  };
}

const log = (line: string) => process.stderr.write(`${line}\n`);

// Everything started is stopped on the way out, Ctrl-C included: the servers run in process groups
// of their own and would otherwise outlive the bench.
const cleanups: Array<() => Promise<unknown>> = [];
async function cleanUp(): Promise<void> {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch((err: unknown) => log(`cleanup: ${(err as Error).message}`));
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping servers`);
    void cleanUp().finally(() => process.exit(130));
  });
}

async function main(): Promise<void> {
  const opts = options();
  const started = Date.now();
  const date = new Date();
  const machine = await describeMachine();
  log(`promsnap bench (${opts.quick ? 'quick' : 'full'}): ${machine.cpu}, ${machine.cores} cores, load ${machine.loadAverage.toFixed(2)}`);
  const node = process.execPath;

  log('compiling the functions (tsc -p tsconfig.build.json into a temporary outDir) ...');
  const build: Build = await compileFunctions(opts.ref ? { ref: opts.ref } : {});
  cleanups.push(() => build.dispose());
  log(`  compiled: ${build.source}`);
  if (build.diagnostics) log(`tsc reported (emitted anyway):\n${build.diagnostics}`);

  const imageEnvs = await readImageEnvs(build.sourceRoot);
  const results: BenchResults = {
    date,
    mode: opts.quick ? 'quick' : 'full',
    runs: opts.runs,
    machine,
    loadAverageAtEnd: Number.NaN,
    durationSeconds: Number.NaN,
    buildNote: `compiled JS (tsc -p tsconfig.build.json into a temporary outDir) from the ${build.source}`,
    envNote: `each run with its image's environment: snapshot ${describeEnv(imageEnvs.snapshot)}; simulation (and the bare app) ${describeEnv(imageEnvs.simulation)}`,
    snapshot: [],
    range: [],
    instrumentation: undefined,
    startup: [],
  };

  // The light parts first, before a Prometheus holding a million series takes the memory and cores.
  if (opts.parts.has('startup')) {
    log('start-up (spawn to /readyz) ...');
    results.startup = await benchStartup({ node, build, runs: opts.quick ? 5 : 10, imageEnvs, log });
  }
  if (opts.parts.has('instrumentation')) {
    log('instrumentation overhead (hey) ...');
    results.instrumentation = await benchInstrumentation({
      node,
      simulationJs: build.js('functions/simulation/src/server.ts'),
      bareJs: build.js('bench/bare-server.ts'),
      rounds: opts.quick ? 5 : 15,
      duration: opts.quick ? '3s' : '4s',
      warmup: opts.quick ? '1s' : '2s',
      concurrency: 8,
      renderRepeats: opts.quick ? 10 : 30,
      env: imageEnvs.simulation,
      log,
    });
  }
  if (opts.parts.has('snapshot')) {
    results.snapshot = await snapshotPart(opts.sizes, opts.runs, node, build, imageEnvs.snapshot, opts.profile);
    if (opts.profile) for (const summary of await summariseDir(opts.profile)) log(formatSummary(summary));
  }
  if (opts.parts.has('range')) {
    results.range = await rangePart(opts.sizes, opts.runs, node, build, imageEnvs.snapshot);
  }

  results.loadAverageAtEnd = os.loadavg()[0]!;
  results.durationSeconds = (Date.now() - started) / 1000;
  const report = renderReport(results);
  process.stdout.write(`\n${report}`);
  const day = date.toISOString().slice(0, 10);
  const resultsDir = path.join(repoRoot, 'bench/results');
  const files = opts.out
    ? [path.resolve(opts.out)]
    : opts.quick
      ? [path.join(resultsDir, `${day}-quick.md`)]
      : [path.join(resultsDir, `${day}.md`), path.join(resultsDir, 'latest.md')];
  for (const file of files) {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, report);
  }
  log(`written: ${files.map((f) => path.relative(process.cwd(), f)).join(', ')}`);
}

/** One MinIO with a bucket for the parts that store objects, and the floor's tools pointed at it. */
async function startBucket(): Promise<{
  minio: RunningMinio;
  s3: S3Client;
  bucket: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  floor: FloorTools;
}> {
  const credentials = { accessKeyId: 'promsnap-bench', secretAccessKey: 'promsnap-bench-secret' };
  const minioDir = await mkdtemp(path.join(tmpdir(), 'promsnap-bench-minio-'));
  cleanups.push(() => rm(minioDir, { recursive: true, force: true }));
  log('starting MinIO ...');
  const minio: RunningMinio = await startMinio({ dataDir: minioDir, credentials });
  cleanups.push(() => minio.stop());
  const bucket = 'snapshots';
  const s3 = new S3Client({ endpoint: minio.endpoint, region: 'us-east-1', credentials, forcePathStyle: true });
  cleanups.push(() => Promise.resolve(s3.destroy()));
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const mcHost = new URL(minio.endpoint);
  mcHost.username = credentials.accessKeyId;
  mcHost.password = credentials.secretAccessKey;
  const floor = {
    curl: findTool('curl'),
    mc: findTool('mc'),
    time: await gnuTime(),
    mcConfigDir: path.join(minioDir, 'mc-bench'),
    mcHost: mcHost.toString().replace(/\/$/, ''),
  };
  if (!floor.time) log('GNU time (/usr/bin/time) not found: no peak RSS for curl and mc');
  return { minio, s3, bucket, credentials, floor };
}

let bucketSetUp: ReturnType<typeof startBucket> | undefined;
const sharedBucket = () => (bucketSetUp ??= startBucket());

async function snapshotPart(
  sizes: number[],
  runs: number,
  node: string,
  build: Build,
  env: Record<string, string>,
  profileDir: string | undefined,
): Promise<SnapshotFigures[]> {
  if (profileDir) await mkdir(profileDir, { recursive: true });
  const { minio, s3, bucket, credentials, floor } = await sharedBucket();
  const figures: SnapshotFigures[] = [];
  for (const series of sizes) {
    log(`snapshot, ${seriesLabel(series)} series: generating and backfilling ...`);
    const dataset = await startDataset(series);
    const stop = () => dataset.stop();
    cleanups.push(stop);
    log(`  backfilled in ${dataset.backfillSeconds.toFixed(1)} s; Prometheus ready at ${dataset.prometheus.url}, instant ${dataset.time}`);
    figures.push(
      await benchSnapshot(dataset, {
        node,
        serverJs: build.js('functions/snapshot/src/server.ts'),
        naiveJs: build.js('bench/naive.ts'),
        store: { endpoint: minio.endpoint, bucket, ...credentials },
        s3,
        floor,
        runs,
        env,
        ...(profileDir ? { profileDir } : {}),
        log,
      }),
    );
    cleanups.splice(cleanups.indexOf(stop), 1);
    await stop();
  }
  return figures;
}

/** Range exports of N series x five samples (a five-minute window at a minute's interval), and at the largest N Prometheus's memory and restore. */
async function rangePart(sizes: number[], runs: number, node: string, build: Build, env: Record<string, string>): Promise<RangeFigures[]> {
  const { minio, s3, bucket, credentials, floor } = await sharedBucket();
  const figures: RangeFigures[] = [];
  const largest = Math.max(...sizes);
  for (const series of sizes) {
    log(`range export, ${seriesLabel(series)} series x 5 samples: generating and backfilling ...`);
    const dataset = await startDataset(series, { samples: 5, stepSeconds: 60 });
    const stop = () => dataset.stop();
    cleanups.push(stop);
    log(`  backfilled in ${dataset.backfillSeconds.toFixed(1)} s; Prometheus ready at ${dataset.prometheus.url}, tick ${dataset.time}`);
    figures.push(
      await benchRange(dataset, {
        node,
        serverJs: build.js('functions/snapshot/src/server.ts'),
        store: { endpoint: minio.endpoint, bucket, ...credentials },
        s3,
        floor,
        runs,
        env,
        deep: series === largest,
        repoRoot,
        log,
      }),
    );
    cleanups.splice(cleanups.indexOf(stop), 1);
    await stop();
  }
  return figures;
}

try {
  await main();
  await cleanUp();
  // prom-client's default metrics (render part) keep handles open: the bench is done.
  process.exit(0);
} catch (err) {
  log(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  await cleanUp();
  process.exit(1);
}
