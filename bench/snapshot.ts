// Part 1, snapshot size scaling: for one dataset (a Prometheus holding N series), in one run and
// interleaved, so that a neighbour's load hits every contender alike:
//   floor     curl to /dev/null, and curl | mc pipe into the bucket
//   promsnap  the snapshot function, ping in to object stored
//   naive     axios + JSON.stringify + one PutObject
// Each repeat rotates the order of the four. Figures are medians over the repeats.
import { DeleteObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { runNaive, runSnapshotFunction, type StoreSettings } from './contenders.js';
import { SNAPSHOT_QUERY, type Dataset } from './dataset.js';
import { curlToMc, curlToNull, type FloorTools } from './floor.js';
import { seriesLabel } from './report.js';
import { median } from './stats.js';

export interface SnapshotBenchOptions {
  node: string;
  serverJs: string;
  naiveJs: string;
  store: StoreSettings;
  s3: S3Client;
  floor: FloorTools;
  runs: number;
  /** The snapshot image's environment, for both Node contenders. */
  env: Record<string, string>;
  /** Folder for `node --cpu-prof` profiles of the two Node contenders (timings then include profiling). */
  profileDir?: string;
  log: (line: string) => void;
}

export interface SnapshotFigures {
  series: number;
  /** Bytes of Prometheus's answer (as curl received it). */
  answerBytes: number;
  curlMs: number;
  curlMcMs: number;
  curlPeakRss: number | undefined;
  mcPeakRss: number | undefined;
  promsnap: { ms: number; peakRss: number; idleRss: number; bytes: number; series: number };
  naive: { ms: number; peakRss: number; idleRss: number; bytes: number };
}

type Contender = 'curl' | 'curl|mc' | 'promsnap' | 'naive';
const contenders: Contender[] = ['curl', 'curl|mc', 'promsnap', 'naive'];

export async function benchSnapshot(dataset: Dataset, options: SnapshotBenchOptions): Promise<SnapshotFigures> {
  const profile = (name: string) => (options.profileDir ? ['--cpu-prof', '--cpu-prof-dir', options.profileDir, '--cpu-prof-name', `${name}.cpuprofile`] : []);
  const url = dataset.prometheus.url;
  const { floor, store } = options;
  // The first query after start reads the block from disk: keep it out of every contender's figures.
  await curlToNull(floor, url, SNAPSHOT_QUERY, dataset.time);

  const samples = {
    curl: [] as number[],
    curlBytes: [] as number[],
    curlRss: [] as number[],
    curlMc: [] as number[],
    mcRss: [] as number[],
    fnMs: [] as number[],
    fnRss: [] as number[],
    fnIdle: [] as number[],
    fnBytes: [] as number[],
    fnSeries: [] as number[],
    naiveMs: [] as number[],
    naiveRss: [] as number[],
    naiveIdle: [] as number[],
    naiveBytes: [] as number[],
  };
  for (let run = 0; run < options.runs; run++) {
    const order = contenders.map((_, i) => contenders[(i + run) % contenders.length]!);
    for (const contender of order) {
      const runId = `bench-${dataset.series}-${run}-${Date.now()}`;
      let keys: string[] = [];
      if (contender === 'curl') {
        const r = await curlToNull(floor, url, SNAPSHOT_QUERY, dataset.time);
        samples.curl.push(r.ms);
        samples.curlBytes.push(r.bytes);
        if (r.curlPeakRss !== undefined) samples.curlRss.push(r.curlPeakRss);
        options.log(`  run ${run + 1} curl >/dev/null   ${(r.ms / 1000).toFixed(2)} s, ${r.bytes} bytes`);
      } else if (contender === 'curl|mc') {
        const key = `floor/${runId}.json`;
        const r = await curlToMc(floor, url, SNAPSHOT_QUERY, dataset.time, `${store.bucket}/${key}`);
        keys = [key];
        samples.curlMc.push(r.ms);
        if (r.mcPeakRss !== undefined) samples.mcRss.push(r.mcPeakRss);
        options.log(`  run ${run + 1} curl | mc pipe    ${(r.ms / 1000).toFixed(2)} s`);
      } else if (contender === 'promsnap') {
        const r = await runSnapshotFunction({
          node: options.node,
          serverJs: options.serverJs,
          prometheusUrl: url,
          store,
          time: dataset.time,
          runId,
          nodeArgs: profile(`promsnap-${seriesLabel(dataset.series)}-run${run + 1}`),
          env: options.env,
        });
        keys = r.keys;
        if (r.series !== dataset.series) throw new Error(`the snapshot function stored ${r.series} series, expected ${dataset.series}`);
        samples.fnMs.push(r.ms);
        samples.fnRss.push(r.peakRss);
        samples.fnIdle.push(r.idleRss);
        samples.fnBytes.push(r.bytes);
        samples.fnSeries.push(r.series);
        options.log(
          `  run ${run + 1} promsnap          ${(r.ms / 1000).toFixed(2)} s, peak RSS ${(r.peakRss / 2 ** 20).toFixed(0)} MB (idle ${(r.idleRss / 2 ** 20).toFixed(0)}), ${r.bytes} bytes`,
        );
      } else {
        const r = await runNaive({
          node: options.node,
          naiveJs: options.naiveJs,
          prometheusUrl: url,
          store,
          query: SNAPSHOT_QUERY,
          time: dataset.time,
          runId,
          nodeArgs: profile(`naive-${seriesLabel(dataset.series)}-run${run + 1}`),
          env: options.env,
        });
        keys = r.keys;
        samples.naiveMs.push(r.ms);
        samples.naiveRss.push(r.peakRss);
        samples.naiveIdle.push(r.idleRss);
        samples.naiveBytes.push(r.bytes);
        options.log(
          `  run ${run + 1} naive             ${(r.ms / 1000).toFixed(2)} s, peak RSS ${(r.peakRss / 2 ** 20).toFixed(0)} MB (idle ${(r.idleRss / 2 ** 20).toFixed(0)}), ${r.bytes} bytes`,
        );
      }
      // Hundreds of MB per object at 1M series: keep the disk (and MinIO's listing) small.
      for (const Key of keys) await options.s3.send(new DeleteObjectCommand({ Bucket: store.bucket, Key }));
    }
  }
  return {
    series: dataset.series,
    answerBytes: median(samples.curlBytes),
    curlMs: median(samples.curl),
    curlMcMs: median(samples.curlMc),
    curlPeakRss: samples.curlRss.length ? median(samples.curlRss) : undefined,
    mcPeakRss: samples.mcRss.length ? median(samples.mcRss) : undefined,
    promsnap: {
      ms: median(samples.fnMs),
      peakRss: median(samples.fnRss),
      idleRss: median(samples.fnIdle),
      bytes: median(samples.fnBytes),
      series: median(samples.fnSeries),
    },
    naive: { ms: median(samples.naiveMs), peakRss: median(samples.naiveRss), idleRss: median(samples.naiveIdle), bytes: median(samples.naiveBytes) },
  };
}
