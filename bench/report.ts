// The results as a Markdown report: tables, the goals with met/missed and why, and last the figures
// one per line as `name value`, so runs can be compared with grep, awk or a diff.
import type { InstrumentationFigures } from './instrumentation.js';
import type { Machine } from './machine.js';
import type { RangeFigures } from './range.js';
import type { SnapshotFigures } from './snapshot.js';
import type { StartupFigures } from './startup.js';
import { MB, round } from './stats.js';

export interface BenchResults {
  date: Date;
  mode: 'quick' | 'full';
  runs: number;
  machine: Machine;
  loadAverageAtEnd: number;
  durationSeconds: number;
  buildNote: string;
  /** The environment the function processes ran with. */
  envNote: string;
  snapshot: SnapshotFigures[];
  range: RangeFigures[];
  instrumentation: InstrumentationFigures | undefined;
  startup: StartupFigures[];
}

export interface Goal {
  name: string;
  goal: string;
  measured: string;
  met: boolean | undefined;
}

/** 10000 -> 10k, 1000000 -> 1m: the N in figure names. */
export function seriesLabel(n: number): string {
  if (n >= 1_000_000 && n % 1_000_000 === 0) return `${n / 1_000_000}m`;
  if (n >= 1_000 && n % 1_000 === 0) return `${n / 1_000}k`;
  return String(n);
}

const mb = (bytes: number | undefined) => (bytes === undefined ? Number.NaN : round(bytes / MB, 1));
const s = (ms: number) => round(ms / 1000, 2);
const ratio = (a: number, b: number) => round(a / b, 2);
const show = (value: number | undefined, unit = '') => (value === undefined || Number.isNaN(value) ? 'n/a' : `${value}${unit}`);

export function figures(r: BenchResults): Array<[string, number]> {
  const out: Array<[string, number]> = [];
  for (const f of r.snapshot) {
    const n = seriesLabel(f.series);
    out.push(
      [`answer_${n}_mb`, mb(f.answerBytes)],
      [`floor_curl_${n}_s`, s(f.curlMs)],
      [`floor_curl_mc_${n}_s`, s(f.curlMcMs)],
      [`floor_mc_${n}_peak_rss_mb`, mb(f.mcPeakRss)],
      [`snapshot_${n}_time_s`, s(f.promsnap.ms)],
      [`snapshot_${n}_time_vs_floor`, ratio(f.promsnap.ms, f.curlMcMs)],
      [`snapshot_${n}_time_vs_curl`, ratio(f.promsnap.ms, f.curlMs)],
      [`snapshot_${n}_peak_rss_mb`, mb(f.promsnap.peakRss)],
      [`snapshot_${n}_idle_rss_mb`, mb(f.promsnap.idleRss)],
      [`snapshot_${n}_stored_mb`, mb(f.promsnap.bytes)],
      [`naive_${n}_time_s`, s(f.naive.ms)],
      [`naive_${n}_time_vs_floor`, ratio(f.naive.ms, f.curlMcMs)],
      [`naive_${n}_peak_rss_mb`, mb(f.naive.peakRss)],
      [`naive_${n}_idle_rss_mb`, mb(f.naive.idleRss)],
      [`naive_${n}_stored_mb`, mb(f.naive.bytes)],
    );
  }
  for (const f of r.range) {
    const n = seriesLabel(f.series);
    out.push(
      [`range_${n}_samples`, f.samples],
      [`range_${n}_answer_mb`, mb(f.answerBytes)],
      [`range_floor_curl_mc_${n}_s`, s(f.curlMcMs)],
      [`range_${n}_time_s`, s(f.promsnap.ms)],
      [`range_${n}_time_vs_floor`, ratio(f.promsnap.ms, f.curlMcMs)],
      [`range_${n}_peak_rss_mb`, mb(f.promsnap.peakRss)],
      [`range_${n}_idle_rss_mb`, mb(f.promsnap.idleRss)],
      [`range_${n}_stored_mb`, mb(f.promsnap.bytes)],
    );
    if (f.prometheus) {
      out.push(
        [`prometheus_${n}_single_query_growth_mb`, mb(f.prometheus.singleGrowth)],
        [`prometheus_${n}_split_export_growth_mb`, mb(f.prometheus.splitGrowth)],
        [`prometheus_${n}_memory_ratio`, round(f.prometheus.splitGrowth / f.prometheus.singleGrowth, 3)],
      );
    }
    if (f.restore) {
      out.push(
        [`restore_${n}_samples_per_s`, round((f.restore.samples * 1000) / f.restore.ms, 0)],
        [`restore_${n}_promtool_samples_per_s`, round((f.restore.samples * 1000) / f.restore.promtoolMs, 0)],
        [`restore_${n}_vs_promtool`, round(f.restore.promtoolMs / f.restore.ms, 3)],
      );
    }
  }
  const i = r.instrumentation;
  if (i) {
    out.push(
      ['simulation_rps', round(i.instrumented.rps, 0)],
      ['bare_rps', round(i.bare.rps, 0)],
      ['simulation_rps_ratio', round(i.rpsRatio, 3)],
      ['simulation_rps_ratio_min', round(i.rpsRatioRange[0], 3)],
      ['simulation_rps_ratio_max', round(i.rpsRatioRange[1], 3)],
      ['simulation_p99_ms', round(i.instrumented.p99Ms, 1)],
      ['bare_p99_ms', round(i.bare.p99Ms, 1)],
      ['simulation_p99_ratio', round(i.p99Ratio, 2)],
      ['simulation_cpu_us_per_request', round(i.instrumented.cpuUsPerRequest, 1)],
      ['bare_cpu_us_per_request', round(i.bare.cpuUsPerRequest, 1)],
      ['simulation_cpu_ratio', round(i.cpuRatio, 3)],
    );
    for (const render of i.renders) {
      out.push([`metrics_render_${seriesLabel(render.combinations)}_ms`, round(render.ms, 2)]);
      out.push([`metrics_render_${seriesLabel(render.combinations)}_kb`, round(render.bytes / 1024, 0)]);
    }
  }
  for (const st of r.startup) out.push([st.name, round(st.ms, 0)]);
  for (const g of goals(r)) if (g.met !== undefined) out.push([`goal_${g.name}`, g.met ? 1 : 0]);
  return out;
}

export function goals(r: BenchResults): Goal[] {
  const list: Goal[] = [];
  const sizes = [...r.snapshot].sort((a, b) => a.series - b.series);
  const small = sizes[0];
  const previous = sizes.at(-2);
  const large = sizes.at(-1);
  const at1m = r.snapshot.find((f) => f.series === 1_000_000);
  if (small && previous && large && large !== small) {
    // Flat: the last step in N (10x) adds less than a quarter to the peak, which stays under 200 MB;
    // the smallest N shows what the process needs with almost no data.
    const lastStep = large.promsnap.peakRss / previous.promsnap.peakRss;
    const naiveGrowth = large.naive.peakRss / small.naive.peakRss;
    const flat = large.promsnap.peakRss < 200 * MB && lastStep < 1.25;
    list.push({
      name: 'snapshot_rss_flat',
      goal: 'snapshot peak RSS does not grow with N: under 200 MB at 1M, while the naive approach grows',
      measured:
        `promsnap ${sizes.map((f) => `${mb(f.promsnap.peakRss)} MB at ${seriesLabel(f.series)}`).join(', ')} ` +
        `(x${round(lastStep, 2)} over the last step); naive ${sizes.map((f) => `${mb(f.naive.peakRss)}`).join(' -> ')} MB (x${round(naiveGrowth, 1)})` +
        (at1m ? '' : ' [1M not measured]'),
      met: flat && naiveGrowth > 2,
    });
  }
  if (large) {
    const vsFloor = large.promsnap.ms / large.curlMcMs;
    list.push({
      name: 'snapshot_time_vs_floor',
      goal: 'snapshot time at 1M series within 1.3x of `curl | mc pipe`',
      measured: `${round(vsFloor, 2)}x at ${seriesLabel(large.series)} (${s(large.promsnap.ms)} s vs ${s(large.curlMcMs)} s)${at1m ? '' : ' [1M not measured]'}`,
      met: vsFloor <= 1.3,
    });
  }
  const ranges = [...r.range].sort((a, b) => a.series - b.series);
  const rangeLarge = ranges.at(-1);
  const rangePrevious = ranges.at(-2);
  if (rangeLarge && rangePrevious) {
    const lastStep = rangeLarge.promsnap.peakRss / rangePrevious.promsnap.peakRss;
    list.push({
      name: 'range_rss_flat',
      goal: 'range export peak RSS under 200 MB at 1M series and flat in N',
      measured: `${ranges.map((f) => `${mb(f.promsnap.peakRss)} MB at ${seriesLabel(f.series)}`).join(', ')} (x${round(lastStep, 2)} over the last step)`,
      met: rangeLarge.promsnap.peakRss < 200 * MB && lastStep < 1.25,
    });
  }
  const memory = ranges.find((f) => f.prometheus)?.prometheus;
  const memoryAt = ranges.find((f) => f.prometheus);
  if (memory && memoryAt) {
    const memoryRatio = memory.splitGrowth / memory.singleGrowth;
    list.push({
      name: 'range_prometheus_memory',
      goal: "Prometheus's peak memory growth for a split export at most 0.5x that of one query",
      measured: `${round(memoryRatio, 3)}x at ${seriesLabel(memoryAt.series)} series (+${mb(memory.splitGrowth)} MB against +${mb(memory.singleGrowth)} MB)`,
      met: memoryRatio <= 0.5,
    });
  }
  if (r.instrumentation) {
    list.push({
      name: 'simulation_rps_ratio',
      goal: 'instrumented throughput at least 0.9x bare Express',
      measured:
        `${round(r.instrumentation.rpsRatio, 3)}x (${round(r.instrumentation.instrumented.rps, 0)} vs ${round(r.instrumentation.bare.rps, 0)} rps); ` +
        `server CPU per request ${round(r.instrumentation.cpuRatio, 3)}x`,
      met: r.instrumentation.rpsRatio >= 0.9,
    });
  }
  const compiled = r.startup.filter((st) => st.runtime === 'compiled');
  if (compiled.length > 0) {
    list.push({
      name: 'compiled_startup',
      goal: 'compiled start-up to ready under 300 ms',
      measured: compiled.map((st) => `${st.fn} ${round(st.ms, 0)} ms`).join(', '),
      met: compiled.every((st) => st.ms < 300),
    });
  }
  return list;
}

function table(header: string[], rows: Array<Array<string | number>>): string {
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const row of rows) lines.push(`| ${row.map(String).join(' | ')} |`);
  return lines.join('\n');
}

export function renderReport(r: BenchResults): string {
  const m = r.machine;
  const parts: string[] = [];
  parts.push(`# promsnap benchmark, ${r.date.toISOString().slice(0, 16).replace('T', ' ')} UTC (${r.mode})`);
  parts.push(
    [
      `- Machine: ${m.cpu}, ${m.cores} cores, ${round(m.memoryGiB, 1)} GiB memory, ${m.kernel}, Node ${m.node}`,
      `- Tools: ${m.tools}`,
      `- Load average (1 min): ${round(m.loadAverage, 2)} at start, ${round(r.loadAverageAtEnd, 2)} at end (the machine is shared; figures are medians of ${r.runs} interleaved runs)`,
      `- Functions: ${r.buildNote}; ${r.envNote}`,
      `- Whole run: ${round(r.durationSeconds / 60, 1)} min`,
    ].join('\n'),
  );
  if (r.snapshot.length > 0) {
    parts.push('## Snapshot: time (ping in to object stored), against the floor');
    parts.push(
      table(
        ['series', 'answer', 'curl >/dev/null', 'curl \\| mc pipe (floor)', 'promsnap', 'promsnap / floor', 'naive', 'naive / floor'],
        r.snapshot.map((f) => [
          seriesLabel(f.series),
          `${mb(f.answerBytes)} MB`,
          `${s(f.curlMs)} s`,
          `${s(f.curlMcMs)} s`,
          `${s(f.promsnap.ms)} s`,
          `${ratio(f.promsnap.ms, f.curlMcMs)}x`,
          `${s(f.naive.ms)} s`,
          `${ratio(f.naive.ms, f.curlMcMs)}x`,
        ]),
      ),
    );
    parts.push('## Snapshot: peak RSS of each process, and bytes stored');
    parts.push(
      table(
        ['series', 'promsnap peak RSS (idle before)', 'naive peak RSS (idle before)', 'mc peak RSS', 'curl peak RSS', 'promsnap stored', 'naive stored'],
        r.snapshot.map((f) => [
          seriesLabel(f.series),
          `${mb(f.promsnap.peakRss)} MB (${mb(f.promsnap.idleRss)})`,
          `${mb(f.naive.peakRss)} MB (${mb(f.naive.idleRss)})`,
          show(mb(f.mcPeakRss), ' MB'),
          show(mb(f.curlPeakRss), ' MB'),
          `${mb(f.promsnap.bytes)} MB`,
          `${mb(f.naive.bytes)} MB`,
        ]),
      ),
    );
    parts.push(
      'promsnap: the snapshot function (compiled server.js) pinged with a `dev.knative.sources.ping` event for `{__name__!=""}`; ' +
        'time from the POST to its 200 reply (object stored and checked). naive: axios GET of the whole answer, ' +
        '`JSON.stringify(data, null, 2)`, one PutObject. Both are separate processes warmed with a one-series snapshot; ' +
        "peak RSS is the kernel's VmHWM over the measured snapshot only. curl and mc peaks from GNU time.",
    );
  }
  if (r.range.length > 0) {
    parts.push(`## Range export: every sample of a five-minute window (N series x 5 samples), against the floor`);
    parts.push(
      table(
        [
          'series',
          'samples',
          'one-query answer',
          'curl \\| mc pipe (floor)',
          'promsnap (split)',
          'promsnap / floor',
          'promsnap peak RSS (idle before)',
          'stored',
        ],
        r.range.map((f) => [
          seriesLabel(f.series),
          f.samples,
          `${mb(f.answerBytes)} MB`,
          `${s(f.curlMcMs)} s`,
          `${s(f.promsnap.ms)} s`,
          `${ratio(f.promsnap.ms, f.curlMcMs)}x`,
          `${mb(f.promsnap.peakRss)} MB (${mb(f.promsnap.idleRss)})`,
          `${mb(f.promsnap.bytes)} MB`,
        ]),
      ),
    );
    parts.push(
      'floor: `curl` of `{__name__!=""}[5m]` at the tick, one query, piped into `mc pipe`. promsnap: the snapshot function pinged with `data.range: 5m` ' +
        '(catch-up and settle off: the dataset is old and complete), planning from the index, counting in batches and exporting in parts ' +
        '(SNAPSHOT_PART_SERIES 50000, SNAPSHOT_PART_SAMPLES 500000); time from the POST to its 200 reply.',
    );
    const deep = r.range.filter((f) => f.prometheus || f.restore);
    if (deep.some((f) => f.prometheus)) {
      parts.push("## Range export: Prometheus's peak memory growth (fresh Prometheus each time)");
      parts.push(
        table(
          ['series', 'Prometheus idle', 'one query (curl)', 'promsnap in parts', 'parts / one query'],
          deep.flatMap((f) =>
            f.prometheus
              ? [
                  [
                    seriesLabel(f.series),
                    `${mb(f.prometheus.idleRss)} MB`,
                    `+${mb(f.prometheus.singleGrowth)} MB (${s(f.prometheus.singleMs)} s)`,
                    `+${mb(f.prometheus.splitGrowth)} MB (${s(f.prometheus.splitMs)} s)`,
                    `${round(f.prometheus.splitGrowth / f.prometheus.singleGrowth, 3)}x`,
                  ],
                ]
              : [],
          ),
        ),
      );
    }
    if (deep.some((f) => f.restore)) {
      parts.push('## Restore: one range export back into TSDB blocks, against promtool alone');
      parts.push(
        table(
          [
            'series',
            'samples',
            'npm run restore (download, read, OpenMetrics, promtool)',
            'promtool on the same OpenMetrics (floor)',
            'restore / floor throughput',
          ],
          deep.flatMap((f) =>
            f.restore
              ? [
                  [
                    seriesLabel(f.series),
                    f.restore.samples,
                    `${s(f.restore.ms)} s, ${round((f.restore.samples * 1000) / f.restore.ms, 0)} samples/s`,
                    `${s(f.restore.promtoolMs)} s, ${round((f.restore.samples * 1000) / f.restore.promtoolMs, 0)} samples/s (${mb(f.restore.openMetricsBytes)} MB)`,
                    `${round(f.restore.promtoolMs / f.restore.ms, 3)}x`,
                  ],
                ]
              : [],
          ),
        ),
      );
    }
  }
  const i = r.instrumentation;
  if (i) {
    parts.push(`## Instrumentation overhead (hey -c 8 against \`/\`, ${i.rounds} rounds of fresh processes; ${i.placement})`);
    parts.push(
      table(
        ['app', 'requests/s', 'p99', 'server CPU per request'],
        [
          [
            'simulation (every request counted and timed, exposed through prom-client)',
            round(i.instrumented.rps, 0),
            `${round(i.instrumented.p99Ms, 1)} ms`,
            `${round(i.instrumented.cpuUsPerRequest, 1)} µs`,
          ],
          ['same Express app, bare', round(i.bare.rps, 0), `${round(i.bare.p99Ms, 1)} ms`, `${round(i.bare.cpuUsPerRequest, 1)} µs`],
          [
            'instrumented / bare (median of per-round ratios)',
            `${round(i.rpsRatio, 3)}x (rounds ${round(i.rpsRatioRange[0], 3)}-${round(i.rpsRatioRange[1], 3)})`,
            `${round(i.p99Ratio, 2)}x`,
            `${round(i.cpuRatio, 3)}x`,
          ],
        ],
      ),
    );
    parts.push('## /metrics render time (simulation registry, default metrics included)');
    parts.push(
      table(
        ['label combinations per request metric', 'render', 'size'],
        i.renders.map((x) => [seriesLabel(x.combinations), `${round(x.ms, 2)} ms`, `${round(x.bytes / 1024, 0)} KiB`]),
      ),
    );
  }
  if (r.startup.length > 0) {
    parts.push('## Start-up: spawn to first 200 from /readyz');
    parts.push(
      table(
        ['function', 'runtime', 'median'],
        r.startup.map((st) => [st.fn, st.runtime === 'tsx' ? 'node --import tsx' : 'compiled JS', `${round(st.ms, 0)} ms`]),
      ),
    );
  }
  const g = goals(r);
  if (g.length > 0) {
    parts.push('## Goals');
    parts.push(
      table(
        ['goal', 'measured', 'met'],
        g.map((x) => [x.goal, x.measured, x.met === undefined ? 'n/a' : x.met ? 'yes' : '**no**']),
      ),
    );
  }
  parts.push('## Figures (`name value`)');
  parts.push(
    figures(r)
      .map(([name, value]) => `${name} ${Number.isNaN(value) ? 'NaN' : value}`)
      .join('\n'),
  );
  return `${parts.join('\n\n')}\n`;
}
