// Reads an export object (format.ts) as it streams in, in memory bounded by its largest series: the
// header's fields, then every series of every result, then the totals. Only one series is held at a
// time: the bytes of each element of a result are collected and parsed on their own, everything
// around them is followed a byte at a time. An object that does not start like an export is refused
// from its first bytes, before the rest is read.
import { checkHeader, exportKinds, NotAnExportError, type ExportHeader } from './format.js';

/** One element of a result: a series and its samples, as Prometheus answered it. */
export interface SeriesRecord {
  metric: Record<string, string>;
  /** An instant answer's one sample: [unix seconds, value as text]. */
  value?: [number, string];
  /** A range answer's raw samples, oldest first. */
  values?: Array<[number, string]>;
  /** Native histogram samples, which restore does not write back. */
  histogram?: [number, unknown];
  histograms?: Array<[number, unknown]>;
}

export type ExportItem =
  | { type: 'header'; header: ExportHeader }
  | { type: 'series'; result: number; query: string | undefined; resultType: string | undefined; series: SeriesRecord }
  /** A scalar or string answer: it has no series, so nothing of it can be restored. */
  | { type: 'not-series'; result: number; query: string | undefined; resultType: string | undefined }
  | { type: 'end'; series: number; samples: number | undefined; results: number };

/** Longest value kept whole: a header field, or one series with all its samples. */
const maxValueBytes = 256 * 1024 * 1024;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const COLON = 0x3a;
const COMMA = 0x2c;
const CASE_BIT = 0x20;

const OBJECT = 1;
const ARRAY = 2;

type Phase = 'key' | 'colon' | 'value' | 'next';

interface Level {
  kind: typeof OBJECT | typeof ARRAY;
  phase: Phase;
  /** The key whose value comes next (objects). */
  key: string | undefined;
  /** Values seen so far. */
  count: number;
}

/** A value whose bytes are being collected, to be parsed once complete. */
interface Capture {
  parts: Buffer[];
  bytes: number;
  /** Open brackets inside a container value; 0 for strings and scalars. */
  depth: number;
  inString: boolean;
  escaped: boolean;
  scalar: boolean;
  done: (text: string) => void;
}

export class ExportReader {
  private readonly levels: Level[] = [];
  private capture: Capture | undefined;
  private readonly fields: Record<string, unknown> = {};
  private header: ExportHeader | undefined;
  private rootClosed = false;
  private offset = 0;
  private out: ExportItem[] = [];
  // The result being read: its index, query and the resultType its answer declared.
  private resultIndex = -1;
  private query: string | undefined;
  private resultType: string | undefined;
  private seriesSeen = 0;

  /** Reads a chunk; returns what it completed. Throws NotAnExportError or Error on bad input. */
  push(chunk: Buffer): ExportItem[] {
    this.out = [];
    this.scan(chunk);
    this.offset += chunk.length;
    return this.out;
  }

  /** The end of the object: throws if it stopped before its document did. */
  end(): ExportItem[] {
    if (this.offset === 0) throw new NotAnExportError('it is empty');
    if (!this.rootClosed || this.capture) throw new Error(`it ends after ${this.offset} bytes, before its document does`);
    return [];
  }

  private scan(buf: Buffer): void {
    const n = buf.length;
    let i = 0;
    while (i < n) {
      if (this.capture) {
        i = this.collect(buf, i);
        continue;
      }
      const c = buf[i]!;
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
        i++;
        continue;
      }
      if (this.rootClosed) throw new NotAnExportError(`it has more after its JSON document (byte ${this.offset + i})`);
      const level = this.levels.at(-1);
      if (!level) {
        if (c !== OPEN_OBJECT) throw new NotAnExportError('it does not start with a JSON object');
        this.levels.push({ kind: OBJECT, phase: 'key', key: undefined, count: 0 });
        i++;
        continue;
      }
      switch (level.phase) {
        case 'key':
          if (c === QUOTE) {
            this.startCapture(buf, i, (text) => {
              level.key = JSON.parse(text) as string;
              level.phase = 'colon';
              if (this.levels.length === 1 && level.count === 0 && level.key !== 'kind') {
                throw new NotAnExportError(`its first field is ${JSON.stringify(level.key)}, not "kind"`);
              }
            });
          } else if (c === CLOSE_OBJECT && level.count === 0) {
            this.close(level, c, i);
            i++;
          } else {
            throw this.invalid(i);
          }
          break;
        case 'colon':
          if (c !== COLON) throw this.invalid(i);
          level.phase = 'value';
          i++;
          break;
        case 'next':
          if (c === COMMA) {
            level.phase = level.kind === OBJECT ? 'key' : 'value';
            i++;
          } else if ((c | CASE_BIT) === CLOSE_OBJECT) {
            this.close(level, c, i);
            i++;
          } else {
            throw this.invalid(i);
          }
          break;
        case 'value':
          if (level.kind === ARRAY && level.count === 0 && c === CLOSE_ARRAY) {
            this.close(level, c, i);
            i++;
          } else {
            i = this.value(level, buf, i);
          }
          break;
      }
    }
  }

  /** A value starts at buf[i] inside `level`: descend into it, or collect it whole. */
  private value(level: Level, buf: Buffer, i: number): number {
    const c = buf[i]!;
    const depth = this.levels.length;
    const key = level.key;
    level.count++;
    level.phase = 'next';
    // The path to the series: results[] -> response -> data -> result[] -> each series, collected.
    const descend =
      (depth === 1 && key === 'results') ||
      depth === 2 ||
      (depth === 3 && key === 'response') ||
      (depth === 4 && key === 'data') ||
      (depth === 5 && key === 'result');
    if (descend) {
      const kind = depth === 1 || depth === 5 ? ARRAY : OBJECT;
      if (c !== (kind === ARRAY ? OPEN_ARRAY : OPEN_OBJECT)) {
        throw new NotAnExportError(`its ${this.path(key)} is not ${kind === ARRAY ? 'an array' : 'an object'}`);
      }
      if (depth === 1) this.header = checkHeader(this.fields);
      if (depth === 1) this.out.push({ type: 'header', header: this.header! });
      if (depth === 2) {
        this.resultIndex++;
        this.query = undefined;
        this.resultType = undefined;
      }
      this.levels.push({ kind, phase: kind === OBJECT ? 'key' : 'value', key: undefined, count: 0 });
      return i + 1;
    }
    this.startCapture(buf, i, (text) => this.captured(depth, key, text));
    return i;
  }

  /** A collected value is complete: keep what the path says to keep. */
  private captured(depth: number, key: string | undefined, text: string): void {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new NotAnExportError(`its ${this.path(key)} is not valid JSON: ${(err as Error).message}`);
    }
    if (depth === 1) {
      if (key === 'kind' && !exportKinds.includes(value as (typeof exportKinds)[number])) {
        throw new NotAnExportError(`its "kind" is ${JSON.stringify(value)}, not one of ${exportKinds.join(', ')}`);
      }
      if (key !== undefined) this.fields[key] = value;
    } else if (depth === 3 && key === 'query') {
      this.query = typeof value === 'string' ? value : undefined;
    } else if (depth === 4 && key === 'status') {
      if (value !== 'success') throw new NotAnExportError(`result ${this.resultIndex} holds an answer whose status is ${JSON.stringify(value)}`);
    } else if (depth === 5 && key === 'resultType') {
      this.resultType = typeof value === 'string' ? value : undefined;
    } else if (depth === 6) {
      const base = { result: this.resultIndex, query: this.query, resultType: this.resultType };
      if (typeof value === 'object' && value !== null && !Array.isArray(value) && typeof (value as SeriesRecord).metric === 'object') {
        this.seriesSeen++;
        this.out.push({ type: 'series', ...base, series: value as SeriesRecord });
      } else if (this.levels.at(-1)!.count === 1) {
        this.out.push({ type: 'not-series', ...base });
      }
    }
  }

  private close(level: Level, c: number, i: number): void {
    if ((level.kind === OBJECT) !== (c === CLOSE_OBJECT)) throw this.invalid(i);
    this.levels.pop();
    if (this.levels.length > 0) return;
    this.rootClosed = true;
    if (!this.header) throw new NotAnExportError('it has no "results"');
    const series = this.fields['series'];
    const samples = this.fields['samples'];
    if (typeof series !== 'number' || series !== this.seriesSeen) {
      throw new NotAnExportError(`it says it holds ${JSON.stringify(series)} series, but ${this.seriesSeen} were read`);
    }
    this.out.push({ type: 'end', series, samples: typeof samples === 'number' ? samples : undefined, results: this.resultIndex + 1 });
  }

  /** Starts collecting the value whose first byte is buf[i]; collect reads it, that byte included. */
  private startCapture(buf: Buffer, i: number, done: (text: string) => void): void {
    const c = buf[i]!;
    const scalar = c !== QUOTE && (c | CASE_BIT) !== OPEN_OBJECT;
    this.capture = { parts: [], bytes: 0, depth: 0, inString: false, escaped: false, scalar, done };
  }

  /** Collects the captured value from buf[from]; returns where reading goes on. */
  private collect(buf: Buffer, from: number): number {
    const capture = this.capture!;
    const n = buf.length;
    let i = from;
    let depth = capture.depth;
    let inString = capture.inString;
    let escaped = capture.escaped;
    let complete = false;
    for (; i < n; i++) {
      const c = buf[i]!;
      if (inString) {
        if (escaped) escaped = false;
        else if (c === BACKSLASH) escaped = true;
        else if (c === QUOTE) {
          inString = false;
          if (depth === 0) {
            i++;
            complete = true;
            break;
          }
        }
      } else if (capture.scalar) {
        if (c === COMMA || (c | CASE_BIT) === CLOSE_OBJECT || c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
          complete = true;
          break;
        }
      } else if (c === QUOTE) {
        inString = true;
      } else if ((c | CASE_BIT) === OPEN_OBJECT) {
        depth++;
      } else if ((c | CASE_BIT) === CLOSE_OBJECT) {
        depth--;
        if (depth === 0) {
          i++;
          complete = true;
          break;
        }
      }
    }
    capture.parts.push(buf.subarray(from, i));
    capture.bytes += i - from;
    if (capture.bytes > maxValueBytes) throw new NotAnExportError(`it holds a value over ${maxValueBytes} bytes near byte ${this.offset + i}`);
    capture.depth = depth;
    capture.inString = inString;
    capture.escaped = escaped;
    if (complete) {
      this.capture = undefined;
      capture.done(Buffer.concat(capture.parts).toString('utf8'));
    } else {
      // The rest comes with the next chunk: keep a copy, as whoever sent this one may reuse its memory.
      capture.parts[capture.parts.length - 1] = Buffer.from(capture.parts.at(-1)!);
    }
    return i;
  }

  private invalid(i: number): Error {
    return new NotAnExportError(`it is not valid JSON near byte ${this.offset + i}`);
  }

  private path(key: string | undefined): string {
    const keys = this.levels.map((l) => l.key ?? '[]');
    return [...keys.slice(0, -1), key ?? '[]'].join('.').replace(/\.\[\]/g, '[]');
  }
}

/** The items of an export object streamed in (already decompressed). */
export async function* readExport(chunks: AsyncIterable<Buffer | string>): AsyncGenerator<ExportItem> {
  const reader = new ExportReader();
  for await (const chunk of chunks) yield* reader.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  yield* reader.end();
}
