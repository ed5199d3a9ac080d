// Core Services and the cluster-internal URLs that name them.
import { field, findObject, type KubeObject } from './objects.js';

export interface ServicePort {
  name?: string;
  port: number;
  targetPort?: number | string;
  nodePort?: number;
  protocol?: string;
}

/** A core Service's ports. */
export function servicePorts(objects: readonly KubeObject[], name: string, namespace: string): ServicePort[] {
  return (field(findObject(objects, 'Service', name, namespace), 'spec', 'ports') ?? []) as ServicePort[];
}

export interface ClusterAddress {
  service: string;
  namespace: string;
  port: number;
}

/**
 * The Service a cluster-internal URL points at: `http://NAME.NAMESPACE.svc.cluster.local:PORT/...`
 * (or the shorter `NAME.NAMESPACE.svc` and `NAME.NAMESPACE` forms); undefined for any other host.
 */
export function clusterAddress(url: string): ClusterAddress | undefined {
  const parsed = new URL(url);
  const match = /^([a-z0-9-]+)\.([a-z0-9-]+)(?:\.svc(?:\.cluster\.local)?)?$/.exec(parsed.hostname);
  if (!match) return undefined;
  const port = parsed.port ? Number(parsed.port) : parsed.protocol === 'https:' ? 443 : 80;
  return { service: match[1]!, namespace: match[2]!, port };
}
