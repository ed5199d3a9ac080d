// What a cluster makes of a workload in the rendered manifests: the pods it would run, with the
// namespace, names, labels, annotations, containers and ports Kubernetes (and Knative Serving, for a
// Knative Service) give them. The local runner starts one local process per such pod and announces
// it to Prometheus with these very properties, so the manifests' relabel rules see what they would
// see in a cluster. Pure: no I/O.
import type { EnvFromSource, EnvVar, PodSpec, ServicePort } from '../manifests/index.js';

/** The part of a Kubernetes object the runner reads; platform/manifests hands these over as parsed YAML. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  /** Untyped YAML whose shape depends on the kind: read through serviceSpec() and workloadSpec(). */
  spec?: unknown;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

/** The parts of a core Service's spec the runner reads. */
export interface ServiceSpec {
  selector?: Record<string, string>;
  type?: string;
  ports?: ServicePort[];
}

/** The parts of a pod-making object's spec the runner reads (Deployment, StatefulSet, DaemonSet, Job, Knative Service). */
export interface WorkloadSpec {
  replicas?: number;
  template?: {
    metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
    spec?: PodSpec;
  };
}

/** A core Service's spec, as the manifests give it. */
export function serviceSpec(service: KubeObject): ServiceSpec {
  return (service.spec as ServiceSpec | undefined) ?? {};
}

/** A pod-making object's spec, as the manifests give it. */
export function workloadSpec(workload: KubeObject): WorkloadSpec {
  return (workload.spec as WorkloadSpec | undefined) ?? {};
}

export interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol: string;
}

export interface Container {
  name: string;
  image: string;
  ports: ContainerPort[];
  env: EnvVar[];
  envFrom: EnvFromSource[];
  args: string[];
  /** False for init containers; Prometheus labels those __meta_kubernetes_pod_container_init="true". */
  init: boolean;
}

/** The pods one workload runs, as the cluster would shape them. */
export interface PodTemplate {
  /** The manifest object the pods come from. */
  source: { kind: string; name: string };
  namespace: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  containers: Container[];
  /** The object Prometheus names as the pod's controller (ReplicaSet, StatefulSet, ...). */
  controller: { kind: string; name: string };
  /** Environment Knative sets in the user container (PORT, K_SERVICE, ...). */
  platformEnv: Record<string, string>;
  /** How many pods the manifest asks for (replicas, or a Knative Service's min-scale, at least 1). */
  replicas: number;
  podName(index: number): string;
}

/** One pod the runner stands in for with a local process: each container port mapped to a local one. */
export interface LocalPod {
  template: PodTemplate;
  name: string;
  uid: string;
  /** Where the local process listens; every container port is served on this host. */
  host: string;
  /** containerPort (as in the manifest) -> the local port the process really listens on. */
  ports: Map<number, number>;
  /** Whether the local process has started (phase Running) rather than not yet (Pending). */
  running(): boolean;
  /** Whether the local process passed its readiness check, as kubelet would report it. */
  ready(): boolean;
}

const knativeServingGroup = 'serving.knative.dev';

/** Kubernetes' safe alphabet for generated name suffixes (no vowels, no look-alike digits). */
const alphabet = 'bcdfghjklmnpqrstvwxz2456789';

/** A stable suffix of `length` characters from `seed`: the local pods keep their names across restarts. */
export function nameSuffix(seed: string, length: number): string {
  // FNV-1a, as Kubernetes hashes pod templates; only stability matters here, not the exact value.
  let hash = 0x811c9dc5;
  for (const char of seed) {
    hash ^= char.codePointAt(0)!;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  let out = '';
  for (let i = 0; i < length; i++) {
    out += alphabet[hash % alphabet.length];
    hash = Math.imul(hash ^ (i + 1), 0x01000193) >>> 0;
  }
  return out;
}

/** A UUID-shaped id derived from `seed`, for the uid labels a cluster would assign. */
export function stableUid(seed: string): string {
  const hex = Array.from({ length: 4 }, (_, i) => {
    let hash = 0x811c9dc5 ^ i;
    for (const char of seed) hash = Math.imul(hash ^ char.codePointAt(0)!, 0x01000193) >>> 0;
    return hash.toString(16).padStart(8, '0');
  }).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

function containersOf(spec: PodSpec | undefined, init: boolean): Container[] {
  return (spec?.[init ? 'initContainers' : 'containers'] ?? []).map((c) => ({
    name: String(c.name ?? ''),
    image: String(c.image ?? ''),
    ports: (c.ports ?? []).map((p) => ({
      ...(p.name !== undefined ? { name: String(p.name) } : {}),
      containerPort: Number(p.containerPort),
      protocol: String(p.protocol ?? 'TCP'),
    })),
    env: c.env ?? [],
    envFrom: c.envFrom ?? [],
    args: ((c.args ?? []) as unknown[]).map(String),
    init,
  }));
}

/** Whether a manifest object runs pods (a Deployment, StatefulSet, DaemonSet or Knative Service). */
export function runsPods(object: KubeObject): boolean {
  const group = object.apiVersion.split('/')[0];
  if (group === knativeServingGroup) return object.kind === 'Service';
  return group === 'apps' && ['Deployment', 'StatefulSet', 'DaemonSet'].includes(object.kind);
}

/** The Knative Service's min-scale annotation (autoscaling.knative.dev/min-scale, or the older minScale). */
export function knativeMinScale(ksvc: KubeObject): number | undefined {
  const annotations = workloadSpec(ksvc).template?.metadata?.annotations ?? {};
  const text = annotations['autoscaling.knative.dev/min-scale'] ?? annotations['autoscaling.knative.dev/minScale'];
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) {
    throw new Error(`${ksvc.metadata.name}: autoscaling.knative.dev/min-scale must be a whole number, got ${JSON.stringify(text)}`);
  }
  return value;
}

/** The pods a workload object runs, shaped as its controller (Kubernetes or Knative) would shape them. */
export function podTemplateOf(object: KubeObject): PodTemplate {
  if (!runsPods(object)) throw new Error(`${object.kind} ${object.metadata.name} does not run pods`);
  const namespace = object.metadata.namespace ?? 'default';
  const name = object.metadata.name;
  const spec = workloadSpec(object);
  const template = spec.template ?? {};
  const labels: Record<string, string> = { ...(template.metadata?.labels ?? {}) };
  const annotations: Record<string, string> = { ...(template.metadata?.annotations ?? {}) };
  const containers = [...containersOf(template.spec, true), ...containersOf(template.spec, false)];

  if (object.apiVersion.startsWith(`${knativeServingGroup}/`)) {
    return knativePods(object, namespace, labels, annotations, containers);
  }

  const templateHash = nameSuffix(JSON.stringify(template), 10);
  if (object.kind === 'Deployment') {
    // The Deployment controller labels each ReplicaSet's pods with the template's hash.
    labels['pod-template-hash'] = templateHash;
    const replicaSet = `${name}-${templateHash}`;
    return {
      source: { kind: object.kind, name },
      namespace,
      labels,
      annotations,
      containers,
      controller: { kind: 'ReplicaSet', name: replicaSet },
      platformEnv: {},
      replicas: Math.max(1, Number(spec.replicas ?? 1)),
      podName: (index) => `${replicaSet}-${nameSuffix(`${replicaSet}/${index}`, 5)}`,
    };
  }
  if (object.kind === 'StatefulSet') {
    const revision = `${name}-${templateHash}`;
    return {
      source: { kind: object.kind, name },
      namespace,
      labels: { ...labels, 'controller-revision-hash': revision },
      annotations,
      containers,
      controller: { kind: 'StatefulSet', name },
      platformEnv: {},
      replicas: Math.max(1, Number(spec.replicas ?? 1)),
      podName: (index) => `${name}-${index}`,
    };
  }
  // DaemonSet: one pod, as on a one-node cluster.
  return {
    source: { kind: object.kind, name },
    namespace,
    labels: { ...labels, 'controller-revision-hash': templateHash, 'pod-template-generation': '1' },
    annotations,
    containers,
    controller: { kind: 'DaemonSet', name },
    platformEnv: {},
    replicas: 1,
    podName: (index) => `${name}-${nameSuffix(`${name}/${index}`, 5)}`,
  };
}

/**
 * A Knative Service's pods, as Knative Serving v0.50 builds them (pkg/reconciler/revision/resources):
 * the first Revision `<name>-00001`, labels from the Service/Configuration/Revision plus `app` when the
 * template has none, annotations without the autoscaling.knative.dev/ ones, the user container named
 * `user-container` when unnamed with one port named `user-port` (default 8080), and PORT, K_SERVICE,
 * K_CONFIGURATION, K_REVISION in its environment. The queue-proxy sidecar has no local stand-in.
 */
function knativePods(
  ksvc: KubeObject,
  namespace: string,
  templateLabels: Record<string, string>,
  templateAnnotations: Record<string, string>,
  containers: Container[],
): PodTemplate {
  const name = ksvc.metadata.name;
  const revision = `${name}-00001`;
  const deployment = `${revision}-deployment`;
  const labels: Record<string, string> = {
    ...templateLabels,
    'serving.knative.dev/service': name,
    'serving.knative.dev/serviceUID': stableUid(`ksvc/${namespace}/${name}`),
    'serving.knative.dev/configuration': name,
    'serving.knative.dev/configurationGeneration': '1',
    'serving.knative.dev/configurationUID': stableUid(`configuration/${namespace}/${name}`),
    'serving.knative.dev/revision': revision,
    'serving.knative.dev/revisionUID': stableUid(`revision/${namespace}/${revision}`),
  };
  labels['app'] ??= revision;
  const templateHash = nameSuffix(JSON.stringify(workloadSpec(ksvc).template ?? {}), 10);
  labels['pod-template-hash'] = templateHash;

  const annotations = Object.fromEntries(Object.entries(templateAnnotations).filter(([key]) => !key.startsWith('autoscaling.knative.dev/')));
  const user = containers.find((c) => !c.init);
  if (!user) throw new Error(`Knative Service ${name} has no container`);
  user.name ||= 'user-container';
  annotations['kubectl.kubernetes.io/default-container'] = user.name;
  const userPort = user.ports[0]?.containerPort ?? 8080;
  user.ports = [{ name: 'user-port', containerPort: userPort, protocol: 'TCP' }];

  const replicaSet = `${deployment}-${templateHash}`;
  return {
    source: { kind: 'Service', name },
    namespace,
    labels,
    annotations,
    containers,
    controller: { kind: 'ReplicaSet', name: replicaSet },
    platformEnv: { PORT: String(userPort), K_SERVICE: name, K_CONFIGURATION: name, K_REVISION: revision },
    replicas: Math.max(1, knativeMinScale(ksvc) ?? 1),
    podName: (index) => `${replicaSet}-${nameSuffix(`${replicaSet}/${index}`, 5)}`,
  };
}

/** The pod `index` of a template, served by a local process on `host` with the given port mapping. */
export function localPod(
  template: PodTemplate,
  index: number,
  host: string,
  ports: Map<number, number>,
  state: { running(): boolean; ready(): boolean },
): LocalPod {
  const name = template.podName(index);
  return { template, name, uid: stableUid(`pod/${template.namespace}/${name}`), host, ports, running: () => state.running(), ready: () => state.ready() };
}

/** The local port a pod serves a manifest port on: a number, or a container port's name. */
export function localPortOf(pod: LocalPod, port: number | string): number | undefined {
  if (typeof port === 'number' || /^\d+$/.test(port)) return pod.ports.get(Number(port));
  for (const container of pod.template.containers) {
    const named = container.ports.find((p) => p.name === port);
    if (named) return pod.ports.get(named.containerPort);
  }
  return undefined;
}

/** Whether a Service's selector picks this pod (every selector label equal; an empty selector picks none). */
export function selects(selector: Record<string, string> | undefined, pod: LocalPod, namespace: string): boolean {
  if (!selector || Object.keys(selector).length === 0) return false;
  if (pod.template.namespace !== namespace) return false;
  return Object.entries(selector).every(([key, value]) => pod.template.labels[key] === value);
}
