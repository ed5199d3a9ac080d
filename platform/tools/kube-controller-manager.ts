// kube-controller-manager, the one way our code runs it: the controllers a local cluster needs, flags
// that keep every file it writes under a given dir (by default it creates
// /usr/libexec/kubernetes/kubelet-plugins/volume/exec on the host), its version, and readiness
// (/healthz on its own port, whose self-signed certificate a health check does not verify), on the host
// or in a sandbox.
import path from 'node:path';
import { cachedBinary } from './find.js';
import type { Dial } from './forward.js';
import { getOk } from './http.js';
import { kubernetesBinaryVersion } from './kube-apiserver.js';
import { startProcess, type ManagedProcess, type StartOptions } from './process.js';

/**
 * The controllers started, by what needs them. Left out: node IPAM (the node sets its own podCIDR), CSR
 * signing and approval, bootstrap tokens, HPA (no metrics API; Knative's KPA does the scaling),
 * DaemonSet/ReplicationController, attach/detach and expansion of volumes, DRA.
 */
export const platformControllers = [
  // Workloads: Deployment -> ReplicaSet -> Pod, StatefulSets (Knative Eventing's request-reply), Jobs
  // (minio-setup) and their clean-up.
  'deployment-controller',
  'replicaset-controller',
  'statefulset-controller',
  'job-controller',
  'cronjob-controller',
  'ttl-after-finished-controller',
  // Services: Endpoints (Knative reads them), EndpointSlices (the service proxy), slices mirrored from
  // hand-written Endpoints (Services without selectors).
  'endpoints-controller',
  'endpointslice-controller',
  'endpointslice-mirroring-controller',
  // Object lifecycle: owner references (a Revision's Deployment), namespace deletion, quotas, PDBs (Knative ships some).
  'garbage-collector-controller',
  'namespace-controller',
  'resourcequota-controller',
  'disruption-controller',
  // Identity: `default` ServiceAccounts, their legacy token Secrets, kube-root-ca.crt in every namespace,
  // and aggregated ClusterRoles (Knative's knative-serving-admin is one).
  'serviceaccount-controller',
  'serviceaccount-token-controller',
  'root-ca-certificate-publisher-controller',
  'clusterrole-aggregation-controller',
  // The node: NotReady when its Lease stops, taint-based eviction, pods of deleted nodes collected.
  'node-lifecycle-controller',
  'taint-eviction-controller',
  'pod-garbage-collector-controller',
  // Volumes: claims bound to the node's local PVs, and deletion protection released when unused.
  'persistentvolume-binder-controller',
  'persistentvolumeclaim-protection-controller',
  'persistentvolume-protection-controller',
] as const;

export interface KubeControllerManagerConfig {
  kubeconfig: string;
  /** Its serving certificate, the flex-volume plugin dir and anything else it writes go under here. */
  dir: string;
  /** The CA that verifies the API server: published as kube-root-ca.crt. */
  rootCaFile: string;
  /** The API server's service-account key: signs legacy token Secrets. */
  serviceAccountKeyFile: string;
  bindAddress: string;
  securePort: number;
  controllers?: readonly string[];
  /** Appended last. */
  extraArgs?: string[];
}

export function kubeControllerManagerArgs(config: KubeControllerManagerConfig): string[] {
  return [
    `--kubeconfig=${config.kubeconfig}`,
    `--controllers=${(config.controllers ?? platformControllers).join(',')}`,
    // Each controller acts with its own ServiceAccount and RBAC role, as on a kubeadm cluster.
    '--use-service-account-credentials=true',
    `--root-ca-file=${config.rootCaFile}`,
    `--service-account-private-key-file=${config.serviceAccountKeyFile}`,
    '--leader-elect=false',
    '--cluster-name=promsnap',
    `--bind-address=${config.bindAddress}`,
    `--secure-port=${config.securePort}`,
    `--cert-dir=${path.join(config.dir, 'certs')}`,
    `--flex-volume-plugin-dir=${path.join(config.dir, 'flexvolume')}`,
    ...(config.extraArgs ?? []),
  ];
}

export function kubeControllerManagerVersion(binary: string = cachedBinary('kube-controller-manager')): Promise<string> {
  return kubernetesBinaryVersion(binary);
}

export interface StartKubeControllerManagerOptions {
  config: KubeControllerManagerConfig;
  binary?: string;
  enter?: (options: StartOptions) => StartOptions;
  dial?: Dial;
  readyTimeoutMs?: number;
  onLine?: (line: string) => void;
  onSpawn?: StartOptions['onSpawn'];
}

/** Starts kube-controller-manager and resolves once its /healthz answers. */
export async function startKubeControllerManager(options: StartKubeControllerManagerOptions): Promise<ManagedProcess> {
  const { config } = options;
  const url = `https://${config.bindAddress}:${config.securePort}/healthz`;
  const start: StartOptions = {
    name: 'kube-controller-manager',
    command: options.binary ?? cachedBinary('kube-controller-manager'),
    args: kubeControllerManagerArgs(config),
    cwd: config.dir,
    readyCheck: { what: `kube-controller-manager at ${url}`, check: () => getOk(url, { insecure: true, ...(options.dial ? { dial: options.dial } : {}) }) },
    readyTimeoutMs: options.readyTimeoutMs ?? 60_000,
    ...(options.onLine ? { onLine: options.onLine } : {}),
    ...(options.onSpawn ? { onSpawn: options.onSpawn } : {}),
  };
  return startProcess(options.enter ? options.enter(start) : start);
}
