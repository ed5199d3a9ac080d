// The pipeline's objects and the statuses Knative's and Kubernetes' controllers would write, as pure
// data: the input of the pure status tests, and (the statuses) what the tests on the real API server
// write through the status subresource, where the CRDs' schemas check them. Names come from pipeline.ts.
import { pipelineNames, resourceTypes, type Namespaces, type Resource } from '../pipeline.js';

export type Manifest = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; [key: string]: unknown }; [field: string]: unknown };

function apiVersion(resource: Resource): string {
  const type = resourceTypes[resource];
  return `${type.group}/${type.version}`;
}

const restricted = {
  runAsNonRoot: true,
  allowPrivilegeEscalation: false,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};

function spec(resource: Resource, name: string, namespaces: Namespaces): Record<string, unknown> {
  switch (resource) {
    case 'deployment':
      return {
        replicas: 1,
        selector: { matchLabels: { 'app.kubernetes.io/name': name } },
        template: {
          metadata: { labels: { 'app.kubernetes.io/name': name } },
          spec: { containers: [{ name, image: `example.invalid/${name}:1.0.0`, securityContext: restricted }] },
        },
      };
    case 'ksvc':
      return { template: { spec: { containers: [{ image: `example.invalid/${name}:1.0.0`, securityContext: restricted }] } } };
    case 'pingsource':
      return {
        schedule: '*/5 * * * *',
        timezone: 'Europe/Paris',
        contentType: 'application/json',
        data: '{"queries":["up"]}',
        sink: { ref: { apiVersion: 'eventing.knative.dev/v1', kind: 'Broker', name: 'default', namespace: namespaces.pipeline } },
      };
    case 'broker':
      return {};
    case 'trigger':
      return {
        broker: 'default',
        filter: { attributes: { type: 'dev.knative.sources.ping' } },
        subscriber: { ref: { apiVersion: 'serving.knative.dev/v1', kind: 'Service', name: 'snapshot' } },
        delivery: {
          retry: 3,
          backoffPolicy: 'exponential',
          backoffDelay: 'PT0.5S',
          deadLetterSink: { ref: { apiVersion: 'serving.knative.dev/v1', kind: 'Service', name: 'snapshot' }, uri: '/dead-letters' },
        },
      };
  }
}

/** The namespaces and every object status reads, in pipeline.ts's order. */
export function pipelineManifests(namespaces: Namespaces): Manifest[] {
  const namespaceObjects = [...new Set([namespaces.monitoring, namespaces.pipeline])].map((name) => ({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name },
  }));
  const objects = pipelineNames.map(({ resource, namespace, name }) => ({
    apiVersion: apiVersion(resource),
    kind: resourceTypes[resource].kind,
    metadata: { name, namespace: namespaces[namespace] },
    spec: spec(resource, name, namespaces),
  }));
  return [...namespaceObjects, ...objects];
}

const cluster = 'svc.cluster.local';

export function condition(status: 'True' | 'False' | 'Unknown', reason?: string, message?: string) {
  return {
    type: 'Ready',
    status,
    lastTransitionTime: '2026-11-25T10:00:00Z',
    ...(reason ? { reason } : {}),
    ...(message ? { message } : {}),
  };
}

/** A Deployment's status as the Deployment controller writes it once `ready` replicas are ready. */
export function deploymentStatus(ready: number, desired = 1, observedGeneration = 1) {
  return {
    observedGeneration,
    replicas: desired,
    updatedReplicas: desired,
    readyReplicas: ready,
    availableReplicas: ready,
    ...(ready < desired ? { unavailableReplicas: desired - ready } : {}),
    conditions: [
      {
        type: 'Available',
        status: ready >= desired ? 'True' : 'False',
        reason: ready >= desired ? 'MinimumReplicasAvailable' : 'MinimumReplicasUnavailable',
        message: ready >= desired ? 'Deployment has minimum availability.' : 'Deployment does not have minimum availability.',
        lastTransitionTime: '2026-11-25T10:00:00Z',
        lastUpdateTime: '2026-11-25T10:00:00Z',
      },
    ],
  };
}

export interface KnativeStatusOptions {
  ready: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  observedGeneration?: number;
  /** For a ksvc: its URL (the tests point it at a local simulation). */
  url?: string;
}

/** A Knative object's status as its controller writes it: the Ready condition and the resolved addresses. */
export function knativeStatus(resource: Exclude<Resource, 'deployment'>, name: string, namespace: string, options: KnativeStatusOptions) {
  const base = { observedGeneration: options.observedGeneration ?? 1, conditions: [condition(options.ready, options.reason, options.message)] };
  const ready = options.ready === 'True';
  switch (resource) {
    case 'ksvc':
      return {
        ...base,
        url: options.url ?? `http://${name}.${namespace}.example.com`,
        address: { url: `http://${name}.${namespace}.${cluster}` },
        latestCreatedRevisionName: `${name}-00001`,
        ...(ready ? { latestReadyRevisionName: `${name}-00001` } : {}),
      };
    case 'pingsource':
      return { ...base, ...(ready ? { sinkUri: `http://broker-ingress.knative-eventing.${cluster}/${namespace}/default` } : {}) };
    case 'broker':
      return { ...base, ...(ready ? { address: { url: `http://broker-ingress.knative-eventing.${cluster}/${namespace}/default` } } : {}) };
    case 'trigger':
      return {
        ...base,
        ...(ready
          ? {
              subscriberUri: `http://snapshot.${namespace}.${cluster}`,
              deadLetterSinkUri: `http://snapshot.${namespace}.${cluster}/dead-letters`,
            }
          : {}),
      };
  }
}

/** Every object of the pipeline with the status its controller writes once all is well. */
export function readyPipeline(namespaces: Namespaces): Array<Manifest & { status: unknown }> {
  return pipelineManifests(namespaces)
    .filter((manifest) => manifest.kind !== 'Namespace')
    .map((manifest, index) => {
      const { resource, name } = pipelineNames[index]!;
      const namespace = manifest.metadata.namespace!;
      const status = resource === 'deployment' ? deploymentStatus(1) : knativeStatus(resource, name, namespace, { ready: 'True' });
      return { ...manifest, metadata: { ...manifest.metadata, generation: 1 }, status };
    });
}
