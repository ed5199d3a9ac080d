// Prometheus's instant-query API (POST /api/v1/query, form-encoded so long queries fit), evaluated at
// a given time and answered as a stream: the body is handed on as it arrives, never held whole. Each
// failure becomes a RetryableError (unreachable, timed out, 5xx, an answer that breaks off) or a
// RejectedEventError (400/422: Prometheus refuses the query itself, which no retry will change).
//
// The deadline counts only time spent waiting on Prometheus. Its answer is read as fast as the bucket
// takes it, so while the upload holds the stream back the clock stops: a slow store must not be
// reported, and retried, as a slow Prometheus. A store that stops taking bytes altogether fails the
// upload on the S3 client's own socket timeout (storage_unavailable).
import { PassThrough, type Readable } from 'node:stream';
import type { AxiosInstance } from 'axios';
import { RejectedEventError, RetryableError } from './errors.js';

export interface PrometheusOptions {
  /** Base URL, e.g. http://prometheus.monitoring.svc.cluster.local:9090 */
  url: string;
  /**
   * Deadline for waiting on Prometheus: for its answer to start, then for the rest of it whenever the
   * reader is ready for more. Time the reader holds the answer back is not counted.
   */
  timeoutMs: number;
  /**
   * Ask Prometheus to gzip its answer (axios inflates it as it arrives); default false. A 12x smaller
   * answer on the wire for CPU on both sides (measured: see PROMETHEUS_GZIP in config.ts).
   */
  gzip?: boolean;
  /**
   * Most series one answer may hold. Every query asks Prometheus for at most one more (its `limit`
   * parameter truncates a vector or matrix answer), so the answer stays bounded and the reader can tell
   * a complete answer from one that would have held more (answer-scanner.ts stops at the excess one).
   * Unset: no bound.
   */
  maxSeries?: number;
}

export interface PrometheusClient {
  readonly url: string;
  /** The bound on the series of one answer (PrometheusOptions.maxSeries). */
  readonly maxSeries: number | undefined;
  /**
   * Resolves once Prometheus has answered 200 with the body still streaming; the stream fails with
   * a RetryableError if the answer breaks off or the deadline passes. Destroying it cancels the query.
   */
  query(query: string, time: string): Promise<Readable>;
}

/** Largest error body read to report what Prometheus said. */
const maxErrorBodyBytes = 64 * 1024;

export function createPrometheusClient(options: PrometheusOptions): PrometheusClient {
  // axios is loaded with the first query, not at start-up: importing it took about 65 ms of the
  // function's start-up to ready, for a client no probe needs.
  let client: Promise<AxiosInstance> | undefined;
  const axiosClient = () =>
    (client ??= import('axios').then(({ default: axios }) =>
      axios.create({
        baseURL: options.url,
        responseType: 'stream',
        // Every status is looked at here, not thrown by axios.
        validateStatus: () => true,
        maxRedirects: 0,
        // The deadline below covers the body too; axios's own timeout would stop at the headers.
        timeout: 0,
      }),
    ));

  return {
    url: options.url,
    maxSeries: options.maxSeries,
    async query(query, time) {
      const http = await axiosClient();
      const controller = new AbortController();
      let timedOut = false;
      const deadline = pausableTimer(options.timeoutMs, () => {
        timedOut = true;
        controller.abort();
      });
      const timeoutError = () =>
        new RetryableError('prometheus_timeout', 504, `Prometheus did not answer query ${JSON.stringify(query)} within ${options.timeoutMs} ms`);

      let body: Readable;
      let status: number;
      try {
        const res = await http.post<Readable>(
          '/api/v1/query',
          // Prometheus's own timeout makes it stop evaluating when this side gives up.
          // In plain seconds: Prometheus's duration syntax ("30s") has no fractions, a float does.
          new URLSearchParams({
            query,
            time,
            timeout: String(options.timeoutMs / 1000),
            ...(options.maxSeries !== undefined ? { limit: String(options.maxSeries + 1) } : {}),
          }).toString(),
          {
            signal: controller.signal,
            headers: {
              'Content-Type': 'application/x-www-form-urlencoded',
              Accept: 'application/json',
              'Accept-Encoding': options.gzip ? 'gzip' : 'identity',
            },
          },
        );
        body = res.data;
        status = res.status;
      } catch (err) {
        deadline.clear();
        if (timedOut) throw timeoutError();
        throw requestFailure(err, options.url);
      }

      if (status !== 200) {
        deadline.clear();
        const text = await readSome(body, maxErrorBodyBytes).catch(() => '');
        throw statusFailure(status, text, query);
      }

      // The caller reads `out`; `body` feeds it, and either side ending tears down the other. Piped by
      // hand, so that the deadline stops exactly while `out` is full, i.e. the reader holds it back.
      const out = new PassThrough();
      body.on('error', (err) => out.destroy(timedOut ? timeoutError() : brokenAnswer(err)));
      controller.signal.addEventListener('abort', () => out.destroy(timeoutError()), { once: true });
      out.on('close', () => {
        deadline.clear();
        if (!body.destroyed) body.destroy();
      });
      body.on('data', (chunk: Buffer) => {
        if (out.write(chunk)) return;
        body.pause();
        deadline.pause();
        out.once('drain', () => {
          deadline.resume();
          body.resume();
        });
      });
      body.on('end', () => {
        deadline.clear();
        out.end();
      });
      return out;
    },
  };
}

interface PausableTimer {
  pause(): void;
  resume(): void;
  clear(): void;
}

/** Calls `expire` once `ms` of running time have passed; paused time does not count. */
function pausableTimer(ms: number, expire: () => void): PausableTimer {
  let left = ms;
  let since = Date.now();
  let timer: NodeJS.Timeout | undefined = setTimeout(expire, left);
  return {
    pause() {
      if (!timer) return;
      clearTimeout(timer);
      timer = undefined;
      left -= Date.now() - since;
    },
    resume() {
      if (timer || left === Number.POSITIVE_INFINITY) return;
      since = Date.now();
      timer = setTimeout(expire, Math.max(0, left));
    },
    clear() {
      clearTimeout(timer);
      timer = undefined;
      left = Number.POSITIVE_INFINITY;
    },
  };
}

function requestFailure(err: unknown, url: string): RetryableError {
  // AxiosError and Node's own errors alike carry the cause's code.
  const code = (err as { code?: string }).code;
  const detail = err instanceof Error ? err.message : String(err);
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH') {
    return new RetryableError('prometheus_unavailable', 503, `Prometheus at ${url} is unreachable (${code}): ${detail}`, { cause: err });
  }
  if (code === 'ETIMEDOUT' || code === 'ECONNABORTED') {
    return new RetryableError('prometheus_timeout', 504, `Prometheus at ${url} timed out (${code}): ${detail}`, { cause: err });
  }
  return new RetryableError('prometheus_error', 502, `query to Prometheus at ${url} failed (${code ?? 'no code'}): ${detail}`, { cause: err });
}

export function statusFailure(status: number, text: string, query: string): RejectedEventError | RetryableError {
  let said = text.trim().slice(0, 500);
  try {
    const parsed = JSON.parse(text) as { errorType?: string; error?: string };
    if (parsed.error) said = parsed.errorType ? `${parsed.errorType}: ${parsed.error}` : parsed.error;
  } catch {
    // not JSON: keep the text
  }
  // 400 bad_data (the query does not parse) and 422 execution (it cannot be evaluated) are about the
  // query: the same event would fail the same way on every retry.
  if (status === 400 || status === 422) {
    return new RejectedEventError('query_rejected', 422, `Prometheus rejected query ${JSON.stringify(query)}: ${said}`);
  }
  if (status === 503) {
    return new RetryableError('prometheus_unavailable', 503, `Prometheus is unavailable (503): ${said}`);
  }
  // 5xx and anything else (404 from a wrong PROMETHEUS_URL, a proxy's 4xx) is not the event's fault.
  return new RetryableError('prometheus_error', 502, `Prometheus answered ${status}: ${said}`);
}

function brokenAnswer(err: unknown): RetryableError {
  const detail = err instanceof Error ? err.message : String(err);
  return new RetryableError('prometheus_error', 502, `Prometheus's answer broke off: ${detail}`, { cause: err });
}

async function readSome(stream: Readable, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
    chunks.push(buffer);
    size += buffer.length;
    if (size >= limit) break;
  }
  stream.destroy();
  return Buffer.concat(chunks).subarray(0, limit).toString('utf8');
}
