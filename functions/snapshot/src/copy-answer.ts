// One query's answer copied into a document as it streams from Prometheus, through the answer
// scanner: the chunks are yielded untouched and the answer's counts returned. Both document writers
// (envelope.ts for instant snapshots, export-stream.ts for range exports) copy answers this way.
import type { Readable } from 'node:stream';
import { AnswerScanner, SeriesLimitError, type AnswerSummary } from './answer-scanner.js';
import { RejectedEventError, RetryableError } from './errors.js';

/**
 * Yields `answer`'s bytes and returns its summary. An answer over `maxSeries` is the sender's problem
 * (422: a retry asks the same question and gets the same answer, and what is half written cannot be
 * cut); an unusable answer is Prometheus's (502, retryable). Stopped early (the upload failed), it
 * cancels the query instead of reading it to the end.
 */
export async function* copyAnswer(query: string, answer: Readable, maxSeries: number | undefined): AsyncGenerator<Buffer, AnswerSummary> {
  const scanner = new AnswerScanner({ maxSeries });
  answer.on('error', (err) => scanner.destroy(err));
  try {
    for await (const chunk of answer.pipe(scanner)) yield chunk as Buffer;
  } catch (err) {
    if (err instanceof RetryableError || err instanceof RejectedEventError) throw err;
    if (err instanceof SeriesLimitError) {
      throw new RejectedEventError(
        'too_many_series',
        422,
        `the answer to query ${JSON.stringify(query)} holds more than ${err.maxSeries} series, the most one answer may hold (SNAPSHOT_MAX_SERIES); nothing was stored`,
        undefined,
        { cause: err },
      );
    }
    throw new RetryableError('prometheus_error', 502, `Prometheus's answer to ${JSON.stringify(query)} is unusable: ${(err as Error).message}`, {
      cause: err,
    });
  } finally {
    answer.destroy();
    scanner.destroy();
  }
  return scanner.summary;
}
