// Part 2, instrumentation overhead. The simulation service (compiled server.js, prom-client and its
// request-counting middleware) and the same Express app without them (bare-server.js) run side by
// side, and hey loads `/` on both *at the same time*, in several short rounds. On a machine shared
// with other work, throughput measured one after the other swings by 2x from second to second;
// loaded together, both servers meet the same neighbours at the same moment and get the same share
// of the cores, so the ratio of their throughputs is the ratio of the work each request costs them.
// The CPU time each server spends per request (from /proc) is reported beside it. Then the time
// prom-client takes to render /metrics for 1k and 10k label combinations.
import { freePort, startProcess, type ManagedProcess } from '../platform/local/processes.js';
import { runHey, type HeySummary } from '../platform/local/hey.js';
import { createMetrics } from '../functions/simulation/src/metrics.js';
import { cpuMs } from './procfs.js';
import { median } from './stats.js';

export interface InstrumentationOptions {
  node: string;
  simulationJs: string;
  bareJs: string;
  /** Rounds of simultaneous loads on both. */
  pairs: number;
  /** hey -z for each measured load. */
  duration: string;
  /** hey -c against each server. */
  concurrency: number;
  renderRepeats: number;
  log: (line: string) => void;
}

export interface LoadFigures {
  rps: number;
  p99Ms: number;
  /** Server CPU time (user + system) per request, in microseconds. */
  cpuUsPerRequest: number;
}

export interface RenderFigures {
  combinations: number;
  ms: number;
  bytes: number;
}

export interface InstrumentationFigures {
  instrumented: LoadFigures;
  bare: LoadFigures;
  /** Median over rounds of instrumented rps / bare rps. */
  rpsRatio: number;
  p99Ratio: number;
  /** Median over pairs of instrumented / bare CPU per request. */
  cpuRatio: number;
  pairs: number;
  renders: RenderFigures[];
}

interface Server {
  url: string;
  process: ManagedProcess;
}

interface Load {
  summary: HeySummary;
  cpuUsPerRequest: number;
}

async function startServer(name: string, node: string, js: string): Promise<Server> {
  const port = await freePort();
  const process_ = await startProcess({
    name,
    command: node,
    args: [js],
    env: { ...process.env, PORT: String(port), LOG_LEVEL: 'info' },
    readyUrl: `http://127.0.0.1:${port}/readyz`,
  });
  return { url: `http://127.0.0.1:${port}/`, process: process_ };
}

async function load(server: Server, duration: string, concurrency: number): Promise<Load> {
  const cpuBefore = await cpuMs(server.process.pid);
  const hey = await runHey({ url: server.url, duration, concurrency });
  const summary = await hey.done;
  const cpuUsed = (await cpuMs(server.process.pid)) - cpuBefore;
  const failed = Object.values(summary.errors).reduce((a, b) => a + b, 0);
  const ok = summary.statusCodes['200'] ?? 0;
  if (failed > 0 || ok === 0) throw new Error(`hey against ${server.url}: ${ok} OK, errors ${JSON.stringify(summary.errors)}`);
  return { summary, cpuUsPerRequest: (cpuUsed * 1000) / ok };
}

export async function benchInstrumentation(options: InstrumentationOptions): Promise<InstrumentationFigures> {
  const instrumented = await startServer('simulation', options.node, options.simulationJs);
  const bare = await startServer('bare', options.node, options.bareJs);
  try {
    // JIT warm-up for both, not measured.
    // JIT warm-up for both, not measured.
    await Promise.all([load(instrumented, '2s', options.concurrency), load(bare, '2s', options.concurrency)]);
    const pairs: Array<{ instrumented: Load; bare: Load }> = [];
    for (let run = 0; run < options.pairs; run++) {
      const [i, b] = await Promise.all([load(instrumented, options.duration, options.concurrency), load(bare, options.duration, options.concurrency)]);
      pairs.push({ instrumented: i, bare: b });
      const line = (l: Load) => `${l.summary.requestsPerSecond.toFixed(0)} rps ${l.cpuUsPerRequest.toFixed(1)} us CPU/req`;
      options.log(`  round ${run + 1} simulation ${line(i)}, bare ${line(b)}`);
    }
    const p99 = (l: Load) => (l.summary.percentiles['99'] ?? Number.NaN) * 1000;
    const rps = (l: Load) => l.summary.requestsPerSecond;
    const figures = (side: 'instrumented' | 'bare'): LoadFigures => ({
      rps: median(pairs.map((p) => rps(p[side]))),
      p99Ms: median(pairs.map((p) => p99(p[side]))),
      cpuUsPerRequest: median(pairs.map((p) => p[side].cpuUsPerRequest)),
    });
    return {
      instrumented: figures('instrumented'),
      bare: figures('bare'),
      rpsRatio: median(pairs.map((p) => rps(p.instrumented) / rps(p.bare))),
      p99Ratio: median(pairs.map((p) => p99(p.instrumented) / p99(p.bare))),
      cpuRatio: median(pairs.map((p) => p.instrumented.cpuUsPerRequest / p.bare.cpuUsPerRequest)),
      pairs: pairs.length,
      renders: [await render(1_000, options.renderRepeats), await render(10_000, options.renderRepeats)],
    };
  } finally {
    await Promise.all([instrumented.process.stop(), bare.process.stop()]);
  }
}

/**
 * Time for the simulation's registry (default metrics included) to render, with `combinations`
 * distinct label sets on each of its two request metrics: the histogram's 12 buckets make that
 * 15 lines per combination.
 */
export async function render(combinations: number, repeats: number): Promise<RenderFigures> {
  const metrics = createMetrics();
  for (let i = 0; i < combinations; i++) {
    const route = `/route-${i}`;
    metrics.requests.inc({ method: 'GET', route, statusCode: '200' });
    metrics.duration.observe({ method: 'GET', route, code: '200' }, i % 1000);
  }
  let bytes = 0;
  for (let i = 0; i < 3; i++) bytes = (await metrics.registry.metrics()).length;
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const start = performance.now();
    await metrics.registry.metrics();
    times.push(performance.now() - start);
  }
  metrics.registry.clear();
  return { combinations, ms: median(times), bytes };
}
