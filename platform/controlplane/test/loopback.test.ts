// The control plane's loopback placement with kube-controller-manager: on the host's loopback, free
// ports, a kubeconfig that verifies the API server's own CA, the controllers at work, and stop() removing
// everything; started without waiting for the controller manager; and applyObjects, the parallel
// server-side apply the local cluster installs Knative with. (Without the controller manager it is the
// test API server: platform/testing/test/apiserver.test.ts.)
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { waitFor } from '../../tools/wait.js';
import { ApplyError, applyObjects } from '../apply.js';
import { startControlPlane } from '../index.js';

test('a control plane on loopback, with the controller manager', async (t) => {
  const cp = await startControlPlane({ placement: 'loopback', controllerManager: true });
  t.after(() => cp.stop());
  const { etcdMs, apiServerMs, controllerManagerMs, totalMs } = cp.timings;
  t.diagnostic(`ready in ${totalMs} ms (etcd ${etcdMs}, kube-apiserver ${apiServerMs}, kube-controller-manager ${controllerManagerMs})`);

  await t.test('hands back a kubeconfig that verifies the server against its CA', async () => {
    assert.equal(cp.placement, 'loopback');
    assert.match(cp.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(cp.inClusterUrl, undefined);
    assert.equal(cp.nodeKubeconfigPath, undefined);
    assert.doesNotMatch(readFileSync(cp.kubeconfigPath, 'utf8'), /insecure-skip-tls-verify/);
    const config = new KubeConfig();
    config.loadFromFile(cp.kubeconfigPath);
    const namespaces = await config.makeApiClient(CoreV1Api).listNamespace();
    assert.ok(namespaces.items.some((ns) => ns.metadata?.name === 'kube-node-lease'));
  });

  await t.test('reconciles: a Deployment gets its ReplicaSet and Pods, each namespace its default ServiceAccount', async () => {
    await cp.kubectl('create', 'namespace', 'apps');
    await cp.kubectl('create', 'deployment', 'web', '--image=dev.local/web:1', '--replicas=2', '-n', 'apps');
    await waitFor(async () => (await cp.getJson<{ items: unknown[] }>('/api/v1/namespaces/apps/pods')).items.length === 2, {
      what: 'two pods of the Deployment',
      timeoutMs: 30_000,
    });
    await waitFor(() => cp.getJson('/api/v1/namespaces/apps/serviceaccounts/default'), { what: 'the default ServiceAccount of apps', timeoutMs: 30_000 });
  });

  await t.test('applyObjects: namespaces first, webhook configurations last, in parallel; what is refused is named', async () => {
    const namespace = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'applied' } };
    const account = { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'web', namespace: 'applied' } };
    const config = (n: number) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `config-${n}`, namespace: 'applied' }, data: { n: String(n) } });
    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace: 'applied' },
      spec: {
        selector: { matchLabels: { app: 'web' } },
        template: { metadata: { labels: { app: 'web' } }, spec: { serviceAccountName: 'web', containers: [{ name: 'web', image: 'dev.local/web:1' }] } },
      },
    };
    // Refuses every ConfigMap write in the namespace from the moment it exists: nothing serves it.
    const guard = {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingWebhookConfiguration',
      metadata: { name: 'applied-guard' },
      webhooks: [
        {
          name: 'guard.applied.example.com',
          admissionReviewVersions: ['v1'],
          sideEffects: 'None',
          failurePolicy: 'Fail',
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'applied' } },
          rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['configmaps'] }],
          clientConfig: { service: { name: 'nobody', namespace: 'applied', port: 443 } },
        },
      ],
    };
    const configs = Array.from({ length: 30 }, (_, i) => config(i));
    // Listed in the worst order: a file applied one object at a time in this order would fail.
    await applyObjects(cp.request, [guard, deployment, ...configs, account, namespace]);
    const stored = await cp.getJson<{ items: Array<{ metadata: { name: string; managedFields?: Array<{ manager: string; operation: string }> } }> }>(
      '/api/v1/namespaces/applied/configmaps',
    );
    assert.equal(stored.items.filter((c) => c.metadata.name.startsWith('config-')).length, 30);
    const managed = stored.items.find((c) => c.metadata.name === 'config-7')!.metadata.managedFields!;
    assert.deepEqual(
      managed.map((m) => [m.manager, m.operation]),
      [['promsnap', 'Apply']],
    );
    await waitFor(async () => (await cp.getJson<{ items: unknown[] }>('/api/v1/namespaces/applied/pods')).items.length === 1, {
      what: "the Deployment's pod, created with its ServiceAccount in place",
      timeoutMs: 30_000,
    });

    // Applied again, the guard is in place before the ConfigMaps: each refusal is named; the rest applies.
    const error = await applyObjects(cp.request, [
      namespace,
      config(1),
      config(2),
      { apiVersion: 'example.com/v1', kind: 'Thing', metadata: { name: 'x' } },
    ]).then(
      () => undefined,
      (err: unknown) => err,
    );
    assert.ok(error instanceof ApplyError, String(error));
    assert.deepEqual(error.failures.map((f) => f.split(':')[0]).sort(), ['ConfigMap applied/config-1', 'ConfigMap applied/config-2', 'Thing x']);
    assert.match(error.message, /ConfigMap applied\/config-1: 500 .*guard\.applied\.example\.com/);
  });

  await t.test('stop() ends every process and removes its folder', async () => {
    await cp.stop();
    assert.equal(cp.processes.kubeControllerManager!.alive, false);
    assert.equal(cp.processes.kubeApiserver.alive, false);
    assert.equal(cp.processes.etcd.alive, false);
    assert.equal(existsSync(cp.dir), false);
  });
});

test('a control plane that does not wait for its controller manager: returns first, the controllers catch up, stop() mid-start leaves nothing', async (t) => {
  const started = Date.now();
  const cp = await startControlPlane({ placement: 'loopback', controllerManager: true, awaitControllerManager: false });
  t.after(() => cp.stop());
  const returnedMs = Date.now() - started;
  assert.equal(cp.timings.controllerManagerMs, 0, 'not ready yet when start returned');
  await cp.kubectl('create', 'namespace', 'early');
  await cp.kubectl('create', 'deployment', 'web', '--image=dev.local/web:1', '-n', 'early');
  await cp.controllerManagerReady;
  assert.ok(cp.timings.controllerManagerMs > 0);
  t.diagnostic(`start returned after ${returnedMs} ms; kube-controller-manager ready ${cp.timings.controllerManagerMs} ms after it was started`);
  await waitFor(async () => (await cp.getJson<{ items: unknown[] }>('/api/v1/namespaces/early/pods')).items.length === 1, {
    what: 'the pod of a Deployment created before the controllers ran',
    timeoutMs: 30_000,
  });
  await cp.stop();
  assert.equal(cp.processes.kubeControllerManager!.alive, false);

  // Stopped at once: before the controller manager is spawned, or while it starts.
  const again = await startControlPlane({ placement: 'loopback', controllerManager: true, awaitControllerManager: false });
  await again.stop();
  await assert.rejects(again.controllerManagerReady);
  assert.equal(again.processes.kubeControllerManager?.alive ?? false, false, 'no controller manager left running');
  assert.equal(existsSync(again.dir), false);
});
