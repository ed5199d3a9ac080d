// Reads a Prometheus query answer as it streams past, without parsing it into objects: it counts the
// series in data.result, picks up status and resultType, and checks that the JSON is complete. The
// bytes go through untouched, so the stored answer is exactly what Prometheus sent while memory stays
// constant however large the answer is.
import { Transform, type TransformCallback } from 'node:stream';

export interface AnswerSummary {
  status: string | undefined;
  resultType: string | undefined;
  /** Elements of data.result for vector and matrix answers; 0 for scalar and string answers. */
  series: number;
  bytes: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const COLON = 0x3a;
const COMMA = 0x2c;

interface Frame {
  array: boolean;
  /** The key whose value is being read (objects only). */
  key: string | undefined;
  expectingKey: boolean;
}

// Keys and values are only remembered where they matter (status, data.resultType, data.result).
const maxRememberedString = 32;

/** Thrown (as the stream's error) when a vector or matrix answer holds more series than allowed. */
export class SeriesLimitError extends Error {
  constructor(readonly maxSeries: number) {
    super(`the answer holds more than ${maxSeries} series`);
    this.name = 'SeriesLimitError';
  }
}

export class AnswerScanner extends Transform {
  /** Fails the stream at the first series beyond this many (vector and matrix answers). */
  private readonly maxSeries: number;
  private readonly stack: Frame[] = [];
  private inString = false;
  private escaped = false;
  private inScalar = false;
  /** Collects the current string when it is a key or value worth remembering. */
  private text: string | undefined;
  private textIsKey = false;
  private rootClosed = false;
  private seriesCount = 0;
  private byteCount = 0;
  private statusValue: string | undefined;
  private resultTypeValue: string | undefined;

  constructor(options: { maxSeries?: number | undefined } = {}) {
    super();
    this.maxSeries = options.maxSeries ?? Number.POSITIVE_INFINITY;
  }

  get summary(): AnswerSummary {
    const countable = this.resultTypeValue === 'vector' || this.resultTypeValue === 'matrix';
    return { status: this.statusValue, resultType: this.resultTypeValue, series: countable ? this.seriesCount : 0, bytes: this.byteCount };
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.scan(chunk);
    } catch (err) {
      callback(err as Error);
      return;
    }
    this.byteCount += chunk.length;
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (!this.rootClosed || this.inString) {
      callback(new Error(`answer ended after ${this.byteCount} bytes with incomplete JSON`));
      return;
    }
    if (this.statusValue !== 'success') {
      callback(new Error(`answer status is ${JSON.stringify(this.statusValue)}, not "success"`));
      return;
    }
    callback();
  }

  private scan(buf: Buffer): void {
    let i = 0;
    const n = buf.length;
    // The next backslash at or after i in this chunk (-1: none left), searched once and again only
    // once passed: answers rarely hold escapes, and searching the rest of the chunk for one at every
    // string made each chunk cost its length times its strings (883 ms of indexOf at 1M series).
    let slash = buf.indexOf(BACKSLASH, 0);
    while (i < n) {
      if (this.inString) {
        if (this.escaped) {
          this.escaped = false;
          if (this.text !== undefined) this.text = undefined; // escapes never occur in names we look for
          i++;
          continue;
        }
        // Jump to the next quote or backslash: strings are most of an answer's bytes.
        let end = buf.indexOf(QUOTE, i);
        if (slash !== -1 && slash < i) slash = buf.indexOf(BACKSLASH, i);
        if (slash !== -1 && (end === -1 || slash < end)) end = slash;
        const stop = end === -1 ? n : end;
        if (this.text !== undefined && stop > i) {
          this.text += buf.toString('latin1', i, Math.min(stop, i + maxRememberedString + 1));
          if (this.text.length > maxRememberedString) this.text = undefined;
        }
        if (end === -1) return;
        i = end + 1;
        if (buf[end] === BACKSLASH) {
          this.escaped = true;
        } else {
          this.inString = false;
          this.endString();
        }
        continue;
      }
      const c = buf[i]!;
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
        this.inScalar = false;
        i++;
        continue;
      }
      switch (c) {
        case QUOTE: {
          this.inScalar = false;
          const top = this.stack[this.stack.length - 1];
          this.textIsKey = top !== undefined && !top.array && top.expectingKey;
          if (!this.textIsKey) this.valueStarts();
          this.inString = true;
          this.text = this.worthRemembering() ? '' : undefined;
          break;
        }
        case OPEN_OBJECT:
        case OPEN_ARRAY:
          this.inScalar = false;
          this.valueStarts();
          this.stack.push({ array: c === OPEN_ARRAY, key: undefined, expectingKey: c === OPEN_OBJECT });
          break;
        case CLOSE_OBJECT:
        case CLOSE_ARRAY: {
          this.inScalar = false;
          const frame = this.stack.pop();
          if (!frame || frame.array !== (c === CLOSE_ARRAY)) throw new Error(`answer is not valid JSON near byte ${this.byteCount + i}`);
          if (this.stack.length === 0) this.rootClosed = true;
          break;
        }
        case COLON: {
          this.inScalar = false;
          const top = this.stack[this.stack.length - 1];
          if (top && !top.array) top.expectingKey = false;
          break;
        }
        case COMMA: {
          this.inScalar = false;
          const top = this.stack[this.stack.length - 1];
          if (top && !top.array) {
            top.expectingKey = true;
            top.key = undefined;
          }
          break;
        }
        default:
          // Numbers, true, false, null: a value starts at its first character.
          if (!this.inScalar) {
            this.inScalar = true;
            this.valueStarts();
          }
      }
      i++;
    }
  }

  /** Called as any value begins, before it is pushed: counts the elements of data.result. */
  private valueStarts(): void {
    if (this.rootClosed) throw new Error('answer has data after its JSON value');
    const s = this.stack;
    if (s.length === 3 && s[2]!.array && s[1]!.key === 'result' && s[0]!.key === 'data') {
      this.seriesCount++;
      // resultType precedes result in Prometheus's answers; a scalar's two values are not series.
      const countable = this.resultTypeValue === 'vector' || this.resultTypeValue === 'matrix';
      if (countable && this.seriesCount > this.maxSeries) throw new SeriesLimitError(this.maxSeries);
    }
  }

  /** Only top-level keys, data's keys, and the values of status and data.resultType are kept. */
  private worthRemembering(): boolean {
    const s = this.stack;
    if (this.textIsKey) return s.length <= 2;
    if (s.length === 1) return s[0]!.key === 'status';
    if (s.length === 2) return s[0]!.key === 'data' && s[1]!.key === 'resultType';
    return false;
  }

  private endString(): void {
    const text = this.text;
    this.text = undefined;
    if (text === undefined) return;
    const s = this.stack;
    if (this.textIsKey) {
      s[s.length - 1]!.key = text;
    } else if (s.length === 1) {
      this.statusValue = text;
    } else if (s.length === 2) {
      this.resultTypeValue = text;
    }
  }
}
