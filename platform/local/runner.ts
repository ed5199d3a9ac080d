// The whole pipeline on one machine, started from the rendered manifests: MinIO (and the manifests'
// setup Job run against it), Prometheus with the manifests' configuration and rules, the Knative
// Services' pods as local Node processes, and the PingSource/Trigger as a local ping emitter. Each
// step waits for readiness; stop() undoes them in reverse order.
import { formatDuration, parseDuration } from '../../archive/src/duration.js';
import { existsSync, readFileSync } from 'node:fs';
import { appendFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import { LocalNetwork } from './addresses.js';
import { serveDiscovery, type DiscoveryServer } from './discovery.js';
import { pingRoutes, type PingRoute } from './eventing.js';
import { runJob } from './jobs.js';
import { startMinio, type RunningMinio } from '../tools/minio.js';
import { startPingEmitter, type DeliveryReport, type PingEmitter } from './ping.js';
import { field, prometheusSetup, type KubeObject as ManifestObject, type PrometheusYml } from '../manifests/index.js';
import { containerEnv } from './pod-env.js';
import { findTool, MissingToolError } from '../tools/find.js';
import { freePort, portInUse } from '../tools/ports.js';
import { isAlive, startProcess, stopGroups, type ManagedProcess } from '../tools/process.js';
import { startPrometheus, type RunningPrometheus } from '../tools/prometheus.js';
import { localScrapeConfig, type LeftOut } from './scrape-config.js';
import { localPod, podTemplateOf, runsPods, type KubeObject, type LocalPod, type PodTemplate } from './workloads.js';

export interface RunnerOptions {
  repoRoot: string;
  /** Rendered manifests (`kubectl kustomize platform`). */
  objects: KubeObject[];
  dataDir: string;
  /** Fire the pings this often instead of on the PingSource's schedule. */
  pingEveryMs?: number;
  /** Instances of the simulation Knative Service; default its min-scale annotation. */
  simulationInstances?: number;
  /** Ports from here up, in start order; free ports when undefined. */
  portBase?: number;
  /** Human-readable progress and events, one line each. */
  print: (line: string) => void;
  /** Aborts start-up between steps (Ctrl-C while starting); what started is stopped. */
  signal?: AbortSignal;
}

/** Tools the local pipeline runs (kubectl renders the manifests), checked before anything starts. */
export const requiredTools = ['kubectl', 'prometheus', 'minio', 'mc', 'hey'] as const;

/** Every missing tool, each with its install command, in one error. */
export class MissingToolsError extends Error {
  constructor(readonly missing: MissingToolError[]) {
    super(missing.map((m) => m.message).join('\n'));
    this.name = 'MissingToolsError';
  }
}

export class PortTakenError extends Error {
  constructor(
    readonly port: number,
    readonly what: string,
  ) {
    super(`port ${port} (${what}) is already in use on 127.0.0.1: stop what listens there, or pick other ports with --port-base`);
    this.name = 'PortTakenError';
  }
}

export function checkTools(searchPath = process.env['PATH'] ?? ''): void {
  const missing: MissingToolError[] = [];
  for (const tool of requiredTools) {
    try {
      findTool(tool, searchPath);
    } catch (err) {
      if (err instanceof MissingToolError) missing.push(err);
      else throw err;
    }
  }
  if (missing.length > 0) throw new MissingToolsError(missing);
}

/** What runs a workload's pods locally. */
type StandIn = { kind: 'prometheus' } | { kind: 'minio' } | { kind: 'function'; entry: string } | { kind: 'none'; reason: string };

function standInFor(template: PodTemplate, repoRoot: string): StandIn {
  const image = template.containers.find((c) => !c.init)?.image ?? '';
  const repository = image.replace(/@.*$/, '').replace(/:[^/:]*$/, '');
  if (repository.endsWith('/prometheus/prometheus')) return { kind: 'prometheus' };
  if (repository.endsWith('/minio/minio')) return { kind: 'minio' };
  if (template.source.kind === 'Service' && /^[a-z0-9-]+$/.test(repository)) {
    // A bare image name is a Skaffold artifact built from functions/<name> (skaffold.yaml).
    const entry = path.join(repoRoot, 'functions', repository, 'src', 'server.ts');
    if (existsSync(entry)) return { kind: 'function', entry };
    return { kind: 'none', reason: `image ${image}: no ${path.relative(repoRoot, entry)}` };
  }
  return { kind: 'none', reason: `image ${image} has no local stand-in` };
}

interface Workload {
  template: PodTemplate;
  standIn: StandIn;
  pods: LocalPod[];
  state: Map<LocalPod, { running: boolean; ready: boolean }>;
}

export interface Component {
  name: string;
  /** Process ids of the component's processes (each leads its own process group). */
  pids: number[];
}

export interface RunningPipeline {
  urls: {
    prometheus: string;
    minio: string;
    minioConsole: string;
    simulation: string[];
    snapshot: string;
    lastdata: string;
  };
  /** `mc alias set promsnap ...` for the local MinIO's root user. */
  mcAlias: string;
  components(): Component[];
  leftOut: LeftOut[];
  startupMs: number;
  /** Resolves with a reason when a component exits on its own (the runner should then stop). */
  failed: Promise<string>;
  stop(): Promise<void>;
}

const seconds = (ms: number) => `${(ms / 1_000).toFixed(1)} s`;

/** Port numbers in start order from --port-base, or free ones; a taken port is reported, not crashed on. */
class Ports {
  private next: number | undefined;
  constructor(base: number | undefined) {
    this.next = base;
  }
  async take(what: string): Promise<number> {
    if (this.next === undefined) return freePort();
    const port = this.next++;
    if (port > 65_535) throw new Error(`--port-base leaves no port for ${what} (past 65535)`);
    if (await portInUse(port)) throw new PortTakenError(port, what);
    return port;
  }
}

export async function startPipeline(options: RunnerOptions): Promise<RunningPipeline> {
  const started = Date.now();
  const { objects, print } = options;
  const dataDir = path.resolve(options.dataDir);
  const logDir = path.join(dataDir, 'logs');
  await mkdir(logDir, { recursive: true });
  const ports = new Ports(options.portBase);
  const stack: Array<{ name: string; stop: () => Promise<unknown> }> = [];
  const processes: Array<{ name: string; process: ManagedProcess }> = [];
  let stopping = false;
  let failedWith: (reason: string) => void = () => {};
  const failed = new Promise<string>((resolve) => (failedWith = resolve));
  const checkAborted = () => {
    if (options.signal?.aborted) throw new Error('start-up interrupted');
  };

  const logTo = (name: string) => {
    const file = path.join(logDir, `${name}.log`);
    return (line: string) => void appendFile(file, line + '\n').catch(() => undefined);
  };
  const watch = (name: string, process: ManagedProcess) => {
    processes.push({ name, process });
    // Queued behind earlier writes, which never reject; stop() waits for the queue.
    void recordState();
    void process.exited.then((code) => {
      if (!stopping) failedWith(`${name} exited (${code}) on its own; its last lines:\n${process.recentOutput()}`);
    });
  };

  let stopped: Promise<void> | undefined;
  // Once, however often asked (Ctrl-C and a failing component may both ask).
  const stop = () =>
    (stopped ??= (async () => {
      stopping = true;
      for (const { name, stop: undo } of stack.reverse()) {
        const t0 = Date.now();
        try {
          await undo();
          print(`  stopped ${name} (${seconds(Date.now() - t0)})`);
        } catch (err) {
          print(`  ${name} did not stop cleanly: ${(err as Error).message}`);
        }
      }
      await writing;
      await rm(stateFile, { force: true });
    })());

  // One runner per data dir: MinIO's data and Prometheus's TSDB take one writer each.
  const stateFile = path.join(dataDir, 'runner.json');
  await claimDataDir(stateFile, dataDir, print);
  // The state file lists every process as it starts, so a runner killed outright (kill -9, no chance
  // to stop its children) leaves enough behind for the next one to stop them.
  let state: RunnerState = { pid: process.pid, state: 'starting', components: [] };
  let writing = Promise.resolve();
  const recordState = (update: Partial<RunnerState> = {}) => {
    state = { ...state, ...update, components: processes.map(({ name, process }) => ({ name, pid: process.pid })) };
    const text = JSON.stringify(state, null, 2) + '\n';
    writing = writing.then(() => (stopping ? undefined : writeFile(stateFile, text))).catch(() => undefined);
    return writing;
  };

  try {
    // The pods a cluster would run, and what stands in for each here.
    const workloads: Workload[] = objects.filter(runsPods).map((object) => {
      const template = podTemplateOf(object);
      return { template, standIn: standInFor(template, options.repoRoot), pods: [], state: new Map() };
    });
    for (const w of workloads.filter((w) => w.standIn.kind === 'none')) {
      print(`  not run locally: ${w.template.source.kind} ${w.template.namespace}/${w.template.source.name} (${(w.standIn as { reason: string }).reason})`);
    }
    const byKind = (kind: StandIn['kind']) => workloads.filter((w) => w.standIn.kind === kind);
    const single = (kind: 'prometheus' | 'minio') => {
      const found = byKind(kind);
      if (found.length !== 1) throw new Error(`the manifests must run exactly one ${kind}; found ${found.length}`);
      return found[0]!;
    };
    const minioWorkload = single('minio');
    const prometheusWorkload = single('prometheus');
    const functions = byKind('function');
    const simulation = functions.find((w) => w.template.source.name === 'simulation');
    if (options.simulationInstances !== undefined) {
      if (!simulation) throw new Error('--simulation-instances: the manifests have no Knative Service named simulation');
      simulation.template.replicas = options.simulationInstances;
    }
    // Start order: MinIO, Prometheus, the simulation, the other functions (the snapshot function).
    const ordered = [minioWorkload, prometheusWorkload, ...(simulation ? [simulation] : []), ...functions.filter((w) => w !== simulation)];

    // Ports for every pod, in start order, before anything starts: discovery announces them all.
    let discoveryPort = 0;
    for (const w of ordered) {
      for (let i = 0; i < (w.standIn.kind === 'function' ? w.template.replicas : 1); i++) {
        const map = new Map<number, number>();
        for (const c of w.template.containers.filter((c) => !c.init)) {
          for (const p of c.ports) {
            const what = `${w.template.source.name}'s ${p.name ? `${p.name} ` : ''}port, ${p.containerPort} in the manifest`;
            map.set(p.containerPort, await ports.take(what));
          }
        }
        const state = { running: false, ready: false };
        const pod = localPod(w.template, i, '127.0.0.1', map, { running: () => state.running, ready: () => state.ready });
        w.pods.push(pod);
        w.state.set(pod, state);
      }
      if (w === prometheusWorkload) discoveryPort = await ports.take('service discovery for Prometheus');
    }
    const allPods = ordered.flatMap((w) => w.pods);
    const network = new LocalNetwork(allPods, objects);
    const mark = (w: Workload, pod: LocalPod, state: 'running' | 'ready') => {
      const s = w.state.get(pod)!;
      s.running = true;
      if (state === 'ready') s.ready = true;
    };

    // MinIO, its data under the data dir, its environment from the manifest (root user from the Secret).
    const minioPod = minioWorkload.pods[0]!;
    const minioContainer = minioWorkload.template.containers.find((c) => !c.init)!;
    const minioEnv = containerEnv(minioContainer, { objects, namespace: minioWorkload.template.namespace, network, pod: minioPod });
    const rootUser = minioEnv['MINIO_ROOT_USER'];
    const rootPassword = minioEnv['MINIO_ROOT_PASSWORD'];
    if (!rootUser || !rootPassword) throw new Error('the MinIO container gets no MINIO_ROOT_USER/MINIO_ROOT_PASSWORD from the manifests');
    const [apiPort, consolePort] = minioContainer.ports.map((p) => minioPod.ports.get(p.containerPort));
    const apiName = minioContainer.ports[0]?.name ?? 'api';
    let t0 = Date.now();
    const minio: RunningMinio = await startMinio({
      dataDir: path.join(dataDir, 'minio'),
      credentials: { accessKeyId: rootUser, secretAccessKey: rootPassword },
      ...(apiPort ? { port: apiPort } : {}),
      ...(consolePort ? { consolePort } : {}),
      env: Object.fromEntries(Object.entries(minioEnv).filter(([k]) => k.startsWith('MINIO_') && !k.startsWith('MINIO_ROOT_'))),
      onLine: logTo('minio'),
    });
    stack.push({ name: 'minio', stop: () => minio.stop() });
    watch('minio', minio.process);
    mark(minioWorkload, minioPod, 'ready');
    checkAborted();
    print(`  minio       ready in ${seconds(Date.now() - t0)}  S3 API ${minio.endpoint}  console ${minio.consoleUrl}  (${apiName} port)`);

    // The manifests' Jobs (MinIO setup: bucket, policy, the snapshot function's user), step by step.
    for (const job of objects.filter((o) => o.kind === 'Job' && o.apiVersion.startsWith('batch/'))) {
      t0 = Date.now();
      const steps = await runJob(job, { objects, network, workDir: path.join(dataDir, 'jobs'), tools: ['mc'] });
      print(`  job ${job.metadata.name} done in ${seconds(Date.now() - t0)}: ${steps.map((s) => s.container).join(', ')}`);
    }

    // Prometheus: configuration and rules from the ConfigMap its Deployment mounts.
    const promPod = prometheusWorkload.pods[0]!;
    const promContainer = prometheusWorkload.template.containers.find((c) => !c.init)!;
    const { config: promYaml, files: ruleFiles, retention } = prometheusSettings(prometheusWorkload.template, objects);
    const discovery: DiscoveryServer = await serveDiscovery(() => ({ network, pods: allPods }), discoveryPort);
    stack.push({ name: 'service discovery', stop: () => discovery.close() });
    const scrape = localScrapeConfig(promYaml, {
      network,
      prometheusPod: promPod,
      discoveryUrl: (q) => discovery.urlFor(q),
      fileExists: existsSync,
    });
    t0 = Date.now();
    const promPort = promPod.ports.get(promContainer.ports[0]!.containerPort)!;
    const prometheus: RunningPrometheus = await startPrometheus({
      config: stringify(scrape.config),
      files: ruleFiles,
      dataDir: path.join(dataDir, 'prometheus'),
      port: promPort,
      ...(retention ? { retention } : {}),
      onLine: logTo('prometheus'),
    });
    stack.push({ name: 'prometheus', stop: () => prometheus.stop() });
    watch('prometheus', prometheus.process);
    mark(prometheusWorkload, promPod, 'ready');
    checkAborted();
    print(`  prometheus  ready in ${seconds(Date.now() - t0)}  API ${prometheus.url}/api/v1/query  rules: ${Object.keys(ruleFiles).join(', ') || 'none'}`);
    print(`              scrape jobs: ${scrape.kept.map((k) => `${k.job} (${k.via.replace(/ -> .*/, '')})`).join(', ')}`);
    if (scrape.leftOut.length > 0) print(`              left out: ${scrape.leftOut.map((l) => `${l.job} (${l.reason})`).join('; ')}`);

    // The Knative Services' pods: `node functions/<name>/src/server.ts` with the container's env, and
    // a TMPDIR of their own (/tmp is the only writable path in their containers).
    await mkdir(path.join(dataDir, 'tmp'), { recursive: true });
    const functionUrls = new Map<string, string[]>();
    for (const w of [...(simulation ? [simulation] : []), ...functions.filter((f) => f !== simulation)]) {
      t0 = Date.now();
      const container = w.template.containers.find((c) => !c.init)!;
      const userPort = container.ports[0]!.containerPort;
      const readiness = readinessPath(objects, w.template);
      const starts = await Promise.allSettled(
        w.pods.map(async (pod) => {
          const port = pod.ports.get(userPort)!;
          const env = followPingEvery(
            containerEnv(container, {
              objects,
              namespace: w.template.namespace,
              network,
              pod,
              platformEnv: { ...w.template.platformEnv, PORT: String(port) },
            }),
            options.pingEveryMs,
          );
          const processName = `${w.template.source.name}-${w.pods.indexOf(pod)}`;
          const process = await startProcess({
            name: processName,
            command: globalThis.process.execPath,
            args: ['--import', 'tsx', (w.standIn as { entry: string }).entry],
            cwd: options.repoRoot,
            env: { PATH: globalThis.process.env['PATH'] ?? '', HOME: globalThis.process.env['HOME'] ?? '', TMPDIR: path.join(dataDir, 'tmp'), ...env },
            readyUrl: `http://127.0.0.1:${port}${readiness}`,
            readyTimeoutMs: 60_000,
            onLine: logTo(pod.name),
          });
          mark(w, pod, 'running');
          stack.push({ name: `${w.template.source.name} ${pod.name}`, stop: () => process.stop('SIGTERM', shutdownGraceMs(env) + 5_000) });
          watch(processName, process);
          mark(w, pod, 'ready');
          return `http://127.0.0.1:${port}`;
        }),
      );
      // Every instance that did start is on the stack by now, so a failure here stops them all.
      const failure = starts.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failure) throw failure.reason;
      const urls = starts.map((r) => (r as PromiseFulfilledResult<string>).value);
      checkAborted();
      functionUrls.set(w.template.source.name, urls);
      const count = urls.length === 1 ? '' : ` (${urls.length} instances)`;
      const link = w.template.source.name === 'snapshot' ? urls.map((u) => `${u}/lastdata`) : urls;
      print(`  ${w.template.source.name.padEnd(11)} ready in ${seconds(Date.now() - t0)}${count}  ${link.join('  ')}`);
    }

    // The schedule: each PingSource through its Broker's Triggers.
    const routes: PingRoute[] = pingRoutes(objects, network);
    let firstSnapshotAt: number | undefined;
    const emitters: PingEmitter[] = routes.map((route) =>
      startPingEmitter({
        route,
        ...(options.pingEveryMs !== undefined ? { everyMs: options.pingEveryMs } : {}),
        onDelivery: (report) => {
          print(describeDelivery(report));
          if (report.stored && firstSnapshotAt === undefined) {
            firstSnapshotAt = Date.now();
            print(`  (first snapshot ${seconds(firstSnapshotAt - started)} after start)`);
          }
        },
        onProblem: (message) => print(`ping: ${message}`),
      }),
    );
    stack.push({ name: 'ping emitter', stop: () => Promise.all(emitters.map((e) => e.stop())) });
    for (const route of routes) {
      const { source } = route;
      const when =
        options.pingEveryMs !== undefined
          ? `every ${seconds(options.pingEveryMs)} (--ping-every; the manifest says "${source.schedule}" ${source.timezone ?? ''})`
          : `on "${source.schedule}" ${source.timezone ?? 'UTC'}`;
      print(`  ping        PingSource ${source.namespace}/${source.name} ${when.trim()}`);
      for (const s of route.subscriptions) {
        const p = s.policy;
        const backoff = p.backoffPolicy ? `${p.backoffPolicy} from ${p.backoffDelayMs} ms` : 'no backoff';
        print(`              -> ${s.via} -> ${s.subscriber} (retry ${p.retry}, ${backoff}${p.deadLetterSink ? `, dead letters to ${p.deadLetterSink}` : ''})`);
      }
    }

    const snapshotUrl = functionUrls.get('snapshot')?.[0] ?? '';
    const pipeline: RunningPipeline = {
      urls: {
        prometheus: prometheus.url,
        minio: minio.endpoint,
        minioConsole: minio.consoleUrl,
        simulation: functionUrls.get('simulation') ?? [],
        snapshot: snapshotUrl,
        lastdata: `${snapshotUrl}/lastdata`,
      },
      mcAlias: `mc alias set promsnap ${minio.endpoint} ${rootUser} ${rootPassword}`,
      components: () => processes.map(({ name, process }) => ({ name, pids: [process.pid] })),
      leftOut: scrape.leftOut,
      startupMs: Date.now() - started,
      failed,
      stop,
    };
    // For `npm run load` and scripts: where everything listens while the runner is up.
    await recordState({ state: 'ready', urls: pipeline.urls });
    return pipeline;
  } catch (err) {
    await stop();
    throw err;
  }
}

export class DataDirBusyError extends Error {
  constructor(
    readonly dataDir: string,
    readonly pid: number,
  ) {
    super(`another npm start (pid ${pid}) is using ${dataDir}: stop it first, or give this one another --data-dir`);
    this.name = 'DataDirBusyError';
  }
}

interface RunnerState {
  pid: number;
  state: 'starting' | 'ready';
  components: Array<{ name: string; pid: number }>;
  urls?: RunningPipeline['urls'];
}

/**
 * Takes the data dir's state file for this process, unless a live runner holds it. A file left by a
 * runner that was killed outright is taken over, after stopping the processes it lists that are still
 * running on this data dir (each leads its own process group).
 */
async function claimDataDir(stateFile: string, dataDir: string, print: (line: string) => void): Promise<void> {
  const mine = JSON.stringify({ pid: process.pid, state: 'starting', components: [] }) + '\n';
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(stateFile, mine, { flag: 'wx' });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let left: Partial<RunnerState> = {};
    try {
      left = JSON.parse(await readFile(stateFile, 'utf8')) as Partial<RunnerState>;
    } catch {
      // unreadable: cut short by a runner that died while writing it; treated as stale
    }
    if (left.pid !== undefined && left.pid !== process.pid && isAlive(left.pid)) throw new DataDirBusyError(dataDir, left.pid);
    const orphans = (left.components ?? []).filter((c) => isAlive(c.pid) && usesDataDir(c.pid, dataDir));
    if (orphans.length > 0) {
      print(`  stopping ${orphans.map((o) => `${o.name} (pid ${o.pid})`).join(', ')}, left running by a runner that was killed (pid ${left.pid})`);
      await stopGroups(orphans.map((o) => o.pid));
    }
    await rm(stateFile, { force: true });
  }
  throw new Error(`could not take ${stateFile}: another runner is starting in the same data dir`);
}

/** Whether a process works on this data dir (its arguments or environment name it): a pid may have been reused. */
function usesDataDir(pid: number, dataDir: string): boolean {
  for (const file of ['cmdline', 'environ']) {
    try {
      if (readFileSync(`/proc/${pid}/${file}`, 'utf8').includes(dataDir)) return true;
    } catch {
      // gone, or not ours to read
    }
  }
  return false;
}

/** SHUTDOWN_GRACE_MS from a function's environment (its drain budget), or Knative's default 30 s. */
function shutdownGraceMs(env: Record<string, string>): number {
  const value = Number(env['SHUTDOWN_GRACE_MS']);
  return Number.isFinite(value) && value > 0 ? value : 30_000;
}

/** The readiness probe's HTTP path of a workload's user container (Knative probes the user port). */
function readinessPath(objects: KubeObject[], template: PodTemplate): string {
  const source = objects.find((o) => o.metadata.name === template.source.name && (o.metadata.namespace ?? 'default') === template.namespace && runsPods(o));
  const probe = field(source, 'spec', 'template', 'spec', 'containers', 0, 'readinessProbe', 'httpGet', 'path');
  return typeof probe === 'string' && probe.startsWith('/') ? probe : '/';
}

/**
 * prometheus.yml and its rule files as the Deployment loads them (platform/manifests/prometheus.ts prometheusSetup:
 * --config.file through the volume mounts to the ConfigMap), laid out beside each other as startPrometheus
 * writes them, and the retention from the container's flags.
 */
export function prometheusSettings(template: PodTemplate, objects: KubeObject[]): { config: PrometheusYml; files: Record<string, string>; retention?: string } {
  const setup = prometheusSetup(objects as unknown as ManifestObject[], template.source.name, template.namespace);
  const config = structuredClone(setup.config);
  // Rule files are written under their ConfigMap keys beside prometheus.yml, and named so here.
  config['rule_files'] = setup.ruleFiles.map((r) => r.key);
  const files = Object.fromEntries(setup.ruleFiles.map((r) => [r.key, r.text]));
  const retention = setup.args.map((a) => /^--storage\.tsdb\.retention\.time=(.+)$/.exec(a)?.[1]).find(Boolean);
  return { config, files, ...(retention ? { retention } : {}) };
}

/**
 * With --ping-every, a range export's range follows the pings' period, as SNAPSHOT_RANGE follows the
 * PingSource's schedule in the manifests: consecutive pings then tile time. Its settle time is at most
 * one period.
 */
export function followPingEvery(env: Record<string, string>, everyMs: number | undefined): Record<string, string> {
  const rangeMs = env['SNAPSHOT_RANGE'] === undefined ? undefined : parseDuration(env['SNAPSHOT_RANGE']);
  if (everyMs === undefined || !rangeMs) return env;
  const settleMs = Math.min(parseDuration(env['SNAPSHOT_SETTLE'] ?? '') ?? everyMs, everyMs);
  return { ...env, SNAPSHOT_RANGE: formatDuration(everyMs), SNAPSHOT_SETTLE: formatDuration(settleMs) };
}

function describeDelivery(report: DeliveryReport): string {
  const attempts = report.result.attempts.length;
  const tries = attempts === 1 ? '' : ` after ${attempts} attempts`;
  if (report.stored) {
    const s = report.stored;
    const window = s.range ? `  ${s.range.samples} samples from ${s.range.start.slice(11, 19)} to ${s.range.end.slice(11, 19)}` : '';
    return `snapshot stored  ${s.bucket}/${s.key}  ${s.bytes} bytes  ${s.series} series${window}  (${s.durationMs} ms${tries})`;
  }
  const last = report.result.last;
  const outcome = 'status' in last ? `HTTP ${last.status}` : last.error.message;
  if (report.result.delivered) return `ping ${report.id} delivered to ${report.via}${tries} (${outcome}, no snapshot in the reply)`;
  const letter = report.deadLetter
    ? report.deadLetter.result.delivered
      ? `; dead letter stored via ${report.deadLetter.sink}`
      : `; the dead-letter sink failed too, the event is lost`
    : '';
  return `ping ${report.id} NOT delivered to ${report.via}${tries}: ${outcome}${letter}`;
}
