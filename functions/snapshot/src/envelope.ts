// The stored snapshot document, produced as a byte stream: a small header, then each query with
// Prometheus's answer copied in verbatim as it arrives, then the series counts. Nothing is parsed
// into objects or re-serialised, so memory does not grow with the answer:
//
//   {"kind":"promsnap.snapshot.v1","id":…,"source":…,"time":…,"prometheus":…,"queries":[…],
//    "results":[{"query":…,"response":<Prometheus's JSON answer>,"series":N},…],"series":N}
//
// The total comes last so that a redelivery can read it back from the object's last bytes.
import { Readable } from 'node:stream';
import { copyAnswer } from './copy-answer.js';

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
      const { series } = yield* copyAnswer(query, answer, input.maxSeries);
      total += series;
      yield Buffer.from(`,"series":${series}}`);
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
