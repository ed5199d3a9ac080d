// Starts the simulation app in this process on an ephemeral loopback port, with a fresh Registry, the
// real serve() lifecycle and a logger whose lines the test can read; stopped when the test ends.
import type { TestContext } from 'node:test';
import { serve, type Lifecycle } from '../../runtime/src/lifecycle.js';
import { createLogger } from '../../runtime/src/logger.js';
import { parseExposition, type Sample } from '../../../platform/testing/exposition.js';
import { createApp, type AppDeps } from '../src/app.js';
import { createMetrics, type SimulationMetrics } from '../src/metrics.js';

export interface RunningSimulation {
  url: string;
  port: number;
  metrics: SimulationMetrics;
  lifecycle: Lifecycle;
  /** Every log record the app wrote, parsed. */
  logs: Array<Record<string, unknown>>;
  /** GETs /metrics and parses it (the scrape itself is counted once it has finished). */
  scrape(): Promise<Sample[]>;
}

export async function startSimulation(t: TestContext, deps: Partial<AppDeps> = {}): Promise<RunningSimulation> {
  const logs: Array<Record<string, unknown>> = [];
  const log = createLogger({ level: 'debug', write: (line) => logs.push(JSON.parse(line) as Record<string, unknown>) });
  const metrics = deps.metrics ?? createMetrics();
  let lifecycle: Lifecycle | undefined;
  const app = createApp({
    metrics,
    log,
    latency: { minMs: 0, maxMs: 0 },
    ready: () => lifecycle?.accepting ?? false,
    ...deps,
  });
  lifecycle = await serve(app, { port: 0, host: '127.0.0.1', log, shutdownGraceMs: 5_000, exitOnSignal: false });
  const running = lifecycle;
  t.after(() => running.shutdown('test finished'));
  const url = `http://127.0.0.1:${running.port}`;
  return {
    url,
    port: running.port,
    metrics,
    lifecycle: running,
    logs,
    async scrape() {
      const res = await fetch(`${url}/metrics`);
      if (!res.ok) throw new Error(`/metrics answered ${res.status}`);
      return parseExposition(await res.text());
    },
  };
}

/** GETs url+path and returns the status, reading the body so the request is complete. */
export async function get(url: string, path: string, init: RequestInit = {}): Promise<number> {
  const res = await fetch(url + path, init);
  await res.arrayBuffer();
  return res.status;
}
