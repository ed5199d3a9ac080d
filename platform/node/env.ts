// A container's environment on the local node: the kubelet's rules as platform/manifests/pods.ts states
// them (envFrom, env, $(VAR)), fed with live Secrets and ConfigMaps, the downward API (fieldRef,
// resourceFieldRef) and the Service link variables (kubelet envvars.FromServices).
import type { V1Container, V1Pod, V1Service } from '@kubernetes/client-node';
import { resolveEnvWith, type EnvVar } from '../manifests/pods.js';
import { resourceValue } from './quantity.js';

export interface DownwardContext {
  pod: V1Pod;
  podIP: string | undefined;
  hostIP: string;
  /** The node's allocatable resources: the value of a limit the container does not set. */
  allocatable: Record<string, string>;
}

export interface EnvObjects {
  /** Data of the namespace's ConfigMaps and Secrets (Secrets decoded) by name; a missing name has no entry. */
  configMaps: ReadonlyMap<string, Record<string, string>>;
  secrets: ReadonlyMap<string, Record<string, string>>;
}

export type ContainerEnv = { env: Record<string, string> } | { error: string };

/** The ConfigMaps and Secrets a container's environment names, so they can be fetched before resolving. */
export function envReferences(container: V1Container): { configMaps: string[]; secrets: string[] } {
  const configMaps = new Set<string>();
  const secrets = new Set<string>();
  for (const source of container.envFrom ?? []) {
    if (source.configMapRef?.name) configMaps.add(source.configMapRef.name);
    if (source.secretRef?.name) secrets.add(source.secretRef.name);
  }
  for (const variable of container.env ?? []) {
    if (variable.valueFrom?.configMapKeyRef?.name) configMaps.add(variable.valueFrom.configMapKeyRef.name);
    if (variable.valueFrom?.secretKeyRef?.name) secrets.add(variable.valueFrom.secretKeyRef.name);
  }
  return { configMaps: [...configMaps], secrets: [...secrets] };
}

/** The variables kubelet builds for a namespace's Services (plus the `kubernetes` Service, always). */
export function serviceEnv(services: readonly V1Service[], namespace: string, enableServiceLinks: boolean): Record<string, string> {
  const chosen = new Map<string, V1Service>();
  for (const service of services) {
    const ip = service.spec?.clusterIP;
    if (!ip || ip === 'None') continue;
    const name = service.metadata?.name ?? '';
    if (service.metadata?.namespace === 'default' && name === 'kubernetes') {
      if (!chosen.has(name)) chosen.set(name, service);
    } else if (service.metadata?.namespace === namespace && enableServiceLinks) chosen.set(name, service);
  }
  const env: Record<string, string> = {};
  for (const service of chosen.values()) {
    const prefix = (service.metadata?.name ?? '').replace(/-/g, '_').toUpperCase();
    const ip = service.spec!.clusterIP!;
    const ports = service.spec?.ports ?? [];
    if (ports.length === 0) continue;
    env[`${prefix}_SERVICE_HOST`] = ip;
    env[`${prefix}_SERVICE_PORT`] = String(ports[0]!.port);
    for (const port of ports) if (port.name) env[`${prefix}_SERVICE_PORT_${port.name.replace(/-/g, '_').toUpperCase()}`] = String(port.port);
    ports.forEach((port, index) => {
      const protocol = (port.protocol ?? 'TCP').toLowerCase();
      const hostPort = ip.includes(':') ? `[${ip}]:${port.port}` : `${ip}:${port.port}`;
      if (index === 0) env[`${prefix}_PORT`] = `${protocol}://${hostPort}`;
      const portPrefix = `${prefix}_PORT_${port.port}_${protocol.toUpperCase()}`;
      env[portPrefix] = `${protocol}://${hostPort}`;
      env[`${portPrefix}_PROTO`] = protocol;
      env[`${portPrefix}_PORT`] = String(port.port);
      env[`${portPrefix}_ADDR`] = ip;
    });
  }
  return env;
}

/** metadata.labels / metadata.annotations as the downward API prints a whole map (fieldpath.FormatMap). */
export function formatMap(map: Record<string, string> | undefined): string {
  return Object.keys(map ?? {})
    .sort()
    .map((key) => `${key}=${JSON.stringify(map![key])}`)
    .join('\n');
}

/** A fieldRef's value (kubelet podFieldSelectorRuntimeValue + fieldpath.ExtractFieldPathAsString). */
export function fieldRefValue(fieldPath: string, context: DownwardContext): string {
  const { pod } = context;
  const subscripted = /^(metadata\.(?:labels|annotations))\['(.*)'\]$/.exec(fieldPath);
  if (subscripted) {
    const map = subscripted[1] === 'metadata.labels' ? pod.metadata?.labels : pod.metadata?.annotations;
    return map?.[subscripted[2]!] ?? '';
  }
  switch (fieldPath) {
    case 'metadata.name':
      return pod.metadata?.name ?? '';
    case 'metadata.namespace':
      return pod.metadata?.namespace ?? '';
    case 'metadata.uid':
      return pod.metadata?.uid ?? '';
    case 'metadata.labels':
      return formatMap(pod.metadata?.labels);
    case 'metadata.annotations':
      return formatMap(pod.metadata?.annotations);
    case 'spec.nodeName':
      return pod.spec?.nodeName ?? '';
    case 'spec.serviceAccountName':
      return pod.spec?.serviceAccountName ?? '';
    case 'status.hostIP':
    case 'status.hostIPs':
      return context.hostIP;
    case 'status.podIP':
    case 'status.podIPs':
      return context.podIP ?? '';
  }
  throw new Error(`unsupported fieldPath: ${fieldPath}`);
}

/** A resourceFieldRef's value: the named container's limit or request, a missing limit being the node's allocatable. */
export function resourceFieldRefValue(
  ref: { resource: string; containerName?: string; divisor?: string },
  container: V1Container,
  context: DownwardContext,
): string {
  const target = ref.containerName
    ? [...(context.pod.spec?.containers ?? []), ...(context.pod.spec?.initContainers ?? [])].find((c) => c.name === ref.containerName)
    : container;
  if (!target) throw new Error(`resourceFieldRef names container ${ref.containerName}, which the pod does not have`);
  const [kind, resource] = ref.resource.split('.', 2) as [string, string | undefined];
  if ((kind !== 'limits' && kind !== 'requests') || !resource) throw new Error(`unsupported resource ${ref.resource}`);
  const quantity = kind === 'limits' ? (target.resources?.limits?.[resource] ?? context.allocatable[resource]) : target.resources?.requests?.[resource];
  return resourceValue(resource, quantity, ref.divisor);
}

/**
 * The container's environment as the kubelet builds it, or the error it would report as
 * CreateContainerConfigError (a missing ConfigMap, Secret or key that is not optional).
 */
export function containerEnv(container: V1Container, objects: EnvObjects, context: DownwardContext, services: Record<string, string>): ContainerEnv {
  const env: EnvVar[] = (container.env ?? []).map((variable) => {
    const from = variable.valueFrom;
    return {
      name: variable.name,
      ...(variable.value !== undefined ? { value: variable.value } : {}),
      ...(from
        ? {
            valueFrom: {
              ...(from.secretKeyRef
                ? { secretKeyRef: { name: from.secretKeyRef.name ?? '', key: from.secretKeyRef.key, optional: from.secretKeyRef.optional ?? false } }
                : {}),
              ...(from.configMapKeyRef
                ? {
                    configMapKeyRef: { name: from.configMapKeyRef.name ?? '', key: from.configMapKeyRef.key, optional: from.configMapKeyRef.optional ?? false },
                  }
                : {}),
              ...(from.fieldRef ? { fieldRef: { fieldPath: from.fieldRef.fieldPath } } : {}),
              ...(from.resourceFieldRef ? { resourceFieldRef: from.resourceFieldRef } : {}),
            },
          }
        : {}),
    };
  });
  const envFrom = (container.envFrom ?? []).map((source) => ({
    ...(source.prefix ? { prefix: source.prefix } : {}),
    ...(source.secretRef ? { secretRef: { name: source.secretRef.name ?? '', optional: source.secretRef.optional ?? false } } : {}),
    ...(source.configMapRef ? { configMapRef: { name: source.configMapRef.name ?? '', optional: source.configMapRef.optional ?? false } } : {}),
  }));
  const { env: resolved, problems } = resolveEnvWith(
    {
      namespace: context.pod.metadata?.namespace ?? 'default',
      missing: 'not found',
      data: (kind, name) => (kind === 'Secret' ? objects.secrets : objects.configMaps).get(name),
      fieldValue: (variable) => {
        const from = variable.valueFrom!;
        if (from.fieldRef) return fieldRefValue(from.fieldRef.fieldPath, context);
        return resourceFieldRefValue(from.resourceFieldRef!, container, context);
      },
      serviceEnv: services,
    },
    { env, envFrom },
  );
  if (problems.length > 0) return { error: problems.join('; ') };
  return { env: resolved };
}
