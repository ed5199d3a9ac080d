import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backendsFor, endpointAddresses, findServicePort, RoundRobin } from '../endpoints.js';
import { planListeners } from '../services.js';
import { service, slice, sourceOf } from './fixtures.js';

test('a Service port is found by number or by name', () => {
  const svc = service('ns', 'web', {
    ports: [
      { name: 'http', port: 80, targetPort: 'web' },
      { name: 'metrics', port: 9090, targetPort: 9090 },
    ],
  });
  assert.equal(findServicePort(svc, 80)?.name, 'http');
  assert.equal(findServicePort(svc, '80')?.name, 'http');
  assert.equal(findServicePort(svc, 'metrics')?.port, 9090);
  assert.equal(findServicePort(svc, 81), undefined);
  assert.equal(findServicePort(svc, 'grpc'), undefined);
});

test('backends are the ready endpoints at the slice port named like the Service port (a named targetPort resolved by the slice)', () => {
  const svc = service('ns', 'web', { ports: [{ name: 'http', port: 80, targetPort: 'web' }] });
  const slices = [
    slice(
      'ns',
      'web',
      [{ ip: '10.244.1.7', ready: true }, { ip: '10.244.1.3' }, { ip: '10.244.1.9', ready: false }],
      [
        { name: 'http', port: 8012 },
        { name: 'other', port: 1 },
      ],
    ),
    // A second slice with the same endpoint (a mirrored copy): counted once.
    slice('ns', 'web', [{ ip: '10.244.1.3', ready: true }], [{ name: 'http', port: 8012 }], 'IPv4', 'web-mirror'),
    // IPv6 slices are not ours to serve.
    slice('ns', 'web', [{ ip: 'fd00::1', ready: true }], [{ name: 'http', port: 8012 }], 'IPv6', 'web-v6'),
  ];
  assert.deepEqual(backendsFor(svc.spec!.ports![0]!, slices), [
    { ip: '10.244.1.3', port: 8012 },
    { ip: '10.244.1.7', port: 8012 },
  ]);
});

test('an unnamed Service port matches the unnamed slice port; protocol must match', () => {
  const svc = service('ns', 'dns', {
    ports: [
      { port: 53, protocol: 'UDP', targetPort: 53 },
      { port: 53, protocol: 'TCP', targetPort: 53, name: '' },
    ],
  });
  const slices = [slice('ns', 'dns', [{ ip: '10.244.0.1' }], [{ port: 5353, protocol: 'TCP' }])];
  assert.deepEqual(backendsFor(svc.spec!.ports![1]!, slices), [{ ip: '10.244.0.1', port: 5353 }]);
  assert.deepEqual(backendsFor(svc.spec!.ports![0]!, slices), []);
});

test('when no endpoint is ready, those still serving while terminating take the traffic (kube-proxy since 1.28)', () => {
  const port = service('ns', 'web').spec!.ports![0]!;
  const draining = [
    { ip: '10.244.1.4', ready: false, serving: true, terminating: true },
    { ip: '10.244.1.5', ready: false, serving: false, terminating: true },
  ];
  assert.deepEqual(backendsFor(port, [slice('ns', 'web', draining)]), [{ ip: '10.244.1.4', port: 8080 }]);
  assert.deepEqual(backendsFor(port, [slice('ns', 'web', [...draining, { ip: '10.244.1.6', ready: true }])]), [{ ip: '10.244.1.6', port: 8080 }]);
});

test('headless endpoints for DNS: ready addresses with their hostnames, unready left out', () => {
  const addresses = endpointAddresses([slice('ns', 'db', [{ ip: '10.244.1.2', hostname: 'db-0' }, { ip: '10.244.1.1' }, { ip: '10.244.1.3', ready: false }])]);
  assert.deepEqual(addresses, [{ ip: '10.244.1.1' }, { ip: '10.244.1.2', hostname: 'db-0' }]);
});

test('round-robin starts one further along on each call and lists the rest after it', () => {
  const rr = new RoundRobin();
  const backends = ['a', 'b', 'c'];
  assert.deepEqual(rr.order('k', backends), ['a', 'b', 'c']);
  assert.deepEqual(rr.order('k', backends), ['b', 'c', 'a']);
  assert.deepEqual(rr.order('k', backends), ['c', 'a', 'b']);
  assert.deepEqual(rr.order('k', backends), ['a', 'b', 'c']);
  assert.deepEqual(rr.order('other', backends), ['a', 'b', 'c'], 'each key has its own turn');
  // A shorter list (an endpoint went away) keeps rotating without skipping past the end.
  assert.deepEqual(rr.order('k', ['a', 'b']), ['b', 'a']);
  rr.retain(new Set(['other']));
  assert.deepEqual(rr.order('k', backends), ['a', 'b', 'c'], 'a forgotten key starts again');
  assert.deepEqual(rr.order('k', []), []);
});

test('listeners: each TCP port of each ClusterIP with endpoints; NodePorts only with a node address', () => {
  const services = [
    service('ns', 'web', {
      clusterIP: '10.96.0.30',
      type: 'NodePort',
      ports: [
        { name: 'http', port: 80, targetPort: 8080, nodePort: 30080 },
        { name: 'dns', port: 53, protocol: 'UDP', targetPort: 53 },
        { name: 'admin', port: 81, targetPort: 9000 },
      ],
    }),
    service('ns', 'headless', { clusterIP: 'None' }),
    service('ns', 'external', { type: 'ExternalName', externalName: 'example.com' }),
    service('ns', 'empty', { clusterIP: '10.96.0.31' }),
  ];
  const slices = [
    slice(
      'ns',
      'web',
      [{ ip: '10.244.1.2' }],
      [
        { name: 'http', port: 8080 },
        { name: 'dns', port: 53, protocol: 'UDP' },
      ],
    ),
    slice('ns', 'headless', [{ ip: '10.244.1.3' }]),
  ];
  const source = sourceOf(services, slices);
  const plans = planListeners(source.services(), source.endpointSlices);
  assert.deepEqual([...plans.keys()], ['10.96.0.30:80'], 'no UDP, no port without endpoints, no headless, ExternalName or empty Service');
  assert.deepEqual(plans.get('10.96.0.30:80'), {
    host: '10.96.0.30',
    port: 80,
    kind: 'ClusterIP',
    service: 'ns/web',
    servicePort: 'http',
    backends: [{ ip: '10.244.1.2', port: 8080 }],
  });
  const withNode = planListeners(source.services(), source.endpointSlices, { nodeAddress: '10.244.0.1', bindHost: (ip) => ip.replace('10.96', '10.97') });
  assert.deepEqual([...withNode.keys()].sort(), ['10.244.0.1:30080', '10.97.0.30:80']);
  assert.equal(withNode.get('10.244.0.1:30080')?.kind, 'NodePort');
});
