// The test API server itself: what it hands back works with kubectl and client-node, it installs the
// pinned Knative CRDs, it authenticates service accounts and authorizes with RBAC, it stops cleanly,
// and when kube-apiserver cannot start the error says why at once instead of waiting out a timeout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { startTestApiServer } from '../apiserver.js';
import { versions } from '../../tools/versions.js';

test('a test API server', async (t) => {
  const api = await startTestApiServer();
  t.after(() => api.stop());
  t.diagnostic(`ready in ${api.timings.totalMs} ms (etcd ${api.timings.etcdMs}, kube-apiserver ${api.timings.apiServerMs}, CRDs ${api.timings.crdsMs})`);

  await t.test(`serves Kubernetes ${versions.kubernetes} to kubectl and to client-node through its kubeconfig`, async () => {
    const version = await api.getJson<{ gitVersion: string }>('/version');
    assert.equal(version.gitVersion, `v${versions.kubernetes}`);
    const kubectl = await api.kubectl('get', 'namespace', 'default', '-o', 'name');
    assert.equal(kubectl.stdout.trim(), 'namespace/default');
    const config = new KubeConfig();
    config.loadFromFile(api.kubeconfigPath);
    const namespaces = await config.makeApiClient(CoreV1Api).listNamespace();
    assert.ok(namespaces.items.some((ns) => ns.metadata?.name === 'kube-system'));
  });

  await t.test(`has the Knative Serving ${versions.knativeServing} and Eventing ${versions.knativeEventing} CRDs established and served`, async () => {
    for (const crd of ['services.serving.knative.dev', 'pingsources.sources.knative.dev', 'brokers.eventing.knative.dev', 'triggers.eventing.knative.dev']) {
      assert.ok(api.crds.includes(crd), `${crd} not installed`);
    }
    // Served means kubectl can use the kinds straight away: a Knative Service is stored and read back.
    const ksvc = {
      apiVersion: 'serving.knative.dev/v1',
      kind: 'Service',
      metadata: { name: 'hello', namespace: 'default' },
      spec: { template: { spec: { containers: [{ image: 'example.com/hello:1' }] } } },
    };
    await api.kubectlWith({ input: JSON.stringify(ksvc) }, 'apply', '--server-side', '-f', '-');
    const stored = await api.kubectl('get', 'ksvc', 'hello', '-n', 'default', '-o', 'jsonpath={.spec.template.spec.containers[0].image}');
    assert.equal(stored.stdout, 'example.com/hello:1');
  });

  await t.test('issues service-account tokens it accepts, and authorizes them with RBAC', async () => {
    await api.kubectl('create', 'serviceaccount', 'probe', '-n', 'default');
    const token = (await api.kubectl('create', 'token', 'probe', '-n', 'default')).stdout.trim();
    const whoami = await api.kubectl('auth', 'whoami', `--token=${token}`, '-o', 'jsonpath={.status.userInfo.username}');
    assert.equal(whoami.stdout, 'system:serviceaccount:default:probe');
    const canI = await api.kubectlWith({ allowFailure: true }, 'auth', 'can-i', 'list', 'pods', `--token=${token}`);
    assert.equal(canI.stdout.trim(), 'no');
    assert.notEqual(canI.code, 0);
  });

  await t.test('stop() ends the API server and removes its folder, and may be called again', async () => {
    await api.stop();
    await assert.rejects(api.getJson('/readyz'), /ECONNREFUSED/);
    assert.equal(existsSync(api.dir), false);
    await api.stop();
  });
});

test('a kube-apiserver that cannot start fails at once with its own words', async () => {
  const started = Date.now();
  await assert.rejects(startTestApiServer({ crdDirectoryPaths: [], apiServerArgs: ['--no-such-flag=1'] }), (err: Error) => {
    assert.match(err.message, /kube-apiserver exited \(\d+\) before it was ready/);
    assert.match(err.message, /unknown flag: --no-such-flag/);
    return true;
  });
  // Far below the 60 s start timeout: the exit is noticed, not waited out.
  assert.ok(Date.now() - started < 20_000, `took ${Date.now() - started} ms`);
});
