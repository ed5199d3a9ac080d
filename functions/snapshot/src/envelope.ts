// The stored export document (archive/src/format.ts), produced as a byte stream: its header, then each
// query with Prometheus's answer copied in verbatim as it arrives, then the totals. Nothing is parsed
// into objects or re-serialised, so memory does not grow with the answers. The totals come last so
// that a redelivery can read them back from the object's last bytes.
import { Readable } from 'node:stream';
import { headerText, resultHead, resultTail, SNAPSHOT_KIND, trailerText, type ExportHeader } from '../../../archive/src/format.js';
import { AnswerScanner } from './answer-scanner.js';
import { RejectedEventError, RetryableError } from './errors.js';

export { SNAPSHOT_KIND } from '../../../archive/src/format.js';

/** One query and its answer, opened when the document reaches it. */
export interface Answer {
  query: string;
  answer: Readable;
}

export interface EnvelopeInput {
  header: ExportHeader;
  /**
   * The answers in document order. Each is asked for only once the one before it is written, and an
   * answer is written only once Prometheus has accepted its query, so a query it refuses can still
   * be replaced (split) without leaving anything of it in the document.
   */
  answers: AsyncIterable<Answer>;
  /** Write each answer's sample count beside its series count (range exports). */
  samples: boolean;
}

export interface Envelope {
  stream: Readable;
  /** Totals once the stream has ended. */
  series(): number;
  samples(): number;
  /** Answers written. */
  queries(): number;
}

export function streamExport(input: EnvelopeInput): Envelope {
  let series = 0;
  let samples = 0;
  let queries = 0;
  async function* produce(): AsyncGenerator<Buffer> {
    yield Buffer.from(headerText(input.header));
    for await (const { query, answer } of input.answers) {
      yield Buffer.from(resultHead(query, queries === 0));
      queries++;
      const scanner = new AnswerScanner();
      answer.on('error', (err) => scanner.destroy(err));
      try {
        for await (const chunk of answer.pipe(scanner)) yield chunk as Buffer;
      } catch (err) {
        if (err instanceof RetryableError || err instanceof RejectedEventError) throw err;
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
      yield Buffer.from(resultTail({ series: counts.series, ...(input.samples ? { samples: counts.samples } : {}) }));
    }
    yield Buffer.from(trailerText({ series, ...(input.samples ? { samples } : {}) }));
  }
  return { stream: Readable.from(produce(), { objectMode: false }), series: () => series, samples: () => samples, queries: () => queries };
}

/** An instant snapshot's input: its queries, each answered at the ping's time. */
export interface SnapshotEnvelopeInput {
  id: string;
  source: string;
  time: string;
  prometheusUrl: string;
  queries: string[];
  /** Starts the query at index i; the first is started by the caller before anything is written. */
  answer(index: number): Promise<Readable>;
}

/** An instant snapshot's document, as the reference stores it. */
export function createEnvelope(input: SnapshotEnvelopeInput): Envelope {
  async function* answers() {
    for (const [index, query] of input.queries.entries()) yield { query, answer: await input.answer(index) };
  }
  return streamExport({
    header: { kind: SNAPSHOT_KIND, id: input.id, source: input.source, time: input.time, prometheus: input.prometheusUrl, queries: input.queries },
    answers: answers(),
    samples: false,
  });
}

/** The total series count from a stored export's last bytes, or undefined if they do not hold it. */
export function seriesFromTail(tail: string): number | undefined {
  const match = /"series":(\d+)(?:,"samples":\d+)?\}\s*$/.exec(tail);
  return match ? Number(match[1]) : undefined;
}

/** The total sample count from a range export's last bytes, or undefined if they do not hold it. */
export function samplesFromTail(tail: string): number | undefined {
  const match = /"samples":(\d+)\}\s*$/.exec(tail);
  return match ? Number(match[1]) : undefined;
}
