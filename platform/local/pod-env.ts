// A container's environment for its local stand-in: what the kubelet would give it (platform/manifests/
// resolveEnv: envFrom, env, Secrets, ConfigMaps, $(VAR)), plus the field references a pod has locally,
// the platform's own variables (Knative's PORT, K_SERVICE, ...), and cluster addresses rewritten to the
// local processes that serve them.
import { resolveEnv, type Container as ManifestContainer, type KubeObject as ManifestObject } from '../manifests/index.js';
import type { LocalNetwork } from './addresses.js';
import type { Container, KubeObject, LocalPod } from './workloads.js';

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
  const manifestContainer: ManifestContainer = { name: container.name, image: container.image, env: container.env, envFrom: container.envFrom };
  const { env, problems } = resolveEnv(context.objects as unknown as ManifestObject[], context.namespace, manifestContainer);
  // resolveEnv leaves out what only a cluster knows; a local pod knows its name, namespace and address.
  for (const variable of container.env) {
    const field = variable.valueFrom?.fieldRef?.fieldPath;
    if (!field) continue;
    const value =
      field === 'metadata.namespace'
        ? context.namespace
        : field === 'metadata.name'
          ? context.pod?.name
          : field === 'status.podIP'
            ? context.pod?.host
            : undefined;
    if (value !== undefined) env[variable.name] = value;
    else problems.push(`${variable.name}: fieldRef ${field} has no local value`);
  }
  if (problems.length > 0) throw new Error(`container ${container.name}: ${problems.join('; ')}`);
  Object.assign(env, context.platformEnv ?? {});
  if (context.network) {
    for (const [key, value] of Object.entries(env))
      env[key] = context.network.rewriteUrl(value, { namespace: context.namespace, ...(context.pod ? { pod: context.pod } : {}) });
  }
  return env;
}
