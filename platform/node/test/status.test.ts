import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { apiTime, containerShouldRestart, initialContainers, podStatus, type ContainerView, type PodView } from '../status.js';

const now = '2026-12-04T12:00:00Z';

function pod(spec: Partial<NonNullable<V1Pod['spec']>> = {}): V1Pod {
  return {
    metadata: { name: 'web', namespace: 'ns', uid: 'u1' },
    spec: {
      containers: [
        { name: 'app', image: 'dev.local/app:1' },
        { name: 'sidecar', image: 'dev.local/side:1' },
      ],
      ...spec,
    },
  };
}

function view(p: V1Pod, over: Partial<PodView> = {}): PodView {
  return { pod: p, hostIP: '10.244.0.1', podIP: '10.244.1.1', startTime: now, ...initialContainers(p), sandboxReady: true, terminal: false, now, ...over };
}

const runningView = (name: string, ready = true): ContainerView => ({
  name,
  image: `dev.local/${name}:1`,
  imageID: 'sha256:x',
  containerID: `promsnap://${name}`,
  state: { running: { startedAt: now } },
  restartCount: 0,
  ready,
  started: true,
});

const terminatedView = (name: string, exitCode: number): ContainerView => ({
  name,
  image: 'i',
  imageID: 'sha256:x',
  state: { terminated: { exitCode, reason: exitCode === 0 ? 'Completed' : 'Error', startedAt: now, finishedAt: now } },
  restartCount: 0,
  ready: false,
  started: false,
});

const conditionOf = (status: ReturnType<typeof podStatus>, type: string) => status.conditions.find((c) => c.type === type)!;

test('a pod just set up is Pending with kwok’s create stage: Initialized, not ready naming its containers, ContainerCreating, addresses and start time', () => {
  const status = podStatus(view(pod()));
  assert.equal(status.phase, 'Pending');
  assert.equal(conditionOf(status, 'Initialized').status, 'True');
  assert.equal(conditionOf(status, 'PodReadyToStartContainers').status, 'True');
  for (const type of ['Ready', 'ContainersReady']) {
    assert.deepEqual(conditionOf(status, type), {
      type,
      status: 'False',
      reason: 'ContainersNotReady',
      message: 'containers with unready status: [app sidecar]',
      lastTransitionTime: now,
      lastProbeTime: null,
    });
  }
  assert.deepEqual(
    status.containerStatuses.map((c) => c.state),
    [{ waiting: { reason: 'ContainerCreating' } }, { waiting: { reason: 'ContainerCreating' } }],
  );
  assert.equal(status.podIP, '10.244.1.1');
  assert.deepEqual(status.podIPs, [{ ip: '10.244.1.1' }]);
  assert.equal(status.hostIP, '10.244.0.1');
  assert.equal(status.startTime, now);
  assert.equal(conditionOf(status, 'PodScheduled'), undefined, 'PodScheduled is the binding’s, not the node’s');
});

test('with init containers the pod is not Initialized and every container waits PodInitializing', () => {
  const p = pod({ initContainers: [{ name: 'setup', image: 'i' }] });
  const status = podStatus(view(p));
  assert.deepEqual(
    {
      status: conditionOf(status, 'Initialized').status,
      reason: conditionOf(status, 'Initialized').reason,
      message: conditionOf(status, 'Initialized').message,
    },
    { status: 'False', reason: 'ContainersNotInitialized', message: 'containers with incomplete status: [setup]' },
  );
  assert.deepEqual(
    status.initContainerStatuses!.map((c) => c.state),
    [{ waiting: { reason: 'PodInitializing' } }],
  );
  assert.deepEqual(
    status.containerStatuses.map((c) => c.state),
    [{ waiting: { reason: 'PodInitializing' } }, { waiting: { reason: 'PodInitializing' } }],
  );

  const done = { ...terminatedView('setup', 0), ready: true };
  const after = podStatus(view(p, { initContainers: [done], containers: [runningView('app'), runningView('sidecar')] }));
  assert.equal(conditionOf(after, 'Initialized').status, 'True');
  assert.equal(after.phase, 'Running');
});

test('all containers running and ready: Running and Ready; one unready container keeps Ready False naming it', () => {
  const ready = conditionOf(podStatus(view(pod(), { containers: [runningView('app'), runningView('sidecar')] })), 'Ready');
  assert.deepEqual([ready.status, ready.reason, ready.message], ['True', null, null], 'null removes the earlier reason and message in the merge patch');
  const status = podStatus(view(pod(), { containers: [runningView('app'), runningView('sidecar', false)] }));
  assert.equal(status.phase, 'Running');
  assert.equal(conditionOf(status, 'Ready').message, 'containers with unready status: [sidecar]');
});

test('a readiness gate without its condition keeps the pod unready with the kubelet’s message', () => {
  const p = pod({ readinessGates: [{ conditionType: 'example.com/gate' }] });
  const status = podStatus(view(p, { containers: [runningView('app'), runningView('sidecar')] }));
  assert.equal(conditionOf(status, 'ContainersReady').status, 'True');
  assert.deepEqual([conditionOf(status, 'Ready').status, conditionOf(status, 'Ready').reason], ['False', 'ReadinessGatesNotReady']);
});

test('a Job’s pod (restartPolicy Never) ends Succeeded when every container exits 0, Failed otherwise', () => {
  const job = pod({ restartPolicy: 'Never', containers: [{ name: 'app', image: 'i' }] });
  const ok = podStatus(view(job, { containers: [terminatedView('app', 0)], terminal: true }));
  assert.equal(ok.phase, 'Succeeded');
  assert.deepEqual([conditionOf(ok, 'Ready').status, conditionOf(ok, 'Ready').reason], ['False', 'PodCompleted']);
  const failed = podStatus(view(job, { containers: [terminatedView('app', 1)], terminal: true }));
  assert.equal(failed.phase, 'Failed');
  assert.equal(conditionOf(failed, 'ContainersReady').reason, 'PodFailed');
});

test('a crashing container of an Always pod keeps the pod Running while it backs off', () => {
  const p = pod({ containers: [{ name: 'app', image: 'i' }] });
  const crashing: ContainerView = {
    ...terminatedView('app', 1),
    state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 10s restarting failed container=app pod=web_ns(u1)' } },
    lastState: { terminated: { exitCode: 1, reason: 'Error', startedAt: now, finishedAt: now } },
    restartCount: 1,
  };
  assert.equal(podStatus(view(p, { containers: [crashing] })).phase, 'Running');
});

test('OnFailure restarts only a failing container: exit 0 completes the pod', () => {
  const p = pod({ restartPolicy: 'OnFailure', containers: [{ name: 'app', image: 'i' }] });
  assert.equal(podStatus(view(p, { containers: [terminatedView('app', 0)] })).phase, 'Succeeded');
  assert.equal(podStatus(view(p, { containers: [terminatedView('app', 2)] })).phase, 'Running');
  assert.equal(containerShouldRestart({ name: 'a' }, 'OnFailure', 0), false);
  assert.equal(containerShouldRestart({ name: 'a', restartPolicy: 'Never' }, 'Always', 1), false);
  assert.equal(
    containerShouldRestart(
      { name: 'a', restartPolicy: 'Never', restartPolicyRules: [{ action: 'Restart', exitCodes: { operator: 'In', values: [42] } }] },
      'Always',
      42,
    ),
    true,
  );
});

test('a failed init container of a Never pod fails the pod', () => {
  const p = pod({ restartPolicy: 'Never', initContainers: [{ name: 'setup', image: 'i' }] });
  assert.equal(podStatus(view(p, { initContainers: [terminatedView('setup', 3)] })).phase, 'Failed');
});

test('an unchanged condition keeps its lastTransitionTime; a changed one takes the new time', () => {
  const earlier = '2026-12-04T11:00:00Z';
  const previousConditions = [
    { type: 'Ready', status: 'False', lastTransitionTime: new Date(earlier) },
    { type: 'Initialized', status: 'True', lastTransitionTime: new Date(earlier) },
  ];
  const status = podStatus(view(pod(), { previousConditions, containers: [runningView('app'), runningView('sidecar')] }));
  assert.equal(conditionOf(status, 'Initialized').lastTransitionTime, earlier);
  assert.equal(conditionOf(status, 'Ready').lastTransitionTime, now);
});

test('API times carry whole seconds', () => {
  assert.equal(apiTime(Date.UTC(2026, 11, 4, 12, 0, 0, 789)), '2026-12-04T12:00:00Z');
});
