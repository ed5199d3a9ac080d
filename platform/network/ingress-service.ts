// The Service in front of our ingress, what Kourier's release YAML ships as `kourier-internal`: a
// ClusterIP Service with no selector and one EndpointSlice naming the in-cluster listener the node
// process serves. Its DNS name is the load balancers' domainInternal written into every KIngress
// status, which Knative turns each Route's placeholder Service into an ExternalName for, so in-cluster
// clients of a ksvc reach the ingress through DNS and the Service proxy. Whoever installs Knative on
// the local cluster applies these two objects.
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';

export interface IngressServiceOptions {
  /** The ingress's in-cluster listener (the node address and port given to startIngress's `listen`). */
  address: string;
  port: number;
  namespace?: string;
  name?: string;
}

export const ingressServiceDefaults = { namespace: 'knative-serving', name: 'promsnap-ingress' } as const;

/** The domainInternal to give startIngress for these objects, e.g. promsnap-ingress.knative-serving.svc.cluster.local. */
export function ingressDomainInternal(options: Pick<IngressServiceOptions, 'namespace' | 'name'> = {}, clusterDomain = 'cluster.local'): string {
  return `${options.name ?? ingressServiceDefaults.name}.${options.namespace ?? ingressServiceDefaults.namespace}.svc.${clusterDomain}`;
}

export function ingressServiceObjects(options: IngressServiceOptions): [V1Service, V1EndpointSlice] {
  const namespace = options.namespace ?? ingressServiceDefaults.namespace;
  const name = options.name ?? ingressServiceDefaults.name;
  const labels = { 'app.kubernetes.io/name': 'ingress', 'app.kubernetes.io/component': 'network', 'app.kubernetes.io/part-of': 'promsnap' };
  return [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace, labels },
      // No selector: the listener is the node process, not a pod; the slice below names it.
      spec: { type: 'ClusterIP', ports: [{ name: 'http', port: 80, targetPort: options.port, protocol: 'TCP' }] },
    },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: `${name}-node`,
        namespace,
        labels: { ...labels, 'kubernetes.io/service-name': name, 'endpointslice.kubernetes.io/managed-by': 'network.promsnap.dev' },
      },
      addressType: 'IPv4',
      endpoints: [{ addresses: [options.address], conditions: { ready: true } }],
      ports: [{ name: 'http', port: options.port, protocol: 'TCP' }],
    },
  ];
}
