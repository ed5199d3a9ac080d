// The bench's own measuring parts, checked against real processes and a real Prometheus: a figure is
// only as good as the instrument that took it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../build.js';
import { countSeries, SNAPSHOT_QUERY, startDataset } from '../dataset.js';
import { describeEnv, readImageEnvs } from '../image-env.js';
import { allowedCpus, parseCpuList, peakRssBytes, resetPeakRss, rssBytes } from '../procfs.js';
import { figures, goals, renderReport, seriesLabel, type BenchResults } from '../report.js';
import { median } from '../stats.js';

const MB = 2 ** 20;

test('a backfilled dataset answers exactly N series at its instant, and none a minute before', async (t) => {
  const dataset = await startDataset(2_500);
  t.after(() => dataset.stop());
  assert.equal(await countSeries(dataset.prometheus.url, dataset.time), 2_500);
  const before = new Date(Date.parse(dataset.time) - 60_000).toISOString();
  assert.equal(await countSeries(dataset.prometheus.url, before), 0);
  const res = await fetch(`${dataset.prometheus.url}/api/v1/query`, {
    method: 'POST',
    body: new URLSearchParams({ query: SNAPSHOT_QUERY, time: dataset.time }),
  });
  const body = (await res.json()) as { data: { result: Array<{ metric: Record<string, string> }> } };
  const names = new Set(body.data.result.map((r) => r.metric['__name__']));
  assert.equal(names.size, 100, 'series are spread over 100 metric families');
});

test('peak RSS is the kernel high-water mark, and a reset lowers it to the current RSS', async (t) => {
  // A child that holds 150 MB, lets it go, and waits: its peak stays, its RSS falls.
  const script = `
    let held = Buffer.alloc(150 * 1024 * 1024, 1);
    held = undefined; globalThis.gc();
    process.stdout.write('freed\\n');
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--expose-gc', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => child.kill('SIGKILL'));
  const lines = createInterface({ input: child.stdout });
  await once(lines, 'line');
  const peak = await peakRssBytes(child.pid!);
  const current = await rssBytes(child.pid!);
  assert.ok(peak > 150 * MB, `peak ${peak / MB} MB holds the 150 MB buffer`);
  assert.ok(current < peak - 100 * MB, `RSS ${current / MB} MB fell after the buffer was freed`);
  await resetPeakRss(child.pid!);
  const afterReset = await peakRssBytes(child.pid!);
  assert.ok(afterReset < peak - 100 * MB, `peak after reset ${afterReset / MB} MB`);
});

function results(overrides: Partial<BenchResults> = {}): BenchResults {
  const snap = (series: number, fnMb: number, naiveMb: number, ms: number, floorMs: number) => ({
    series,
    answerBytes: series * 155,
    curlMs: floorMs / 2,
    curlMcMs: floorMs,
    curlPeakRss: 10 * MB,
    mcPeakRss: 50 * MB,
    promsnap: { ms, peakRss: fnMb * MB, idleRss: 100 * MB, bytes: series * 155, series },
    naive: { ms: ms * 2, peakRss: naiveMb * MB, idleRss: 90 * MB, bytes: series * 290 },
  });
  return {
    date: new Date('2026-11-25T12:00:00Z'),
    mode: 'full',
    runs: 5,
    machine: { cpu: 'cpu', cores: 2, memoryGiB: 8, node: 'v24.21.0', kernel: 'Linux', loadAverage: 1, tools: 'tools' },
    loadAverageAtEnd: 1,
    durationSeconds: 300,
    buildNote: 'compiled',
    envNote: 'each run with its image environment',
    snapshot: [snap(10_000, 105, 104, 100, 90), snap(100_000, 130, 250, 600, 400), snap(1_000_000, 150, 1500, 4_500, 4_000)],
    range: [
      {
        series: 100_000,
        samples: 500_000,
        answerBytes: 29e6,
        curlMcMs: 600,
        mcPeakRss: 60 * MB,
        promsnap: { ms: 700, peakRss: 120 * MB, idleRss: 100 * MB, bytes: 29e6 },
        prometheus: undefined,
        restore: undefined,
      },
      {
        series: 1_000_000,
        samples: 5_000_000,
        answerBytes: 291e6,
        curlMcMs: 6_000,
        mcPeakRss: 190 * MB,
        promsnap: { ms: 6_600, peakRss: 140 * MB, idleRss: 100 * MB, bytes: 291e6 },
        prometheus: { idleRss: 200 * MB, singleGrowth: 2000 * MB, splitGrowth: 300 * MB, singleMs: 4_000, splitMs: 6_600 },
        restore: { samples: 5_000_000, ms: 50_000, promtoolMs: 40_000, openMetricsBytes: 600 * MB },
      },
    ],
    instrumentation: {
      instrumented: { rps: 9_000, p99Ms: 5, cpuUsPerRequest: 40 },
      bare: { rps: 10_000, p99Ms: 4, cpuUsPerRequest: 36 },
      rpsRatio: 0.9,
      p99Ratio: 1.25,
      cpuRatio: 1.1,
      rounds: 15,
      rpsRatioRange: [0.85, 0.95],
      placement: 'servers pinned to CPU 0, hey to CPU 1',
      renders: [{ combinations: 1_000, ms: 25, bytes: 2_000_000 }],
    },
    startup: [
      { name: 'snapshot_startup_ms', fn: 'snapshot', runtime: 'compiled', ms: 250 },
      { name: 'snapshot_startup_tsx_ms', fn: 'snapshot', runtime: 'tsx', ms: 500 },
    ],
    ...overrides,
  };
}

test('the report ends with one `name value` line per figure, the names the issue gives', () => {
  const r = results();
  const lines = renderReport(r).trimEnd().split('\n');
  const tail = lines.slice(-figures(r).length);
  for (const line of tail) assert.match(line, /^[a-z0-9_]+ -?[0-9.]+$/, line);
  const values = new Map(tail.map((l) => l.split(' ') as [string, string]));
  assert.equal(values.get('snapshot_1m_peak_rss_mb'), '150');
  assert.equal(values.get('snapshot_1m_time_vs_floor'), '1.13');
  assert.equal(values.get('simulation_rps_ratio'), '0.9');
  assert.equal(values.get('snapshot_startup_ms'), '250');
  assert.equal(values.get('range_1m_time_vs_floor'), '1.1');
  assert.equal(values.get('prometheus_1m_memory_ratio'), '0.15');
  assert.equal(values.get('restore_1m_samples_per_s'), '100000');
  assert.equal(values.get('restore_1m_vs_promtool'), '0.8');
});

test('the report says how the overhead was measured, how far rounds spread, and the environment the functions ran with', () => {
  const report = renderReport(results());
  assert.match(report, /15 rounds of fresh processes; servers pinned to CPU 0, hey to CPU 1/);
  assert.match(report, /0\.9x \(rounds 0\.85-0\.95\)/);
  assert.match(report, /^simulation_rps_ratio_min 0\.85$/m);
  assert.match(report, /^simulation_rps_ratio_max 0\.95$/m);
  assert.match(report, /- Functions: compiled; each run with its image environment/);
});

test('the functions run with the environment their Dockerfiles set', async () => {
  const envs = await readImageEnvs(repoRoot);
  const envLines = async (fn: string) =>
    (await readFile(path.join(repoRoot, 'functions', fn, 'Dockerfile'), 'utf8'))
      .split('\n')
      .filter((l) => l.startsWith('ENV '))
      .map((l) => l.slice(4));
  // Each ENV line is NAME=value in these Dockerfiles; every one of them reaches the bench's processes.
  for (const fn of ['snapshot', 'simulation'] as const) {
    const lines = await envLines(fn);
    assert.ok(lines.length > 0, `${fn} sets some environment`);
    assert.deepEqual(
      lines.map((l) => `${l.slice(0, l.indexOf('='))}=${envs[fn][l.slice(0, l.indexOf('='))]}`),
      lines,
    );
  }
  assert.match(envs.snapshot['NODE_OPTIONS'] ?? '', /--max-semi-space-size=/);
  assert.equal(describeEnv({ A: '1', B: 'x y' }), 'A=1 B=x y');
  assert.equal(describeEnv({}), 'none');
});

test('CPU lists read as taskset and /proc print them', () => {
  assert.deepEqual(parseCpuList('0-1'), [0, 1]);
  assert.deepEqual(parseCpuList('0-3,6,8-9\n'), [0, 1, 2, 3, 6, 8, 9]);
  assert.deepEqual(parseCpuList('5'), [5]);
  assert.throws(() => parseCpuList('0-1 (mask 3)'), /not a CPU list/);
});

test('the CPUs this process may use are the ones taskset reports', async () => {
  const { stdout: reported } = await promisify(execFile)('taskset', ['-cp', String(process.pid)]);
  const list = /list:\s*(\S+)/.exec(reported)?.[1];
  assert.ok(list, reported);
  assert.deepEqual(await allowedCpus(), parseCpuList(list));
});

test('goals are judged met or missed from the figures', () => {
  const met = goals(results());
  assert.deepEqual(
    met.map((g) => [g.name, g.met]),
    [
      ['snapshot_rss_flat', true],
      ['snapshot_time_vs_floor', true],
      ['range_rss_flat', true],
      ['range_prometheus_memory', true],
      ['simulation_rps_ratio', true],
      ['compiled_startup', true],
    ],
  );
  const slow = results();
  slow.snapshot[2]!.promsnap.ms = 6_000; // 1.5x the floor
  slow.snapshot[2]!.promsnap.peakRss = 210 * MB; // over 200 MB, and x1.6 over the last step
  slow.startup[0]!.ms = 320;
  slow.range[1]!.prometheus!.splitGrowth = 1100 * MB; // 0.55x one query
  slow.range[1]!.promsnap.peakRss = 210 * MB;
  const missed = new Map(goals(slow).map((g) => [g.name, g.met]));
  assert.equal(missed.get('range_prometheus_memory'), false);
  assert.equal(missed.get('range_rss_flat'), false);
  assert.equal(missed.get('snapshot_time_vs_floor'), false);
  assert.equal(missed.get('snapshot_rss_flat'), false);
  assert.equal(missed.get('compiled_startup'), false);
});

test('sizes are labelled as in figure names, and medians ignore one slow run', () => {
  assert.deepEqual([10_000, 100_000, 1_000_000, 2_500].map(seriesLabel), ['10k', '100k', '1m', '2500']);
  assert.equal(median([1, 100, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
});
