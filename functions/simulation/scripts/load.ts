// Sends n GET requests to each of a set of paths with bounded concurrency and summarises what came
// back per path: the TypeScript successor of the reference's simulation_script.py.
import { performance } from 'node:perf_hooks';

export const defaultPaths = ['/', '/simulate-requests', '/error'] as const;

export interface LoadOptions {
  /** Base URL of the service, e.g. http://127.0.0.1:8080. */
  url: string;
  paths: readonly string[];
  /** Requests per path. */
  requests: number;
  /** Requests in flight at once, across all paths. */
  concurrency: number;
  /** Per-request limit; a request that runs over counts as failed. */
  timeoutMs: number;
}

export interface PathResult {
  path: string;
  /** Answered requests by HTTP status. */
  statuses: Map<number, number>;
  /** Requests that got no answer (refused, reset, timed out), by error message. */
  failures: Map<string, number>;
  /** Time to the end of each answered response's body, in milliseconds. */
  latenciesMs: number[];
}

export interface LoadResult {
  paths: PathResult[];
  elapsedMs: number;
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const results = options.paths.map((path): PathResult => ({ path, statuses: new Map(), failures: new Map(), latenciesMs: [] }));
  // Round-robin over the paths, so every moment of the run mixes the endpoints as real traffic would.
  const total = options.requests * results.length;
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < total) {
      const result = results[next++ % results.length]!;
      await sendOne(options, result);
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency, total) }, worker));
  return { paths: results, elapsedMs: performance.now() - started };
}

async function sendOne(options: LoadOptions, result: PathResult): Promise<void> {
  const start = performance.now();
  try {
    const res = await fetch(new URL(result.path, options.url), { signal: AbortSignal.timeout(options.timeoutMs) });
    await res.arrayBuffer();
    result.latenciesMs.push(performance.now() - start);
    result.statuses.set(res.status, (result.statuses.get(res.status) ?? 0) + 1);
  } catch (err) {
    const reason = err instanceof Error ? describe(err) : String(err);
    result.failures.set(reason, (result.failures.get(reason) ?? 0) + 1);
  }
}

/** fetch wraps the useful part (ECONNREFUSED, a timeout) in its cause. */
function describe(err: Error): string {
  if (err.name === 'TimeoutError') return 'timeout';
  const cause = err.cause as { code?: string; message?: string } | undefined;
  return cause?.code ?? cause?.message ?? err.message;
}

/** Nearest-rank percentile of ascending values; NaN when there are none. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function formatSummary(result: LoadResult): string {
  const header = ['ENDPOINT', 'REQUESTS', 'STATUS', 'FAILED', 'P50 MS', 'P95 MS', 'MAX MS'];
  const rows = result.paths.map((path) => {
    const sorted = [...path.latenciesMs].sort((a, b) => a - b);
    const answered = sorted.length;
    const failed = [...path.failures.values()].reduce((a, b) => a + b, 0);
    const statuses = [...path.statuses.entries()]
      .sort(([a], [b]) => a - b)
      .map(([status, count]) => `${status}:${count}`)
      .join(' ');
    const failures = [...path.failures.entries()].map(([reason, count]) => `${reason}:${count}`).join(' ');
    return [
      path.path,
      String(answered + failed),
      statuses || '-',
      failed === 0 ? '0' : failures,
      ms(percentile(sorted, 50)),
      ms(percentile(sorted, 95)),
      ms(sorted.at(-1) ?? NaN),
    ];
  });
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => cell.padEnd(widths[column]!))
      .join('  ')
      .trimEnd();
  const sent = result.paths.reduce((sum, path) => sum + path.latenciesMs.length + [...path.failures.values()].reduce((a, b) => a + b, 0), 0);
  const seconds = result.elapsedMs / 1000;
  const rate = seconds > 0 ? (sent / seconds).toFixed(1) : '-';
  return [line(header), ...rows.map(line), '', `${sent} requests in ${seconds.toFixed(2)} s (${rate} req/s)`].join('\n');
}

function ms(value: number): string {
  return Number.isNaN(value) ? '-' : value.toFixed(1);
}

/** Whether every request got an HTTP answer (any status: /error's 500 is the expected answer). */
export function allAnswered(result: LoadResult): boolean {
  return result.paths.every((path) => path.failures.size === 0);
}
