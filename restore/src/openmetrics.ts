// Samples as OpenMetrics text, the input of `promtool tsdb create-blocks-from openmetrics`, written to
// files of bounded size (promtool maps the whole file and reads it once per two hours of data).
//
// Three things keep the round trip exact. No `# TYPE` lines: typed families make the parser rewrite
// `le` and `quantile` values ("1" becomes "1.0"), and the stored names (`_total`, `_bucket`) are kept
// as they are either way. Names and label names that are not classic identifiers are quoted, as
// Prometheus 3's parser reads them. And timestamps: the parser turns seconds into milliseconds with
// int64(seconds * 1000), which truncates, so 1700000000.123 can come back as ...122; each timestamp is
// written a quarter of a millisecond past its millisecond (…0.12325), which that arithmetic always
// truncates to the millisecond meant, for any time within a few centuries of 1970.
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import path from 'node:path';
import type { RestoredSeries } from './samples.js';

const legacyMetricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const legacyLabelName = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

const needsEscape = /[\\"\n]/;

function quote(text: string): string {
  if (!needsEscape.test(text)) return `"${text}"`;
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

/** The series part of a sample line: `name{label="value",...}`, quoted where names need it. */
export function seriesText(labels: ReadonlyArray<readonly [string, string]>): string {
  const name = labels.find(([n]) => n === '__name__')?.[1];
  if (name === undefined) throw new Error(`a series without a metric name: ${JSON.stringify(labels)}`);
  const rest = labels.filter(([n]) => n !== '__name__').map(([n, v]) => `${legacyLabelName.test(n) ? n : quote(n)}=${quote(v)}`);
  if (legacyMetricName.test(name)) return rest.length ? `${name}{${rest.join(',')}}` : name;
  return `{${[quote(name), ...rest].join(',')}}`;
}

/** Seconds, a quarter millisecond past `ms` away from zero: see the file's header. */
export function timestampText(ms: number): string {
  if (!Number.isSafeInteger(ms)) throw new Error(`not a timestamp in milliseconds: ${ms}`);
  const abs = Math.abs(ms);
  return `${ms < 0 ? '-' : ''}${Math.floor(abs / 1000)}.${String(abs % 1000).padStart(3, '0')}25`;
}

export interface OpenMetricsFile {
  file: string;
  samples: number;
  bytes: number;
}

/**
 * Writes series into numbered files in dir, moving to a new file past maxBytes. Each finished file is
 * handed to onFile (which imports it) while the next one is written, so promtool and this process
 * work at once on two cores; one import at a time.
 */
export class OpenMetricsWriter {
  private out: WriteStream | undefined;
  private current: OpenMetricsFile | undefined;
  private pending = '';
  private index = 0;
  private importing: Promise<void> = Promise.resolve();
  readonly files: OpenMetricsFile[] = [];

  constructor(
    private readonly dir: string,
    private readonly maxBytes: number,
    private readonly onFile: (file: OpenMetricsFile) => Promise<void>,
  ) {}

  async write(series: RestoredSeries): Promise<void> {
    if (!this.current) this.open();
    const head = `${series.key} `;
    let text = '';
    for (const { t, v } of series.points) text += `${head}${v} ${timestampText(t)}\n`;
    this.pending += text;
    this.current!.samples += series.points.length;
    this.current!.bytes += Buffer.byteLength(text);
    if (this.pending.length >= 1 << 20) await this.flush();
    if (this.current!.bytes >= this.maxBytes) await this.finishFile();
  }

  /** Ends the last file and hands it on; returns every file written, once all are imported. */
  async end(): Promise<OpenMetricsFile[]> {
    if (this.current) await this.finishFile();
    await this.importing;
    return this.files;
  }

  private open(): void {
    const file = path.join(this.dir, `restore-${++this.index}.om`);
    this.current = { file, samples: 0, bytes: 0 };
    this.out = createWriteStream(file);
  }

  private async flush(): Promise<void> {
    const text = this.pending;
    this.pending = '';
    if (!this.out!.write(text)) await once(this.out!, 'drain');
  }

  private async finishFile(): Promise<void> {
    this.pending += '# EOF\n';
    await this.flush();
    const out = this.out!;
    out.end();
    await once(out, 'finish');
    const done = this.current!;
    this.current = undefined;
    this.out = undefined;
    this.files.push(done);
    // The previous import first (its failure stops the restore here), then this one in the background.
    await this.importing;
    this.importing = this.onFile(done);
    this.importing.catch(() => undefined);
  }
}
