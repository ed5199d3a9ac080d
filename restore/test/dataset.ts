// The round trip's known dataset: counters (one resets), a gauge through the awkward floats (0.1+0.2,
// 1e-300, NaN, ±Inf), a classic histogram, a series that starts and stops inside a window, one with a
// gap, label values and names that need escaping or quoting, and a metric wide enough to be split by a
// label. Samples every 10 s at millisecond offsets, some exactly on minute boundaries.
import { seriesText, timestampText } from '../src/openmetrics.js';

export interface Sample {
  t: number;
  v: string;
}

export interface DatasetSeries {
  labels: Record<string, string>;
  samples: Sample[];
}

export interface Dataset {
  series: DatasetSeries[];
  openMetrics: string;
  /** First and last sample time (Unix ms). */
  first: number;
  last: number;
  samples: number;
}

const awkward = [0.1 + 0.2, -1.5, 1e-300, 12345678.9, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0, 2 ** 53 + 2];

/** Prometheus's text for a float. */
function text(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

/** The dataset over [base, base + minutes]. */
export function roundTripDataset(base: number, minutes: number): Dataset {
  const end = base + minutes * 60_000;
  const series: DatasetSeries[] = [];
  const add = (labels: Record<string, string>, offsetMs: number, value: (k: number, t: number) => number, from = base, until = end) => {
    const samples: Sample[] = [];
    let k = 0;
    for (let t = from + offsetMs; t <= until; t += 10_000, k++) samples.push({ t, v: text(value(k, t)) });
    series.push({ labels, samples });
  };
  // Counters; the first resets four minutes in.
  add({ __name__: 'rt_requests_total', method: 'GET', code: '200' }, 0, (k, t) => (t < base + 240_000 ? k * 3 : (k - 24) * 2));
  add({ __name__: 'rt_requests_total', method: 'POST', code: '500' }, 123, (k) => k);
  add({ __name__: 'rt_temperature_celsius', room: 'lab' }, 999, (k) => awkward[k % awkward.length]!);
  // A classic histogram: cumulative buckets, sum and count.
  for (const [le, share] of [
    ['0.1', 1],
    ['0.5', 3],
    ['+Inf', 4],
  ] as const) {
    add({ __name__: 'rt_latency_seconds_bucket', le }, 500, (k) => k * share);
  }
  add({ __name__: 'rt_latency_seconds_sum' }, 500, (k) => k * 0.85);
  add({ __name__: 'rt_latency_seconds_count' }, 500, (k) => k * 4);
  // Starts and stops inside a window; and one that pauses for two minutes.
  add({ __name__: 'rt_short_lived', pod: 'p-1' }, 0, (k) => k + 0.5, base + 135_000, base + 205_000);
  add({ __name__: 'rt_gap', job: 'a' }, 7, (k) => k, base, base + 150_000);
  add({ __name__: 'rt_gap', job: 'a' }, 7, (k) => 100 + k, base + 270_000, end);
  // Label values and names that must be escaped or quoted.
  add({ __name__: 'rt_labels', text: 'a "quoted" \\ back\nslash é ☃', other: '{}[],=' }, 1, (k) => k % 2);
  add({ __name__: 'rt.utf8.metric', 'label.with.dots': 'v' }, 250, (k) => -k);
  // Wide enough for a small part budget to split it by its label.
  for (let shard = 0; shard < 10; shard++) add({ __name__: 'rt_wide', shard: String(shard).padStart(2, '0') }, 42, (k) => shard * 1000 + k);

  // The two pieces of rt_gap are one series.
  const merged = new Map<string, DatasetSeries>();
  for (const s of series) {
    const key = JSON.stringify(Object.entries(s.labels).sort());
    const seen = merged.get(key);
    if (seen) seen.samples.push(...s.samples);
    else merged.set(key, { labels: s.labels, samples: [...s.samples] });
  }
  const all = [...merged.values()];
  const lines: string[] = [];
  for (const s of all) {
    const head = seriesText(Object.entries(s.labels).sort(([a], [b]) => (a < b ? -1 : 1)));
    for (const { t, v } of s.samples) lines.push(`${head} ${v} ${timestampText(t)}`);
  }
  const times = all.flatMap((s) => s.samples.map((x) => x.t));
  return {
    series: all,
    openMetrics: `${lines.join('\n')}\n# EOF\n`,
    first: Math.min(...times),
    last: Math.max(...times),
    samples: times.length,
  };
}
