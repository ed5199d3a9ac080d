// How a range export is cut into queries so that none of them makes Prometheus hold every series at
// once. One query `{__name__!=""}[5m]` of a Prometheus with a million series grows it by about 2 GB:
// the whole answer is built in its memory before a byte is sent. Instead:
//
// 1. the metric names with data in the window come from the index (label values: no sample is read);
// 2. they are counted (series per name, and the samples the count read) in batches, each batch sized
//    from the names counted before it to about twice a part's series (a count costs Prometheus about
//    a third of what an export of the same series does), and parts are given out as they are counted;
// 3. consecutive names are grouped into parts of at most `series` series and `samples` samples;
//    a name above either alone is split by the label with the most values, into value ranges
//    (the first also taking the series without that label, so nothing falls between parts); each
//    range is counted, and one still above the budget (values do not hold series evenly) is split
//    again, by whichever label then has the most values, until it fits or is one series;
// 4. when Prometheus refuses a part anyway ("would load too many samples", its --query.max-samples),
//    the part is split again: its names in halves, or a single name by a label.
//
// Parts never overlap and together hold every series the selector does: names come from the index
// for the whole window, and a label's value ranges (with its absence) cover every series of a name.
import { formatDuration } from '../../../archive/src/duration.js';
import { RejectedEventError } from './errors.js';
import type { PrometheusApi } from './prometheus-api.js';
import { renderSelector, valuesRegex, type Matcher } from './selector.js';

export interface PartBudget {
  series: number;
  samples: number;
}

/** A window in Unix ms: start excluded, end included. */
export interface PlanWindow {
  start: number;
  end: number;
}

export interface Part {
  /** The selector's own matchers. */
  base: Matcher[];
  /** Metric names this part holds (all of one name when `extra` splits it by a label). */
  names: string[];
  /** A label matcher splitting one name's series. */
  extra: Matcher[];
  /** Estimated from the counts; undefined where a count was refused. */
  series: number | undefined;
  samples: number | undefined;
}

export interface PlanStats {
  names: number;
  countQueries: number;
  labelSplits: number;
}

/** Whether Prometheus refused a query because it would load more samples than it allows. */
export function tooManySamples(err: unknown): boolean {
  return err instanceof RejectedEventError && /would load too many samples/.test(err.message);
}

export function partMatchers(part: Part): Matcher[] {
  const names: Matcher =
    part.names.length === 1 ? { name: '__name__', op: '=', value: part.names[0]! } : { name: '__name__', op: '=~', value: valuesRegex(part.names) };
  return [...part.base, names, ...part.extra];
}

/** The query that exports a part: its selector over the window, evaluated at the window's end. */
export function partQuery(part: Part, window: PlanWindow): string {
  return `${renderSelector(partMatchers(part))}[${formatDuration(window.end - window.start)}]`;
}

interface Count {
  series: number;
  samples: number;
}

export class SplitPlanner {
  readonly stats: PlanStats = { names: 0, countQueries: 0, labelSplits: 0 };

  constructor(
    private readonly api: PrometheusApi,
    private readonly budget: PartBudget,
  ) {}

  /**
   * The parts of one selector over a window, in name order, as they are planned: a part is given out
   * as soon as its names are counted, so exporting it can go on while the next names are counted.
   * None when the selector has no data in the window.
   */
  async *plan(base: Matcher[], window: PlanWindow): AsyncGenerator<Part> {
    const names = [...new Set(await this.api.labelValues('__name__', renderSelector(base), window.start, window.end))].sort();
    this.stats.names += names.length;
    let group: { names: string[]; series: number; samples: number } = { names: [], series: 0, samples: 0 };
    const take = (): Part[] => {
      const done = group.names.length > 0 ? [{ base, names: group.names, extra: [], series: group.series, samples: group.samples }] : [];
      group = { names: [], series: 0, samples: 0 };
      return done;
    };
    for await (const [name, count] of this.count(base, names, window)) {
      if (count !== undefined && count.series === 0) continue;
      if (count === undefined || count.series > this.budget.series || count.samples > this.budget.samples) {
        yield* take();
        yield* await this.fitted({ base, names: [name], extra: [], series: count?.series, samples: count?.samples }, this.pieces(count), window);
        continue;
      }
      if (group.names.length > 0 && (group.series + count.series > this.budget.series || group.samples + count.samples > this.budget.samples)) yield* take();
      group.names.push(name);
      group.series += count.series;
      group.samples += count.samples;
    }
    yield* take();
  }

  /** A part Prometheus refused, cut smaller; undefined when it cannot be cut. */
  async split(part: Part, window: PlanWindow): Promise<Part[] | undefined> {
    const half = (n: number | undefined) => (n === undefined ? undefined : n / 2);
    if (part.names.length > 1) {
      const middle = Math.ceil(part.names.length / 2);
      return [part.names.slice(0, middle), part.names.slice(middle)].map((names) => ({
        ...part,
        names,
        series: half(part.series),
        samples: half(part.samples),
      }));
    }
    const pieces = await this.byLabel(part, 2, window);
    return pieces.length > 1 ? pieces : undefined;
  }

  private pieces(count: Count | undefined): number {
    if (count === undefined) return 2;
    return Math.max(2, Math.ceil(Math.max(count.series / this.budget.series, count.samples / this.budget.samples)));
  }

  /**
   * Each name with its count, batch by batch: series per name, and the samples a batch read shared
   * among its names by their series (undefined where Prometheus refused even a count of the name
   * alone). A batch holds about what counting can take at once, going by the names counted before
   * it: twice a part's series, a count costing Prometheus about a third of an export per series.
   */
  private async *count(base: Matcher[], names: string[], window: PlanWindow): AsyncGenerator<[string, Count | undefined]> {
    const range = formatDuration(window.end - window.start);
    const target = 2 * this.budget.series;
    let batch = 1;
    let namesCounted = 0;
    let seriesCounted = 0;
    for (let i = 0; i < names.length;) {
      const slice = names.slice(i, i + batch);
      const selector = renderSelector(partMatchers({ base, names: slice, extra: [], series: undefined, samples: undefined }));
      let answer;
      try {
        this.stats.countQueries++;
        answer = await this.api.countQuery(`count by (__name__) (last_over_time(${selector}[${range}]))`, window.end);
      } catch (err) {
        if (!tooManySamples(err)) throw err;
        if (slice.length > 1) {
          batch = Math.ceil(slice.length / 2);
        } else {
          yield [slice[0]!, undefined];
          i++;
        }
        continue;
      }
      let series = 0;
      for (const { value } of answer.result) series += Number(value[1]);
      const samplesPerSeries = series > 0 ? answer.totalSamples / series : 0;
      const counts = new Map<string, Count>(slice.map((name) => [name, { series: 0, samples: 0 }]));
      for (const { metric, value } of answer.result) {
        const n = Number(value[1]);
        if (metric['__name__'] !== undefined) counts.set(metric['__name__'], { series: n, samples: n * samplesPerSeries });
      }
      i += slice.length;
      namesCounted += slice.length;
      seriesCounted += series;
      const perName = Math.max(1, seriesCounted / namesCounted);
      batch = Math.max(1, Math.min(batch * 4, Math.floor(target / perName)));
      yield* counts;
    }
  }

  /**
   * One name's series cut by label (byLabel) into parts that each fit the budget: every piece is
   * counted, and a piece still over it is cut again. A piece always holds fewer series than the part
   * it was cut from (it lacks at least one of the label's values), so this ends, at the latest with
   * pieces of one series. Without it, a value holding most of the series made a part over
   * SNAPSHOT_MAX_SERIES: a 422 that every later catch-up repeated.
   */
  private async fitted(part: Part, pieces: number, window: PlanWindow): Promise<Part[]> {
    const cut = await this.byLabel(part, pieces, window);
    if (cut.length === 1) return cut;
    const out: Part[] = [];
    for (const piece of cut) {
      const count = await this.countPart(piece, window);
      if (count && count.series === 0) continue;
      if (count && count.series <= this.budget.series && count.samples <= this.budget.samples) out.push({ ...piece, ...count });
      else out.push(...(await this.fitted(piece, this.pieces(count), window)));
    }
    return out;
  }

  /** A part's series and the samples they hold in the window; undefined when Prometheus refuses even the count. */
  private async countPart(part: Part, window: PlanWindow): Promise<Count | undefined> {
    const query = `count(last_over_time(${renderSelector(partMatchers(part))}[${formatDuration(window.end - window.start)}]))`;
    try {
      this.stats.countQueries++;
      const answer = await this.api.countQuery(query, window.end);
      return { series: Number(answer.result[0]?.value[1] ?? 0), samples: answer.totalSamples };
    } catch (err) {
      if (!tooManySamples(err)) throw err;
      return undefined;
    }
  }

  /**
   * One name's series cut into `pieces` parts by the values of the label that has the most, in value
   * order; the first part also takes the series without that label. A single part when no label of
   * the name has two values.
   */
  private async byLabel(part: Part, pieces: number, window: PlanWindow): Promise<Part[]> {
    const selector = renderSelector(partMatchers(part));
    const fixed = new Set([...part.base, ...part.extra].filter((m) => m.op === '=').map((m) => m.name));
    const labels = (await this.api.labelNames(selector, window.start, window.end)).filter((l) => l !== '__name__' && !fixed.has(l));
    let best: { label: string; values: string[] } | undefined;
    for (const label of labels) {
      const values = [...new Set(await this.api.labelValues(label, selector, window.start, window.end))].sort();
      if (!best || values.length > best.values.length) best = { label, values };
    }
    if (!best || best.values.length < 2) return [part];
    this.stats.labelSplits++;
    const { label, values } = best;
    const count = Math.min(pieces, values.length);
    const out: Part[] = [];
    for (let k = 0; k < count; k++) {
      const chunk = values.slice(Math.floor((k * values.length) / count), Math.floor(((k + 1) * values.length) / count));
      // A label already narrowed by a regex is narrowed again: both matchers hold.
      out.push({
        ...part,
        extra: [...part.extra, { name: label, op: '=~', value: valuesRegex(chunk, k === 0) }],
        series: part.series === undefined ? undefined : part.series / count,
        samples: part.samples === undefined ? undefined : part.samples / count,
      });
    }
    return out;
  }
}
