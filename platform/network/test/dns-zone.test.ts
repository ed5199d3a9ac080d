import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rcode, RecordClass, RecordType } from '../dns-wire.js';
import { answer } from '../dns-zone.js';
import { service, slice, sourceOf } from './fixtures.js';

const zone = { domain: 'cluster.local', ttl: 5 };
const source = sourceOf(
  [
    service('promsnap', 'simulation', { clusterIP: '10.96.0.40' }),
    service('promsnap', 'db', { clusterIP: 'None' }),
    service('promsnap', 'route', { type: 'ExternalName', externalName: 'promsnap-ingress.knative-serving.svc.cluster.local' }),
    service('promsnap', 'outside', { type: 'ExternalName', externalName: 'example.com.' }),
    service('promsnap', 'dangling', { type: 'ExternalName', externalName: 'gone.promsnap.svc.cluster.local' }),
    service('knative-serving', 'promsnap-ingress', { clusterIP: '10.96.0.80' }),
  ],
  [slice('promsnap', 'db', [{ ip: '10.244.1.12', hostname: 'db-0' }, { ip: '10.244.1.11' }, { ip: '10.244.1.13', ready: false }])],
);

const ask = (name: string, type: number = RecordType.A) => answer({ name, type, class: RecordClass.IN }, source, zone);
const addresses = (result: ReturnType<typeof ask>) => result.answers.filter((r) => r.type === RecordType.A).map((r) => ('a' in r.data ? r.data.a : ''));

test('a Service name answers its ClusterIP, authoritatively, with the 5 s TTL', () => {
  const result = ask('simulation.promsnap.svc.cluster.local');
  assert.equal(result.rcode, Rcode.NOERROR);
  assert.equal(result.authoritative, true);
  assert.deepEqual(addresses(result), ['10.96.0.40']);
  assert.equal(result.answers[0]!.ttl, 5);
  assert.equal(result.answers[0]!.name, 'simulation.promsnap.svc.cluster.local');
});

test('names are case-insensitive and answered under the name as asked', () => {
  const result = ask('Simulation.PromSnap.SVC.Cluster.Local.');
  assert.deepEqual(addresses(result), ['10.96.0.40']);
  assert.equal(result.answers[0]!.name, 'Simulation.PromSnap.SVC.Cluster.Local.');
});

test('a headless Service answers its ready endpoints; an endpoint by hostname or dashed IP', () => {
  assert.deepEqual(addresses(ask('db.promsnap.svc.cluster.local')), ['10.244.1.11', '10.244.1.12']);
  assert.deepEqual(addresses(ask('db-0.db.promsnap.svc.cluster.local')), ['10.244.1.12']);
  assert.deepEqual(addresses(ask('10-244-1-11.db.promsnap.svc.cluster.local')), ['10.244.1.11']);
  assert.equal(ask('10-244-1-13.db.promsnap.svc.cluster.local').rcode, Rcode.NXDOMAIN, 'not ready');
  assert.equal(ask('db-0.simulation.promsnap.svc.cluster.local').rcode, Rcode.NXDOMAIN, 'hostnames only under headless Services');
});

test('an ExternalName answers a CNAME, followed to the address when the target is in the zone (as Knative routes need)', () => {
  const result = ask('route.promsnap.svc.cluster.local');
  assert.equal(result.rcode, Rcode.NOERROR);
  assert.deepEqual(
    result.answers.map((r) => [r.name, r.type, 'cname' in r.data ? r.data.cname : 'a' in r.data ? r.data.a : '']),
    [
      ['route.promsnap.svc.cluster.local', RecordType.CNAME, 'promsnap-ingress.knative-serving.svc.cluster.local'],
      ['promsnap-ingress.knative-serving.svc.cluster.local', RecordType.A, '10.96.0.80'],
    ],
  );
  const outside = ask('outside.promsnap.svc.cluster.local');
  assert.equal(outside.rcode, Rcode.NOERROR);
  assert.deepEqual(
    outside.answers.map((r) => r.type),
    [RecordType.CNAME],
    'no upstream: the chain stops at the zone edge',
  );
  const dangling = ask('dangling.promsnap.svc.cluster.local');
  assert.equal(dangling.rcode, Rcode.NXDOMAIN, 'the final name decides the rcode');
  assert.equal(dangling.answers.length, 1);
  assert.equal(ask('route.promsnap.svc.cluster.local', RecordType.CNAME).answers.length, 1, 'a CNAME query is answered with the CNAME alone');
});

test('a pod name answers the address it spells', () => {
  assert.deepEqual(addresses(ask('10-244-1-7.promsnap.pod.cluster.local')), ['10.244.1.7']);
  assert.equal(ask('10-244-1-300.promsnap.pod.cluster.local').rcode, Rcode.NXDOMAIN);
  assert.equal(ask('web.promsnap.pod.cluster.local').rcode, Rcode.NXDOMAIN);
});

test('a name that exists answers other types with no records (NODATA) and the SOA, never NXDOMAIN', () => {
  for (const name of ['simulation.promsnap.svc.cluster.local', 'cluster.local', 'svc.cluster.local', 'promsnap.svc.cluster.local']) {
    const result = ask(name, RecordType.AAAA);
    assert.equal(result.rcode, Rcode.NOERROR, name);
    assert.deepEqual(result.answers, [], name);
    assert.equal(result.authorities[0]?.type, RecordType.SOA, name);
  }
  const soa = ask('cluster.local', RecordType.SOA);
  assert.equal(soa.answers[0]?.type, RecordType.SOA);
});

test('the search-path expansions a pod makes (ndots:5) are NXDOMAIN until the real name', () => {
  // resolv.conf: search promsnap.svc.cluster.local svc.cluster.local cluster.local; options ndots:5.
  const tried = [
    'simulation.promsnap.svc.cluster.local.promsnap.svc.cluster.local',
    'simulation.promsnap.svc.cluster.local.svc.cluster.local',
    'simulation.promsnap.svc.cluster.local.cluster.local',
  ];
  for (const name of tried) {
    const result = ask(name);
    assert.equal(result.rcode, Rcode.NXDOMAIN, name);
    assert.equal(result.authorities[0]?.type, RecordType.SOA, 'negative answers carry the SOA for caching');
  }
  // The short forms: "simulation" from a pod in promsnap, "simulation.promsnap" from anywhere.
  assert.deepEqual(addresses(ask('simulation.promsnap.svc.cluster.local')), ['10.96.0.40']);
  assert.equal(ask('simulation.promsnap.default.svc.cluster.local').rcode, Rcode.NXDOMAIN);
  assert.equal(ask('nothing.promsnap.svc.cluster.local').rcode, Rcode.NXDOMAIN);
});

test('names outside the zone are NXDOMAIN, not authoritative: there is no upstream', () => {
  const result = ask('registry.npmjs.org');
  assert.equal(result.rcode, Rcode.NXDOMAIN);
  assert.equal(result.authoritative, false);
  assert.deepEqual(result.authorities, []);
  assert.equal(answer({ name: 'simulation.promsnap.svc.cluster.local', type: RecordType.A, class: 3 }, source, zone).rcode, Rcode.REFUSED, 'class CH');
});
