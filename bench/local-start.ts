// npm run bench:start [-- --runs 3] [--ping-every 10s]
//
// `npm start`'s start-up as a user meets it: `npm start -- --ping-every <period> --data-dir <new dir>`
// run K times one after the other, each from the moment npm is spawned: when the local cluster is ready,
// when every Deployment, Job and Knative object is Ready (the URLs are printed), and when the first
// snapshot is stored; then Ctrl-C, and the time to stop. The first snapshot comes at the PingSource's first
// tick after its adapter runs (a uniformly random wait of up to one period) plus the export's settle, so
// each run also gives the bound that wait cannot exceed: Ready + one period + the run's own settle and
// store time (stored minus the tick). Prints a Markdown table and `name value` lines (medians, and the
// largest bound).
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { parseDuration } from '../archive/src/duration.js';
import { median } from './stats.js';

const usage = 'usage: npm run bench:start -- [--runs 3] [--ping-every 10s]';
const repoRoot = fileURLToPath(new URL('..', import.meta.url));

interface Run {
  load: number;
  clusterMs: number;
  readyMs: number;
  firstStoredMs: number;
  /** From the tick the first export is for to its being stored (the settle, the query, the write). */
  storeMs: number;
  boundMs: number;
  stopMs: number;
}

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '3' }, 'ping-every': { type: 'string', default: '10s' }, help: { type: 'boolean' } },
});
if (values.help) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}
const runs = Number(values.runs);
const periodMs = parseDuration(values['ping-every']) ?? NaN;
if (!Number.isInteger(runs) || runs < 1 || !(periodMs > 0)) {
  process.stderr.write(`${usage}\n`);
  process.exit(2);
}

/** One `npm start`, timed from its spawn; stopped with SIGINT once the first snapshot is stored. */
async function once(): Promise<Run> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'promsnap-bench-start-'));
  const load = os.loadavg()[0]!;
  const started = Date.now();
  // A process group of its own, as a terminal's foreground job: Ctrl-C signals the whole group (npm does
  // not pass a SIGINT sent to it alone on to the script).
  const child = spawn('npm', ['start', '--silent', '--', '--ping-every', values['ping-every'], '--data-dir', dataDir], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const seen: Record<string, number> = {};
  const output: string[] = [];
  let storedLine = '';
  const firstStored = new Promise<void>((resolve, reject) => {
    let partial = '';
    const onData = (chunk: Buffer) => {
      const parts = (partial + chunk.toString('utf8')).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) {
        output.push(line);
        const at = Date.now() - started;
        if (/^ {2}local cluster ready in /.test(line)) seen['cluster'] ??= at;
        if (/^ {2}every Deployment, Job and Knative object Ready /.test(line)) seen['ready'] ??= at;
        if (/^snapshot stored /.test(line) && seen['stored'] === undefined) {
          seen['stored'] = at;
          storedLine = line;
          resolve();
        }
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('close', (code) => reject(new Error(`npm start exited (${code}) before storing a snapshot:\n${output.slice(-30).join('\n')}`)));
  });
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  try {
    await firstStored;
  } finally {
    const stopping = Date.now();
    process.kill(-child.pid!, 'SIGINT');
    await exited;
    seen['stop'] = Date.now() - stopping;
    await rm(dataDir, { recursive: true, force: true });
  }
  // "(stored 10.5 s after its instant)": the tick's own time to storage.
  const storeMs = Math.round(Number(/\(stored ([\d.]+) s after its instant\)/.exec(storedLine)?.[1] ?? NaN) * 1000);
  return {
    load,
    clusterMs: seen['cluster']!,
    readyMs: seen['ready']!,
    firstStoredMs: seen['stored']!,
    storeMs,
    boundMs: seen['ready']! + periodMs + storeMs,
    stopMs: seen['stop'],
  };
}

const seconds = (ms: number) => (ms / 1000).toFixed(1);
const results: Run[] = [];
for (let i = 0; i < runs; i++) {
  const run = await once();
  results.push(run);
  process.stderr.write(`run ${i + 1}/${runs}: first snapshot stored ${seconds(run.firstStoredMs)} s after npm start (Ready ${seconds(run.readyMs)} s)\n`);
}

const lines = [
  `# npm start: start-up (${runs} runs, --ping-every ${values['ping-every']}, ${os.cpus().length} cores, ${os.cpus()[0]?.model ?? 'unknown CPU'})`,
  '',
  '| run | load (1 min) | cluster ready | everything Ready | first snapshot stored | tick to stored | at most (Ready + period + tick to stored) | Ctrl-C to exit |',
  '|---|---|---|---|---|---|---|---|',
  ...results.map(
    (r, i) =>
      `| ${i + 1} | ${r.load.toFixed(2)} | ${seconds(r.clusterMs)} s | ${seconds(r.readyMs)} s | ${seconds(r.firstStoredMs)} s | ${seconds(r.storeMs)} s | ${seconds(r.boundMs)} s | ${seconds(r.stopMs)} s |`,
  ),
  '',
  `start_cluster_ready_s ${seconds(median(results.map((r) => r.clusterMs)))}`,
  `start_everything_ready_s ${seconds(median(results.map((r) => r.readyMs)))}`,
  `start_first_snapshot_s ${seconds(median(results.map((r) => r.firstStoredMs)))}`,
  `start_first_snapshot_max_s ${seconds(Math.max(...results.map((r) => r.firstStoredMs)))}`,
  `start_first_snapshot_bound_max_s ${seconds(Math.max(...results.map((r) => r.boundMs)))}`,
  `start_stop_s ${seconds(median(results.map((r) => r.stopMs)))}`,
];
process.stdout.write(`${lines.join('\n')}\n`);
