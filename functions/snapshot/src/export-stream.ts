// An export document (archive/src/format.ts) produced as a byte stream from a sequence of answers:
// the header, then each query with Prometheus's answer copied in verbatim as it arrives, then the
// totals. Nothing is parsed into objects or re-serialised, so memory does not grow with the answers.
// Range exports are written with it; instant snapshots with envelope.ts, the reference's document,
// which this generalises (one writer for both once they can be merged without changing either's bytes).
import { Readable } from 'node:stream';
import { headerText, resultHead, resultTail, trailerText, type ExportHeader } from '../../../archive/src/format.js';
import { AnswerScanner, SeriesLimitError } from './answer-scanner.js';
import { RejectedEventError, RetryableError } from './errors.js';

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
      const scanner = new AnswerScanner({ maxSeries: input.maxSeries });
      answer.on('error', (err) => scanner.destroy(err));
      try {
        for await (const chunk of answer.pipe(scanner)) yield chunk as Buffer;
      } catch (err) {
        if (err instanceof RetryableError || err instanceof RejectedEventError) throw err;
        if (err instanceof SeriesLimitError) {
          // Parts are planned far below the bound; one over it cannot be cut now that it is half written.
          throw new RejectedEventError(
            'too_many_series',
            422,
            `the answer to ${JSON.stringify(query)} holds more than ${err.maxSeries} series, the most one answer may hold (SNAPSHOT_MAX_SERIES); nothing was stored`,
            undefined,
            { cause: err },
          );
        }
        throw new RetryableError('prometheus_error', 502, `Prometheus's answer to ${JSON.stringify(query)} is unusable: ${(err as Error).message}`, {
          cause: err,
        });
      } finally {
        // Reached early when the upload fails: cancels the query instead of reading it to the end.
        answer.destroy();
        scanner.destroy();
      }
      const counts = scanner.summary;
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
