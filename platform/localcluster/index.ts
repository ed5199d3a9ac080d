// The local cluster: a Kubernetes cluster on one machine whose pods really run, as one object with one
// stop(), in the manner of envtest's Environment. In order, each waited for:
//   1. a cluster sandbox (tools/sandbox.ts): namespaces of its own, so nothing of it is made on the host
//      and all of it goes with it;
//   2. the control plane inside it (etcd, kube-apiserver, kube-controller-manager; platform/controlplane),
//      the controller manager still starting while the steps below go on;
//   3. the node's identities and the image store (the pinned tools' images);
//   4. the node process (platform/node with --network: kubelet stand-in, Service proxy, DNS, KIngress),
//      while Knative's CRDs and then Serving (and Eventing)'s release YAML (platform/knative) are applied:
//      their pods wait for the node, which runs them as soon as it is ready;
//   5. Knative as pods, Available and admitting through their webhooks.
// The host reaches the API server and the ingress's public listener through forwarded loopback ports;
// the kubeconfig verifies the API server's own CA. The cluster's data (PV folders) lives under dataDir,
// so a second start on the same dataDir finds it again; everything else goes with stop().
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startControlPlane, type Component, type ControlPlane } from '../controlplane/index.js';
import { toolImages, writeToolImages } from '../images/index.js';
import {
  applyKnative,
  eventingRelease,
  installKnativeCrds,
  servingRelease,
  type KnativeComponent,
  type KnativeRelease,
  type KnativeTarget,
  waitForKnative,
} from '../knative/index.js';
import { ingressPorts } from '../node/network-host.js';
import { prepareNodeIdentity } from '../node/setup.js';
import { cachedBinary, MissingToolError } from '../tools/find.js';
import { listenForward, type Dial, type Forward, type ForwardTarget } from '../tools/forward.js';
import type { Kubectl } from '../tools/kubectl.js';
import { startProcess, type ManagedProcess } from '../tools/process.js';
import { processesIn, sandboxSupport, SandboxUnavailableError, startSandbox, type Sandbox } from '../tools/sandbox.js';

export { SandboxUnavailableError } from '../tools/sandbox.js';
export type { Forward, ForwardTarget } from '../tools/forward.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const nodeMain = fileURLToPath(new URL('../node/main.ts', import.meta.url));

/** Where lines come from: the control plane's processes, the node, and this module's own progress. */
export type LineSource = Component | 'node' | 'localcluster';

export interface LocalClusterOptions {
  /** The cluster's data kept between runs (PV folders, under volumes/); created if missing. */
  dataDir: string;
  /** Knative Serving, or Serving and Eventing (the in-memory channel, the MT channel-based broker, PingSource). */
  knative: readonly ['serving'] | readonly ['serving', 'eventing'];
  /** The state dir (keys, etcd, pods, sockets): must not exist, short (unix sockets under it). Default a new folder in os.tmpdir(). Removed by stop(). */
  stateDir?: string;
  /** Host ports of the API server and the ingress forwards; default portBase and portBase + 1, or free ports. */
  hostPorts?: { api?: number; ingress?: number };
  /** First of the host ports used when hostPorts does not name them: API server, ingress, then `forwards` in order. */
  portBase?: number;
  /** Forwards opened at start, by name: 127.0.0.1:hostPort (default portBase + 2 + i, or free) -> host:port in the cluster (an IP, or a Service's DNS name). */
  forwards?: Record<string, ForwardTarget & { hostPort?: number }>;
  /** Host paths besides dataDir that processes in the cluster may write (the sandbox keeps the host read-only). */
  writable?: string[];
  /** Every line the control plane's processes and the node print, and this module's progress. */
  onLine?: (source: LineSource, line: string) => void;
  /**
   * Called once the node runs pods, while Knative is still being installed: a caller may start what needs
   * no Knative (npm start applies Prometheus, MinIO and the rest of platform/ then). Not awaited; errors
   * are the caller's to collect.
   */
  onNodeReady?: (cluster: Pick<LocalCluster, 'kubeconfigPath' | 'kubectl' | 'getJson' | 'imageStore'>) => void;
  /** The node's cap on each pod's grace period when the cluster stops (default 10 s). */
  shutdownGraceSeconds?: number;
  /** How long each step may take (default 180 s). */
  startTimeoutMs?: number;
}

export interface ClusterMemory {
  /** Sum of the resident set of every process in the cluster's sandbox. */
  rssBytes: number;
  /** The same by command (comm), largest first. */
  byCommand: Array<{ command: string; processes: number; rssBytes: number }>;
}

export interface LocalCluster {
  /** Admin kubeconfig for the host: server apiUrl, the API server's CA, tls-server-name kubernetes.default.svc. */
  readonly kubeconfigPath: string;
  /** kubectl as the admin (KUBECONFIG and a discovery cache of its own). */
  readonly kubectl: Kubectl;
  /** https://127.0.0.1:PORT (its certificate names kubernetes.default.svc, not 127.0.0.1: verify with the kubeconfig's tls-server-name). */
  readonly apiUrl: string;
  /** http://127.0.0.1:PORT: the KIngress's public listener (ExternalIP rules); send `Host: <ksvc host>`. */
  readonly ingressUrl: string;
  /** The forwards asked for at start, by name. */
  readonly forwards: Readonly<Record<string, Forward>>;
  /** The image store the node reads (platform/images writeToStore / buildImage({ store })). */
  readonly imageStore: string;
  readonly dataDir: string;
  readonly stateDir: string;
  readonly knative: readonly KnativeComponent[];
  readonly controlPlane: ControlPlane;
  readonly sandbox: Sandbox;
  /** Milliseconds from start to each step done. */
  readonly timings: Readonly<Record<string, number>>;
  /** GET on the API server as the admin, parsed. */
  getJson: <T = unknown>(apiPath: string) => Promise<T>;
  /** A new forward: 127.0.0.1:hostPort (free when not given) -> host:port in the cluster (an IP, or a Service's DNS name resolved per connection). */
  forward(target: ForwardTarget, hostPort?: number): Promise<Forward>;
  /** Resident memory of everything the cluster runs. */
  memory(): ClusterMemory;
  /** Stops the node (its pods first), the forwards, the control plane and the sandbox; nothing is left. Safe to call more than once. */
  stop(): Promise<void>;
}

/** The binaries a cluster with these Knative components runs, each checked now so a missing one names its provision step. */
export function checkBinaries(knative: readonly KnativeComponent[]): void {
  cachedBinary('etcd');
  cachedBinary('kube-apiserver');
  cachedBinary('kube-controller-manager');
  for (const component of knative) {
    const tool = `knative-${component}` as const;
    const prefix = `ko://knative.dev/${component}/`;
    const missing = toolImages()
      .filter((image) => image.reference.startsWith(prefix))
      .flatMap((image) => image.binds.map((bind) => bind.source))
      .filter((source) => !existsSync(source));
    if (missing.length > 0)
      throw new MissingToolError(`Knative ${component} (${missing.map((m) => path.basename(m)).join(', ')})`, `bash platform/tools/provision.sh ${tool}`);
  }
}

const serviceName = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.svc(\.cluster\.local)?$/;

export async function startLocalCluster(options: LocalClusterOptions): Promise<LocalCluster> {
  const started = Date.now();
  const timings: Record<string, number> = {};
  const mark = (step: string) => {
    timings[step] = Date.now() - started;
    options.onLine?.('localcluster', `${step} after ${timings[step]} ms`);
  };
  const knative: readonly KnativeComponent[] = options.knative;
  if (!knative.includes('serving')) throw new Error("knative must be ['serving'] or ['serving', 'eventing']");
  const timeoutMs = options.startTimeoutMs ?? 180_000;
  const support = await sandboxSupport();
  if (!support.available) throw new SandboxUnavailableError(support.reason, support.fix);
  checkBinaries(knative);

  const dataDir = path.resolve(options.dataDir);
  await mkdir(dataDir, { recursive: true });
  const stateDir = path.resolve(options.stateDir ?? path.join(os.tmpdir(), `promsnap-${randomBytes(3).toString('hex')}`));
  const port = (offset: number, given?: number) => given ?? (options.portBase === undefined ? undefined : options.portBase + offset);

  const sandbox = await startSandbox({ dir: stateDir, writable: [dataDir, ...(options.writable ?? [])] });
  const nodeIp = sandbox.network.address.split('/')[0]!;
  let controlPlane: ControlPlane | undefined;
  let node: ManagedProcess | undefined;
  const forwards = new Set<Forward>();
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      const failures: Error[] = [];
      const attempt = async (what: string, step: () => Promise<unknown>) => {
        try {
          await step();
        } catch (err) {
          failures.push(new Error(`${what}: ${(err as Error).message}`));
        }
      };
      // The node first: it stops every pod (their drains may still need the API server and the network).
      if (node?.alive) await attempt('stopping the node', () => node!.stop('SIGTERM', ((options.shutdownGraceSeconds ?? 10) + 15) * 1000));
      await attempt('closing the forwards', () => Promise.all([...forwards].map((f) => f.close())));
      if (controlPlane) await attempt('stopping the control plane', () => controlPlane!.stop());
      await attempt('stopping the sandbox', () => sandbox.stop());
      if (failures.length > 0) throw failures[0]!;
    })();
    return stopping;
  };

  try {
    mark('sandbox');
    controlPlane = await startControlPlane({
      placement: { sandbox },
      controllerManager: true,
      // Nothing before the node needs its controllers: they catch up with what is created meanwhile.
      awaitControllerManager: false,
      startTimeoutMs: timeoutMs,
      ...(port(0, options.hostPorts?.api) !== undefined ? { hostPort: port(0, options.hostPorts?.api)! } : {}),
      ...(options.onLine ? { onLine: (component: Component, line: string) => options.onLine!(component, line) } : {}),
    });
    mark('control plane');
    const cpTimings = controlPlane.timings;
    const controllerManagerReady = controlPlane.controllerManagerReady.then(() => {
      mark('kube-controller-manager');
      options.onLine?.(
        'localcluster',
        `control plane: etcd ready in ${cpTimings.etcdMs} ms, kube-apiserver in ${cpTimings.apiServerMs} ms, kube-controller-manager ${cpTimings.controllerManagerMs} ms after that`,
      );
    });
    controllerManagerReady.catch(() => undefined);
    const cp = controlPlane;
    const getJson = <T>(apiPath: string) => cp.getJson<T>(apiPath);
    const target: KnativeTarget = { kubectl: cp.kubectl, getJson, request: cp.request };
    const log = (line: string) => options.onLine?.('localcluster', line);

    const releases: KnativeRelease[] = [await servingRelease({ ingress: { address: nodeIp, port: ingressPorts.cluster } })];
    if (knative.includes('eventing')) releases.push(await eventingRelease());
    const imageStore = path.join(stateDir, 'images');
    // Knative's CRDs, then its releases, go in while the node starts: the node's ingress watches for the
    // KIngress API to appear, and the releases' pods wait for the node. Each of the three steps takes 2 to
    // 3 s on two cores; one after the other, they held Knative's first pods back by as much.
    const applied = (async () => {
      await installKnativeCrds(target, releases, { dir: stateDir, timeoutMs, log });
      mark('knative CRDs');
      await Promise.all(
        releases.map(async (release) => {
          await applyKnative(target, release, { timeoutMs, log });
          mark(`knative ${release.component} applied`);
        }),
      );
    })();
    // Awaited below; a failure while the node starts must not go unhandled meanwhile.
    applied.catch(() => undefined);
    const [controllersKubeconfig] = await Promise.all([
      prepareNodeIdentity({ adminKubeconfig: cp.kubeconfigPath, nodeKubeconfig: cp.nodeKubeconfigPath!, out: path.join(stateDir, 'controllers.kubeconfig') }),
      writeToolImages(imageStore),
    ]);
    mark('node identity, image store');

    let nodeReady = false;
    node = await startProcess(
      sandbox.enter({
        name: 'promsnap-node',
        command: process.execPath,
        args: [
          '--import',
          'tsx',
          nodeMain,
          '--kubeconfig',
          cp.nodeKubeconfigPath!,
          '--controller-kubeconfig',
          controllersKubeconfig,
          '--node-ip',
          nodeIp,
          '--state-dir',
          path.join(stateDir, 'node'),
          '--images',
          imageStore,
          '--data-dir',
          path.join(dataDir, 'volumes'),
          '--shutdown-grace-seconds',
          String(options.shutdownGraceSeconds ?? 10),
          '--network',
          '--knative-ingress',
        ],
        cwd: repo,
        onLine: (line) => {
          if (line.includes('"msg":"node ready"')) nodeReady = true;
          options.onLine?.('node', line);
        },
        readyCheck: { what: 'the node to say it is ready', check: () => nodeReady },
        readyTimeoutMs: timeoutMs,
      }),
    );
    mark('node');
    options.onNodeReady?.({ kubeconfigPath: cp.kubeconfigPath, kubectl: cp.kubectl, getJson, imageStore });

    const dial = resolvingDial(sandbox, getJson);
    const open = async (to: ForwardTarget, hostPort?: number) => {
      const forward = await listenForward(dial, to, hostPort);
      forwards.add(forward);
      return forward;
    };
    const ingress = await open({ host: nodeIp, port: ingressPorts.public }, port(1, options.hostPorts?.ingress));
    const named: Record<string, Forward> = {};
    for (const [index, [name, to]] of Object.entries(options.forwards ?? {}).entries()) {
      named[name] = await open({ host: to.host, port: to.port }, port(2 + index, to.hostPort));
    }

    await applied;
    await controllerManagerReady;
    await Promise.all(
      releases.map(async (release) => {
        await waitForKnative(target, release, { timeoutMs, log });
        mark(`knative ${release.component}`);
      }),
    );
    mark('ready');

    return {
      kubeconfigPath: cp.kubeconfigPath,
      kubectl: cp.kubectl,
      apiUrl: cp.url,
      ingressUrl: ingress.url,
      forwards: named,
      imageStore,
      dataDir,
      stateDir,
      knative,
      controlPlane: cp,
      sandbox,
      timings,
      getJson,
      forward: open,
      memory: () => clusterMemory(sandbox),
      stop,
    };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}

/**
 * Dials into the sandbox; a Service's DNS name (name.namespace.svc[.cluster.local]) is looked up on each
 * connection as the cluster's DNS would answer it (its ClusterIP), so a forward outlives a Service re-made.
 */
function resolvingDial(sandbox: Sandbox, getJson: <T>(apiPath: string) => Promise<T>): Dial {
  return async (target) => {
    const match = serviceName.exec(target.host);
    if (!match) return sandbox.dial(target);
    const [, name, , namespace] = match;
    const service = await getJson<{ spec?: { clusterIP?: string } }>(`/api/v1/namespaces/${namespace}/services/${name}`);
    const clusterIp = service.spec?.clusterIP;
    if (!clusterIp || clusterIp === 'None') throw new Error(`Service ${namespace}/${name} has no ClusterIP to forward to`);
    return sandbox.dial({ host: clusterIp, port: target.port });
  };
}

/** A process's name for a memory table: its comm, or for Node (whose main thread is called MainThread) the script it runs. */
function commandOf(pid: number): string {
  const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  if (comm !== 'MainThread' && comm !== 'node') return comm;
  const script = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    .split('\0')
    .slice(1)
    .find((arg) => /\.(ts|js|mjs)$/.test(arg));
  return script ? `node ${script.split('/').slice(-3).join('/')}` : 'node';
}

/** RSS of every process in the sandbox's namespaces, from /proc. */
export function clusterMemory(sandbox: Pick<Sandbox, 'traces'>): ClusterMemory {
  const byCommand = new Map<string, { processes: number; rssBytes: number }>();
  let total = 0;
  for (const pid of processesIn(Object.values(sandbox.traces.namespaces))) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const rss = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024;
      const command = commandOf(pid);
      const entry = byCommand.get(command) ?? { processes: 0, rssBytes: 0 };
      entry.processes++;
      entry.rssBytes += rss;
      byCommand.set(command, entry);
      total += rss;
    } catch {
      // ended while we looked
    }
  }
  return {
    rssBytes: total,
    byCommand: [...byCommand.entries()].map(([command, entry]) => ({ command, ...entry })).sort((a, b) => b.rssBytes - a.rssBytes),
  };
}
