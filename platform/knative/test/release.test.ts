// Knative's releases as the local cluster applies them, read from the pinned modules' config/ folders:
// what is left out, what is changed, the order, and that the local node has every image they name.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { toolImages } from '../../images/index.js';
import { describeObject, type KubeObject } from '../../manifests/objects.js';
import { defaultIngressClass } from '../../network/ingress.js';
import { assembleRelease, configMapPatch, eventingRelease, servingRelease } from '../index.js';

const ingress = { address: '10.244.0.1', port: 80 };

function find(objects: readonly KubeObject[], kind: string, name: string): KubeObject {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  assert.ok(found, `${kind} ${name} is in the release`);
  return found;
}

/** Every image a workload's pod template names. */
function imagesOf(objects: readonly KubeObject[]): string[] {
  return objects
    .filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet')
    .flatMap((o) => {
      const spec = (o['spec'] as { template: { spec: { containers: Array<{ image: string }>; initContainers?: Array<{ image: string }> } } }).template.spec;
      return [...spec.containers, ...(spec.initContainers ?? [])].map((c) => c.image);
    });
}

test("Serving's release: networking's and caching's CRDs included, HPAs left out, our ingress class and domain, webhooks applied last", async () => {
  const release = await servingRelease({ ingress });
  const crds = release.crds.map((c) => c.metadata.name).sort();
  for (const name of [
    'services.serving.knative.dev',
    'revisions.serving.knative.dev',
    'podautoscalers.autoscaling.internal.knative.dev',
    'ingresses.networking.internal.knative.dev',
    'serverlessservices.networking.internal.knative.dev',
    'certificates.networking.internal.knative.dev',
    'clusterdomainclaims.networking.internal.knative.dev',
    'images.caching.internal.knative.dev',
  ]) {
    assert.ok(crds.includes(name), `${name} in ${crds.join(', ')}`);
  }
  assert.ok(!release.objects.some((o) => o.kind === 'CustomResourceDefinition'));
  assert.deepEqual(
    release.skipped.map((s) => s.object),
    ['HorizontalPodAutoscaler.autoscaling/knative-serving/activator', 'HorizontalPodAutoscaler.autoscaling/knative-serving/webhook'],
  );
  assert.ok(
    release.objects.some((o) => o.kind === 'PodDisruptionBudget'),
    'the PDBs stay',
  );

  const network = find(release.objects, 'ConfigMap', 'config-network')['data'] as Record<string, string>;
  assert.equal(network['ingress-class'], defaultIngressClass);
  assert.equal(network['mesh-compatibility-mode'], 'disabled');
  assert.ok(network['_example'], "the module's documentation stays");
  assert.equal((find(release.objects, 'ConfigMap', 'config-domain')['data'] as Record<string, string>)['example.com'], '');
  const service = find(release.objects, 'Service', 'promsnap-ingress');
  assert.equal(service.metadata.namespace, 'knative-serving');

  assert.equal(release.objects[0]!.kind, 'Namespace');
  const kinds = release.objects.map((o) => o.kind);
  const firstWebhook = kinds.findIndex((k) => k.endsWith('WebhookConfiguration'));
  assert.equal(kinds.length - firstWebhook, 3, 'the three webhook configurations come last');
  assert.ok(kinds.indexOf('Secret') < firstWebhook, 'webhook-certs exists before any configuration names the webhook');

  const deployments = release.objects.filter((o) => o.kind === 'Deployment').map((o) => o.metadata.name);
  assert.deepEqual(deployments.sort(), ['activator', 'autoscaler', 'controller', 'webhook']);
});

test('Eventing’s release: core, the in-memory channel and the MT channel-based broker, HPAs left out, nothing changed', async () => {
  const release = await eventingRelease();
  assert.deepEqual(release.changes, []);
  assert.ok(release.skipped.every((s) => s.object.startsWith('HorizontalPodAutoscaler')));
  for (const name of [
    'brokers.eventing.knative.dev',
    'triggers.eventing.knative.dev',
    'pingsources.sources.knative.dev',
    'inmemorychannels.messaging.knative.dev',
  ]) {
    assert.ok(
      release.crds.some((c) => c.metadata.name === name),
      name,
    );
  }
  // Every right and setting exists before the first workload starts (job-sink exits when its ClusterRole is missing).
  const firstWorkload = release.objects.findIndex((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet');
  const lastSetup = release.objects.findLastIndex((o) => /^(ServiceAccount|ClusterRole|Role|ClusterRoleBinding|RoleBinding|ConfigMap|Secret)$/.test(o.kind));
  assert.ok(lastSetup < firstWorkload, `${describeObject(release.objects[lastSetup]!)} is applied before the workloads`);
  const workloads = release.objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet').map((o) => `${o.kind}/${o.metadata.name}`);
  for (const name of [
    'Deployment/eventing-controller',
    'Deployment/eventing-webhook',
    'Deployment/pingsource-mt-adapter',
    'Deployment/imc-controller',
    'Deployment/imc-dispatcher',
    'Deployment/mt-broker-controller',
    'Deployment/mt-broker-ingress',
    'Deployment/mt-broker-filter',
  ]) {
    assert.ok(workloads.includes(name), `${name} in ${workloads.join(', ')}`);
  }
});

test('the local node has an image for every container Knative’s workloads run', async () => {
  const known = new Set(toolImages().map((image) => image.reference));
  const named = [...imagesOf((await servingRelease({ ingress })).objects), ...imagesOf((await eventingRelease()).objects)];
  assert.ok(named.length >= 13);
  assert.deepEqual(
    named.filter((image) => !known.has(image)),
    [],
  );
  // queue-proxy is named by config-deployment, not by a workload.
  assert.ok(known.has('ko://knative.dev/serving/cmd/queue'));
});

test('a change for an object the release does not have is refused, not silently dropped', () => {
  const objects: KubeObject[] = [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'config-network', namespace: 'knative-serving' }, data: { a: '1' } }];
  assert.throws(
    () =>
      assembleRelease({
        component: 'serving',
        version: '0',
        namespace: 'knative-serving',
        objects,
        patches: [configMapPatch('config-domian', { x: '' }, 'typo')],
      }),
    /no ConfigMap config-domian in its config\//,
  );
  const release = assembleRelease({
    component: 'serving',
    version: '0',
    namespace: 'knative-serving',
    objects,
    patches: [configMapPatch('config-network', { b: '2' }, 'test')],
  });
  assert.deepEqual(release.objects[0]!['data'], { a: '1', b: '2' });
  assert.deepEqual(objects[0]!['data'], { a: '1' }, 'the module’s object is not changed in place');
});
