import assert from 'node:assert/strict';
import { test } from 'node:test';
import { containerReady, containerStarted, probeTiming, ProbeWorker, type ProbeTarget } from '../probes.js';

const running = (over: Partial<ProbeTarget> = {}): ProbeTarget => ({
  containerId: 'c1',
  running: true,
  terminated: false,
  startedAtMs: 0,
  started: true,
  willRestart: true,
  podDeleting: false,
  podTerminal: false,
  ...over,
});

test('probe timing takes the API defaults where the spec is silent', () => {
  assert.deepEqual(probeTiming({}), { initialDelaySeconds: 0, periodSeconds: 10, timeoutSeconds: 1, successThreshold: 1, failureThreshold: 3 });
  assert.equal(probeTiming({ periodSeconds: 2, failureThreshold: 1 }).periodSeconds, 2);
});

test('readiness starts failed, liveness passing, startup unknown, as the kubelet initialises them', () => {
  const timing = probeTiming({});
  assert.equal(new ProbeWorker('readiness', timing).result, 'failure');
  assert.equal(new ProbeWorker('liveness', timing).result, 'success');
  assert.equal(new ProbeWorker('startup', timing).result, 'unknown');
});

test('a readiness result is published only after successThreshold passes in a row, and lost after failureThreshold failures', () => {
  const worker = new ProbeWorker('readiness', probeTiming({ successThreshold: 2, failureThreshold: 3 }));
  assert.equal(worker.step(running(), 0), 'probe');
  assert.equal(worker.record('success'), false);
  assert.equal(worker.result, 'failure');
  assert.equal(worker.record('success'), true);
  assert.equal(worker.result, 'success');
  worker.record('failure');
  worker.record('failure');
  assert.equal(worker.result, 'success', 'two failures are below the threshold of three');
  worker.record('success');
  worker.record('failure');
  worker.record('failure');
  assert.equal(worker.result, 'success', 'a pass in between resets the run');
  assert.equal(worker.record('failure'), true);
  assert.equal(worker.result, 'failure');
});

test('an error (a probe that could not be made) counts for nothing', () => {
  const worker = new ProbeWorker('liveness', probeTiming({ failureThreshold: 1 }));
  assert.equal(worker.record('error'), false);
  assert.equal(worker.result, 'success');
});

test('nothing is probed before initialDelaySeconds has passed since the container started', () => {
  const worker = new ProbeWorker('readiness', probeTiming({ initialDelaySeconds: 5 }));
  assert.equal(worker.step(running({ startedAtMs: 1_000 }), 5_999), 'wait');
  assert.equal(worker.step(running({ startedAtMs: 1_000 }), 6_000), 'probe');
});

test('a failed liveness probe holds until the container restarts, then starts from passing again', () => {
  const worker = new ProbeWorker('liveness', probeTiming({ failureThreshold: 2 }));
  worker.step(running(), 0);
  worker.record('failure');
  assert.equal(worker.record('failure'), true);
  assert.equal(worker.result, 'failure');
  assert.equal(worker.step(running(), 10_000), 'wait', 'on hold: the same container is not probed again');
  assert.equal(worker.step(running({ containerId: 'c2' }), 20_000), 'probe');
  assert.equal(worker.result, 'success');
});

test('the startup probe runs until the container has started; readiness and liveness only after', () => {
  const startup = new ProbeWorker('startup', probeTiming({ failureThreshold: 30 }));
  const readiness = new ProbeWorker('readiness', probeTiming({}));
  const notYet = running({ started: false });
  assert.equal(startup.step(notYet, 0), 'probe');
  assert.equal(readiness.step(notYet, 0), 'wait');
  startup.record('success');
  assert.equal(startup.result, 'success');
  assert.equal(containerStarted(true, startup), true);
  assert.equal(startup.step(running(), 1_000), 'wait', 'a decided startup probe holds');
  assert.equal(readiness.step(running(), 1_000), 'probe');
});

test('a container that is not running reads as failed; the worker stops once it will not restart', () => {
  const worker = new ProbeWorker('readiness', probeTiming({}));
  worker.step(running(), 0);
  worker.record('success');
  assert.equal(worker.step(running({ running: false, terminated: true, willRestart: true }), 1_000), 'wait');
  assert.equal(worker.result, 'failure');
  assert.equal(worker.step(running({ running: false, terminated: true, willRestart: false }), 2_000), 'stop');
});

test('when the pod is deleted readiness keeps probing while liveness stops as passing', () => {
  const readiness = new ProbeWorker('readiness', probeTiming({}));
  const liveness = new ProbeWorker('liveness', probeTiming({ failureThreshold: 1 }));
  assert.equal(readiness.step(running({ podDeleting: true }), 0), 'probe');
  assert.equal(liveness.step(running({ podDeleting: true }), 0), 'stop');
  assert.equal(liveness.result, 'success');
});

test('ready means running, started and passing readiness (or having no readiness probe)', () => {
  const readiness = new ProbeWorker('readiness', probeTiming({}));
  assert.equal(containerReady(true, true, undefined), true);
  assert.equal(containerReady(true, true, readiness), false);
  readiness.record('success');
  assert.equal(containerReady(true, true, readiness), true);
  assert.equal(containerReady(true, false, readiness), false);
  assert.equal(containerReady(false, true, readiness), false);
});
