// The control plane's loopback placement with kube-controller-manager: on the host's loopback, free
// ports, a kubeconfig that verifies the API server's own CA, the controllers at work, and stop() removing
// everything. (Without the controller manager it is the test API server: platform/testing/test/apiserver.test.ts.)
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { waitFor } from '../../tools/wait.js';
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

  await t.test('stop() ends every process and removes its folder', async () => {
    await cp.stop();
    assert.equal(cp.processes.kubeControllerManager!.alive, false);
    assert.equal(cp.processes.kubeApiserver.alive, false);
    assert.equal(cp.processes.etcd.alive, false);
    assert.equal(existsSync(cp.dir), false);
  });
});
