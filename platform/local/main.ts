// `npm start`: promsnap on a local Kubernetes cluster whose pods really run (platform/localcluster), with
// platform/ applied to it as a user would (`kubectl apply -k` of an overlay in the data dir). Ctrl-C (or
// SIGTERM) lets an in-flight snapshot finish, then stops everything; nothing is left behind.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SandboxUnavailableError } from '../localcluster/index.js';
import { MissingToolError } from '../tools/find.js';
import { everyMs, everyToCron } from './overlay.js';
import { banner } from './print.js';
import { DataDirBusyError, PortTakenError, startLocal, type RunningLocal } from './start.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const defaultDataDir = path.join(repoRoot, '.promsnap');

const usage = `Usage: npm start -- [options]

Starts a local Kubernetes cluster (API server, controller manager, a node that runs pods as processes,
Knative Serving and Eventing) and applies platform/ to it with kubectl, as on any cluster: Prometheus,
kube-state-metrics, MinIO and its setup Job, the simulation and snapshot Knative Services, and the
PingSource -> Broker -> Trigger schedule. Prints every URL and the commands to use them.

Options:
  --ping-every DURATION      fire the PingSource every DURATION (5s, 10s, 1m, 1h: a divisor of a minute,
                             hour or day) instead of the manifest's cron; each range export then
                             covers that period (SNAPSHOT_RANGE)
  --data-dir DIR             kept between runs: MinIO's bucket and Prometheus's TSDB (volumes/), the
                             overlay, logs; default .promsnap in the project
  --simulation-instances N   the simulation's autoscaling.knative.dev/min-scale (1 to its max-scale)
  --port-base PORT           host ports from PORT up: API server, ingress, Prometheus, MinIO API, MinIO
                             console, in-cluster ingress; default free ports
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
  let schedule: string | undefined;
  let pingEveryMs: number | undefined;
  try {
    if (parsed['ping-every'] !== undefined) {
      schedule = everyToCron(parsed['ping-every']);
      pingEveryMs = everyMs(parsed['ping-every']);
    }
  } catch (err) {
    fail((err as Error).message, 2);
  }
  return {
    schedule,
    pingEvery: parsed['ping-every'],
    pingEveryMs,
    dataDir: path.resolve(parsed['data-dir'] ?? defaultDataDir),
    simulationInstances: whole('simulation-instances', parsed['simulation-instances'], 1, 100),
    portBase: whole('port-base', parsed['port-base'], 1024, 65_000),
  };
}

const opts = options();
const print = (line: string) => process.stdout.write(`${line}\n`);

const abort = new AbortController();
let running: RunningLocal | undefined;
let stopping: Promise<void> | undefined;
let signals = 0;
const onSignal = (signal: NodeJS.Signals) => {
  signals++;
  if (signals > 1) {
    print(`(${signal} again: still stopping; the cluster goes as soon as in-flight work is done)`);
    return;
  }
  print(`\n${signal}: stopping`);
  abort.abort();
  if (running) stopping = running.stop();
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

print(`promsnap: a local cluster running ${path.join(repoRoot, 'platform')}, data in ${opts.dataDir}`);
try {
  running = await startLocal({
    repoRoot,
    dataDir: opts.dataDir,
    print,
    signal: abort.signal,
    ...(opts.schedule !== undefined ? { schedule: opts.schedule } : {}),
    ...(opts.pingEveryMs !== undefined ? { pingEveryMs: opts.pingEveryMs } : {}),
    ...(opts.simulationInstances !== undefined ? { simulationMinScale: opts.simulationInstances } : {}),
    ...(opts.portBase !== undefined ? { portBase: opts.portBase } : {}),
  });
} catch (err) {
  if (abort.signal.aborted) {
    print('stopped during start-up');
    process.exit(130);
  }
  const known = err instanceof PortTakenError || err instanceof MissingToolError || err instanceof DataDirBusyError || err instanceof SandboxUnavailableError;
  if (!known && process.env['PROMSNAP_DEBUG']) console.error(err);
  fail(`cannot start: ${(err as Error).message}`);
}

print('');
for (const line of banner({
  urls: running.urls,
  kubeconfig: running.kubeconfig,
  dockerHost: running.dockerHost,
  dataDir: opts.dataDir,
  defaultDataDir: opts.dataDir === defaultDataDir,
  mcUser: running.mcUser,
  bucket: running.bucket,
  schedule: opts.pingEvery ? `every ${opts.pingEvery} ("${opts.schedule}", --ping-every)` : "on the PingSource's own schedule",
  logFile: running.logFile,
  stateDir: running.stateDir,
  startupMs: running.startupMs,
})) {
  print(line);
}
print('');

if (abort.signal.aborted) stopping ??= running.stop();
const reason = await Promise.race([running.failed, new Promise<undefined>((resolve) => abort.signal.addEventListener('abort', () => resolve(undefined)))]);
if (reason !== undefined) {
  process.stderr.write(`promsnap: ${reason}\n`);
  print('stopping everything');
  stopping ??= running.stop();
}
await stopping;
print('stopped');
process.exit(reason === undefined ? 0 : 1);
