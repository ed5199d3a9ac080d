import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildRouteTable, chooseSplit, hasClass, hostWithoutPort, matchRoute, type KIngress, type KIngressPath } from '../ingress-routes.js';

const ourClass = 'promsnap.ingress.networking.knative.dev';

/** A KIngress shaped as Knative Serving 0.50's route reconciler makes it for a ksvc (resources/ingress.go). */
function ksvcIngress(name: string, options: { created?: string; paths?: KIngressPath[]; externalHost?: string } = {}): KIngress {
  const paths = options.paths ?? [
    {
      splits: [
        {
          serviceNamespace: 'promsnap',
          serviceName: `${name}-00001`,
          servicePort: 80,
          percent: 100,
          appendHeaders: { 'Knative-Serving-Revision': `${name}-00001`, 'Knative-Serving-Namespace': 'promsnap' },
        },
      ],
    },
  ];
  const metadata = {
    name,
    namespace: 'promsnap',
    generation: 1,
    annotations: { 'networking.knative.dev/ingress.class': ourClass },
    creationTimestamp: options.created ?? '2026-12-04T10:00:00Z',
  };
  return {
    apiVersion: 'networking.internal.knative.dev/v1alpha1',
    kind: 'Ingress',
    metadata,
    spec: {
      httpOption: 'Enabled',
      rules: [
        {
          hosts: [`${name}.promsnap`, `${name}.promsnap.svc`, `${name}.promsnap.svc.cluster.local`],
          visibility: 'ClusterLocal',
          http: { paths },
        },
        { hosts: [options.externalHost ?? `${name}.promsnap.example.com`], visibility: 'ExternalIP', http: { paths } },
      ],
    },
  };
}

const noHeaders = () => undefined;

test('the class annotation decides which Ingresses are ours', () => {
  assert.equal(hasClass(ksvcIngress('simulation'), ourClass), true);
  assert.equal(hasClass(ksvcIngress('simulation'), 'kourier.ingress.networking.knative.dev'), false);
});

test('a Host matches with or without a port, in any case', () => {
  assert.equal(hostWithoutPort('Simulation.PromSnap.example.com:8080'), 'simulation.promsnap.example.com');
  assert.equal(hostWithoutPort('simulation.promsnap'), 'simulation.promsnap');
  assert.equal(hostWithoutPort('[::1]:80'), '[::1]');
  const { table } = buildRouteTable([ksvcIngress('simulation')]);
  for (const host of ['simulation.promsnap.example.com', 'simulation.promsnap.example.com:80', 'SIMULATION.promsnap.example.com:31080']) {
    assert.equal(matchRoute(table, 'public', host, '/simulate-requests', noHeaders)?.ingress, 'promsnap/simulation', host);
  }
  assert.equal(matchRoute(table, 'public', 'other.promsnap.example.com', '/', noHeaders), undefined);
  assert.equal(matchRoute(table, 'public', undefined, '/', noHeaders), undefined);
});

test('visibility: ClusterLocal hosts only in-cluster; ExternalIP hosts on both listeners (as kourier-internal serves every rule)', () => {
  const { table } = buildRouteTable([ksvcIngress('simulation')]);
  assert.equal(matchRoute(table, 'public', 'simulation.promsnap.svc.cluster.local', '/', noHeaders), undefined);
  assert.equal(matchRoute(table, 'internal', 'simulation.promsnap.svc.cluster.local', '/', noHeaders)?.ingress, 'promsnap/simulation');
  assert.equal(matchRoute(table, 'internal', 'simulation.promsnap:80', '/', noHeaders)?.ingress, 'promsnap/simulation');
  assert.equal(matchRoute(table, 'internal', 'simulation.promsnap.example.com', '/', noHeaders)?.ingress, 'promsnap/simulation');
});

test('paths are prefixes, the longest first whatever their order; header matches are exact', () => {
  const split = (serviceName: string) => [{ serviceNamespace: 'promsnap', serviceName, servicePort: 80 }];
  const ingress = ksvcIngress('app', {
    paths: [
      { path: '/', splits: split('root') },
      { path: '/api', splits: split('api') },
      { path: '/api/v2', splits: split('v2') },
      { path: '/', headers: { 'Knative-Serving-Tag': { exact: 'canary' } }, splits: split('canary') },
    ],
  });
  const { table } = buildRouteTable([ingress]);
  const backend = (url: string, headers: Record<string, string> = {}) =>
    matchRoute(table, 'public', 'app.promsnap.example.com', url, (name) => headers[name])?.splits[0]?.name;
  assert.equal(backend('/api/v2/items?x=/'), 'v2');
  assert.equal(backend('/api/v1'), 'api');
  assert.equal(backend('/apiary'), 'api', 'a prefix of the string, as Envoy matches it');
  assert.equal(backend('/other?path=/api'), 'root', 'the query is not the path');
  assert.equal(backend('/', { 'knative-serving-tag': 'canary' }), 'root', 'a longer-or-equal earlier route wins: / before the tag route of /');
  const tagFirst = ksvcIngress('app', {
    paths: [{ headers: { 'Knative-Serving-Tag': { exact: 'canary' } }, splits: split('canary') }, { splits: split('root') }],
  });
  const t2 = buildRouteTable([tagFirst]).table;
  const tagged = (value: string | undefined) =>
    matchRoute(t2, 'public', 'app.promsnap.example.com', '/', (name) => (name === 'knative-serving-tag' ? value : undefined))?.splits[0]?.name;
  assert.equal(tagged('canary'), 'canary', 'Knative puts tag routes before the default one');
  assert.equal(tagged('Canary'), 'root', 'values match exactly');
  assert.equal(tagged(undefined), 'root');
});

test('splits are chosen by percent; appendHeaders of the path and split are set, the split winning', () => {
  const ingress = ksvcIngress('simulation', {
    paths: [
      {
        appendHeaders: { 'X-Path': 'p', 'Knative-Serving-Namespace': 'from-path' },
        splits: [
          {
            serviceNamespace: 'promsnap',
            serviceName: 'simulation-00001',
            servicePort: 80,
            percent: 90,
            appendHeaders: { 'Knative-Serving-Namespace': 'promsnap' },
          },
          { serviceNamespace: 'promsnap', serviceName: 'simulation-00002', servicePort: 80, percent: 10 },
          { serviceNamespace: 'promsnap', serviceName: 'simulation-00003', servicePort: 80, percent: 0 },
        ],
      },
    ],
  });
  const route = matchRoute(buildRouteTable([ingress]).table, 'public', 'simulation.promsnap.example.com', '/', noHeaders)!;
  assert.equal(chooseSplit(route, () => 0)?.name, 'simulation-00001');
  assert.equal(chooseSplit(route, () => 0.899)?.name, 'simulation-00001');
  assert.equal(chooseSplit(route, () => 0.9)?.name, 'simulation-00002');
  assert.equal(chooseSplit(route, () => 0.9999)?.name, 'simulation-00002', 'a 0 % split is never chosen');
  assert.deepEqual(route.splits[0]!.setHeaders, { 'x-path': 'p', 'knative-serving-namespace': 'promsnap' });
  assert.deepEqual(route.splits[1]!.setHeaders, { 'x-path': 'p', 'knative-serving-namespace': 'from-path' });
  // Over many draws the shares follow the percents.
  let seed = 42;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const counts = new Map<string, number>();
  for (let i = 0; i < 10_000; i++) {
    const name = chooseSplit(route, random)!.name;
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  assert.ok(Math.abs(counts.get('simulation-00001')! - 9_000) < 300, JSON.stringify([...counts]));
  assert.equal(counts.get('simulation-00003'), undefined);
});

test('one split without a percent takes all the traffic (the Ingress default)', () => {
  const ingress = ksvcIngress('one', { paths: [{ splits: [{ serviceNamespace: 'promsnap', serviceName: 'one-00001', servicePort: 'http' }] }] });
  const route = matchRoute(buildRouteTable([ingress]).table, 'public', 'one.promsnap.example.com', '/', noHeaders)!;
  assert.equal(route.splits[0]!.percent, 100);
  assert.equal(chooseSplit(route)?.port, 'http');
});

test('a host already served by an older Ingress gets the newer one rejected whole (DomainConflict)', () => {
  const older = ksvcIngress('first', { created: '2026-12-04T10:00:00Z', externalHost: 'shop.example.com' });
  const newer = ksvcIngress('second', { created: '2026-12-04T11:00:00Z', externalHost: 'shop.example.com' });
  const { table, rejected } = buildRouteTable([newer, older]);
  assert.deepEqual([...rejected.keys()], ['promsnap/second']);
  assert.match(rejected.get('promsnap/second')!, /shop\.example\.com \(promsnap\/first\)/);
  assert.equal(matchRoute(table, 'public', 'shop.example.com', '/', noHeaders)?.ingress, 'promsnap/first');
  assert.equal(matchRoute(table, 'internal', 'second.promsnap', '/', noHeaders), undefined, 'none of its hosts is served');
});

test('a rule without hosts matches any host; exact hosts and wildcards come first', () => {
  const ingress: KIngress = {
    metadata: { name: 'catch', namespace: 'ns', annotations: { 'networking.knative.dev/ingress.class': ourClass } },
    spec: {
      rules: [
        { http: { paths: [{ splits: [{ serviceNamespace: 'ns', serviceName: 'any', servicePort: 80 }] }] } },
        { hosts: ['*.apps.example.com'], http: { paths: [{ splits: [{ serviceNamespace: 'ns', serviceName: 'wild', servicePort: 80 }] }] } },
        { hosts: ['one.apps.example.com'], http: { paths: [{ splits: [{ serviceNamespace: 'ns', serviceName: 'exact', servicePort: 80 }] }] } },
      ],
    },
  };
  const { table } = buildRouteTable([ingress]);
  const name = (host: string) => matchRoute(table, 'public', host, '/', noHeaders)?.splits[0]?.name;
  assert.equal(name('one.apps.example.com'), 'exact');
  assert.equal(name('two.apps.example.com:80'), 'wild');
  assert.equal(name('anything.else'), 'any');
});
