// A real Prometheus holding exactly N synthetic series at one instant. The series are written as an
// OpenMetrics file and backfilled with `promtool tsdb create-blocks-from openmetrics` into the TSDB
// folder before Prometheus starts, so the query `{__name__!=""}` at that instant returns N series and
// nothing else (no scrape jobs: not even Prometheus's own metrics).
//
// Shape: 100 metric families, labels like a node exporter's (job, instance, pod, series), about 140
// bytes of answer JSON per series: the size per series measured on real clusters' answers.
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { runCommand } from '../platform/tools/command.js';
import { findTool } from '../platform/tools/find.js';
import { startPrometheus, type RunningPrometheus } from '../platform/tools/prometheus.js';

export const SNAPSHOT_QUERY = '{__name__!=""}';
const families = 100;

export interface DatasetShape {
  /** Samples per series, `stepSeconds` apart, the last at the dataset's instant (default 1). */
  samples?: number;
  stepSeconds?: number;
}

export interface Dataset {
  series: number;
  /** Samples per series. */
  samples: number;
  /** The instant every sample is at (ISO, whole seconds): the ping's time and the floor's query time. */
  time: string;
  prometheus: RunningPrometheus;
  /** Bytes of the OpenMetrics file and seconds promtool took, for the report. */
  openMetricsBytes: number;
  backfillSeconds: number;
  /** Stops Prometheus and starts it again on the same TSDB and port: a process that has answered nothing yet. */
  restart(): Promise<RunningPrometheus>;
  stop(): Promise<void>;
}

/** Writes the OpenMetrics text for `series` series ending at unix second `at`, streaming. */
export async function writeOpenMetrics(file: string, series: number, at: number, shape: DatasetShape = {}): Promise<number> {
  const samples = shape.samples ?? 1;
  const step = shape.stepSeconds ?? 60;
  const out = createWriteStream(file);
  const perFamily = Math.ceil(series / families);
  let written = 0;
  let buffer = '';
  const flush = async () => {
    if (!out.write(buffer)) await once(out, 'drain');
    buffer = '';
  };
  for (let f = 0; f < families && written < series; f++) {
    const name = `bench_metric_${f}`;
    buffer += `# HELP ${name} Synthetic series for the promsnap benchmark.\n# TYPE ${name} gauge\n`;
    for (let j = 0; j < perFamily && written < series; j++, written++) {
      const i = written;
      const instance = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:9100`;
      const labels = `${name}{job="bench",instance="${instance}",pod="app-${i}",series="${i}"}`;
      for (let k = samples - 1; k >= 0; k--) buffer += `${labels} ${((i + k) % 997) / 7} ${at - k * step}\n`;
      if (buffer.length > 1 << 20) await flush();
    }
  }
  buffer += '# EOF\n';
  await flush();
  out.end();
  await once(out, 'finish');
  return (await stat(file)).size;
}

async function run(command: string, args: string[]): Promise<void> {
  await runCommand(command, args);
}

/** Count of series Prometheus answers for the snapshot query at `time`. */
export async function countSeries(url: string, time: string): Promise<number> {
  const res = await fetch(`${url}/api/v1/query?${new URLSearchParams({ query: `count(${SNAPSHOT_QUERY})`, time }).toString()}`);
  const body = (await res.json()) as { status: string; data?: { result: Array<{ value: [number, string] }> }; error?: string };
  if (body.status !== 'success' || !body.data) throw new Error(`count query failed: ${body.error ?? res.status}`);
  return Number(body.data.result[0]?.value[1] ?? 0);
}

export async function startDataset(series: number, shape: DatasetShape = {}): Promise<Dataset> {
  const promtool = findTool('promtool');
  const dir = await mkdtemp(path.join(tmpdir(), `promsnap-bench-${series}-`));
  try {
    // A recent instant, so the blocks sit well inside Prometheus's retention; on a five-minute
    // boundary, so it is the tick of a range export of the last five minutes.
    const at = Math.floor(Date.now() / 300_000) * 300 - 600;
    const file = path.join(dir, 'series.om.txt');
    const openMetricsBytes = await writeOpenMetrics(file, series, at, shape);
    const tsdb = path.join(dir, 'tsdb');
    await mkdir(tsdb, { recursive: true });
    const started = Date.now();
    await run(promtool, ['tsdb', 'create-blocks-from', 'openmetrics', '--quiet', file, tsdb]);
    const backfillSeconds = (Date.now() - started) / 1000;
    await rm(file);
    const serve = (port?: number) => startPrometheus({ config: 'global:\n  scrape_interval: 1m\n', dataDir: dir, retention: '30d', ...(port ? { port } : {}) });
    let prometheus = await serve();
    const time = new Date(at * 1000).toISOString().replace('.000Z', 'Z');
    const held = await countSeries(prometheus.url, time);
    if (held !== series) {
      await prometheus.stop();
      throw new Error(`Prometheus holds ${held} series at ${time}, expected ${series}`);
    }
    return {
      series,
      samples: shape.samples ?? 1,
      time,
      get prometheus() {
        return prometheus;
      },
      openMetricsBytes,
      backfillSeconds,
      async restart() {
        await prometheus.stop();
        prometheus = await serve(prometheus.port);
        return prometheus;
      },
      async stop() {
        await prometheus.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
