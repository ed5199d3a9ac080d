// `npm start` as a function: the local cluster (platform/localcluster: sandbox, control plane, the node,
// Knative Serving and Eventing as pods), the two function images replayed into its image store, platform/
// applied through the data dir's overlay with `kubectl apply -k` as a user would, and a wait until every
// Deployment, Job and Knative object is Ready. While it runs: a line per stored snapshot, the Docker API of
// the image store for Skaffold's local profile, and a state file for `npm run load`. stop() lets an
// in-flight snapshot finish, then stops the cluster, which leaves nothing behind.
import { readFileSync } from 'node:fs';
import { appendFile, copyFile, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { serveDockerApi, type DockerApi } from '../images/docker-api.js';
import { buildImageFiles, imageLayout, writeToStore } from '../images/index.js';
import { startLocalCluster, type LocalCluster } from '../localcluster/index.js';
import { ensureCredentials } from '../credentials.js';
import { knativeService, objectsYaml, parseObjects, type KubeObject } from '../manifests/index.js';
import { ingressPorts } from '../node/network-host.js';
import { kustomize } from '../tools/kubectl.js';
import { isAlive } from '../tools/process.js';
import { portInUse } from '../tools/ports.js';
import type { SandboxTraces } from '../tools/sandbox.js';
import { sleep, waitFor } from '../tools/wait.js';
import { followPingEvery, localImage, pingSource, simulationService, snapshotService, writeOverlay, type EnvChange } from './overlay.js';
import { describeState, objectsToWaitFor, waitReady } from './ready.js';
import { formatStored, watchSnapshots, type SnapshotWatcher, type StoredLine } from './snapshots.js';

export interface LocalOptions {
  repoRoot: string;
  dataDir: string;
  /** The PingSource schedule to apply (6-field cron from --ping-every); the manifest's when undefined. */
  schedule?: string;
  /** --ping-every's period: the snapshot function's SNAPSHOT_RANGE follows it (overlay.ts followPingEvery). */
  pingEveryMs?: number;
  /** The simulation's min-scale to apply (--simulation-instances); the manifest's when undefined. */
  simulationMinScale?: number;
  /** Host ports from here up: API server, ingress, Prometheus, MinIO API, MinIO console, in-cluster ingress. */
  portBase?: number;
  /** Progress and events, one line each. */
  print: (line: string) => void;
  /** Ctrl-C during start-up: what started is stopped. */
  signal?: AbortSignal;
}

export interface LocalUrls {
  api: string;
  ingress: string;
  ingressInternal: string;
  prometheus: string;
  minio: string;
  minioConsole: string;
  simulation: string;
  snapshot: string;
}

export interface RunningLocal {
  urls: LocalUrls;
  kubeconfig: string;
  dockerHost: string;
  /** The function's own MinIO user, for `mc alias set`. */
  mcUser: { accessKeyId: string; secretAccessKey: string };
  bucket: string;
  /** The state dir of the cluster (pods' logs under node/pods/<uid>/logs). */
  stateDir: string;
  logFile: string;
  startupMs: number;
  cluster: LocalCluster;
  /** Resolves with a reason if the cluster dies while running. */
  failed: Promise<string>;
  stop(): Promise<void>;
}

/** What `npm start` leaves in the data dir while it runs, for `npm run load` and Skaffold's local profile. */
export interface LocalState {
  pid: number;
  state: 'starting' | 'ready';
  stateDir?: string;
  kubeconfig?: string;
  urls?: LocalUrls;
  /** The sandbox's init and namespaces: what is left of the cluster can be looked for by them (sandboxLeftovers). */
  sandbox?: SandboxTraces;
}

export const stateFileName = 'local.json';

/** The forwards, in --port-base order after the API server and the ingress. */
const forwards = {
  prometheus: { host: 'prometheus.monitoring.svc.cluster.local', port: 9090 },
  minio: { host: 'minio.promsnap.svc.cluster.local', port: 9000 },
  minioConsole: { host: 'minio.promsnap.svc.cluster.local', port: 9001 },
  // The in-cluster listener of the ingress: cluster-local Knative Services (snapshot) by Host header, as
  // `kubectl port-forward` to kourier-internal would.
  ingressInternal: { host: '10.244.0.1', port: ingressPorts.cluster },
} as const;

export const portOrder = ['Kubernetes API server', 'ingress (Knative Services)', "Prometheus's API", "MinIO's S3 API", "MinIO's console", 'in-cluster ingress'];

export class PortTakenError extends Error {
  constructor(port: number, what: string) {
    super(`port ${port} (${what}) is already in use on 127.0.0.1: stop what listens there, or pick other ports with --port-base`);
    this.name = 'PortTakenError';
  }
}

export class DataDirBusyError extends Error {
  constructor(dataDir: string, pid: number) {
    super(`another npm start (pid ${pid}) is using ${dataDir}: stop it first, or give this one another --data-dir`);
    this.name = 'DataDirBusyError';
  }
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const shown = (dir: string) => path.relative(process.cwd(), dir) || dir;

export async function startLocal(options: LocalOptions): Promise<RunningLocal> {
  const started = Date.now();
  const { dataDir, print } = options;
  await mkdir(dataDir, { recursive: true });
  const stateFile = path.join(dataDir, stateFileName);
  await claimDataDir(stateFile, dataDir, print);
  const logFile = path.join(dataDir, 'logs', 'cluster.log');
  await mkdir(path.dirname(logFile), { recursive: true });
  await writeFile(logFile, '');
  const links = { kubeconfig: path.join(dataDir, 'kubeconfig'), images: path.join(dataDir, 'images'), docker: path.join(dataDir, 'docker.sock') };

  let cluster: LocalCluster | undefined;
  let dockerApi: DockerApi | undefined;
  let watcher: SnapshotWatcher | undefined;
  let stopping: Promise<void> | undefined;
  const cleanFiles = () => Promise.all([...Object.values(links), stateFile].map((file) => rm(file, { force: true })));
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (cluster) await letSnapshotsFinish(cluster, print);
      await watcher?.stop();
      await dockerApi?.close();
      if (cluster) {
        const t0 = Date.now();
        await cluster.stop();
        print(`  local cluster stopped in ${seconds(Date.now() - t0)}`);
      }
      await cleanFiles();
    })();
    return stopping;
  };
  const checkAborted = () => {
    if (options.signal?.aborted) throw new Error('interrupted');
  };

  try {
    if (options.portBase !== undefined) {
      for (const [i, what] of portOrder.entries()) if (await portInUse(options.portBase + i)) throw new PortTakenError(options.portBase + i, what);
    }
    // Missing credentials (platform/minio/*.env) are created as `npm run credentials` would, then the overlay.
    await ensureCredentials({ dir: path.join(options.repoRoot, 'platform'), log: (line) => print(`  ${line}`) });
    const version = (JSON.parse(readFileSync(path.join(options.repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
    const artifacts = ['simulation', 'snapshot'];
    const images = Object.fromEntries(artifacts.map((a) => [a, localImage(a, version)]));
    const platformDir = path.join(options.repoRoot, 'platform');
    const snapshotEnv = options.pingEveryMs === undefined ? undefined : await rangeFollowingPings(platformDir, options.pingEveryMs);
    const overlay = await writeOverlay({
      platformDir,
      dir: path.join(dataDir, 'overlay'),
      images,
      ...(snapshotEnv !== undefined ? { snapshotEnv } : {}),
      ...(options.schedule !== undefined ? { schedule: options.schedule } : {}),
      ...(options.simulationMinScale !== undefined ? { simulationMinScale: options.simulationMinScale } : {}),
    });
    const objects = parseObjects(await kustomize(overlay), `kubectl kustomize ${overlay}`);
    checkMinScale(objects, options.simulationMinScale);
    print(
      `  overlay ${shown(overlay)}: ${objects.length} objects (platform/ + local image names${options.schedule ? ', schedule' : ''}${
        snapshotEnv
          ? `, ${Object.entries(snapshotEnv.set)
              .map(([k, v]) => `${k}=${v}`)
              .join(' ')}`
          : ''
      }${options.simulationMinScale !== undefined ? ', min-scale' : ''})`,
    );

    // The images build while the cluster starts (the cache makes an unchanged build instant). As soon as the
    // node runs pods, what needs no Knative (Prometheus, MinIO and its setup Job, kube-state-metrics) is
    // applied; once Knative's webhooks serve, the whole overlay with `kubectl apply -k`, applied again until
    // it is accepted whole, while the rest of Knative is still becoming Available.
    let t0 = Date.now();
    const builds = Promise.all(
      artifacts.map((a) => buildImageFiles({ dockerfile: path.join(options.repoRoot, 'functions', a, 'Dockerfile'), context: options.repoRoot })),
    );
    builds.catch(() => undefined);
    const log = (source: string, line: string) => void appendFile(logFile, `${new Date().toISOString()} ${source}: ${line}\n`).catch(() => undefined);
    let applying: Promise<void> | undefined;
    const applyDeadline = Date.now() + 300_000;
    /** kubectl with these arguments, again every second while the API server refuses some objects (a webhook not reachable yet); returns the attempts. */
    const applyUntilAccepted = async (kubectl: LocalCluster['kubectl'], args: string[], input?: string): Promise<number> => {
      for (let attempt = 1; ; attempt++) {
        const result = await kubectl.with({ allowFailure: true, timeoutMs: 120_000, ...(input !== undefined ? { input } : {}) }, ...args);
        if (result.code === 0) return attempt;
        const refused = result.stderr.split('\n').filter((l) => l.startsWith('Error from server'));
        if (Date.now() > applyDeadline || refused.length === 0) throw new Error(`kubectl ${args.join(' ')} failed:\n${result.stderr.trim()}`);
        log('apply', result.stderr.trim());
        await sleep(1_000, options.signal);
        checkAborted();
      }
    };
    cluster = await startLocalCluster({
      dataDir,
      knative: ['serving', 'eventing'],
      ...(options.portBase !== undefined ? { portBase: options.portBase } : {}),
      forwards,
      onLine: (source, line) => {
        log(source, line);
        if (source === 'localcluster' && / after \d+ ms$/.test(line))
          print(`  cluster: ${line.replace(/ after (\d+) ms$/, (_, ms: string) => ` ready after ${seconds(Number(ms))}`)}`);
      },
      onNodeReady: (partial) => {
        applying = (async () => {
          const built = await builds;
          for (const [i, artifact] of artifacts.entries()) await writeToStore(partial.imageStore, await imageLayout(built[i]!, images[artifact]!));
          print(`  images ${Object.values(images).join(', ')} in the node's image store (${built.some((b) => b.built) ? 'built' : 'cached'})`);
          // What needs no Knative, at once. Knative's objects only once its webhooks serve: before that a
          // Knative Service would be stored undefaulted (its webhook configurations do not exist yet, or not
          // yet with the rules the webhook writes when it starts), and Knative's controller would then
          // roll a second Revision when it defaults the Configuration itself (seen: EnableServiceLinks).
          const plain = objects.filter((o) => !isKnative(o));
          const early = await partial.kubectl.with({ allowFailure: true, timeoutMs: 120_000, input: objectsYaml(plain) }, 'apply', '-f', '-');
          if (early.code !== 0) {
            log('apply', early.stderr.trim());
            print(
              `  kubectl apply: the ${plain.length} objects that need no Knative were refused (applied again with the rest): ${early.stderr.trim().split('\n')[0]}`,
            );
          } else print(`  kubectl apply: the ${plain.length} objects that need no Knative applied after ${seconds(Date.now() - started)}`);
          // Each Knative component's objects as soon as its own webhooks serve: Eventing's PingSource
          // starts the way to the first snapshot (Knative scales its adapter up for it, and the adapter
          // is Ready only 20 s after it starts). Then the whole overlay as a user applies it, which finds
          // them in place.
          await Promise.all(
            knativeComponents.map(async (component) => {
              await waitFor(async () => ((await admissionPending(partial.getJson, component.webhooks)).length === 0 ? true : undefined), {
                what: `Knative ${component.name}'s admission webhooks serving`,
                timeoutMs: 300_000,
                intervalMs: 250,
                ...(options.signal ? { signal: options.signal } : {}),
              });
              const own = objects.filter((o) => component.owns.test(o.apiVersion));
              const attempts = await applyUntilAccepted(partial.kubectl, ['apply', '-f', '-'], objectsYaml(own));
              print(
                `  kubectl apply: Knative ${component.name}'s ${own.length} objects applied as its webhooks serve, after ${seconds(Date.now() - started)}${attempts > 1 ? ` (attempt ${attempts})` : ''}`,
              );
            }),
          );
          const attempts = await applyUntilAccepted(partial.kubectl, ['apply', '-k', overlay]);
          print(
            `  kubectl apply -k ${shown(overlay)}: all ${objects.length} objects applied after ${seconds(Date.now() - started)}${attempts > 1 ? ` (attempt ${attempts})` : ''}`,
          );
        })();
        applying.catch(() => undefined);
      },
    });
    checkAborted();
    print(`  local cluster ready in ${seconds(Date.now() - t0)} (Knative Serving and Eventing as pods)`);

    // Snapshots are printed as they land, from now on (the first may come before everything is Ready).
    const fn = knativeService(objects, 'snapshot', 'promsnap');
    const bucket = fn.env.env['S3_BUCKET'] ?? 'snapshots';
    const mcUser = { accessKeyId: fn.env.env['AWS_ACCESS_KEY_ID'] ?? '', secretAccessKey: fn.env.env['AWS_SECRET_ACCESS_KEY'] ?? '' };
    let firstStored = false;
    watcher = watchSnapshots({
      s3: { endpoint: cluster.forwards['minio']!.url, region: fn.env.env['S3_REGION'] ?? 'us-east-1', ...mcUser },
      bucket,
      since: new Date(started),
      onStored: (line: StoredLine) => {
        print(formatStored(line, bucket));
        if (line.kind === 'snapshot' && !firstStored) {
          firstStored = true;
          print(`  (first snapshot stored ${seconds(Date.now() - started)} after npm start began)`);
        }
      },
    });
    void watcher.kept.then(
      (kept) =>
        kept.snapshots + kept.deadLetters > 0 && print(`  the bucket keeps ${kept.snapshots} snapshots and ${kept.deadLetters} dead letters from earlier runs`),
      () => undefined,
    );
    if (!applying) throw new Error('the local cluster did not report its node ready');
    await applying;
    await copyFile(cluster.kubeconfigPath, links.kubeconfig);
    await rm(links.images, { force: true });
    await symlink(cluster.imageStore, links.images);
    dockerApi = await serveDockerApi({ store: cluster.imageStore, socket: links.docker, log: (line) => log('docker-api', line) });

    t0 = Date.now();
    await waitReady(objectsToWaitFor(objects), {
      getJson: cluster.getJson,
      timeoutMs: 240_000,
      onWaiting: (notReady) => print(`  waiting for ${notReady.length}: ${notReady.map(describeState).join('; ').slice(0, 300)}`),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    print(`  every Deployment, Job and Knative object Ready ${seconds(Date.now() - started)} after start (${seconds(Date.now() - t0)} after the cluster)`);

    const f = cluster.forwards;
    const ksvcUrl = async (name: string) =>
      (await cluster!.getJson<{ status?: { url?: string } }>(`/apis/serving.knative.dev/v1/namespaces/promsnap/services/${name}`)).status?.url ?? '';
    const urls: LocalUrls = {
      api: cluster.apiUrl,
      ingress: cluster.ingressUrl,
      ingressInternal: f['ingressInternal']!.url,
      prometheus: f['prometheus']!.url,
      minio: f['minio']!.url,
      minioConsole: f['minioConsole']!.url,
      simulation: await ksvcUrl(simulationService.name),
      snapshot: await ksvcUrl('snapshot'),
    };
    const startupMs = Date.now() - started;
    await writeState(stateFile, {
      pid: process.pid,
      state: 'ready',
      stateDir: cluster.stateDir,
      kubeconfig: links.kubeconfig,
      urls,
      sandbox: cluster.sandbox.traces,
    });

    const running = cluster;
    const failed = new Promise<string>((resolve) => {
      const timer = setInterval(() => {
        if (!running.sandbox.alive) {
          clearInterval(timer);
          resolve("the local cluster's sandbox ended unexpectedly (see the log)");
        }
      }, 1_000);
      timer.unref();
    });
    return {
      urls,
      kubeconfig: links.kubeconfig,
      dockerHost: `unix://${links.docker}`,
      mcUser,
      bucket,
      stateDir: cluster.stateDir,
      logFile,
      startupMs,
      cluster,
      failed,
      stop,
    };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}

/** The snapshot function's env as platform/ renders it, and what --ping-every's period changes in it. */
async function rangeFollowingPings(platformDir: string, periodMs: number): Promise<EnvChange> {
  const fn = knativeService(parseObjects(await kustomize(platformDir), `kubectl kustomize ${platformDir}`), snapshotService.name, snapshotService.namespace);
  return {
    container: fn.template.spec.containers.indexOf(fn.container),
    existing: (fn.container.env ?? []).map((e) => e.name),
    set: followPingEvery(fn.env.env, periodMs),
  };
}

const isKnative = (o: KubeObject) => /\.knative\.dev\//.test(o.apiVersion);

/** Knative's components: the API groups of the objects each admits, and its webhook configurations (each with a CA bundle once its webhook has started). */
const knativeComponents = [
  {
    name: 'Eventing',
    owns: /^(eventing|sources|messaging|flows)\.knative\.dev\//,
    webhooks: ['mutatingwebhookconfigurations/webhook.eventing.knative.dev', 'validatingwebhookconfigurations/validation.webhook.eventing.knative.dev'],
  },
  {
    name: 'Serving',
    owns: /^serving\.knative\.dev\//,
    webhooks: ['mutatingwebhookconfigurations/webhook.serving.knative.dev', 'validatingwebhookconfigurations/validation.webhook.serving.knative.dev'],
  },
];

/**
 * The webhook configurations not yet serving: missing, without the CA bundle their webhook writes when it
 * starts, or with no ready endpoint behind their Service yet (the API server would refuse a write then).
 */
async function admissionPending(getJson: LocalCluster['getJson'], webhooks: readonly string[]): Promise<string[]> {
  interface Configuration {
    webhooks?: Array<{ clientConfig?: { caBundle?: string; service?: { name: string; namespace: string } } }>;
  }
  interface EndpointSlices {
    items: Array<{ endpoints?: Array<{ conditions?: { ready?: boolean } }> }>;
  }
  const pending: string[] = [];
  for (const name of webhooks) {
    const live = await getJson<Configuration>(`/apis/admissionregistration.k8s.io/v1/${name}`).catch(() => undefined);
    const each = live?.webhooks ?? [];
    if (each.length === 0 || each.some((w) => !w.clientConfig?.caBundle)) {
      pending.push(name);
      continue;
    }
    for (const service of new Set(
      each.flatMap((w) => (w.clientConfig?.service ? [`${w.clientConfig.service.namespace}/${w.clientConfig.service.name}`] : [])),
    )) {
      const [namespace, serviceName] = service.split('/');
      const slices = await getJson<EndpointSlices>(
        `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices?labelSelector=${encodeURIComponent(`kubernetes.io/service-name=${serviceName}`)}`,
      ).catch(() => ({ items: [] }));
      if (!slices.items.some((slice) => (slice.endpoints ?? []).some((e) => e.conditions?.ready !== false)))
        pending.push(`${name} (${service} has no ready endpoint)`);
    }
  }
  return pending;
}

/** --simulation-instances within what the Knative Service allows (its max-scale). */
function checkMinScale(objects: readonly KubeObject[], minScale: number | undefined): void {
  if (minScale === undefined) return;
  const max = Number(knativeService(objects, simulationService.name, simulationService.namespace).annotations['autoscaling.knative.dev/max-scale']);
  if (Number.isFinite(max) && max > 0 && minScale > max) {
    throw new Error(`--simulation-instances ${minScale} is above the simulation's autoscaling.knative.dev/max-scale (${max})`);
  }
}

/**
 * Before the cluster stops: no new ping (the PingSource goes), and every snapshot pod done with what it
 * was doing (its /readyz reports inFlight), while MinIO and Prometheus still run.
 */
async function letSnapshotsFinish(cluster: LocalCluster, print: (line: string) => void): Promise<void> {
  await cluster.kubectl.with({ allowFailure: true, timeoutMs: 10_000 }, 'delete', 'pingsource', pingSource.name, '-n', pingSource.namespace, '--wait=false');
  const deadline = Date.now() + 60_000;
  let said = false;
  let quiet = 0;
  while (Date.now() < deadline && quiet < 2) {
    const busy = await snapshotsInFlight(cluster).catch(() => 0);
    if (busy > 0 && !said) {
      print(`  waiting for ${busy} snapshot${busy > 1 ? 's' : ''} in flight to be stored`);
      said = true;
    }
    quiet = busy === 0 ? quiet + 1 : 0;
    if (quiet < 2) await sleep(500);
  }
}

async function snapshotsInFlight(cluster: LocalCluster): Promise<number> {
  const pods = await cluster.getJson<{ items: Array<{ metadata: { name: string }; status?: { phase?: string } }> }>(
    '/api/v1/namespaces/promsnap/pods?labelSelector=serving.knative.dev%2Fservice%3Dsnapshot',
  );
  let total = 0;
  for (const pod of pods.items.filter((p) => p.status?.phase === 'Running')) {
    const ready = await cluster
      .getJson<{ inFlight?: number }>(`/api/v1/namespaces/promsnap/pods/${pod.metadata.name}:8080/proxy/readyz`)
      .catch(() => ({ inFlight: 0 }));
    total += ready.inFlight ?? 0;
  }
  return total;
}

async function writeState(file: string, state: LocalState): Promise<void> {
  await writeFile(`${file}.tmp`, JSON.stringify(state, null, 2) + '\n');
  await rm(file, { force: true });
  await copyFile(`${file}.tmp`, file);
  await rm(`${file}.tmp`, { force: true });
}

/** The running npm start's state, or why there is none. */
export async function readState(dataDir: string): Promise<LocalState> {
  const file = path.join(dataDir, stateFileName);
  let state: LocalState;
  try {
    state = JSON.parse(await readFile(file, 'utf8')) as LocalState;
  } catch {
    throw new Error(
      `no local cluster found (${file} is missing): start it with \`npm start\`${dataDir.endsWith('.promsnap') ? '' : ` -- --data-dir ${dataDir}`}`,
    );
  }
  if (!isAlive(state.pid)) throw new Error(`the npm start that wrote ${file} (pid ${state.pid}) is not running: start it again with \`npm start\``);
  if (state.state !== 'ready' || !state.kubeconfig || !state.urls)
    throw new Error(`the local cluster (pid ${state.pid}) is still starting: try again when it prints its URLs`);
  return state;
}

/**
 * Takes the data dir for this process, unless a live npm start holds it. What a killed one left (its
 * sandbox died with it) is cleared: its state dir, links and state file.
 */
async function claimDataDir(stateFile: string, dataDir: string, print: (line: string) => void): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(stateFile, JSON.stringify({ pid: process.pid, state: 'starting' } satisfies LocalState) + '\n', { flag: 'wx' });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let left: Partial<LocalState> = {};
    try {
      left = JSON.parse(await readFile(stateFile, 'utf8')) as Partial<LocalState>;
    } catch {
      // cut short by an npm start that died while writing it: stale
    }
    if (left.pid !== undefined && left.pid !== process.pid && isAlive(left.pid)) throw new DataDirBusyError(dataDir, left.pid);
    const stale = left.stateDir;
    if (stale && path.dirname(stale) === os.tmpdir() && path.basename(stale).startsWith('promsnap-')) {
      print(`  removing ${stale}, left by an npm start that was killed (pid ${left.pid})`);
      await rm(stale, { recursive: true, force: true }).catch(() => undefined);
    }
    await rm(stateFile, { force: true });
  }
  throw new Error(`could not take ${stateFile}: another npm start is starting in the same data dir`);
}
