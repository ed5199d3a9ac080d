// Reading rendered manifests (`kubectl kustomize platform`): the objects, the pod templates inside
// every kind of workload (Knative Services included), and the service accounts those pods run as.
// Tests derive what to check from here, so a workload or account added later is checked without
// anyone listing it.
import { parseAllDocuments } from 'yaml';

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

/** The fields of a PodSpec these checks read; everything else passes through untyped. */
export interface PodSpec {
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  containers?: Array<Record<string, unknown> & { name?: string }>;
  initContainers?: Array<Record<string, unknown> & { name?: string }>;
  [field: string]: unknown;
}

export interface PodTemplate {
  /** `Kind/namespace/name` of the object holding the template. */
  owner: string;
  object: K8sObject;
  namespace: string;
  /** Pod metadata from the template (labels, annotations). */
  metadata: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: PodSpec;
}

export interface ServiceAccountRef {
  namespace: string;
  name: string;
  /** Username the API server gives the account's tokens. */
  username: string;
  /** Whether the manifests create the account (otherwise it is only referred to, like `default`). */
  declared: boolean;
  /** Pod templates that run as it. */
  usedBy: PodTemplate[];
  /** automountServiceAccountToken on the ServiceAccount object, if declared. */
  automountToken?: boolean;
}

/** Parses a multi-document YAML stream into objects; any YAML error fails loudly. */
export function parseManifests(text: string): K8sObject[] {
  const objects: K8sObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`invalid YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value = doc.toJS() as unknown;
    if (value === null || value === undefined) continue;
    const object = value as K8sObject;
    if (typeof object.kind !== 'string' || typeof object.metadata?.name !== 'string') {
      throw new Error(`not a Kubernetes object: ${JSON.stringify(value).slice(0, 200)}`);
    }
    objects.push(object);
  }
  return objects;
}

export function objectId(object: K8sObject): string {
  return [object.kind, object.metadata.namespace, object.metadata.name].filter(Boolean).join('/');
}

export function group(object: { apiVersion: string }): string {
  return object.apiVersion.includes('/') ? object.apiVersion.split('/')[0]! : '';
}

export function isKnativeService(object: K8sObject): boolean {
  return object.kind === 'Service' && group(object) === 'serving.knative.dev';
}

function dig(value: unknown, ...path: string[]): unknown {
  let current = value;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

/** Where each kind that creates pods keeps its pod template. */
const templatePaths: Record<string, string[]> = {
  'apps/Deployment': ['spec', 'template'],
  'apps/StatefulSet': ['spec', 'template'],
  'apps/DaemonSet': ['spec', 'template'],
  'apps/ReplicaSet': ['spec', 'template'],
  '/ReplicationController': ['spec', 'template'],
  'batch/Job': ['spec', 'template'],
  'batch/CronJob': ['spec', 'jobTemplate', 'spec', 'template'],
  'serving.knative.dev/Service': ['spec', 'template'],
  'serving.knative.dev/Configuration': ['spec', 'template'],
  'sources.knative.dev/ContainerSource': ['spec', 'template'],
};

/** Every pod template in the objects (a bare Pod counts as its own template). */
export function podTemplates(objects: K8sObject[]): PodTemplate[] {
  const templates: PodTemplate[] = [];
  for (const object of objects) {
    const namespace = object.metadata.namespace ?? 'default';
    if (object.kind === 'Pod' && group(object) === '') {
      templates.push({ owner: objectId(object), object, namespace, metadata: object.metadata, spec: object['spec'] as PodSpec });
      continue;
    }
    const path = templatePaths[`${group(object)}/${object.kind}`];
    if (!path) continue;
    const template = dig(object, ...path) as { metadata?: PodTemplate['metadata']; spec?: PodSpec } | undefined;
    if (!template?.spec) throw new Error(`${objectId(object)} has no pod template at ${path.join('.')}`);
    templates.push({ owner: objectId(object), object, namespace, metadata: template.metadata ?? {}, spec: template.spec });
  }
  return templates;
}

/**
 * Every service account the platform brings into play: those it declares, those its pods run as
 * (`default` where a pod names none), and those its RoleBindings and ClusterRoleBindings name.
 */
export function serviceAccounts(objects: K8sObject[]): ServiceAccountRef[] {
  const accounts = new Map<string, ServiceAccountRef>();
  const ref = (namespace: string, name: string): ServiceAccountRef => {
    const key = `${namespace}/${name}`;
    let account = accounts.get(key);
    if (!account) {
      account = { namespace, name, username: `system:serviceaccount:${namespace}:${name}`, declared: false, usedBy: [] };
      accounts.set(key, account);
    }
    return account;
  };
  for (const object of objects) {
    if (object.kind === 'ServiceAccount' && group(object) === '') {
      const account = ref(object.metadata.namespace ?? 'default', object.metadata.name);
      account.declared = true;
      if (typeof object['automountServiceAccountToken'] === 'boolean') {
        account.automountToken = object['automountServiceAccountToken'];
      }
    }
    if ((object.kind === 'RoleBinding' || object.kind === 'ClusterRoleBinding') && group(object) === 'rbac.authorization.k8s.io') {
      for (const subject of (object['subjects'] ?? []) as Array<{ kind: string; name: string; namespace?: string }>) {
        if (subject.kind === 'ServiceAccount') ref(subject.namespace ?? object.metadata.namespace ?? 'default', subject.name);
      }
    }
  }
  for (const template of podTemplates(objects)) {
    ref(template.namespace, template.spec.serviceAccountName ?? 'default').usedBy.push(template);
  }
  return [...accounts.values()].sort((a, b) => a.username.localeCompare(b.username));
}

/** Whether pods from this template get a service-account token: the pod's choice wins over the account's. */
export function mountsToken(template: PodTemplate, account: ServiceAccountRef | undefined): boolean {
  return template.spec.automountServiceAccountToken ?? account?.automountToken ?? true;
}

/** The namespaces the objects live in, and those they create. */
export function namespacesOf(objects: K8sObject[]): string[] {
  const names = new Set<string>();
  for (const object of objects) {
    if (object.kind === 'Namespace' && group(object) === '') names.add(object.metadata.name);
    else if (object.metadata.namespace) names.add(object.metadata.namespace);
  }
  return [...names].sort();
}
