// Pod templates of every kind that makes pods, their containers, and the environment the kubelet would
// give a container (values, Secret and ConfigMap references, envFrom, $(VAR) expansion).
import { configMapData, describeObject, field, groupOf, record, secretData, type KubeObject } from './objects.js';

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    secretKeyRef?: { name: string; key: string; optional?: boolean };
    configMapKeyRef?: { name: string; key: string; optional?: boolean };
    fieldRef?: { fieldPath: string };
  };
}

export interface EnvFromSource {
  prefix?: string;
  secretRef?: { name: string; optional?: boolean };
  configMapRef?: { name: string; optional?: boolean };
}

export interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol?: string;
}

export interface Container {
  name?: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  envFrom?: EnvFromSource[];
  ports?: ContainerPort[];
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean; subPath?: string }>;
  [field: string]: unknown;
}

export interface Volume {
  name: string;
  configMap?: { name: string; items?: Array<{ key: string; path: string }> };
  secret?: { secretName: string; items?: Array<{ key: string; path: string }> };
  [source: string]: unknown;
}

export interface PodSpec {
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  containers: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
  [field: string]: unknown;
}

export interface PodTemplate {
  /** The object holding the template. */
  owner: KubeObject;
  namespace: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  spec: PodSpec;
}

/** Where each kind that makes pods keeps its pod template (a bare Pod is its own: an empty path). */
const templatePaths: Record<string, string[]> = {
  '/Pod': [],
  '/ReplicationController': ['spec', 'template'],
  'apps/Deployment': ['spec', 'template'],
  'apps/StatefulSet': ['spec', 'template'],
  'apps/DaemonSet': ['spec', 'template'],
  'apps/ReplicaSet': ['spec', 'template'],
  'batch/Job': ['spec', 'template'],
  'batch/CronJob': ['spec', 'jobTemplate', 'spec', 'template'],
  'serving.knative.dev/Service': ['spec', 'template'],
  'serving.knative.dev/Configuration': ['spec', 'template'],
  'sources.knative.dev/ContainerSource': ['spec', 'template'],
};

/**
 * Every pod template in the objects, Knative Services' revision templates included, so a check over
 * them covers a workload added later without anyone listing it.
 */
export function podTemplates(objects: readonly KubeObject[]): PodTemplate[] {
  const templates: PodTemplate[] = [];
  for (const object of objects) {
    const at = templatePaths[`${groupOf(object)}/${object.kind}`];
    if (!at) continue;
    const template = field(object, ...at);
    const spec = field(template, 'spec') as PodSpec | undefined;
    if (!spec || !Array.isArray(spec.containers)) throw new Error(`${describeObject(object)} has no pod spec with containers at ${[...at, 'spec'].join('.')}`);
    templates.push({
      owner: object,
      namespace: object.metadata.namespace ?? 'default',
      labels: record(field(template, 'metadata', 'labels')),
      annotations: record(field(template, 'metadata', 'annotations')),
      spec,
    });
  }
  return templates;
}

/** Init containers first, then containers, as the kubelet runs them. */
export function allContainers(spec: PodSpec): Container[] {
  return [...(spec.initContainers ?? []), ...spec.containers];
}

export interface ResolvedEnv {
  env: Record<string, string>;
  /** References that do not resolve (a missing Secret, ConfigMap or key that is not optional). */
  problems: string[];
}

/**
 * A container's environment as the kubelet builds it: envFrom first, then env in order (later wins),
 * Secret and ConfigMap values from the rendered objects, `$(VAR)` in values expanded from variables
 * defined before. Values only the cluster knows (fieldRef) are left out.
 */
export function resolveEnv(objects: readonly KubeObject[], namespace: string, container: Container): ResolvedEnv {
  const env: Record<string, string> = {};
  const problems: string[] = [];
  const lookup = (kind: 'Secret' | 'ConfigMap', name: string): Record<string, string> | undefined => {
    try {
      return kind === 'Secret' ? secretData(objects, name, namespace) : configMapData(objects, name, namespace);
    } catch {
      return undefined;
    }
  };
  for (const source of container.envFrom ?? []) {
    const ref = source.secretRef ?? source.configMapRef;
    if (!ref) continue;
    const kind = source.secretRef ? 'Secret' : 'ConfigMap';
    const data = lookup(kind, ref.name);
    if (!data) {
      if (!ref.optional) problems.push(`envFrom: ${kind} ${namespace}/${ref.name} is not rendered`);
      continue;
    }
    for (const [key, value] of Object.entries(data)) env[`${source.prefix ?? ''}${key}`] = value;
  }
  for (const variable of container.env ?? []) {
    if (variable.value !== undefined) {
      env[variable.name] = expandReferences(variable.value, env);
      continue;
    }
    const secretRef = variable.valueFrom?.secretKeyRef;
    const keyRef = secretRef ?? variable.valueFrom?.configMapKeyRef;
    if (!keyRef) {
      if (!variable.valueFrom) env[variable.name] = '';
      continue;
    }
    const kind = secretRef ? 'Secret' : 'ConfigMap';
    const value = lookup(kind, keyRef.name)?.[keyRef.key];
    if (value !== undefined) env[variable.name] = value;
    else if (!keyRef.optional) problems.push(`${variable.name}: key ${keyRef.key} of ${kind} ${namespace}/${keyRef.name} is not rendered`);
  }
  return { env, problems };
}

/** Kubernetes' `$(VAR)` expansion: a defined variable is replaced, `$$` is a literal `$`, others stay. */
export function expandReferences(value: string, env: Record<string, string>): string {
  return value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (match, name: string | undefined) => {
    if (match === '$$') return '$';
    return name !== undefined && name in env ? env[name]! : match;
  });
}
