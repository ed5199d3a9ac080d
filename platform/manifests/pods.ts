// Pod templates of every kind that makes pods, their containers, and the environment the kubelet would
// give a container (values, Secret and ConfigMap references, envFrom, $(VAR) expansion).
import { configMapData, describeObject, field, groupOf, record, secretData, type KubeObject } from './objects.js';

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    secretKeyRef?: { name: string; key: string; optional?: boolean };
    configMapKeyRef?: { name: string; key: string; optional?: boolean };
    fieldRef?: { fieldPath: string; apiVersion?: string };
    resourceFieldRef?: { resource: string; containerName?: string; divisor?: string };
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

/** Where a container's environment comes from: the rendered objects here, live objects on the local node. */
export interface EnvLookup {
  namespace: string;
  /** The data of a Secret (decoded) or ConfigMap in the namespace; undefined when there is none. */
  data(kind: 'Secret' | 'ConfigMap', name: string): Record<string, string> | undefined;
  /** How a missing object reads in a problem ("is not rendered", "not found"). */
  missing: string;
  /** The value of a fieldRef or resourceFieldRef; without it such variables are left out. Throws what cannot be resolved. */
  fieldValue?(variable: EnvVar): string;
  /**
   * Service link variables (the kubelet's `<SVC>_SERVICE_HOST`, ...): `$(VAR)` may name them, and they are
   * added where the container sets no variable of that name.
   */
  serviceEnv?: Record<string, string>;
}

/**
 * A container's environment as the kubelet builds it: envFrom first, then env in order (later wins),
 * Secret and ConfigMap values from the rendered objects, `$(VAR)` in values expanded from variables
 * defined before. Values only the cluster knows (fieldRef) are left out.
 */
export function resolveEnv(objects: readonly KubeObject[], namespace: string, container: Container): ResolvedEnv {
  return resolveEnvWith(
    {
      namespace,
      missing: 'is not rendered',
      data: (kind, name) => {
        try {
          return kind === 'Secret' ? secretData(objects, name, namespace) : configMapData(objects, name, namespace);
        } catch {
          return undefined;
        }
      },
    },
    container,
  );
}

/** resolveEnv's rules over any source of Secrets, ConfigMaps and field values (kubelet makeEnvironmentVariables). */
export function resolveEnvWith(lookup: EnvLookup, container: Pick<Container, 'env' | 'envFrom'>): ResolvedEnv {
  const env: Record<string, string> = {};
  const problems: string[] = [];
  const { namespace } = lookup;
  const cache = new Map<string, Record<string, string> | undefined>();
  const data = (kind: 'Secret' | 'ConfigMap', name: string) => {
    const key = `${kind}/${name}`;
    if (!cache.has(key)) cache.set(key, lookup.data(kind, name));
    return cache.get(key);
  };
  for (const source of container.envFrom ?? []) {
    const ref = source.secretRef ?? source.configMapRef;
    if (!ref) continue;
    const kind = source.secretRef ? 'Secret' : 'ConfigMap';
    const values = data(kind, ref.name);
    if (!values) {
      if (!ref.optional) problems.push(`envFrom: ${kind} ${namespace}/${ref.name} ${lookup.missing}`);
      continue;
    }
    for (const [key, value] of Object.entries(values)) env[`${source.prefix ?? ''}${key}`] = value;
  }
  const serviceEnv = lookup.serviceEnv ?? {};
  for (const variable of container.env ?? []) {
    // A value wins over valueFrom only when it is not empty, as in the kubelet.
    if (variable.value !== undefined && (variable.value !== '' || !variable.valueFrom)) {
      env[variable.name] = expandReferences(variable.value, { ...serviceEnv, ...env });
      continue;
    }
    const from = variable.valueFrom;
    if (!from) {
      env[variable.name] = '';
      continue;
    }
    if (from.fieldRef || from.resourceFieldRef) {
      if (!lookup.fieldValue) continue;
      try {
        env[variable.name] = lookup.fieldValue(variable);
      } catch (err) {
        problems.push(`${variable.name}: ${(err as Error).message}`);
      }
      continue;
    }
    const secretRef = from.secretKeyRef;
    const keyRef = secretRef ?? from.configMapKeyRef;
    if (!keyRef) continue;
    const kind = secretRef ? 'Secret' : 'ConfigMap';
    const values = data(kind, keyRef.name);
    const value = values?.[keyRef.key];
    if (value !== undefined) env[variable.name] = value;
    else if (!keyRef.optional) {
      problems.push(
        values
          ? `${variable.name}: key ${keyRef.key} of ${kind} ${namespace}/${keyRef.name} ${lookup.missing}`
          : `${variable.name}: ${kind} ${namespace}/${keyRef.name} ${lookup.missing}`,
      );
    }
  }
  for (const [name, value] of Object.entries(serviceEnv)) if (!(name in env)) env[name] = value;
  return { env, problems };
}

/** Kubernetes' `$(VAR)` expansion: a defined variable is replaced, `$$` is a literal `$`, others stay. */
export function expandReferences(value: string, env: Record<string, string>): string {
  return value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (match, name: string | undefined) => {
    if (match === '$$') return '$';
    return name !== undefined && name in env ? env[name]! : match;
  });
}
