// The objects `npm run cluster -- status` reads, and the API resources they belong to. The names are
// the ones platform/ deploys (test/pipeline.test.ts renders the manifests and checks every one of them
// is there, so a rename in platform/ fails that test instead of silently breaking the CLI).

/** The kinds the CLI reads, by the short name kubectl accepts for each (`kubectl get ksvc`). */
export type Resource = 'deployment' | 'ksvc' | 'pingsource' | 'broker' | 'trigger';

export interface ResourceType {
  group: string;
  version: string;
  plural: string;
  kind: string;
}

export const resourceTypes: Record<Resource, ResourceType> = {
  deployment: { group: 'apps', version: 'v1', plural: 'deployments', kind: 'Deployment' },
  ksvc: { group: 'serving.knative.dev', version: 'v1', plural: 'services', kind: 'Service' },
  pingsource: { group: 'sources.knative.dev', version: 'v1', plural: 'pingsources', kind: 'PingSource' },
  broker: { group: 'eventing.knative.dev', version: 'v1', plural: 'brokers', kind: 'Broker' },
  trigger: { group: 'eventing.knative.dev', version: 'v1', plural: 'triggers', kind: 'Trigger' },
};

export interface ObjectRef {
  resource: Resource;
  namespace: string;
  name: string;
}

/** Where the pipeline lives; --namespace and --monitoring-namespace override the defaults. */
export interface Namespaces {
  /** MinIO, the Knative Services, Broker, Trigger and PingSource. */
  pipeline: string;
  /** Prometheus and kube-state-metrics. */
  monitoring: string;
}

export const defaultNamespaces: Namespaces = { pipeline: 'promsnap', monitoring: 'monitoring' };

/** Which of the two namespaces each object is deployed to, and its name there. */
export const pipelineNames: ReadonlyArray<{ resource: Resource; namespace: keyof Namespaces; name: string }> = [
  { resource: 'deployment', namespace: 'monitoring', name: 'prometheus' },
  { resource: 'deployment', namespace: 'monitoring', name: 'kube-state-metrics' },
  { resource: 'deployment', namespace: 'pipeline', name: 'minio' },
  { resource: 'ksvc', namespace: 'pipeline', name: 'simulation' },
  { resource: 'ksvc', namespace: 'pipeline', name: 'snapshot' },
  { resource: 'pingsource', namespace: 'pipeline', name: 'snapshot-schedule' },
  { resource: 'broker', namespace: 'pipeline', name: 'default' },
  { resource: 'trigger', namespace: 'pipeline', name: 'snapshot' },
];

/** The Knative Service `load` sends traffic to, and the label Knative puts on its pods. */
export const loadTarget = { name: 'simulation', podLabel: 'serving.knative.dev/service' } as const;

/** Every object status reports on, in table order. */
export function pipelineObjects(namespaces: Namespaces = defaultNamespaces): ObjectRef[] {
  return pipelineNames.map(({ resource, namespace, name }) => ({ resource, namespace: namespaces[namespace], name }));
}

/** `ksvc/simulation`, as kubectl names an object. */
export function refName(ref: Pick<ObjectRef, 'resource' | 'name'>): string {
  return `${ref.resource}/${ref.name}`;
}
