// The DNS responder against a real API server, asked by Node's own resolver (c-ares) over loopback:
// Services created and deleted while it runs, the answer types a resolver acts on (A, CNAME, NODATA vs
// NXDOMAIN), and an answer too large for UDP fetched again over TCP.
import assert from 'node:assert/strict';
import { Resolver } from 'node:dns/promises';
import { after, before, test } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { startTestApiServer, type TestApiServer } from '../../testing/apiserver.js';
import { waitFor } from '../../tools/wait.js';
import { createLogger } from '../../../functions/runtime/src/logger.js';
import { startDns, type DnsServer } from '../dns.js';

let api: TestApiServer;
let dns: DnsServer;
let resolver: Resolver;

before(async () => {
  api = await startTestApiServer({ crdDirectoryPaths: [] });
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(api.kubeconfigPath);
  dns = await startDns({ kubeConfig, address: '127.0.0.1', port: 0, domain: 'cluster.local', log: createLogger({ level: 'warn' }) });
  resolver = new Resolver({ timeout: 2_000, tries: 1 });
  resolver.setServers([`127.0.0.1:${dns.port}`]);
});

after(async () => {
  await dns?.close();
  await api?.stop();
});

const apply = (yaml: string) => api.kubectlWith({ input: yaml }, 'apply', '-f', '-');
const clusterIp = async (namespace: string, name: string) =>
  (await api.kubectl('get', 'service', '-n', namespace, name, '-o', 'jsonpath={.spec.clusterIP}')).stdout.trim();
const errorCode = (promise: Promise<unknown>) =>
  promise.then(
    () => 'answered',
    (err: NodeJS.ErrnoException) => err.code,
  );

test('a Service created while the server runs resolves to its ClusterIP; deleted, it is NXDOMAIN', async () => {
  await apply(`apiVersion: v1
kind: Namespace
metadata: {name: promsnap}
---
apiVersion: v1
kind: Service
metadata: {name: simulation, namespace: promsnap}
spec: {ports: [{name: http, port: 80, targetPort: 8080}]}
`);
  const ip = await clusterIp('promsnap', 'simulation');
  assert.match(ip, /^10\.96\./);
  const answered = await waitFor(async () => (await resolver.resolve4('simulation.promsnap.svc.cluster.local').catch(() => []))[0], {
    what: 'simulation.promsnap.svc.cluster.local to resolve',
    timeoutMs: 10_000,
    intervalMs: 100,
  });
  assert.equal(answered, ip);
  const withTtl = await resolver.resolve4('SIMULATION.promsnap.svc.cluster.local', { ttl: true });
  assert.deepEqual(withTtl, [{ address: ip, ttl: 5 }], 'case-insensitive, CoreDNS TTL');

  await api.kubectl('delete', 'service', '-n', 'promsnap', 'simulation');
  await waitFor(async () => (await errorCode(resolver.resolve4('simulation.promsnap.svc.cluster.local'))) === 'ENOTFOUND', {
    what: 'the deleted Service to be NXDOMAIN',
    timeoutMs: 10_000,
    intervalMs: 100,
  });
});

test('an existing name has no AAAA (NODATA), an unknown one does not exist (NXDOMAIN), nothing outside the zone resolves', async () => {
  await apply(`apiVersion: v1
kind: Service
metadata: {name: prometheus, namespace: promsnap}
spec: {ports: [{name: web, port: 9090}]}
`);
  await waitFor(async () => (await resolver.resolve4('prometheus.promsnap.svc.cluster.local').catch(() => [])).length > 0, {
    what: 'prometheus to resolve',
    timeoutMs: 10_000,
    intervalMs: 100,
  });
  assert.equal(await errorCode(resolver.resolve6('prometheus.promsnap.svc.cluster.local')), 'ENODATA');
  assert.equal(await errorCode(resolver.resolve4('nothing.promsnap.svc.cluster.local')), 'ENOTFOUND');
  assert.equal(await errorCode(resolver.resolve4('prometheus.promsnap.svc.cluster.local.promsnap.svc.cluster.local')), 'ENOTFOUND', 'a search expansion');
  assert.equal(await errorCode(resolver.resolve4('registry.npmjs.org')), 'ENOTFOUND');
  assert.deepEqual(await resolver.resolve4('10-244-1-7.promsnap.pod.cluster.local'), ['10.244.1.7']);
  const soa = await resolver.resolveSoa('cluster.local');
  assert.equal(soa.nsname, 'ns.dns.cluster.local');
});

test("an ExternalName answers a CNAME that the resolver follows to the target's ClusterIP (Knative's route placeholder)", async () => {
  await apply(`apiVersion: v1
kind: Namespace
metadata: {name: knative-serving}
---
apiVersion: v1
kind: Service
metadata: {name: promsnap-ingress, namespace: knative-serving}
spec: {ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: promsnap}
spec: {type: ExternalName, externalName: promsnap-ingress.knative-serving.svc.cluster.local}
`);
  const ingressIp = await clusterIp('knative-serving', 'promsnap-ingress');
  const addresses = await waitFor(async () => resolver.resolve4('web.promsnap.svc.cluster.local').catch(() => undefined), {
    what: 'web to resolve through its CNAME',
    timeoutMs: 10_000,
    intervalMs: 100,
  });
  assert.deepEqual(addresses, [ingressIp]);
  assert.deepEqual(await resolver.resolveCname('web.promsnap.svc.cluster.local'), ['promsnap-ingress.knative-serving.svc.cluster.local']);
});

test('a headless Service answers its ready endpoints; 100 of them overflow UDP and come back whole over TCP', async () => {
  const statsBefore = dns.stats();
  const endpoints = Array.from({ length: 100 }, (_, i) => `{addresses: [10.244.2.${i + 1}]}`).join(', ');
  await apply(`apiVersion: v1
kind: Service
metadata: {name: workers, namespace: promsnap}
spec: {clusterIP: None, ports: [{name: http, port: 8080}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: workers-1, namespace: promsnap, labels: {kubernetes.io/service-name: workers}}
addressType: IPv4
endpoints: [${endpoints}, {addresses: [10.244.3.1], conditions: {ready: false}}]
ports: [{name: http, port: 8080}]
`);
  const addresses = await waitFor(
    async () => {
      const found = await resolver.resolve4('workers.promsnap.svc.cluster.local').catch(() => []);
      return found.length === 100 ? found : undefined;
    },
    { what: '100 endpoints to resolve', timeoutMs: 10_000, intervalMs: 100 },
  );
  // 100 A records are about 1,650 bytes: over EDNS0's 1,232, so only TCP can carry them.
  assert.equal(new Set(addresses).size, 100);
  assert.ok(!addresses.includes('10.244.3.1'), 'the unready endpoint is left out');
  const statsAfter = dns.stats();
  assert.ok(statsAfter.truncated > statsBefore.truncated, 'the UDP answer was truncated');
  assert.ok(statsAfter.tcp > statsBefore.tcp, 'the resolver asked again over TCP');
});
