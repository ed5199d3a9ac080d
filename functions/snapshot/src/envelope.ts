// The stored snapshot document, produced as a byte stream: a small header, then each query with
// Prometheus's answer copied in verbatim as it arrives, then the series counts. Nothing is parsed
// into objects or re-serialised, so memory does not grow with the answer:
//
//   {"kind":"promsnap.snapshot.v1","id":…,"source":…,"time":…,"prometheus":…,"queries":[…],
//    "results":[{"query":…,"response":<Prometheus's JSON answer>,"series":N},…],"series":N}
//
// The total comes last so that a redelivery can read it back from the object's last bytes.
import { Readable } from 'node:stream';
import { AnswerScanner, SeriesLimitError } from './answer-scanner.js';
import { RejectedEventError, RetryableError } from './errors.js';

export const SNAPSHOT_KIND = 'promsnap.snapshot.v1';

export interface EnvelopeInput {
  id: string;
  source: string;
  time: string;
  prometheusUrl: string;
  queries: string[];
  /** Starts the query at index i; the first is started by the caller before anything is written. */
  answer(index: number): Promise<Readable>;
  /** Most series one answer may hold; an answer with more fails the stream, so nothing is stored. */
  maxSeries?: number | undefined;
}

export interface Envelope {
  stream: Readable;
  /** Total series once the stream has ended. */
  series(): number;
}

export function createEnvelope(input: EnvelopeInput): Envelope {
  let total = 0;
  async function* produce(): AsyncGenerator<Buffer> {
    const header = { kind: SNAPSHOT_KIND, id: input.id, source: input.source, time: input.time, prometheus: input.prometheusUrl, queries: input.queries };
    yield Buffer.from(`${JSON.stringify(header).slice(0, -1)},"results":[`);
    for (const [index, query] of input.queries.entries()) {
      yield Buffer.from(`${index === 0 ? '' : ','}{"query":${JSON.stringify(query)},"response":`);
      const answer = await input.answer(index);
      const scanner = new AnswerScanner({ maxSeries: input.maxSeries });
      answer.on('error', (err) => scanner.destroy(err));
      try {
        for await (const chunk of answer.pipe(scanner)) yield chunk as Buffer;
      } catch (err) {
        if (err instanceof RetryableError || err instanceof RejectedEventError) throw err;
        if (err instanceof SeriesLimitError) {
          // Retrying asks the same question of the same instant: the same answer, too large again.
          throw new RejectedEventError(
            'too_many_series',
            422,
            `the answer to query ${JSON.stringify(query)} holds more than ${err.maxSeries} series, the most a snapshot may hold (SNAPSHOT_MAX_SERIES); nothing was stored`,
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
      total += scanner.summary.series;
      yield Buffer.from(`,"series":${scanner.summary.series}}`);
    }
    yield Buffer.from(`],"series":${total}}\n`);
  }
  return { stream: Readable.from(produce(), { objectMode: false }), series: () => total };
}

/** The total series count from a stored snapshot's last bytes, or undefined if they do not hold it. */
export function seriesFromTail(tail: string): number | undefined {
  const match = /"series":(\d+)\}\s*$/.exec(tail);
  return match ? Number(match[1]) : undefined;
}
