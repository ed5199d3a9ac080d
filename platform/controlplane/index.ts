// A Kubernetes control plane as one object, in the manner of controller-runtime's envtest
// (pkg/envtest/server.go): etcd and kube-apiserver (and, when asked, kube-controller-manager with the
// controllers the platform needs), throwaway tokens and service-account key, CRDs installed from folders
// and waited for, kubeconfigs handed back, and one stop() that ends every process and removes every file.
// Two placements:
//   - 'loopback': on the host's loopback, free ports, RBAC only: the test API server of the tests that
//     need a real API server but nothing running pods (platform/testing/apiserver.ts wraps it);
//   - { sandbox }: inside a cluster sandbox (tools/sandbox.ts), kube-apiserver bound on the bridge address
//     (10.244.0.1:6443) with the lease endpoint reconciler (the `kubernetes` Service gets a real endpoint),
//     aggregator routing (webhooks reached by endpoint IP: there is no kube-proxy), Node and RBAC
//     authorization with NodeRestriction, and a static token for the node `promsnap-node` (group
//     system:nodes). The host reaches it through a forwarded loopback port; every kubeconfig verifies the
//     API server's own CA.
import { generateKeyPair, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startEtcd } from '../tools/etcd.js';
import { cachedBinary, findTool } from '../tools/find.js';
import { httpRequest, type RequestOptions } from '../tools/http.js';
import { servingCa, startKubeApiserver, type KubeApiserverConfig } from '../tools/kube-apiserver.js';
import { startKubeControllerManager } from '../tools/kube-controller-manager.js';
import { kubectlFor, type Kubectl } from '../tools/kubectl.js';
import { freePort, retryOnPortClash } from '../tools/ports.js';
import type { ManagedProcess } from '../tools/process.js';
import type { Forward, Sandbox } from '../tools/sandbox.js';
import { installCrds } from './crds.js';
import { renderKubeconfig } from './kubeconfig.js';

export { installCrds, knativeCrdDirectoryPaths } from './crds.js';

export type Component = 'etcd' | 'kube-apiserver' | 'kube-controller-manager';

/** The one node of a local cluster, as its kubelet stand-in registers it. */
export const nodeName = 'promsnap-node';

export interface ControlPlaneOptions {
  placement: 'loopback' | { sandbox: Sandbox };
  /** Folders whose CRDs are applied before start returns, each waited for until Established and served. Default none. */
  crdDirectoryPaths?: string[];
  /** kube-controller-manager with the controllers the platform needs (tools/kube-controller-manager.ts). */
  controllerManager?: boolean;
  /**
   * Whether start waits for kube-controller-manager to be ready (default true). False: start returns once
   * the API server serves (and the CRDs are installed); controllerManagerReady says when the controllers
   * work, which catch up with whatever was created meanwhile (the local cluster starts its node then).
   */
  awaitControllerManager?: boolean;
  /** Extra kube-apiserver flags (`--name=value`), appended after the control plane's own. */
  apiServerArgs?: string[];
  /** Paths of the binaries; default: the pinned versions in the per-user cache, kubectl from PATH. */
  binaries?: { etcd?: string; kubeApiserver?: string; kubeControllerManager?: string; kubectl?: string };
  /** How long each process gets to become ready, and the CRDs to be served. */
  startTimeoutMs?: number;
  /** Sandbox placement: the host port forwarded to the API server (default a free one). */
  hostPort?: number;
  /** Sees every line the processes print (for debugging a test). */
  onLine?: (component: Component, line: string) => void;
}

export interface ControlPlane {
  readonly placement: 'loopback' | 'sandbox';
  /** https://127.0.0.1:PORT, reachable from the host (a forward in the sandbox placement). */
  readonly url: string;
  /** https://10.244.0.1:6443 in the sandbox placement: the address processes inside use. */
  readonly inClusterUrl?: string;
  /** Verifies url (with tls-server-name tlsServerName) and inClusterUrl. */
  readonly caPem: string;
  /** The name url is verified against, when its host is not in the certificate (sandbox placement). */
  readonly tlsServerName?: string;
  /** Admin (system:masters), host side: server url. */
  readonly kubeconfigPath: string;
  /** Admin, sandbox side: server inClusterUrl. */
  readonly inClusterKubeconfigPath?: string;
  /** system:node:promsnap-node (group system:nodes), for the node process: server inClusterUrl. */
  readonly nodeKubeconfigPath?: string;
  /** Environment for host processes that should talk to this control plane (KUBECONFIG, KUBECACHEDIR). */
  readonly env: NodeJS.ProcessEnv;
  /** The admin's bearer token. */
  readonly token: string;
  /** Holds keys, kubeconfigs, etcd's data and kubectl's cache; removed by stop(). */
  readonly dir: string;
  /** Names of the CRDs installed at start. */
  readonly crds: readonly string[];
  /** Milliseconds each start-up phase took, for reporting (controllerManagerMs once it is ready). */
  readonly timings: { etcdMs: number; apiServerMs: number; controllerManagerMs: number; crdsMs: number; totalMs: number };
  readonly processes: { readonly etcd: ManagedProcess; readonly kubeApiserver: ManagedProcess; readonly kubeControllerManager?: ManagedProcess };
  /** Resolves once kube-controller-manager is ready (at once without one); rejects if it failed to start. */
  readonly controllerManagerReady: Promise<void>;
  /** kubectl against url as the admin. */
  kubectl: Kubectl;
  /** GET a path on the API server as the admin; the body parsed as JSON. */
  getJson<T = unknown>(apiPath: string): Promise<T>;
  /** Any request on the API server as the admin; the answer as it came. */
  request: (method: string, apiPath: string, body?: { text: string; contentType: string }) => Promise<{ status: number; body: string }>;
  /** Stops kube-controller-manager, kube-apiserver, then etcd, and removes dir. Safe to call more than once. */
  stop(): Promise<void>;
}

/** The ports inside a sandbox: nothing else listens there, so they are the components' usual ones. */
const sandboxPorts = { etcdClient: 2379, etcdPeer: 2380, apiServer: 6443, controllerManager: 10257 };
const hostServerName = 'kubernetes.default.svc';

export async function startControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  const started = Date.now();
  const sandbox = options.placement === 'loopback' ? undefined : options.placement.sandbox;
  const etcdBinary = options.binaries?.etcd ?? cachedBinary('etcd');
  const apiServerBinary = options.binaries?.kubeApiserver ?? cachedBinary('kube-apiserver');
  const controllerManagerBinary = options.controllerManager ? (options.binaries?.kubeControllerManager ?? cachedBinary('kube-controller-manager')) : undefined;
  const kubectlBinary = options.binaries?.kubectl ?? findTool('kubectl');
  const timeoutMs = options.startTimeoutMs ?? 60_000;
  const lines = (component: Component) => (options.onLine ? { onLine: (line: string) => options.onLine!(component, line) } : {});
  const enter = sandbox ? { enter: sandbox.enter.bind(sandbox), dial: sandbox.dial } : {};

  let dir: string;
  if (sandbox) {
    dir = path.join(sandbox.dir, 'controlplane');
    await mkdir(dir, { mode: 0o700 });
  } else {
    dir = await mkdtemp(path.join(os.tmpdir(), 'promsnap-apiserver-'));
  }
  const running: ManagedProcess[] = [];
  let forward: Forward | undefined;
  let stopping: Promise<void> | undefined;
  /** The controller manager while it starts in the background (awaitControllerManager false). */
  let controllerManagerStarting: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      // The API server after the controller manager, etcd last: stopped before its clients, each would
      // spend its grace period retrying.
      for (const child of [...running].reverse()) await child.stop('SIGTERM', 10_000);
      // A controller manager spawned after that was stopped at its spawn (onSpawn); its start fails then.
      await controllerManagerStarting?.catch(() => undefined);
      await forward?.close();
      await rm(dir, { recursive: true, force: true });
    })();
    return stopping;
  };

  try {
    const credentials = await writeCredentials(dir, sandbox !== undefined);

    const etcdStart = Date.now();
    const etcd = sandbox
      ? await startEtcd({
          binary: etcdBinary,
          dataDir: path.join(dir, 'etcd'),
          clientUrl: `http://127.0.0.1:${sandboxPorts.etcdClient}`,
          peerUrl: `http://127.0.0.1:${sandboxPorts.etcdPeer}`,
          readyTimeoutMs: timeoutMs,
          ...enter,
          ...lines('etcd'),
        }).then((child) => ({ child, clientUrl: `http://127.0.0.1:${sandboxPorts.etcdClient}` }))
      : await retryOnPortClash(async () => {
          const clientUrl = `http://127.0.0.1:${await freePort()}`;
          const peerUrl = `http://127.0.0.1:${await freePort()}`;
          // A failed attempt may have left a member's data recorded under its old peer URL.
          await rm(path.join(dir, 'etcd'), { recursive: true, force: true });
          const child = await startEtcd({
            binary: etcdBinary,
            dataDir: path.join(dir, 'etcd'),
            clientUrl,
            peerUrl,
            readyTimeoutMs: timeoutMs,
            ...lines('etcd'),
          });
          return { child, clientUrl };
        });
    running.push(etcd.child);
    const etcdMs = Date.now() - etcdStart;

    const apiStart = Date.now();
    const certDir = path.join(dir, 'certs');
    const common = {
      etcdServers: etcd.clientUrl,
      certDir,
      tokenAuthFile: credentials.tokenFile,
      serviceAccountKeyFile: credentials.serviceAccountKeyFile,
      serviceClusterIpRange: '10.96.0.0/16',
      extraArgs: options.apiServerArgs ?? [],
    };
    let url: string;
    let inClusterUrl: string | undefined;
    if (sandbox) {
      const address = sandbox.network.address.split('/')[0]!;
      const config: KubeApiserverConfig = {
        ...common,
        bindAddress: address,
        advertiseAddress: address,
        securePort: sandboxPorts.apiServer,
        endpointReconciler: 'lease',
        authorizationModes: ['Node', 'RBAC'],
        admissionPlugins: ['NodeRestriction'],
        aggregatorRouting: true,
        kubeletAddressTypes: ['InternalIP'],
      };
      inClusterUrl = `https://${address}:${sandboxPorts.apiServer}`;
      running.push(
        await startKubeApiserver({
          config,
          binary: apiServerBinary,
          token: credentials.admin,
          readyTimeoutMs: timeoutMs,
          ...enter,
          ...lines('kube-apiserver'),
        }),
      );
      forward = await sandbox.forward({ host: address, port: sandboxPorts.apiServer }, options.hostPort);
      url = `https://127.0.0.1:${forward.hostPort}`;
    } else {
      const api = await retryOnPortClash(async () => {
        const port = await freePort();
        const config: KubeApiserverConfig = {
          ...common,
          bindAddress: '127.0.0.1',
          advertiseAddress: '127.0.0.1',
          securePort: port,
          // Nothing routes to it through the `kubernetes` Service here, and the reconciler refuses a loopback address.
          endpointReconciler: 'none',
          authorizationModes: ['RBAC'],
        };
        const child = await startKubeApiserver({
          config,
          binary: apiServerBinary,
          token: credentials.admin,
          readyTimeoutMs: timeoutMs,
          ...lines('kube-apiserver'),
        });
        return { child, url: `https://127.0.0.1:${port}` };
      });
      running.push(api.child);
      url = api.url;
    }
    const apiServerMs = Date.now() - apiStart;
    const caPem = servingCa(certDir)!;
    const caFile = path.join(dir, 'ca.crt');
    await writeFile(caFile, caPem);
    const tlsServerName = sandbox ? hostServerName : undefined;

    const clusterName = sandbox ? 'promsnap-local' : 'promsnap-test';
    const kubeconfigPath = path.join(dir, 'kubeconfig');
    await writeSecret(
      kubeconfigPath,
      renderKubeconfig({ name: clusterName, server: url, caPem, ...(tlsServerName ? { tlsServerName } : {}), user: 'admin', token: credentials.admin }),
    );
    let inClusterKubeconfigPath: string | undefined;
    let nodeKubeconfigPath: string | undefined;
    if (inClusterUrl) {
      inClusterKubeconfigPath = path.join(dir, 'in-cluster.kubeconfig');
      await writeSecret(inClusterKubeconfigPath, renderKubeconfig({ name: clusterName, server: inClusterUrl, caPem, user: 'admin', token: credentials.admin }));
      nodeKubeconfigPath = path.join(dir, 'node.kubeconfig');
      await writeSecret(
        nodeKubeconfigPath,
        renderKubeconfig({ name: clusterName, server: inClusterUrl, caPem, user: `system:node:${nodeName}`, token: credentials.node! }),
      );
    }
    const kubectlCache = path.join(dir, 'kubectl-cache');
    await mkdir(kubectlCache);
    // kubectl's discovery cache is keyed by host:port; a folder of our own keeps ~/.kube clean.
    const env = { ...process.env, KUBECONFIG: kubeconfigPath, KUBECACHEDIR: kubectlCache };
    const kubectl = kubectlFor({ binary: kubectlBinary, env });
    /** The API server as the admin, verified against its CA. */
    const asAdmin = (apiPath: string, options: RequestOptions = {}) =>
      httpRequest(`${url}${apiPath}`, { ca: caPem, token: credentials.admin, ...(tlsServerName ? { servername: tlsServerName } : {}), ...options });
    const request: ControlPlane['request'] = (method, apiPath, body) =>
      asAdmin(apiPath, { method, timeoutMs: 30_000, ...(body ? { body: body.text, contentType: body.contentType } : {}) });
    const getJson = async <T>(apiPath: string): Promise<T> => {
      const res = await asAdmin(apiPath);
      if (res.status !== 200) throw new Error(`GET ${apiPath}: ${res.status} ${res.body.slice(0, 500)}`);
      return JSON.parse(res.body) as T;
    };

    const controllerManagerStart = Date.now();
    const processes: { etcd: ManagedProcess; kubeApiserver: ManagedProcess; kubeControllerManager?: ManagedProcess } = {
      etcd: running[0]!,
      kubeApiserver: running[1]!,
    };
    const timings = { etcdMs, apiServerMs, controllerManagerMs: 0, crdsMs: 0, totalMs: 0 };
    const controllerManagerReady =
      controllerManagerBinary === undefined
        ? Promise.resolve()
        : startControllerManager({
            binary: controllerManagerBinary,
            dir: path.join(dir, 'kube-controller-manager'),
            server: inClusterUrl ?? url,
            caPem,
            caFile,
            clusterName,
            credentials,
            getJson,
            inSandbox: sandbox !== undefined,
            timeoutMs,
            ...enter,
            ...lines('kube-controller-manager'),
            // Held from its first moment: stop() may come while it is still starting.
            onSpawn: (child) => {
              running.push(child);
              processes.kubeControllerManager = child;
              if (stopping) void child.stop('SIGKILL', 1_000);
            },
          }).then(() => {
            timings.controllerManagerMs = Date.now() - controllerManagerStart;
          });
    controllerManagerStarting = controllerManagerReady;
    // Awaited below, or by the caller: a failure meanwhile must not go unhandled.
    controllerManagerReady.catch(() => undefined);
    const crdStart = Date.now();
    const dirs = options.crdDirectoryPaths ?? [];
    const crdNames = dirs.length === 0 ? [] : await installCrds(dirs, kubectl.with, getJson, timeoutMs);
    timings.crdsMs = Date.now() - crdStart;
    if (options.awaitControllerManager !== false) await controllerManagerReady;
    timings.totalMs = Date.now() - started;

    return {
      placement: sandbox ? 'sandbox' : 'loopback',
      url,
      ...(inClusterUrl ? { inClusterUrl } : {}),
      caPem,
      ...(tlsServerName ? { tlsServerName } : {}),
      kubeconfigPath,
      ...(inClusterKubeconfigPath ? { inClusterKubeconfigPath } : {}),
      ...(nodeKubeconfigPath ? { nodeKubeconfigPath } : {}),
      env,
      token: credentials.admin,
      dir,
      crds: crdNames,
      timings,
      processes,
      controllerManagerReady,
      kubectl,
      getJson,
      request,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

interface Credentials {
  admin: string;
  controllerManager: string;
  node?: string;
  tokenFile: string;
  serviceAccountKeyFile: string;
}

/** Static tokens (admin; the controller manager; the node when asked) and the service-account key. */
async function writeCredentials(dir: string, withNode: boolean): Promise<Credentials> {
  const token = () => randomBytes(24).toString('hex');
  const admin = token();
  const controllerManager = token();
  const node = withNode ? token() : undefined;
  const tokenFile = path.join(dir, 'tokens.csv');
  // token,user,uid,"groups": the RBAC bootstrap policy binds system:kube-controller-manager by user name,
  // the Node authorizer and NodeRestriction know a node by `system:node:<name>` in group system:nodes.
  const rows = [
    `${admin},admin,admin,"system:masters"`,
    `${controllerManager},system:kube-controller-manager,system:kube-controller-manager`,
    ...(node ? [`${node},system:node:${nodeName},system:node:${nodeName},"system:nodes"`] : []),
  ];
  await writeSecret(tokenFile, rows.join('\n') + '\n');
  const { privateKey } = await promisify(generateKeyPair)('rsa', { modulusLength: 2048 });
  const serviceAccountKeyFile = path.join(dir, 'service-account.key');
  await writeSecret(serviceAccountKeyFile, privateKey.export({ type: 'pkcs1', format: 'pem' }));
  return { admin, controllerManager, ...(node ? { node } : {}), tokenFile, serviceAccountKeyFile };
}

function writeSecret(file: string, content: string | Buffer): Promise<void> {
  return writeFile(file, content, { mode: 0o600 });
}

interface ControllerManagerStart {
  binary: string;
  dir: string;
  server: string;
  caPem: string;
  caFile: string;
  clusterName: string;
  credentials: Credentials;
  getJson: <T>(apiPath: string) => Promise<T>;
  inSandbox: boolean;
  timeoutMs: number;
  enter?: Sandbox['enter'];
  dial?: Sandbox['dial'];
  onLine?: (line: string) => void;
  onSpawn: (child: ManagedProcess) => void;
}

/**
 * kube-controller-manager as system:kube-controller-manager, ready once its /healthz answers and its
 * controllers work: the `default` ServiceAccount and the kube-root-ca.crt ConfigMap exist in `default`
 * (what a pod needs before the ServiceAccount admission lets it be created).
 */
async function startControllerManager(options: ControllerManagerStart): Promise<ManagedProcess> {
  await mkdir(options.dir, { mode: 0o700 });
  const kubeconfig = path.join(options.dir, 'kubeconfig');
  await writeSecret(
    kubeconfig,
    renderKubeconfig({
      name: options.clusterName,
      server: options.server,
      caPem: options.caPem,
      user: 'system:kube-controller-manager',
      token: options.credentials.controllerManager,
    }),
  );
  const start = (securePort: number) =>
    startKubeControllerManager({
      config: {
        kubeconfig,
        dir: options.dir,
        rootCaFile: options.caFile,
        serviceAccountKeyFile: options.credentials.serviceAccountKeyFile,
        bindAddress: '127.0.0.1',
        securePort,
      },
      binary: options.binary,
      readyTimeoutMs: options.timeoutMs,
      ...(options.enter ? { enter: options.enter } : {}),
      ...(options.dial ? { dial: options.dial } : {}),
      ...(options.onLine ? { onLine: options.onLine } : {}),
      onSpawn: options.onSpawn,
    });
  const child = options.inSandbox ? await start(sandboxPorts.controllerManager) : await retryOnPortClash(async () => start(await freePort()));
  try {
    await child.waitUntil(
      async () => {
        await options.getJson('/api/v1/namespaces/default/serviceaccounts/default');
        await options.getJson('/api/v1/namespaces/default/configmaps/kube-root-ca.crt');
        return true;
      },
      { what: 'the default ServiceAccount and kube-root-ca.crt in namespace default', timeoutMs: options.timeoutMs, intervalMs: 200 },
    );
  } catch (err) {
    await child.stop('SIGKILL', 1_000);
    throw err;
  }
  return child;
}
