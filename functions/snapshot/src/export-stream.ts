// An export document (archive/src/format.ts) produced as a byte stream from a sequence of answers:
// the header, then each query with Prometheus's answer copied in verbatim as it arrives, then the
// totals. Nothing is parsed into objects or re-serialised, so memory does not grow with the answers.
// Range exports are written with it; instant snapshots with envelope.ts, the reference's document,
// which this generalises (one writer for both once they can be merged without changing either's bytes).
import { Readable } from 'node:stream';
import { headerText, resultHead, resultTail, trailerText, type ExportHeader } from '../../../archive/src/format.js';
import { copyAnswer } from './copy-answer.js';

/** One query and its answer, opened when the document reaches it. */
export interface Answer {
  query: string;
  answer: Readable;
}

export interface ExportStreamInput {
  header: ExportHeader;
  /**
   * The answers in document order. Each is asked for only once the one before it is written, and an
   * answer is written only once Prometheus has accepted its query, so a query it refuses can still
   * be replaced (split) without leaving anything of it in the document.
   */
  answers: AsyncIterable<Answer>;
  /** Most series one answer may hold (SNAPSHOT_MAX_SERIES); an answer with more fails the stream. */
  maxSeries?: number | undefined;
}

export interface ExportStream {
  stream: Readable;
  /** Totals so far (final once the stream has ended). */
  series(): number;
  samples(): number;
  /** Answers written. */
  queries(): number;
}

export function streamExport(input: ExportStreamInput): ExportStream {
  let series = 0;
  let samples = 0;
  let queries = 0;
  async function* produce(): AsyncGenerator<Buffer> {
    yield Buffer.from(headerText(input.header));
    for await (const { query, answer } of input.answers) {
      yield Buffer.from(resultHead(query, queries === 0));
      queries++;
      const counts = yield* copyAnswer(query, answer, input.maxSeries);
      series += counts.series;
      samples += counts.samples;
      yield Buffer.from(resultTail({ series: counts.series, samples: counts.samples }));
    }
    yield Buffer.from(trailerText({ series, samples }));
  }
  return { stream: Readable.from(produce(), { objectMode: false }), series: () => series, samples: () => samples, queries: () => queries };
}

/** The totals from a stored range export's last bytes, or undefined if they do not hold them. */
export function countsFromTail(tail: string): { series: number; samples: number } | undefined {
  const match = /"series":(\d+),"samples":(\d+)\}\s*$/.exec(tail);
  return match ? { series: Number(match[1]), samples: Number(match[2]) } : undefined;
}
