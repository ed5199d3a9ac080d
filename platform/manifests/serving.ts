// Knative Serving's Services as the platform renders them: the revision template, its one serving
// container and port, and that container's resolved environment.
import { findObject, type KubeObject } from './objects.js';
import { podTemplates, resolveEnv, type Container, type PodTemplate, type ResolvedEnv } from './pods.js';

export interface KnativeServiceSpec {
  namespace: string;
  name: string;
  /** The revision template's annotations (autoscaling, prometheus.io). */
  annotations: Record<string, string>;
  labels: Record<string, string>;
  serviceAccountName?: string;
  timeoutSeconds?: number;
  container: Container;
  /** The port Knative sends requests to and sets as $PORT: the container's port, else 8080. */
  port: number;
  /** The container's environment, with Secret values resolved from the rendered Secrets. */
  env: ResolvedEnv;
  template: PodTemplate;
}

export function knativeService(objects: readonly KubeObject[], name: string, namespace = 'promsnap'): KnativeServiceSpec {
  const object = findObject(objects, 'Service.serving.knative.dev', name, namespace);
  const template = podTemplates([object])[0]!;
  // Knative serves exactly one container's port; with several containers, the one that declares it.
  const container = template.spec.containers.find((c) => (c.ports ?? []).length > 0) ?? template.spec.containers[0]!;
  const timeout = template.spec['timeoutSeconds'];
  return {
    namespace,
    name,
    annotations: template.annotations,
    labels: template.labels,
    ...(template.spec.serviceAccountName ? { serviceAccountName: template.spec.serviceAccountName } : {}),
    ...(typeof timeout === 'number' ? { timeoutSeconds: timeout } : {}),
    container,
    port: container.ports?.[0]?.containerPort ?? 8080,
    env: resolveEnv(objects, namespace, container),
    template,
  };
}
