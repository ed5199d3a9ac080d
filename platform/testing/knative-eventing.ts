// Knative Eventing's own code, unmodified, on a test API server (apiserver.ts): its three controllers
// (core, MT channel-based broker, in-memory channel) and its data plane (PingSource adapter, broker
// ingress and filter, in-memory channel dispatcher) run as plain processes, and write every status
// themselves. What kubelet, kube-controller-manager and kube-proxy would provide is stood in for:
//   - the Deployments and Services Knative checks get their status / EndpointSlices written here;
//   - cluster names resolve through a loopback forward proxy (cluster-proxy.ts) given as HTTP_PROXY;
//   - each process gets a network namespace of its own where the machine allows (netns.ts), so the
//     dispatcher's fixed :8080 and the controllers' :8080 probes never meet each other or anyone else's.
// The facts behind each step are in the shared KNATIVE-EVENTING.md; the module's own config/ folder
// supplies the ConfigMaps, the InMemoryChannel CRD and the Services and Deployments being stood in for.
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { MissingToolError } from '../tools/find.js';
import { waitFor } from '../tools/wait.js';
import { startProcess, stopAll, type ManagedProcess, type StopPolicy } from '../tools/process.js';
import { parseObjects, type KubeObject } from '../manifests/index.js';
import { toolDir, versions } from '../tools/versions.js';
import type { TestApiServer } from './apiserver.js';
import { startClusterProxy, type ClusterProxy, type ProxyTarget } from './cluster-proxy.js';
import { HostBridges, networkIsolation, startIsolated, type Isolation } from './netns.js';
import { freePort, portInUse } from '../tools/ports.js';

export const SYSTEM_NAMESPACE = 'knative-eventing';
const fieldManager = 'promsnap-knative-harness';

export type Component = 'controller' | 'mtchannel_broker' | 'channel_controller' | 'channel_dispatcher' | 'ingress' | 'filter' | 'mtping';

export interface KnativeEventingOptions {
  /** Folder with the built binaries; default: the pinned release in the per-user cache. */
  binDir?: string;
  /** The knative.dev/eventing module (its config/ folder); default: the pinned one in the cache. */
  sourceDir?: string;
  /**
   * 'auto' (default): a network namespace per process where the machine allows one, else the host's
   * network (which needs :8080 and :8443 free for the channel dispatcher). 'host': always the latter.
   */
  isolation?: 'auto' | 'host';
  /** How long each process gets to answer its health probe. */
  startTimeoutMs?: number;
  /** Sees every line the processes print. */
  onLine?: (component: Component, line: string) => void;
}

export interface KnativeEventing {
  /** The forward proxy every data-plane process uses; tests send into the cluster and observe through it. */
  readonly proxy: ClusterProxy;
  /** 'namespaces' when each process has its own network namespace, 'host' otherwise. */
  readonly network: 'namespaces' | 'host';
  readonly processes: Readonly<Record<Component, ManagedProcess>>;
  /** Milliseconds spent applying Knative's objects, and starting its processes until each answered. */
  readonly timings: { objectsMs: number; processesMs: number; totalMs: number };
  /**
   * Stands in for Knative Serving: routes `http://NAME.NAMESPACE.svc.cluster.local` to target and writes
   * the Knative Service's status (address, URL, Ready) as Serving's controller would. The Service itself
   * must already exist. Returns the address written.
   */
  serveKnativeService(namespace: string, name: string, target: ProxyTarget): Promise<string>;
  /** The last lines a process printed. */
  recentOutput(component: Component): string;
  /** Stops every Knative process (double SIGTERM, then SIGKILL), the proxy and bridges. Idempotent. */
  stop(): Promise<void>;
}

function knativePaths(options: KnativeEventingOptions): { binDir: string; sourceDir: string } {
  const binDir = options.binDir ?? path.join(toolDir('knative-eventing'), 'bin');
  const sourceDir = options.sourceDir ?? path.join(toolDir('knative-eventing-src'), 'src');
  const missing = components.map((c) => c.binary).filter((b) => !existsSync(path.join(binDir, b)));
  if (missing.length > 0) {
    throw new MissingToolError(
      `Knative Eventing ${versions.knativeEventing} (${missing.join(', ')} in ${binDir})`,
      'bash platform/tools/provision.sh knative-eventing',
    );
  }
  if (!existsSync(path.join(sourceDir, 'config'))) {
    throw new MissingToolError(`Knative Eventing ${versions.knativeEventing} sources (${sourceDir}/config)`, 'bash platform/tools/provision.sh knative-crds');
  }
  return { binDir, sourceDir };
}

interface ComponentSpec {
  name: Component;
  binary: string;
  /** Sends events (so it needs the proxy) and serves them (so the proxy needs it). */
  dataPlane: boolean;
  /** Health path on its probe port (8080 in a pod). */
  probePath: string;
  /** A line the process prints once it works, for where its probe port cannot be reached. */
  startedLine?: RegExp;
  env(ports: PortPlan): Record<string, string>;
}

/** The ports each process binds: the pod's own numbers in a namespace, free loopback ones on the host. */
interface PortPlan {
  http: number;
  https: number;
  profiling: number;
}

// The eleven images cmd/controller insists on at start (it panics without them); nothing is scheduled.
const controllerImages = [
  'APISERVER_RA',
  'AUTH_PROXY',
  'EVENT_TRANSFORM_JSONATA',
  'INTEGRATION_SOURCE_TIMER',
  'INTEGRATION_SOURCE_AWS_S3',
  'INTEGRATION_SOURCE_AWS_SQS',
  'INTEGRATION_SOURCE_AWS_DDB_STREAMS',
  'INTEGRATION_SINK_LOG',
  'INTEGRATION_SINK_AWS_S3',
  'INTEGRATION_SINK_AWS_SQS',
  'INTEGRATION_SINK_AWS_SNS',
];

// The dispatcher first: on the host's network it must take :8080 before the controllers' probes do.
const components: ComponentSpec[] = [
  {
    name: 'channel_dispatcher',
    binary: 'channel_dispatcher',
    dataPlane: true,
    probePath: '/healthz',
    env: () => ({
      CONTAINER_NAME: 'dispatcher',
      METRICS_DOMAIN: 'knative.dev/inmemorychannel-dispatcher',
      MAX_IDLE_CONNS: '1000',
      MAX_IDLE_CONNS_PER_HOST: '1000',
    }),
  },
  {
    name: 'ingress',
    binary: 'ingress',
    dataPlane: true,
    probePath: '/healthz',
    env: (p) => ({
      CONTAINER_NAME: 'ingress',
      NAMESPACE: SYSTEM_NAMESPACE,
      METRICS_DOMAIN: 'knative.dev/internal/eventing',
      INGRESS_PORT: String(p.http),
      INGRESS_PORT_HTTPS: String(p.https),
    }),
  },
  {
    name: 'filter',
    binary: 'filter',
    dataPlane: true,
    probePath: '/healthz',
    env: (p) => ({
      CONTAINER_NAME: 'filter',
      NAMESPACE: SYSTEM_NAMESPACE,
      METRICS_DOMAIN: 'knative.dev/internal/eventing',
      FILTER_PORT: String(p.http),
      FILTER_PORT_HTTPS: String(p.https),
    }),
  },
  {
    name: 'controller',
    binary: 'controller',
    dataPlane: false,
    probePath: '/readiness',
    startedLine: /Starting controllers/,
    env: () => ({
      METRICS_DOMAIN: 'knative.dev/eventing',
      ...Object.fromEntries(controllerImages.map((name) => [`${name}_IMAGE`, `promsnap.invalid/not-scheduled/${name.toLowerCase()}`])),
    }),
  },
  {
    name: 'mtchannel_broker',
    binary: 'mtchannel_broker',
    dataPlane: false,
    probePath: '/readiness',
    startedLine: /Starting controllers/,
    env: () => ({ METRICS_DOMAIN: 'knative.dev/eventing' }),
  },
  {
    name: 'channel_controller',
    binary: 'channel_controller',
    dataPlane: false,
    probePath: '/readiness',
    startedLine: /Starting controllers/,
    env: (p) => ({
      METRICS_DOMAIN: 'knative.dev/inmemorychannel-controller',
      WEBHOOK_NAME: 'inmemorychannel-webhook',
      WEBHOOK_PORT: String(p.https),
      DISPATCHER_IMAGE: 'promsnap.invalid/not-scheduled/imc-dispatcher',
    }),
  },
  {
    name: 'mtping',
    binary: 'mtping',
    dataPlane: true,
    probePath: '/readiness',
    startedLine: /Starting controller/,
    env: () => ({ NAMESPACE: SYSTEM_NAMESPACE, K_COMPONENT: 'pingsource-mt-adapter', METRICS_DOMAIN: 'knative.dev/sources/ping' }),
  },
];

/** Knative's objects from its module, and the stand-ins for what a cluster's own components provide. */
async function knativeObjects(sourceDir: string): Promise<{ crd: KubeObject[]; objects: KubeObject[]; deployments: string[] }> {
  const config = path.join(sourceDir, 'config');
  const read = async (...parts: string[]) => {
    const file = path.join(config, ...parts);
    return parseObjects(await readFile(file, 'utf8'), file);
  };
  const configMapFiles = (await readdir(path.join(config, 'core', 'configmaps'))).filter((f) => /\.ya?ml$/.test(f)).sort();
  const configMaps = [
    ...(await Promise.all(configMapFiles.map((f) => read('core', 'configmaps', f)))).flat(),
    ...(await read('channels', 'in-memory-channel', 'configmaps', 'event-dispatcher.yaml')),
  ];
  const services = [
    ...(await read('channels', 'in-memory-channel', 'deployments', 'dispatcher-service.yaml')),
    ...(await read('brokers', 'mt-channel-broker', 'deployments', 'broker-ingress.yaml')),
    ...(await read('brokers', 'mt-channel-broker', 'deployments', 'broker-filter.yaml')),
  ].filter((o) => o.kind === 'Service' && o.apiVersion === 'v1');
  // The two Deployments Knative's reconcilers look at (and the PingSource one, scale); no pods run.
  const deployments = [
    ...(await read('channels', 'in-memory-channel', 'deployments', 'dispatcher.yaml')),
    ...(await read('core', 'deployments', 'pingsource-mt-adapter.yaml')),
  ].filter((o) => o.kind === 'Deployment');
  // Reconcilers only check that a ready endpoint exists behind each Service; the address is never dialled.
  const endpointSlices: KubeObject[] = services.map((service) => ({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${service.metadata.name}-stand-in`, namespace: SYSTEM_NAMESPACE, labels: { 'kubernetes.io/service-name': service.metadata.name } },
    addressType: 'IPv4',
    endpoints: [{ addresses: ['10.244.0.10'], conditions: { ready: true } }],
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  }));
  // The in-memory channel's webhook fills this with its certificates.
  const webhookSecret: KubeObject = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'inmemorychannel-webhook-certs', namespace: SYSTEM_NAMESPACE } };
  const namespace: KubeObject = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: SYSTEM_NAMESPACE } };
  return {
    crd: await read('channels', 'in-memory-channel', 'resources', 'in-memory-channel.yaml'),
    objects: [namespace, ...configMaps, ...services, ...deployments, ...endpointSlices, webhookSecret],
    deployments: deployments.map((d) => d.metadata.name),
  };
}

async function apply(api: TestApiServer, objects: KubeObject[]): Promise<void> {
  // Forced: on an API server where Knative already ran, its controllers own fields of the stand-ins
  // (the PingSource adapter's replicas and env); a new start puts back the module's own values.
  await api.kubectlWith(
    { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }) },
    'apply',
    '--server-side',
    '--force-conflicts',
    `--field-manager=${fieldManager}`,
    '-f',
    '-',
  );
}

/** What kube-controller-manager and kubelet would report for a Deployment whose one pod is up. */
function availableStatus(): Record<string, unknown> {
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  return {
    status: {
      observedGeneration: 1,
      replicas: 1,
      updatedReplicas: 1,
      readyReplicas: 1,
      availableReplicas: 1,
      conditions: [
        {
          type: 'Available',
          status: 'True',
          reason: 'MinimumReplicasAvailable',
          message: 'stand-in: the process runs locally',
          lastUpdateTime: now,
          lastTransitionTime: now,
        },
      ],
    },
  };
}

// Knative's receivers answer health probes only for kubelet's user agent (knative.dev/pkg/network
// IsKubeletProbe); anything else on that path is taken for an event.
const kubeletProbeAgent = `kube-probe/${versions.kubernetes.split('.').slice(0, 2).join('.')}`;

/** GET path on a target (TCP port or unix socket), as kubelet's probe would; true on 2xx. */
function probe(target: ProxyTarget, probePath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(
      {
        ...('socketPath' in target ? { socketPath: target.socketPath } : { host: target.host ?? '127.0.0.1', port: target.port }),
        path: probePath,
        timeout: 2_000,
        headers: { 'user-agent': kubeletProbeAgent },
      },
      (res) => {
        res.resume();
        resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300);
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

export async function startKnativeEventing(api: TestApiServer, options: KnativeEventingOptions = {}): Promise<KnativeEventing> {
  const started = Date.now();
  const { binDir, sourceDir } = knativePaths(options);
  const timeoutMs = options.startTimeoutMs ?? 60_000;
  // Short: unix socket paths are limited to 107 bytes.
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pske-'));
  const bridges = new HostBridges(dir);
  const running = new Map<Component, ManagedProcess>();
  let proxy: ClusterProxy | undefined;

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      await stopAll(running.values(), knativeStop);
      await proxy?.close();
      await bridges.close();
      await rm(dir, { recursive: true, force: true });
    })();
    return stopping;
  };

  try {
    const objectsStart = Date.now();
    const { crd, objects, deployments } = await knativeObjects(sourceDir);
    await apply(api, crd);
    // The channel controller's informers need the kind served before it starts.
    await api.kubectl('wait', '--for=condition=Established', '--timeout=60s', `crd/${crd[0]!.metadata.name}`);
    await apply(api, objects);
    for (const name of deployments) {
      await api.kubectl('patch', `deployment/${name}`, '-n', SYSTEM_NAMESPACE, '--subresource=status', '--type=merge', '-p', JSON.stringify(availableStatus()));
    }
    const objectsMs = Date.now() - objectsStart;

    const isolation: Isolation = options.isolation === 'host' ? { available: false, reason: 'isolation: host was asked for' } : await networkIsolation();
    const network = isolation.available ? 'namespaces' : 'host';
    if (!isolation.available) {
      // Without namespaces the dispatcher's ports are fixed in Knative's code: say so instead of hanging.
      for (const port of [8080, 8443]) {
        if (await portInUse(port)) {
          throw new Error(
            `Knative's channel dispatcher needs 127.0.0.1:${port} (a constant in its code), and something already listens there. ` +
              `Stop that process, or run where network namespaces are allowed (${isolation.reason}).`,
          );
        }
      }
    }

    proxy = await startClusterProxy({ port: await freePort() });
    const apiPort = Number(new URL(api.url).port);
    const plans = new Map<Component, PortPlan>();
    for (const spec of components) {
      plans.set(
        spec.name,
        isolation.available
          ? { http: 8080, https: 8443, profiling: 8008 }
          : spec.name === 'channel_dispatcher'
            ? { http: 8080, https: 8443, profiling: await freePort() }
            : { http: await freePort(), https: await freePort(), profiling: await freePort() },
      );
    }

    const processesStart = Date.now();
    const targets = new Map<Component, ProxyTarget>();
    // Spawned and registered first, waited for after: a failure stops every process already started.
    const launch = async (spec: ComponentSpec): Promise<() => Promise<void>> => {
      const ports = plans.get(spec.name)!;
      const env: Record<string, string> = {
        PATH: process.env['PATH'] ?? '/usr/bin:/bin',
        HOME: process.env['HOME'] ?? os.homedir(),
        KUBECONFIG: api.kubeconfigPath,
        SYSTEM_NAMESPACE,
        CONFIG_LOGGING_NAME: 'config-logging',
        CONFIG_OBSERVABILITY_NAME: 'config-observability',
        POD_NAME: `${spec.name.replaceAll('_', '-')}-promsnap-test`,
        PROFILING_PORT: String(ports.profiling),
        // Only ours: a proxy inherited from the developer's shell would send cluster names elsewhere.
        HTTP_PROXY: proxy!.url,
        NO_PROXY: '',
        ...spec.env(ports),
      };
      const common = {
        name: `knative-${spec.name}`,
        command: path.join(binDir, spec.binary),
        env,
        ...(options.onLine ? { onLine: (line: string) => options.onLine!(spec.name, line) } : {}),
      };
      let child: ManagedProcess;
      let isUp: () => Promise<boolean> | boolean;
      let upWhat: string;
      if (isolation.available) {
        const isolated = await startIsolated({
          ...common,
          isolation,
          bridges,
          dir,
          inbound: spec.dataPlane ? [apiPort, proxy!.port] : [apiPort],
          outbound: [ports.http],
        });
        child = isolated.process;
        const target = { socketPath: isolated.sockets.get(ports.http)! };
        if (spec.dataPlane) targets.set(spec.name, target);
        isUp = () => probe(target, spec.probePath);
        upWhat = `answer ${spec.probePath} on its port ${ports.http}`;
      } else {
        let seen = false;
        child = await startProcess({
          ...common,
          onLine: (line) => {
            if (spec.startedLine?.test(line)) seen = true;
            common.onLine?.(line);
          },
        });
        if (spec.startedLine) {
          // On the host's network the probe port 8080 belongs to the dispatcher: read the log instead.
          isUp = () => seen;
          upWhat = `print a line matching ${spec.startedLine}`;
        } else {
          const target = { port: ports.http };
          targets.set(spec.name, target);
          isUp = () => probe(target, spec.probePath);
          upWhat = `answer ${spec.probePath} on 127.0.0.1:${ports.http}`;
        }
      }
      running.set(spec.name, child);
      return async () => {
        try {
          await child.waitUntil(isUp, { what: `Knative's ${spec.name} to ${upWhat}`, before: 'it was up', timeoutMs });
        } catch (err) {
          if (!child.alive) throw err;
          throw new Error(`Knative's ${spec.name} did not ${upWhat} within ${timeoutMs} ms; last output:\n${child.recentOutput()}`, { cause: err });
        }
      };
    };
    if (isolation.available) {
      const launched = await Promise.allSettled(components.map(launch));
      const failedLaunch = launched.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failedLaunch) throw failedLaunch.reason;
      await Promise.all(launched.map((r) => (r as PromiseFulfilledResult<() => Promise<void>>).value()));
    } else {
      // One after another: the dispatcher must hold :8080 before the controllers' probes try for it.
      for (const spec of components) await (await launch(spec))();
    }
    const processesMs = Date.now() - processesStart;

    // Cluster names the controllers write, mapped to the processes serving them.
    proxy.route({ name: 'broker-ingress', host: `broker-ingress.${SYSTEM_NAMESPACE}.svc.cluster.local`, target: targets.get('ingress')! });
    proxy.route({ name: 'broker-filter', host: `broker-filter.${SYSTEM_NAMESPACE}.svc.cluster.local`, target: targets.get('filter')! });
    proxy.route({ name: 'imc-dispatcher', host: `imc-dispatcher.${SYSTEM_NAMESPACE}.svc.cluster.local`, target: targets.get('channel_dispatcher')! });
    // Each InMemoryChannel gets an ExternalName Service <channel>-kn-channel pointing at the dispatcher.
    proxy.route({ name: 'imc-dispatcher', host: /^[a-z0-9-]+-kn-channel\.[a-z0-9-]+\.svc\.cluster\.local$/, target: targets.get('channel_dispatcher')! });

    const activeProxy = proxy;
    return {
      proxy: activeProxy,
      network,
      processes: Object.fromEntries(running) as Record<Component, ManagedProcess>,
      timings: { objectsMs, processesMs, totalMs: Date.now() - started },
      async serveKnativeService(namespace, name, target) {
        const host = `${name}.${namespace}.svc.cluster.local`;
        activeProxy.route({ name: `ksvc ${namespace}/${name}`, host, target });
        const url = `http://${host}`;
        const ksvc = JSON.parse((await api.kubectl('get', 'services.serving.knative.dev', name, '-n', namespace, '-o', 'json')).stdout) as KubeObject;
        const generation = (ksvc.metadata as { generation?: number }).generation ?? 1;
        const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
        const ready = (type: string) => ({ type, status: 'True', lastTransitionTime: now });
        const status = {
          observedGeneration: generation,
          url,
          address: { url },
          latestCreatedRevisionName: `${name}-00001`,
          latestReadyRevisionName: `${name}-00001`,
          traffic: [{ revisionName: `${name}-00001`, latestRevision: true, percent: 100 }],
          conditions: [ready('ConfigurationsReady'), ready('Ready'), ready('RoutesReady')],
        };
        await api.kubectl(
          'patch',
          'services.serving.knative.dev',
          name,
          '-n',
          namespace,
          '--subresource=status',
          '--type=merge',
          '-p',
          JSON.stringify({ status }),
        );
        return url;
      },
      recentOutput: (component) => running.get(component)?.recentOutput() ?? '',
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * Knative's processes wait on a first SIGTERM (the channel controller drains its webhook for 45 s); a
 * second one makes them exit at once. Anything still running after that is killed.
 */
const knativeStop: StopPolicy = {
  steps: [
    { signal: 'SIGTERM', waitMs: 1_500 },
    { signal: 'SIGTERM', waitMs: 5_000 },
  ],
};

/** A resource's Ready condition, waited for; the error names the conditions that are not True. */
export async function waitForReady(api: TestApiServer, resource: string, namespace: string, name: string, timeoutMs = 60_000): Promise<KubeObject> {
  let last: KubeObject | undefined;
  try {
    return await waitFor(
      async () => {
        const result = await api.kubectlWith({ allowFailure: true }, 'get', resource, name, '-n', namespace, '-o', 'json');
        if (result.code !== 0) return undefined;
        last = JSON.parse(result.stdout) as KubeObject;
        return conditions(last).some((c) => c.type === 'Ready' && c.status === 'True') ? last : undefined;
      },
      { what: `${resource} ${namespace}/${name} to be Ready`, timeoutMs, intervalMs: 200 },
    );
  } catch (err) {
    const failing = last
      ? conditions(last)
          .filter((c) => c.status !== 'True')
          .map((c) => `  ${c.type}=${c.status} ${c.reason ?? ''} ${c.message ?? ''}`.trimEnd())
          .join('\n')
      : '  (not found)';
    throw new Error(`${(err as Error).message}\nconditions not True:\n${failing}`, { cause: err });
  }
}

export function conditions(object: KubeObject): Array<{ type: string; status: string; reason?: string; message?: string }> {
  return ((object['status'] as { conditions?: unknown[] } | undefined)?.conditions ?? []) as Array<{
    type: string;
    status: string;
    reason?: string;
    message?: string;
  }>;
}
