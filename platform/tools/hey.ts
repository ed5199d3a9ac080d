// Load against the simulation with hey (rakyll/hey), shared by `npm run load` (local runner) and
// `npm run cluster -- load` (a ksvc URL): one place that knows hey's flags and reads its summary.
import { findSystemTool, findTool } from './find.js';
import { startProcess } from './process.js';

export interface HeyOptions {
  url: string;
  /** hey -z: how long to send, as hey reads it (10s, 1m). */
  duration: string;
  /** hey -c: concurrent workers. */
  concurrency: number;
  /** hey -q: requests per second per worker; unlimited when undefined. */
  rate?: number;
  /** hey -host: a Host header, for a ksvc reached through an ingress IP. */
  host?: string;
  /** Every line hey prints, as it prints it. */
  onLine?: (line: string) => void;
  /** Starts hey bound to this CPU (taskset -c), threads and all: a benchmark keeps it off the server's. */
  cpu?: number;
}

export interface HeySummary {
  totalSeconds: number;
  requestsPerSecond: number;
  averageSeconds: number | undefined;
  slowestSeconds: number | undefined;
  /** Responses by HTTP status. */
  statusCodes: Record<string, number>;
  /** Failed requests by hey's error text (connection refused, timeouts). */
  errors: Record<string, number>;
  /** Latency percentiles in seconds, keyed like hey prints them ("50", "95", "99"). */
  percentiles: Record<string, number>;
}

/** hey's duration syntax (a Go duration): one or more number+unit pairs. */
export function isHeyDuration(text: string): boolean {
  return /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(text);
}

/** The arguments hey is run with. */
export function heyArgs(options: HeyOptions): string[] {
  if (!isHeyDuration(options.duration)) throw new Error(`duration ${JSON.stringify(options.duration)} is not like 10s, 1m or 1m30s`);
  if (!Number.isInteger(options.concurrency) || options.concurrency < 1) {
    throw new Error(`concurrency must be a whole number of 1 or more, got ${options.concurrency}`);
  }
  const url = new URL(options.url); // throws on a malformed URL before hey is started
  const args = ['-z', options.duration, '-c', String(options.concurrency)];
  if (options.rate !== undefined) args.push('-q', String(options.rate));
  if (options.host !== undefined) args.push('-host', options.host);
  args.push(url.toString());
  return args;
}

/** Reads the summary hey prints at the end of a run. */
export function parseHeySummary(output: string): HeySummary {
  const seconds = (label: string) => {
    const match = new RegExp(`^\\s*${label}:\\s*([0-9.]+|NaN) secs`, 'm').exec(output);
    return match && match[1] !== 'NaN' ? Number(match[1]) : undefined;
  };
  const rps = /^\s*Requests\/sec:\s*([0-9.]+)/m.exec(output);
  const section = (title: string) => {
    const start = output.indexOf(`${title}:`);
    if (start < 0) return [];
    const lines = output.slice(start + title.length + 1).split('\n');
    const body: string[] = [];
    for (const line of lines.slice(1)) {
      if (line.trim() === '') {
        if (body.length > 0) break;
        continue;
      }
      if (/^\S/.test(line)) break; // the next section's title
      body.push(line.trim());
    }
    return body;
  };
  const statusCodes: Record<string, number> = {};
  for (const line of section('Status code distribution')) {
    const match = /^\[(\d+)\]\s+(\d+) responses/.exec(line);
    if (match) statusCodes[match[1]!] = Number(match[2]);
  }
  const errors: Record<string, number> = {};
  for (const line of section('Error distribution')) {
    const match = /^\[(\d+)\]\s+(.*)$/.exec(line);
    if (match) errors[match[2]!] = Number(match[1]);
  }
  const percentiles: Record<string, number> = {};
  for (const line of section('Latency distribution')) {
    const match = /^(\d+)%\s+in\s+([0-9.]+)\s+secs/.exec(line);
    if (match) percentiles[match[1]!] = Number(match[2]);
  }
  return {
    totalSeconds: seconds('Total') ?? 0,
    requestsPerSecond: rps ? Number(rps[1]) : 0,
    averageSeconds: seconds('Average'),
    slowestSeconds: seconds('Slowest'),
    statusCodes,
    errors,
    percentiles,
  };
}

export interface HeyRun {
  /** hey's process id (its own process group), so a caller can stop it. */
  pid: number;
  stop(): Promise<void>;
  /** Resolves with the summary once hey exits; rejects when hey fails. */
  done: Promise<HeySummary>;
}

/** Starts hey; a missing hey is a MissingToolError naming the install command. */
export async function runHey(options: HeyOptions): Promise<HeyRun> {
  const binary = findTool('hey');
  const args = heyArgs(options);
  const lines: string[] = [];
  const child = await startProcess({
    name: 'hey',
    ...(options.cpu === undefined ? { command: binary, args } : { command: findSystemTool('taskset'), args: ['-c', String(options.cpu), binary, ...args] }),
    onLine: (line) => {
      lines.push(line);
      options.onLine?.(line);
    },
  });
  const done = child.exited.then((code) => {
    const output = lines.join('\n');
    if (code !== 0) throw new Error(`hey ${args.join(' ')} exited with ${code}:\n${child.recentOutput()}`);
    return parseHeySummary(output);
  });
  return {
    pid: child.pid,
    stop: async () => {
      // hey prints its summary on SIGINT, as on Ctrl-C in a terminal.
      await child.stop('SIGINT', 5_000);
    },
    done,
  };
}
