// `npm start`: the whole promsnap pipeline on this machine, from the rendered manifests in platform/.
// Ctrl-C (or SIGTERM) stops everything in reverse start order and waits for each part to finish.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { renderPlatform } from '../manifests/index.js';
import { parseEvery } from './ping.js';
import { checkTools, DataDirBusyError, MissingToolsError, PortTakenError, startPipeline, type RunningPipeline } from './runner.js';
import { MissingToolError } from '../tools/find.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

const usage = `Usage: npm start -- [options]

Runs the promsnap pipeline locally from the manifests in platform/: MinIO (and the manifests' setup Job),
Prometheus with the manifests' scrape jobs and alert rules, the simulation and snapshot Knative Services
as local processes, and the PingSource schedule delivered through the Trigger's retry policy.

Options:
  --ping-every DURATION      fire the schedule every DURATION (10s, 1m) instead of the PingSource's cron
  --data-dir DIR             all state (MinIO data, Prometheus TSDB, logs); default .promsnap in the project
  --simulation-instances N   simulation processes; default the Knative Service's min-scale annotation
  --port-base PORT           listen on PORT and up, in start order (MinIO API and console, Prometheus,
                             discovery, simulation instances, snapshot); default free ports
  -h, --help                 this text`;

function fail(message: string, code = 1): never {
  process.stderr.write(`promsnap: ${message}\n`);
  process.exit(code);
}

function options() {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        'ping-every': { type: 'string' },
        'data-dir': { type: 'string' },
        'simulation-instances': { type: 'string' },
        'port-base': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    fail(`${(err as Error).message}\n\n${usage}`, 2);
  }
  if (parsed.help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  const whole = (name: string, text: string | undefined, min: number, max: number) => {
    if (text === undefined) return undefined;
    if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max)
      fail(`--${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`, 2);
    return Number(text);
  };
  let pingEveryMs: number | undefined;
  try {
    if (parsed['ping-every'] !== undefined) pingEveryMs = parseEvery(parsed['ping-every']);
  } catch (err) {
    fail((err as Error).message, 2);
  }
  return {
    pingEveryMs,
    dataDir: path.resolve(parsed['data-dir'] ?? path.join(repoRoot, '.promsnap')),
    simulationInstances: whole('simulation-instances', parsed['simulation-instances'], 1, 20),
    portBase: whole('port-base', parsed['port-base'], 1024, 65_000),
  };
}

const opts = options();
const print = (line: string) => process.stdout.write(`${line}\n`);
const started = Date.now();

try {
  checkTools();
} catch (err) {
  if (err instanceof MissingToolsError) fail(`cannot start: a tool is missing.\n${err.message}`);
  throw err;
}

const abort = new AbortController();
let pipeline: RunningPipeline | undefined;
let stopping: Promise<void> | undefined;
let signals = 0;
const onSignal = (signal: NodeJS.Signals) => {
  signals++;
  if (signals > 1) {
    // A second Ctrl-C: the first is already stopping everything; say so rather than leave half-stopped.
    print(`(${signal} again: still stopping, waiting for the parts that are finishing their work)`);
    return;
  }
  print(`\n${signal}: stopping`);
  abort.abort();
  if (pipeline) stopping = pipeline.stop();
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

print(`promsnap: local pipeline from ${path.join(repoRoot, 'platform')}, state in ${opts.dataDir}`);
try {
  // Missing *.env credentials are created (random values) before rendering, as on a fresh clone.
  const { objects } = await renderPlatform({ log: (line) => print(`  ${line}`) });
  print(`  rendered ${objects.length} objects (kubectl kustomize platform)`);
  pipeline = await startPipeline({
    repoRoot,
    objects,
    dataDir: opts.dataDir,
    print,
    signal: abort.signal,
    ...(opts.pingEveryMs !== undefined ? { pingEveryMs: opts.pingEveryMs } : {}),
    ...(opts.simulationInstances !== undefined ? { simulationInstances: opts.simulationInstances } : {}),
    ...(opts.portBase !== undefined ? { portBase: opts.portBase } : {}),
  });
} catch (err) {
  if (err instanceof PortTakenError || err instanceof MissingToolError || err instanceof DataDirBusyError) fail(`cannot start: ${err.message}`);
  if (abort.signal.aborted) {
    print('stopped during start-up');
    process.exit(130);
  }
  fail(`cannot start: ${(err as Error).message}`);
}

const { urls } = pipeline;
print('');
print(`Prometheus API   ${urls.prometheus}/api/v1/query?query=up`);
print(`Simulation       ${urls.simulation.join('  ')}`);
print(`Snapshot         ${urls.lastdata}`);
print(`MinIO console    ${urls.minioConsole}  (S3 API ${urls.minio})`);
print(`MinIO client     ${pipeline.mcAlias}`);
print(`                 mc ls --recursive promsnap/snapshots`);
print(`Logs             ${path.join(opts.dataDir, 'logs')}`);
print(`ready in ${((Date.now() - started) / 1_000).toFixed(1)} s; Ctrl-C stops everything`);
print('');

if (abort.signal.aborted) stopping ??= pipeline.stop();
const reason = await Promise.race([pipeline.failed, new Promise<undefined>((resolve) => abort.signal.addEventListener('abort', () => resolve(undefined)))]);
if (reason !== undefined) {
  process.stderr.write(`promsnap: ${reason}\n`);
  print('stopping everything');
  stopping ??= pipeline.stop();
}
await stopping;
print('stopped');
process.exit(reason === undefined ? 0 : 1);
