// The CLI looks objects up by the names in pipeline.ts, without rendering the platform at run time
// (that would need kustomize on the user's machine and the credentials files). This test renders it
// and holds the two together both ways: every name the CLI reads is deployed, and every workload and
// eventing object deployed is one the CLI reads, so a rename or an addition in platform/ fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeObject, groupOf, renderPlatform } from '../../manifests/index.js';
import { defaultNamespaces, loadTarget, pipelineObjects, resourceTypes, type Resource } from '../pipeline.js';

const key = (resource: Resource, namespace: string, name: string) => `${resource} ${namespace}/${name}`;

test('status reads exactly the Deployments, Knative Services, PingSources, Brokers and Triggers the platform deploys', async () => {
  const { objects } = await renderPlatform();
  const byType = new Map(Object.entries(resourceTypes).map(([resource, type]) => [`${type.group}/${type.kind}`, resource as Resource]));
  const deployed = objects.flatMap((object) => {
    const resource = byType.get(`${groupOf(object)}/${object.kind}`);
    return resource ? [key(resource, object.metadata.namespace ?? '?', object.metadata.name)] : [];
  });
  const read = pipelineObjects(defaultNamespaces).map((ref) => key(ref.resource, ref.namespace, ref.name));
  assert.deepEqual([...read].sort(), [...deployed].sort(), `rendered: ${objects.map(describeObject).join(', ')}`);
});

test('load targets a Knative Service the platform deploys', async () => {
  const { objects } = await renderPlatform();
  const ksvc = objects.find(
    (o) =>
      groupOf(o) === 'serving.knative.dev' &&
      o.kind === 'Service' &&
      o.metadata.name === loadTarget.name &&
      o.metadata.namespace === defaultNamespaces.pipeline,
  );
  assert.ok(ksvc, `no Knative Service ${defaultNamespaces.pipeline}/${loadTarget.name}`);
});
