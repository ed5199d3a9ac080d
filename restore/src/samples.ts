// From a series as Prometheus answered it to the samples restore writes: labels in a canonical
// order, timestamps in milliseconds, values as Prometheus printed them, only inside the time range,
// and each sample once. A sample at or before the last one written for its series is a duplicate
// (plan.ts reads exports in an order where that is exact); native histogram samples are counted and
// left out, as OpenMetrics text (promtool's input) cannot carry them. So are series without a metric
// name (an instant snapshot of `sum by (job) (...)`) and scalar or string answers: a TSDB keeps series
// by name, so nothing of them can be written back.
import { NotAnExportError, type SeriesRecord } from '../../archive/src/index.js';
import { seriesText } from './openmetrics.js';

export interface Point {
  /** Unix milliseconds. */
  t: number;
  /** As Prometheus printed it: a decimal, NaN, +Inf or -Inf. */
  v: string;
}

export interface RestoredSeries {
  /** Label names and values, sorted by name (__name__ first). */
  labels: Array<[string, string]>;
  /** The series in OpenMetrics text (`name{label="value",...}`): one string per label set, what duplicates are found by. */
  key: string;
  points: Point[];
}

export interface SampleCounts {
  series: number;
  samples: number;
  duplicates: number;
  outsideRange: number;
  nativeHistograms: number;
  /** Series without `__name__` (answers of aggregations and functions), left out. */
  unnamedSeries: number;
  /** Scalar and string answers, left out. */
  notSeriesAnswers: number;
}

// What Go's strconv.ParseFloat (promtool's parser) and Prometheus print: no hex, no underscores.
const floatText = /^(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|NaN|[+-]Inf)$/;

export class SampleFilter {
  private readonly last = new Map<string, number>();
  readonly counts: SampleCounts = { series: 0, samples: 0, duplicates: 0, outsideRange: 0, nativeHistograms: 0, unnamedSeries: 0, notSeriesAnswers: 0 };
  /** The queries whose answers held something left out for want of a metric name, in the order met. */
  readonly skippedQueries = new Set<string>();

  constructor(
    private readonly from: number | undefined,
    private readonly to: number | undefined,
  ) {}

  /**
   * The series' new samples, or undefined when it has none or cannot be restored (no metric name).
   * Throws NotAnExportError for a series that is not as Prometheus writes one.
   */
  accept(record: SeriesRecord, query?: string): RestoredSeries | undefined {
    const labels = Object.entries(record.metric);
    let sorted = true;
    for (let i = 0; i < labels.length; i++) {
      const [name, value] = labels[i]!;
      if (typeof value !== 'string') throw new NotAnExportError(`label ${name} of a series is not a string`);
      if (i > 0 && labels[i - 1]![0] >= name) sorted = false;
    }
    if (record.metric['__name__'] === undefined) {
      this.counts.unnamedSeries++;
      if (query !== undefined) this.skippedQueries.add(query);
      return undefined;
    }
    // Prometheus writes labels sorted by name; sorting is only for answers that are not.
    if (!sorted) labels.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    // The series' OpenMetrics text is one string per label set, so it is the key as well.
    const key = seriesText(labels);
    this.counts.nativeHistograms += (record.histograms?.length ?? 0) + (record.histogram ? 1 : 0);
    const raw = record.values ?? (record.value ? [record.value] : []);
    const known = this.last.get(key);
    let last = known ?? Number.NEGATIVE_INFINITY;
    const points: Point[] = [];
    for (const sample of raw) {
      const [seconds, v] = sample;
      if (typeof seconds !== 'number' || typeof v !== 'string' || !floatText.test(v))
        throw new NotAnExportError(`series ${key} has a sample that is not [time, "value"]`);
      // Prometheus prints whole milliseconds as a decimal of seconds; rounding undoes the float's error.
      const t = Math.round(seconds * 1000);
      if ((this.from !== undefined && t < this.from) || (this.to !== undefined && t >= this.to)) {
        this.counts.outsideRange++;
        continue;
      }
      if (t <= last) {
        this.counts.duplicates++;
        continue;
      }
      last = t;
      points.push({ t, v });
    }
    if (points.length === 0) return undefined;
    if (known === undefined) this.counts.series++;
    this.last.set(key, last);
    this.counts.samples += points.length;
    return { labels, key, points };
  }

  /** A scalar or string answer: counted and left out. */
  notSeries(query?: string): void {
    this.counts.notSeriesAnswers++;
    if (query !== undefined) this.skippedQueries.add(query);
  }
}
