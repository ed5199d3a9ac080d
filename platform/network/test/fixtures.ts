// Service and EndpointSlice objects shaped as the API server returns them, for the pure tests.
import type { V1EndpointSlice, V1Service, V1ServicePort } from '@kubernetes/client-node';

export function service(
  namespace: string,
  name: string,
  spec: { clusterIP?: string; type?: string; externalName?: string; ports?: V1ServicePort[] } = {},
): V1Service {
  const clusterIP = spec.clusterIP ?? (spec.type === 'ExternalName' ? undefined : '10.96.0.20');
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { namespace, name },
    spec: {
      type: spec.type ?? 'ClusterIP',
      ...(clusterIP ? { clusterIP, clusterIPs: [clusterIP] } : {}),
      ...(spec.externalName ? { externalName: spec.externalName } : {}),
      ports: spec.ports ?? [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }],
    },
  };
}

export interface EndpointSpec {
  ip: string;
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
  hostname?: string;
}

export function slice(
  namespace: string,
  serviceName: string,
  endpoints: EndpointSpec[],
  ports: Array<{ name?: string; port?: number; protocol?: string }> = [{ name: 'http', port: 8080 }],
  addressType = 'IPv4',
  name = `${serviceName}-abcde`,
): V1EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { namespace, name, labels: { 'kubernetes.io/service-name': serviceName } },
    addressType,
    endpoints: endpoints.map((e) => ({
      addresses: [e.ip],
      ...(e.hostname ? { hostname: e.hostname } : {}),
      conditions: {
        ...(e.ready !== undefined ? { ready: e.ready } : {}),
        ...(e.serving !== undefined ? { serving: e.serving } : {}),
        ...(e.terminating !== undefined ? { terminating: e.terminating } : {}),
      },
    })),
    ports,
  };
}

/** A catalog-like lookup over fixed objects. */
export function sourceOf(services: V1Service[], slices: V1EndpointSlice[]) {
  return {
    services: () => services,
    service: (namespace: string, name: string) => services.find((s) => s.metadata?.namespace === namespace && s.metadata?.name === name),
    endpointSlices: (namespace: string, serviceName: string) =>
      slices.filter((s) => s.metadata?.namespace === namespace && s.metadata?.labels?.['kubernetes.io/service-name'] === serviceName),
  };
}
