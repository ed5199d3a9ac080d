// Part 2, instrumentation overhead. The simulation service (compiled server.js, prom-client and its
// request counting) and the same Express app without them (bare-server.js) are loaded by hey on `/`,
// in several rounds, one server at a time. Where taskset and two CPUs are at hand, the servers are
// pinned to one CPU and hey to another: sharing cores with the load generator makes the figure depend
// on how the scheduler interleaves the busy processes, and it moved by several percent between runs.
// The CPU time each server spends per request (from /proc) is reported beside the throughput. Then
// the time prom-client takes to render /metrics for 1k and 10k label combinations.
import { findTool } from '../platform/tools/find.js';
import { freePort } from '../platform/tools/ports.js';
import { startProcess, type ManagedProcess } from '../platform/tools/process.js';
import { runHey, type HeySummary } from '../platform/tools/hey.js';
import { createMetrics } from '../functions/simulation/src/metrics.js';
import { allowedCpus, cpuMs } from './procfs.js';
import { median } from './stats.js';

export interface InstrumentationOptions {
  node: string;
  simulationJs: string;
  bareJs: string;
  /** Rounds, each with a fresh pair of processes loaded one after the other. */
  rounds: number;
  /** hey -z for each measured load. */
  duration: string;
  /** hey -z for each load that only warms a fresh process up. */
  warmup: string;
  /** hey -c against each server. */
  concurrency: number;
  renderRepeats: number;
  /** The simulation image's environment, for both servers. */
  env: Record<string, string>;
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
  /** Lowest and highest per-round ratio: how far one round can be from the median. */
  rpsRatioRange: [number, number];
  p99Ratio: number;
  /** Median over rounds of instrumented / bare CPU per request. */
  cpuRatio: number;
  rounds: number;
  /** Where the servers and hey ran, for the report. */
  placement: string;
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

/** CPUs for the server under load and for hey, or undefined where they cannot be kept apart. */
interface Placement {
  server: number;
  hey: number;
}

/**
 * The last two CPUs this process may run on, or undefined where there are not two or taskset is
 * missing: the servers and hey then run unpinned.
 */
async function choosePlacement(): Promise<Placement | undefined> {
  try {
    findTool('taskset');
  } catch {
    return undefined;
  }
  const cpus = await allowedCpus();
  if (cpus.length < 2) return undefined;
  return { server: cpus.at(-2)!, hey: cpus.at(-1)! };
}

async function startServer(name: string, node: string, js: string, env: Record<string, string>, placement: Placement | undefined): Promise<Server> {
  const port = await freePort();
  // Started through taskset, so every thread the server ever has is on its CPU from the first.
  const command = placement ? { command: findTool('taskset'), args: ['-c', String(placement.server), node, js] } : { command: node, args: [js] };
  const process_ = await startProcess({
    name,
    ...command,
    env: { ...process.env, ...env, PORT: String(port), LOG_LEVEL: 'info' },
    readyUrl: `http://127.0.0.1:${port}/readyz`,
  });
  return { url: `http://127.0.0.1:${port}/`, process: process_ };
}

async function load(server: Server, duration: string, concurrency: number, placement: Placement | undefined): Promise<Load> {
  const cpuBefore = await cpuMs(server.process.pid);
  const hey = await runHey({ url: server.url, duration, concurrency, ...(placement ? { cpu: placement.hey } : {}) });
  const summary = await hey.done;
  const cpuUsed = (await cpuMs(server.process.pid)) - cpuBefore;
  const failed = Object.values(summary.errors).reduce((a, b) => a + b, 0);
  const ok = summary.statusCodes['200'] ?? 0;
  if (failed > 0 || ok === 0) throw new Error(`hey against ${server.url}: ${ok} OK, errors ${JSON.stringify(summary.errors)}`);
  return { summary, cpuUsPerRequest: (cpuUsed * 1000) / ok };
}

export async function benchInstrumentation(options: InstrumentationOptions): Promise<InstrumentationFigures> {
  const placement = await choosePlacement();
  const rounds: Array<{ instrumented: Load; bare: Load }> = [];
  for (let run = 0; run < options.rounds; run++) {
    // Fresh processes every round: how fast one Node process serves depends on where its heap and JIT
    // code landed, which lasts as long as the process and differs by a few percent between processes.
    const instrumented = await startServer('simulation', options.node, options.simulationJs, options.env, placement);
    const bare = await startServer('bare', options.node, options.bareJs, options.env, placement).catch(async (err: unknown) => {
      await instrumented.process.stop();
      throw err;
    });
    try {
      // Which one goes first alternates, so a trend in the machine's speed favours neither.
      const order = run % 2 === 0 ? [instrumented, bare] : [bare, instrumented];
      for (const server of order) await load(server, options.warmup, options.concurrency, placement); // JIT warm-up
      const measured = new Map<Server, Load>();
      for (const server of order) measured.set(server, await load(server, options.duration, options.concurrency, placement));
      const round = { instrumented: measured.get(instrumented)!, bare: measured.get(bare)! };
      rounds.push(round);
      const line = (l: Load) => `${l.summary.requestsPerSecond.toFixed(0)} rps ${l.cpuUsPerRequest.toFixed(1)} us CPU/req`;
      options.log(`  round ${run + 1} simulation ${line(round.instrumented)}, bare ${line(round.bare)}`);
    } finally {
      await Promise.all([instrumented.process.stop(), bare.process.stop()]);
    }
  }
  const p99 = (l: Load) => (l.summary.percentiles['99'] ?? Number.NaN) * 1000;
  const rps = (l: Load) => l.summary.requestsPerSecond;
  const figures = (side: 'instrumented' | 'bare'): LoadFigures => ({
    rps: median(rounds.map((p) => rps(p[side]))),
    p99Ms: median(rounds.map((p) => p99(p[side]))),
    cpuUsPerRequest: median(rounds.map((p) => p[side].cpuUsPerRequest)),
  });
  const ratios = rounds.map((p) => rps(p.instrumented) / rps(p.bare));
  return {
    instrumented: figures('instrumented'),
    bare: figures('bare'),
    rpsRatio: median(ratios),
    rpsRatioRange: [Math.min(...ratios), Math.max(...ratios)],
    p99Ratio: median(rounds.map((p) => p99(p.instrumented) / p99(p.bare))),
    cpuRatio: median(rounds.map((p) => p.instrumented.cpuUsPerRequest / p.bare.cpuUsPerRequest)),
    rounds: rounds.length,
    placement: placement
      ? `servers pinned to CPU ${placement.server}, hey to CPU ${placement.hey}`
      : 'server and hey unpinned (fewer than two CPUs, or no taskset)',
    renders: [await render(1_000, options.renderRepeats), await render(10_000, options.renderRepeats)],
  };
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
