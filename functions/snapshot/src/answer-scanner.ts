// Reads a Prometheus query answer as it streams past, without parsing it into objects: it counts the
// series in data.result (and, for matrices, their samples), picks up status and resultType, and
// checks that the JSON is complete and its brackets match. The bytes go through untouched, so the
// stored answer is exactly what Prometheus sent while memory stays constant however large it is.
//
// Two speeds. The envelope (the root object, data, and the result array itself) is read a character
// at a time, keeping the keys that decide what is counted. Inside one element of a result, which is
// where nearly every byte is, only strings and brackets matter: a tight loop skips strings and
// numbers and keeps a bracket stack of bytes. Both loops search strings in JavaScript rather than
// with Buffer.indexOf: answers hold millions of short strings, and a native call per string cost more
// than the search (1M series, 162 MB: 500 ms of CPU with indexOf, 355 ms with the loop, less with
// the element loop; see bench/results for the measurements).
import { Transform, type TransformCallback } from 'node:stream';

export interface AnswerSummary {
  status: string | undefined;
  resultType: string | undefined;
  /** Elements of data.result for vector and matrix answers; 0 for scalar and string answers. */
  series: number;
  /** Samples in data.result: one per series of a vector, every point (float or histogram) of a matrix. */
  samples: number;
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
// '[' | 0x20 is '{' and ']' | 0x20 is '}': one comparison finds either kind of bracket.
const CASE_BIT = 0x20;

const OBJECT = 1;
const ARRAY = 2;
/** Deeper nesting than any Prometheus answer has; beyond it the answer is refused. */
const maxDepth = 256;
/** Levels read a character at a time: the root object (1), data (2) and the result array (3). */
const envelopeDepth = 3;

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
  /** Open containers; kinds[d] is OBJECT or ARRAY for level d (1 = the root). */
  private depth = 0;
  private readonly kinds = new Uint8Array(maxDepth + 1);
  /** For envelope levels only: the key whose value is being read, and whether a key comes next. */
  private readonly keys: Array<string | undefined> = new Array<string | undefined>(envelopeDepth + 1).fill(undefined);
  private readonly expectingKey: boolean[] = new Array<boolean>(envelopeDepth + 1).fill(false);
  /** Whether the open level-3 array is data.result, whose elements are series. */
  private inResult = false;
  private inString = false;
  private escaped = false;
  private inScalar = false;
  /** Collects the current string when it is a key or value worth remembering. */
  private text: string | undefined;
  private textIsKey = false;
  private rootClosed = false;
  private seriesCount = 0;
  private sampleCount = 0;
  private byteCount = 0;
  private statusValue: string | undefined;
  private resultTypeValue: string | undefined;

  constructor(options: { maxSeries?: number | undefined } = {}) {
    super();
    this.maxSeries = options.maxSeries ?? Number.POSITIVE_INFINITY;
  }

  get summary(): AnswerSummary {
    const vector = this.resultTypeValue === 'vector';
    const countable = vector || this.resultTypeValue === 'matrix';
    return {
      status: this.statusValue,
      resultType: this.resultTypeValue,
      series: countable ? this.seriesCount : 0,
      samples: vector ? this.seriesCount : countable ? this.sampleCount : 0,
      bytes: this.byteCount,
    };
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
    const n = buf.length;
    const kinds = this.kinds;
    let i = 0;
    while (i < n) {
      if (this.inString) {
        i = this.continueString(buf, i);
        continue;
      }
      if (this.depth > envelopeDepth) {
        i = this.skipElement(buf, i);
        continue;
      }
      const c = buf[i]!;
      i++;
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
        this.inScalar = false;
        continue;
      }
      const depth = this.depth;
      switch (c) {
        case QUOTE:
          this.inScalar = false;
          this.textIsKey = depth > 0 && kinds[depth] === OBJECT && this.expectingKey[depth]!;
          if (!this.textIsKey) this.valueStarts();
          this.inString = true;
          this.text = this.worthRemembering() ? '' : undefined;
          break;
        case OPEN_OBJECT:
        case OPEN_ARRAY:
          this.inScalar = false;
          this.valueStarts();
          this.open(c === OPEN_OBJECT ? OBJECT : ARRAY);
          break;
        case CLOSE_OBJECT:
        case CLOSE_ARRAY:
          this.inScalar = false;
          this.close(c === CLOSE_OBJECT ? OBJECT : ARRAY, i - 1);
          if (this.depth === 0) this.rootClosed = true;
          break;
        case COLON:
          this.inScalar = false;
          if (depth > 0 && kinds[depth] === OBJECT) this.expectingKey[depth] = false;
          break;
        case COMMA:
          this.inScalar = false;
          if (depth > 0 && kinds[depth] === OBJECT) {
            this.expectingKey[depth] = true;
            this.keys[depth] = undefined;
          }
          break;
        default:
          // Numbers, true, false, null: a value starts at its first character.
          if (!this.inScalar) {
            this.inScalar = true;
            this.valueStarts();
          }
      }
    }
  }

  /**
   * Inside one element of a result (any level below the envelope): skips strings and scalars, keeps
   * the brackets, and counts a matrix's points, the arrays opened directly inside an array that is a
   * value of the element (`values`, `histograms`). Returns where the envelope resumes, or n.
   */
  private skipElement(buf: Buffer, from: number): number {
    const n = buf.length;
    const kinds = this.kinds;
    const countSamples = this.inResult;
    let depth = this.depth;
    let samples = 0;
    let i = from;
    try {
      for (; i < n; i++) {
        const c = buf[i]!;
        if (c === QUOTE) {
          let j = i + 1;
          for (;;) {
            if (j >= n) {
              this.inString = true;
              this.escaped = false;
              this.text = undefined;
              return n;
            }
            const d = buf[j]!;
            if (d === QUOTE) break;
            if (d === BACKSLASH) {
              if (j + 1 >= n) {
                this.inString = true;
                this.escaped = true;
                this.text = undefined;
                return n;
              }
              j += 2;
            } else {
              j++;
            }
          }
          i = j;
          continue;
        }
        const bracket = c | CASE_BIT;
        if (bracket === OPEN_OBJECT) {
          if (c === OPEN_ARRAY && countSamples && depth === envelopeDepth + 2 && kinds[depth] === ARRAY) samples++;
          if (depth === maxDepth) throw new Error(`answer nests deeper than ${maxDepth} levels near byte ${this.byteCount + i}`);
          kinds[++depth] = c === OPEN_ARRAY ? ARRAY : OBJECT;
        } else if (bracket === CLOSE_OBJECT) {
          if (kinds[depth] !== (c === CLOSE_ARRAY ? ARRAY : OBJECT)) throw new Error(`answer is not valid JSON near byte ${this.byteCount + i}`);
          depth--;
          if (depth === envelopeDepth) return i + 1;
        }
        // Anything else (numbers, literals, commas, colons, white space) only moves on.
      }
      return n;
    } finally {
      this.depth = depth;
      this.sampleCount += samples;
    }
  }

  /** Reads on in a string that started earlier; returns the index after it, or n if it goes on. */
  private continueString(buf: Buffer, from: number): number {
    const n = buf.length;
    let i = from;
    if (this.escaped) {
      // The byte after a backslash belongs to the string whatever it is.
      this.escaped = false;
      this.text = undefined; // escapes never occur in names we look for
      i++;
      if (i >= n) return n;
    }
    const start = i;
    let end = i;
    for (;;) {
      if (end >= n) break;
      const c = buf[end]!;
      if (c === QUOTE) break;
      if (c === BACKSLASH) {
        this.text = undefined;
        if (end + 1 >= n) {
          this.escaped = true;
          return n;
        }
        end += 2;
      } else {
        end++;
      }
    }
    if (this.text !== undefined && end > start) {
      this.text += buf.toString('latin1', start, Math.min(end, start + maxRememberedString + 1));
      if (this.text.length > maxRememberedString) this.text = undefined;
    }
    if (end >= n) return n;
    this.inString = false;
    this.endString();
    return end + 1;
  }

  private open(kind: number): void {
    if (this.depth === maxDepth) throw new Error(`answer nests deeper than ${maxDepth} levels`);
    const depth = ++this.depth;
    this.kinds[depth] = kind;
    if (depth > envelopeDepth) return;
    this.expectingKey[depth] = kind === OBJECT;
    this.keys[depth] = undefined;
    if (depth === envelopeDepth) {
      const k = this.kinds;
      this.inResult = kind === ARRAY && k[1] === OBJECT && k[2] === OBJECT && this.keys[1] === 'data' && this.keys[2] === 'result';
    }
  }

  private close(kind: number, at: number): void {
    if (this.depth === 0 || this.kinds[this.depth] !== kind) throw new Error(`answer is not valid JSON near byte ${this.byteCount + at}`);
    this.depth--;
  }

  /** Called as any value begins, before it is opened: counts the elements of data.result. */
  private valueStarts(): void {
    if (this.rootClosed) throw new Error('answer has data after its JSON value');
    if (this.depth === envelopeDepth && this.inResult) {
      this.seriesCount++;
      // resultType precedes result in Prometheus's answers; a scalar's two values are not series.
      const countable = this.resultTypeValue === 'vector' || this.resultTypeValue === 'matrix';
      if (countable && this.seriesCount > this.maxSeries) throw new SeriesLimitError(this.maxSeries);
    }
  }

  /** Only top-level keys, data's keys, and the values of status and data.resultType are kept. */
  private worthRemembering(): boolean {
    const depth = this.depth;
    if (this.textIsKey) return depth <= 2;
    if (depth === 1) return this.keys[1] === 'status';
    if (depth === 2) return this.keys[1] === 'data' && this.keys[2] === 'resultType';
    return false;
  }

  private endString(): void {
    const text = this.text;
    this.text = undefined;
    if (text === undefined) return;
    const depth = this.depth;
    if (this.textIsKey) {
      this.keys[depth] = text;
    } else if (depth === 1) {
      this.statusValue = text;
    } else if (depth === 2) {
      this.resultTypeValue = text;
    }
  }
}
