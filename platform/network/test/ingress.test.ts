// The KIngress started before Knative is installed, as the local node starts before Knative's pods: it
// serves an empty route table, keeps watching, and takes the Ingresses up once the CRD is served.
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { createLogger } from '../../../functions/runtime/src/logger.js';
import { startTestApiServer, type TestApiServer } from '../../testing/apiserver.js';
import { waitFor } from '../../tools/wait.js';
import { startIngress, defaultIngressClass, type KnativeIngress } from '../ingress.js';
import type { KIngress } from '../ingress-routes.js';
import { knativeIngressCrdDir, restrictedKubeconfig } from './testbed.js';

let dir: string;
let api: TestApiServer;
let ingress: KnativeIngress;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'promsnap-ingress-'));
  api = await startTestApiServer({ crdDirectoryPaths: [] });
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromString(await restrictedKubeconfig(api));
  ingress = await startIngress({
    kubeConfig,
    ingressClass: defaultIngressClass,
    listen: { host: '127.0.0.1', port: 0 },
    domainInternal: 'promsnap-ingress.knative-serving.svc.cluster.local',
    log: createLogger({ level: 'error' }),
  });
});

after(async () => {
  await ingress?.close();
  await api?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function get(hostHeader: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: ingress.address.port, path: '/', headers: { host: hostHeader }, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

test('started before the CRD exists, it answers 404, then serves Ingresses a few seconds after the CRD is installed', async (t) => {
  assert.equal(await get('simulation.promsnap.example.com'), 404);
  const crds = await knativeIngressCrdDir(dir);
  await api.kubectl('apply', '-f', crds);
  await api.kubectl('wait', '--for=condition=Established', 'crd/ingresses.networking.internal.knative.dev', '--timeout=30s');
  const installed = Date.now();
  await api.kubectlWith(
    {
      input: `apiVersion: v1
kind: Namespace
metadata: {name: promsnap}
---
apiVersion: v1
kind: Service
metadata: {name: simulation-00001, namespace: promsnap}
spec: {ports: [{name: http, port: 80, targetPort: 8012}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: simulation-00001-1, namespace: promsnap, labels: {kubernetes.io/service-name: simulation-00001}}
addressType: IPv4
endpoints: [{addresses: [10.244.1.5]}]
ports: [{name: http, port: 8012}]
---
apiVersion: networking.internal.knative.dev/v1alpha1
kind: Ingress
metadata:
  name: simulation
  namespace: promsnap
  annotations: {networking.knative.dev/ingress.class: ${defaultIngressClass}}
spec:
  rules:
  - hosts: [simulation.promsnap.example.com]
    visibility: ExternalIP
    http: {paths: [{splits: [{serviceNamespace: promsnap, serviceName: simulation-00001, servicePort: 80}]}]}
`,
    },
    'apply',
    '-f',
    '-',
  );
  await waitFor(
    async () =>
      (await api.getJson<KIngress>('/apis/networking.internal.knative.dev/v1alpha1/namespaces/promsnap/ingresses/simulation')).status?.conditions?.some(
        (c) => c.type === 'Ready' && c.status === 'True',
      ),
    { what: 'the Ingress to be Ready', timeoutMs: 20_000, intervalMs: 100 },
  );
  t.diagnostic(`Ready ${Date.now() - installed} ms after the CRD was established`);
  assert.equal(await get('other.promsnap.example.com'), 404);
});
