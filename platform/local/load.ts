// `npm run load`: HTTP load on the simulation with hey, so Prometheus, the alert rules and the
// snapshots have traffic to show. By default it reads where the running `npm start` put the simulation
// (<data-dir>/runner.json) and spreads the workers over its instances, as the Knative Service's
// routing would; --url sends everything to one URL instead (a ksvc URL, anything).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runHey, type HeyRun, type HeySummary } from '../tools/hey.js';
import { MissingToolError } from '../tools/find.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

const usage = `Usage: npm run load -- [options]

Sends HTTP load to the simulation with hey: by default to GET /simulate-requests on every instance of
the running \`npm start\`, the workers shared among them.

Options:
  -z, --duration DURATION   how long (hey -z): 10s, 1m, 1m30s; default 30s
  -c, --concurrency N       concurrent workers in all (hey -c); default 10
  -q, --rate N              requests per second per worker (hey -q); default unlimited
  --url URL                 load this URL instead of the local simulation
  --path PATH               path on the local simulation; default /simulate-requests
  --data-dir DIR            the data dir \`npm start\` was given; default .promsnap in the project
  -h, --help                this text`;

function fail(message: string, code = 1): never {
  process.stderr.write(`promsnap load: ${message}\n`);
  process.exit(code);
}

function parse() {
  try {
    return parseArgs({
      options: {
        duration: { type: 'string', short: 'z', default: '30s' },
        concurrency: { type: 'string', short: 'c', default: '10' },
        rate: { type: 'string', short: 'q' },
        url: { type: 'string' },
        path: { type: 'string', default: '/simulate-requests' },
        'data-dir': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }).values;
  } catch (err) {
    fail(`${(err as Error).message}\n\n${usage}`, 2);
  }
}
const values = parse();
if (values.help) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}
const concurrency = Number(values.concurrency);
if (!Number.isInteger(concurrency) || concurrency < 1) fail(`--concurrency must be a whole number of 1 or more, got ${values.concurrency}`, 2);
const rate = values.rate === undefined ? undefined : Number(values.rate);
if (rate !== undefined && !(rate > 0)) fail(`--rate must be a positive number, got ${values.rate}`, 2);

async function localTargets(): Promise<string[]> {
  const dataDir = path.resolve(values['data-dir'] ?? path.join(repoRoot, '.promsnap'));
  const file = path.join(dataDir, 'runner.json');
  let state: { pid: number; urls?: { simulation: string[] } };
  try {
    state = JSON.parse(await readFile(file, 'utf8')) as typeof state;
  } catch {
    fail(`no running local pipeline found (${file} is missing): start it with \`npm start\`, or give --url`);
  }
  try {
    process.kill(state.pid, 0);
  } catch {
    fail(`the local pipeline that wrote ${file} (pid ${state.pid}) is not running: start it with \`npm start\`, or give --url`);
  }
  if (!state.urls) fail(`the local pipeline (pid ${state.pid}) is still starting: try again when it prints "ready"`);
  if (state.urls.simulation.length === 0) fail(`${file} lists no simulation instance`);
  return state.urls.simulation.map((base) => new URL(values.path, base).toString());
}

const instances = values.url ? [values.url] : await localTargets();
// Workers shared out as evenly as they go, -c in all: with fewer workers than instances, the instances
// past the -c-th get none (hey needs at least one worker, so they are left out, and the line says so).
const shares = instances.map((_, i) => Math.floor(concurrency / instances.length) + (i < concurrency % instances.length ? 1 : 0));
const targets = instances.filter((_, i) => shares[i]! > 0);
const idle = instances.length - targets.length;
process.stdout.write(
  `hey -z ${values.duration} against ${targets.map((t, i) => `${t} (${shares[i]} workers)`).join(', ')}` +
    `${idle > 0 ? `; ${idle} more instance${idle > 1 ? 's' : ''} left idle: only ${concurrency} workers (-c)` : ''}\n`,
);

const runs: HeyRun[] = [];
let interrupted = false;
process.on('SIGINT', () => {
  interrupted = true;
  for (const run of runs) void run.stop();
});
process.on('SIGTERM', () => {
  interrupted = true;
  for (const run of runs) void run.stop();
});

let summaries: HeySummary[];
try {
  for (const [i, url] of targets.entries()) {
    runs.push(await runHey({ url, duration: values.duration, concurrency: shares[i]!, ...(rate !== undefined ? { rate } : {}) }));
  }
  summaries = await Promise.all(runs.map((r) => r.done));
} catch (err) {
  for (const run of runs) await run.stop();
  if (err instanceof MissingToolError) fail(err.message);
  fail((err as Error).message);
}

const statuses: Record<string, number> = {};
const errors: Record<string, number> = {};
for (const s of summaries) {
  for (const [code, n] of Object.entries(s.statusCodes)) statuses[code] = (statuses[code] ?? 0) + n;
  for (const [text, n] of Object.entries(s.errors)) errors[text] = (errors[text] ?? 0) + n;
}
const total = Object.values(statuses).reduce((a, b) => a + b, 0);
// Responses per second: hey's own Requests/sec also counts failed connections.
const seconds = Math.max(...summaries.map((s) => s.totalSeconds));
const rps = seconds > 0 ? total / seconds : 0;
const p95 = Math.max(...summaries.map((s) => s.percentiles['95'] ?? 0));
process.stdout.write(
  `${interrupted ? 'interrupted: ' : ''}${total} responses, ${rps.toFixed(1)} req/s, p95 ${(p95 * 1_000).toFixed(0)} ms; ` +
    `by status: ${
      Object.entries(statuses)
        .map(([c, n]) => `${c}: ${n}`)
        .join(', ') || 'none'
    }\n`,
);
for (const [text, n] of Object.entries(errors)) process.stdout.write(`  ${n} errors: ${text}\n`);
process.exit(total > 0 ? 0 : 1);
