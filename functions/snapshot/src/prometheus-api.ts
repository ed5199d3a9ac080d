// The small answers a range export plans with: label names and values (from the index, no samples
// read) and instant queries whose answers are counts. Read whole, within a bound; failures become the
// same RetryableError / RejectedEventError as the streamed queries' (prometheus.ts).
import { RejectedEventError, RetryableError } from './errors.js';
import { statusFailure } from './prometheus.js';

export interface CountVector {
  result: Array<{ metric: Record<string, string>; value: [number, string] }>;
  /** Samples Prometheus read to answer (its query stats). */
  totalSamples: number;
}

export interface PrometheusApi {
  /** Values of a label among the series matching `match` with data in [start, end] (Unix ms). */
  labelValues(label: string, match: string, start: number, end: number): Promise<string[]>;
  /** Label names of the series matching `match` with data in [start, end]. */
  labelNames(match: string, start: number, end: number): Promise<string[]>;
  /** An instant query whose answer is a (small) vector, evaluated at `time` (Unix ms), with its stats. */
  countQuery(query: string, time: number): Promise<CountVector>;
}

/** Largest planning answer read: a label with millions of values is not one to split by. */
const maxAnswerBytes = 32 * 1024 * 1024;

export function createPrometheusApi(options: { url: string; timeoutMs: number }): PrometheusApi {
  const seconds = (ms: number) => (ms / 1000).toFixed(3);

  async function call<T>(what: string, path: string, init: { method: 'GET' | 'POST'; params: URLSearchParams }): Promise<T> {
    const url = `${options.url}${path}${init.method === 'GET' ? `?${init.params.toString()}` : ''}`;
    let res: Response;
    try {
      res = await fetch(url, {
        method: init.method,
        ...(init.method === 'POST' ? { body: init.params, headers: { 'Content-Type': 'application/x-www-form-urlencoded' } } : {}),
        signal: AbortSignal.timeout(options.timeoutMs),
      });
    } catch (err) {
      throw fetchFailure(err, options.url, options.timeoutMs);
    }
    const text = await readBounded(res, what);
    if (res.status !== 200) throw statusFailure(res.status, text, what);
    try {
      const body = JSON.parse(text) as { status?: string; data?: T };
      if (body.status !== 'success' || body.data === undefined) throw new Error(`status ${JSON.stringify(body.status)}`);
      return body.data;
    } catch (err) {
      throw new RetryableError('prometheus_error', 502, `Prometheus's answer to ${what} is unusable: ${(err as Error).message}`, { cause: err });
    }
  }

  return {
    async labelValues(label, match, start, end) {
      const params = new URLSearchParams({ 'match[]': match, start: seconds(start), end: seconds(end) });
      return call<string[]>(`the values of ${label} for ${match}`, `/api/v1/label/${encodeURIComponent(label)}/values`, { method: 'GET', params });
    },
    async labelNames(match, start, end) {
      const params = new URLSearchParams({ 'match[]': match, start: seconds(start), end: seconds(end) });
      return call<string[]>(`the label names of ${match}`, '/api/v1/labels', { method: 'POST', params });
    },
    async countQuery(query, time) {
      const params = new URLSearchParams({ query, time: seconds(time), stats: 'all', timeout: String(options.timeoutMs / 1000) });
      const data = await call<{ resultType: string; result: CountVector['result']; stats?: { samples?: { totalQueryableSamples?: number } } }>(
        `query ${JSON.stringify(query)}`,
        '/api/v1/query',
        { method: 'POST', params },
      );
      if (data.resultType !== 'vector')
        throw new RetryableError('prometheus_error', 502, `Prometheus answered ${JSON.stringify(query)} with a ${data.resultType}, not a vector`);
      return { result: data.result, totalSamples: data.stats?.samples?.totalQueryableSamples ?? 0 };
    },
  };
}

async function readBounded(res: Response, what: string): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  if (res.body) {
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      size += chunk.length;
      if (size > maxAnswerBytes) {
        await res.body.cancel().catch(() => undefined);
        throw new RejectedEventError('query_rejected', 422, `Prometheus's answer to ${what} is over ${maxAnswerBytes} bytes: too large to plan an export with`);
      }
      chunks.push(Buffer.from(chunk));
    }
  }
  return Buffer.concat(chunks).toString('utf8');
}

function fetchFailure(err: unknown, url: string, timeoutMs: number): RetryableError {
  const name = (err as { name?: string }).name;
  if (name === 'TimeoutError' || name === 'AbortError') {
    return new RetryableError('prometheus_timeout', 504, `Prometheus at ${url} did not answer within ${timeoutMs} ms`, { cause: err });
  }
  const code = (err as { cause?: { code?: string } }).cause?.code;
  if (code && /^(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH)$/.test(code)) {
    return new RetryableError('prometheus_unavailable', 503, `Prometheus at ${url} is unreachable (${code})`, { cause: err });
  }
  return new RetryableError('prometheus_error', 502, `request to Prometheus at ${url} failed (${code ?? 'no code'}): ${(err as Error).message}`, {
    cause: err,
  });
}
