// A container's environment as the kubelet builds it from the manifests: envFrom first, then env
// (later entries win), values from the rendered Secrets and ConfigMaps, $(VAR) references expanded,
// and cluster addresses rewritten to the local processes that serve them. Pure.
import type { LocalNetwork } from './addresses.js';
import type { Container, KubeObject, LocalPod } from './workloads.js';

/** A rendered Secret's or ConfigMap's data, decoded (Secret data is base64; stringData is not). */
export function objectData(object: KubeObject): Record<string, string> {
  const decoded = object.kind === 'Secret' ? Object.fromEntries(Object.entries(object.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')])) : { ...(object.data ?? {}) };
  return { ...decoded, ...(object.stringData ?? {}) };
}

/** The Secret or ConfigMap named `name` in `namespace`, from the rendered objects. */
export function findData(objects: KubeObject[], kind: 'Secret' | 'ConfigMap', namespace: string, name: string): Record<string, string> | undefined {
  const object = objects.find((o) => o.apiVersion === 'v1' && o.kind === kind && o.metadata.name === name && (o.metadata.namespace ?? 'default') === namespace);
  return object ? objectData(object) : undefined;
}

/**
 * Kubernetes' $(VAR) expansion in env values, command and args: a defined variable is replaced,
 * `$$(VAR)` stays literal as `$(VAR)`, an undefined one is left as written.
 */
export function expandReferences(text: string, env: Record<string, string>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (match, name: string | undefined) => {
    if (match === '$$') return '$';
    return name !== undefined && name in env ? env[name]! : match;
  });
}

export interface EnvContext {
  objects: KubeObject[];
  namespace: string;
  /** Cluster URLs in values are rewritten to local addresses through this network. */
  network?: LocalNetwork;
  pod?: LocalPod;
  /** Values the platform sets (Knative's PORT, K_SERVICE, ...), applied last. */
  platformEnv?: Record<string, string>;
}

/** The container's environment, or an error naming every reference that cannot be resolved. */
export function containerEnv(container: Container, context: EnvContext): Record<string, string> {
  const env: Record<string, string> = {};
  const problems: string[] = [];
  const lookup = (kind: 'Secret' | 'ConfigMap', name: string) => findData(context.objects, kind, context.namespace, name);

  for (const source of container.envFrom) {
    const ref = source.secretRef ?? source.configMapRef;
    if (!ref) continue;
    const kind = source.secretRef ? 'Secret' : 'ConfigMap';
    const data = lookup(kind, ref.name);
    if (!data) {
      if (!ref.optional) problems.push(`envFrom ${kind} ${context.namespace}/${ref.name} is not in the manifests`);
      continue;
    }
    for (const [key, value] of Object.entries(data)) env[`${source.prefix ?? ''}${key}`] = value;
  }

  for (const variable of container.env) {
    if (variable.value !== undefined) {
      env[variable.name] = expandReferences(variable.value, env);
      continue;
    }
    const from = variable.valueFrom;
    const keyRef = from?.secretKeyRef ?? from?.configMapKeyRef;
    if (keyRef) {
      const kind = from?.secretKeyRef ? 'Secret' : 'ConfigMap';
      const value = lookup(kind, keyRef.name)?.[keyRef.key];
      if (value !== undefined) env[variable.name] = value;
      else if (!keyRef.optional) problems.push(`${variable.name}: key ${keyRef.key} of ${kind} ${context.namespace}/${keyRef.name} is not in the manifests`);
      continue;
    }
    if (from?.fieldRef) {
      const field = from.fieldRef.fieldPath;
      const value =
        field === 'metadata.namespace' ? context.namespace : field === 'metadata.name' ? context.pod?.name : field === 'status.podIP' ? context.pod?.host : undefined;
      if (value !== undefined) env[variable.name] = value;
      else problems.push(`${variable.name}: fieldRef ${field} has no local value`);
      continue;
    }
    env[variable.name] = '';
  }
  if (problems.length > 0) throw new Error(`container ${container.name}: ${problems.join('; ')}`);

  Object.assign(env, context.platformEnv ?? {});
  if (context.network) {
    for (const [key, value] of Object.entries(env)) env[key] = context.network.rewriteUrl(value, { namespace: context.namespace, ...(context.pod ? { pod: context.pod } : {}) });
  }
  return env;
}
