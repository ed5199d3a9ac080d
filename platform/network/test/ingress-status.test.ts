import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { KIngress, KnativeCondition } from '../ingress-routes.js';
import { desiredStatus, isIngressReady, statusDiffers } from '../ingress-status.js';

const domains = { public: 'promsnap-ingress.knative-serving.svc.cluster.local', private: 'promsnap-ingress.knative-serving.svc.cluster.local' };
const t0 = new Date('2026-12-04T10:00:00.123Z');
const t1 = new Date('2026-12-04T10:05:00Z');

function ingress(generation: number, status?: KIngress['status']): KIngress {
  return { metadata: { name: 'simulation', namespace: 'promsnap', generation }, spec: { rules: [] }, ...(status ? { status } : {}) };
}

const condition = (status: KIngress['status'], type: string): KnativeCondition | undefined => status?.conditions?.find((c) => c.type === type);

test('a new Ingress whose backends are ready becomes Ready with both load balancers, as Kourier writes it', () => {
  const status = desiredStatus(ingress(1), { waitingFor: [] }, domains, t0);
  assert.equal(status.observedGeneration, 1);
  assert.deepEqual(
    status.conditions?.map((c) => [c.type, c.status]),
    [
      ['LoadBalancerReady', 'True'],
      ['NetworkConfigured', 'True'],
      ['Ready', 'True'],
    ],
    'sorted by type, as Knative keeps them',
  );
  assert.equal(condition(status, 'Ready')?.lastTransitionTime, '2026-12-04T10:00:00Z', 'RFC 3339 to the second');
  assert.deepEqual(status.publicLoadBalancer, { ingress: [{ domainInternal: domains.public }] });
  assert.deepEqual(status.privateLoadBalancer, { ingress: [{ domainInternal: domains.private }] });
  assert.equal(isIngressReady({ ...ingress(1), status }), true);
  assert.equal(isIngressReady({ ...ingress(2), status }), false, 'not for a newer generation');
});

test('backends without ready endpoints keep the load balancer Unknown, and Ready says which', () => {
  const status = desiredStatus(ingress(1), { waitingFor: ['promsnap/simulation-00001:80'] }, domains, t0);
  assert.equal(condition(status, 'NetworkConfigured')?.status, 'True');
  assert.equal(condition(status, 'LoadBalancerReady')?.status, 'Unknown');
  assert.equal(condition(status, 'Ready')?.status, 'Unknown');
  assert.equal(condition(status, 'Ready')?.reason, 'Uninitialized');
  assert.match(condition(status, 'Ready')!.message!, /promsnap\/simulation-00001:80/);
  assert.equal(status.publicLoadBalancer, undefined);
});

test('a rejected Ingress is LoadBalancerReady False with DomainConflict, and not Ready', () => {
  const status = desiredStatus(
    ingress(1),
    { rejected: 'ingress has a conflicting domain with another ingress: a.example.com (ns/first)', waitingFor: [] },
    domains,
    t0,
  );
  assert.equal(condition(status, 'LoadBalancerReady')?.status, 'False');
  assert.equal(condition(status, 'LoadBalancerReady')?.reason, 'DomainConflict');
  assert.equal(condition(status, 'Ready')?.status, 'False');
  assert.match(condition(status, 'Ready')!.message!, /^Ingress rejected: .*a\.example\.com/);
});

test('once Ready at its generation it stays so when endpoints come and go; a new generation is looked at again', () => {
  const ready = desiredStatus(ingress(1), { waitingFor: [] }, domains, t0);
  const later = desiredStatus(ingress(1, ready), { waitingFor: ['promsnap/simulation-00001:80'] }, domains, t1);
  assert.equal(statusDiffers(ready, later), false, 'nothing to write');
  assert.equal(condition(later, 'Ready')?.lastTransitionTime, '2026-12-04T10:00:00Z', 'transition times kept when nothing changed');
  const nextGeneration = desiredStatus(ingress(2, ready), { waitingFor: ['promsnap/simulation-00002:80'] }, domains, t1);
  assert.equal(nextGeneration.observedGeneration, 2);
  assert.equal(condition(nextGeneration, 'Ready')?.status, 'Unknown');
  assert.equal(condition(nextGeneration, 'Ready')?.lastTransitionTime, '2026-12-04T10:05:00Z');
  assert.equal(statusDiffers(ready, nextGeneration), true);
});

test('other domains in the status are corrected', () => {
  const ready = desiredStatus(ingress(1), { waitingFor: [] }, { public: 'old.example', private: 'old.example' }, t0);
  const corrected = desiredStatus(ingress(1, ready), { waitingFor: [] }, domains, t1);
  assert.equal(corrected.privateLoadBalancer?.ingress?.[0]?.domainInternal, domains.private);
  assert.equal(statusDiffers(ready, corrected), true);
});
