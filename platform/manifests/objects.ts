// Finding rendered objects: by kind as kubectl names it, by name, generated ConfigMaps and Secrets by
// the name their generator was given; and the untyped field access the typed readers build on.

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** A rendered object; fields beyond these are read through the typed derivations below. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

/** The API group of an object (`''` for the core group). */
export function groupOf(object: { apiVersion: string }): string {
  return object.apiVersion.includes('/') ? object.apiVersion.split('/')[0]! : '';
}

/** `Kind[.group]/namespace/name`, for messages. */
export function describeObject(object: KubeObject): string {
  const group = groupOf(object);
  return [group ? `${object.kind}.${group}` : object.kind, object.metadata.namespace, object.metadata.name].filter(Boolean).join('/');
}

/**
 * Objects of a kind, written as kubectl takes it: `Service` is the core Service, as kubectl resolves
 * a bare kind to the core group first; `Service.serving.knative.dev` is Knative's. Any other bare kind
 * matches the one group that has it, and is refused as ambiguous if two groups do.
 */
export function objectsOfKind(objects: readonly KubeObject[], kind: string): KubeObject[] {
  const dot = kind.indexOf('.');
  if (dot >= 0) {
    const [name, group] = [kind.slice(0, dot), kind.slice(dot + 1)];
    return objects.filter((o) => o.kind === name && groupOf(o) === group);
  }
  const matching = objects.filter((o) => o.kind === kind);
  const core = matching.filter((o) => groupOf(o) === '');
  if (core.length > 0) return core;
  const groups = [...new Set(matching.map(groupOf))];
  if (groups.length > 1) throw new Error(`kind ${kind} is ambiguous: say ${groups.map((g) => `${kind}.${g}`).join(' or ')}`);
  return matching;
}

/** The object of that kind and name (and namespace, for a namespaced kind); throws if it is not rendered. */
export function findObject(objects: readonly KubeObject[], kind: string, name: string, namespace?: string): KubeObject {
  const found = objectsOfKind(objects, kind).find((o) => o.metadata.name === name && (namespace === undefined || o.metadata.namespace === namespace));
  if (!found) throw new Error(`the rendered platform has no ${kind} ${namespace ? `${namespace}/` : ''}${name}`);
  return found;
}

/**
 * A ConfigMap or Secret from a kustomize generator, by the name it was given there: the rendered name
 * carries a content hash (`minio-root` renders as `minio-root-<10 characters>`).
 */
export function findGenerated(objects: readonly KubeObject[], kind: 'ConfigMap' | 'Secret', name: string, namespace: string): KubeObject {
  const found = objectsOfKind(objects, kind).filter(
    (o) => o.metadata.namespace === namespace && new RegExp(`^${name.replace(/[.]/g, '\\.')}-[a-z0-9]{10}$`).test(o.metadata.name),
  );
  if (found.length !== 1) throw new Error(`expected one generated ${kind} ${namespace}/${name}-<hash>, found ${found.length}`);
  return found[0]!;
}

export function field(value: unknown, ...keys: Array<string | number>): unknown {
  let current = value;
  for (const key of keys) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string | number, unknown>)[key];
  }
  return current;
}

export function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

export function record(value: unknown): Record<string, string> {
  if (value === null || typeof value !== 'object') return {};
  return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, String(v)]));
}

/** A ConfigMap's data (binaryData is not used by the platform). */
export function configMapData(objects: readonly KubeObject[], name: string, namespace: string): Record<string, string> {
  return record(findObject(objects, 'ConfigMap', name, namespace)['data']);
}

/** A Secret's data, decoded from base64, with stringData on top (as the API server merges them). */
export function secretData(objects: readonly KubeObject[], name: string, namespace: string): Record<string, string> {
  const secret = findObject(objects, 'Secret', name, namespace);
  const decoded = Object.entries(record(secret['data'])).map(([k, v]): [string, string] => [k, Buffer.from(v, 'base64').toString('utf8')]);
  return { ...Object.fromEntries(decoded), ...record(secret['stringData']) };
}
