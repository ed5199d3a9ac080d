// `npm run cluster -- load` as a real process against a real kube-apiserver: the simulation's Knative
// Service (status written by the test, as Knative's reconciler would) points at a simulation process
// on loopback, hey sends it real traffic, and the test plays the autoscaler, creating, readying and
// deleting pods with Knative's labels while the load runs. The CLI must report each of those changes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { freeLowPort } from '../../testing/ports.js';
import { startProcess } from '../../local/processes.js';
import { startTestApiServer } from '../../testing/apiserver.js';
import { exitCodes } from '../errors.js';
import { defaultNamespaces, loadTarget } from '../pipeline.js';
import { knativeStatus, pipelineManifests, toYaml } from './fixture.js';
import { hasStackTrace, repoRoot, startCli, writeStatus } from './harness.js';

const namespace = defaultNamespaces.pipeline;

async function startSimulation(t: { after(fn: () => unknown): void }) {
  const port = await freeLowPort();
  const simulation = await startProcess({
    name: 'simulation',
    command: process.execPath,
    args: ['--import', 'tsx', path.join(repoRoot, 'functions', 'simulation', 'src', 'server.ts')],
    cwd: repoRoot,
    // Short simulated work: hey's requests overlap without a 3 s run ending mid-request.
    env: { ...process.env, PORT: String(port), SIMULATION_LATENCY_MIN_MS: '1', SIMULATION_LATENCY_MAX_MS: '20', LOG_LEVEL: 'warn', SHUTDOWN_GRACE_MS: '2000' },
    readyUrl: `http://127.0.0.1:${port}/readyz`,
  });
  t.after(() => simulation.stop());
  const url = `http://127.0.0.1:${port}`;
  /** simulation_app_requests_total for a route and status, read from its own /metrics. */
  const served = async (route: string, statusCode = '200') => {
    const text = await (await fetch(`${url}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('simulation_app_requests_total{') && l.includes(`route="${route}"`) && l.includes(`statusCode="${statusCode}"`));
    return line ? Number(line.split(' ').pop()) : 0;
  };
  return { url, served };
}

test('load sends hey at the Knative Service URL and reports every pod change made during the run', async (t) => {
  const api = await startTestApiServer();
  t.after(() => api.stop());
  const simulation = await startSimulation(t);

  const manifests = pipelineManifests(defaultNamespaces).filter(
    (m) => m.kind === 'Namespace' || (m.kind === 'Service' && m.metadata.name === loadTarget.name),
  );
  await api.kubectlWith({ input: toYaml(manifests) }, 'apply', '-f', '-');
  // Pods need their service account; the controller-manager that would create `default` is not running.
  await api.kubectl('create', 'serviceaccount', 'default', '-n', namespace);
  // Knative's reconciler would publish the Route's URL; here it is the local simulation.
  await writeStatus(api, 'ksvc', namespace, loadTarget.name, knativeStatus('ksvc', loadTarget.name, namespace, { ready: 'True', url: simulation.url }));

  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(api.kubeconfigPath);
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const labels = { [loadTarget.podLabel]: loadTarget.name, 'serving.knative.dev/revision': `${loadTarget.name}-00001` };
  const createPod = async (name: string, ready: boolean) => {
    const pod = await core.createNamespacedPod({
      namespace,
      body: { metadata: { name, labels }, spec: { containers: [{ name: 'user-container', image: 'example.invalid/simulation:1.0.0' }] } },
    });
    if (ready) await setReady(pod, true);
  };
  // What the kubelet would report: Running, and the Ready condition.
  const setReady = async (pod: V1Pod, ready: boolean) => {
    const current = await core.readNamespacedPod({ name: pod.metadata!.name!, namespace });
    current.status = {
      phase: 'Running',
      conditions: [{ type: 'Ready', status: ready ? 'True' : 'False', lastTransitionTime: new Date() }],
    };
    await core.replaceNamespacedPodStatus({ name: pod.metadata!.name!, namespace, body: current });
  };
  const readyByName = async (name: string) => setReady({ metadata: { name } }, true);
  // A pod of another service in the same namespace: the watch must not count it.
  await core.createNamespacedPod({
    namespace,
    body: { metadata: { name: 'snapshot-pod', labels: { [loadTarget.podLabel]: 'snapshot' } }, spec: { containers: [{ name: 'c', image: 'example.invalid/snapshot:1.0.0' }] } },
  });
  await createPod('simulation-a', true);

  await t.test('table output: a line per change, then hey summary, peak and first scale-up', async (t) => {
    const before = await simulation.served('/simulate-requests');
    const cli = await startCli(['load', '--duration', '3s', '--concurrency', '4'], api.env);
    await cli.waitForLine(/\(at start\)$/);
    // The autoscaler adds two pods, they become ready one after the other, and the first pod goes.
    await createPod('simulation-b', false);
    await cli.waitForLine(/\s2\s+1$/);
    await createPod('simulation-c', false);
    await cli.waitForLine(/\s3\s+1$/);
    await readyByName('simulation-b');
    await cli.waitForLine(/\s3\s+2$/);
    await readyByName('simulation-c');
    await cli.waitForLine(/\s3\s+3$/);
    await core.deleteNamespacedPod({ name: 'simulation-a', namespace });
    await cli.waitForLine(/\s2\s+2$/);

    const result = await cli.result();
    t.diagnostic(`npm run cluster -- load printed:\n${result.stdout}`);
    assert.equal(result.code, exitCodes.ok, result.stdout + result.stderr);
    assert.ok(!hasStackTrace(result.stdout + result.stderr));
    assert.equal(result.stderr, '');
    const lines = result.stdout.split('\n');
    assert.equal(lines[0], `Sending load to ${simulation.url}/simulate-requests for 3s with 4 workers (hey); watching pods ${loadTarget.podLabel}=${loadTarget.name}`);
    const header = lines.findIndex((line) => /^TIME\s+ELAPSED\s+PODS\s+READY$/.test(line));
    assert.ok(header > 0, result.stdout);
    const changes = lines.slice(header + 1, lines.indexOf('', header)).map((line) => line.trim().split(/\s+/).slice(2, 4).join('/'));
    // The initial state, then exactly the changes the test made, in order (the snapshot pod never counts).
    assert.deepEqual(changes, ['1/1', '2/1', '3/1', '3/2', '3/3', '2/2']);

    const responses = Number(/^hey: (\d+) responses in [\d.]+ s \([\d.]+\/s\): \1 x 200$/m.exec(result.stdout)?.[1]);
    assert.ok(responses > 0, result.stdout);
    // Every response hey counted was served by the simulation behind the ksvc URL.
    const served = (await simulation.served('/simulate-requests')) - before;
    assert.ok(responses <= served, `hey counted ${responses}, the simulation served ${served}`);
    assert.match(result.stdout, /^latency: p50 \d+ ms, p95 \d+ ms, p99 \d+ ms, slowest \d+ ms$/m);
    const scaled = /^pods: peak 3 \(3 ready\), 1 at start; first scale-up ([\d.]+) s after the load started$/m.exec(result.stdout);
    assert.ok(scaled, result.stdout);
    assert.ok(Number(scaled[1]) < 3.5, `first scale-up ${scaled[1]} s`);
  });

  await t.test('JSON output: the same facts for machines; a run without scale-up says so', async () => {
    const cli = await startCli(['load', '-z', '1s', '-c', '2', '--path', '/', '-o', 'json'], api.env);
    const result = await cli.result();
    assert.equal(result.code, exitCodes.ok, result.stderr);
    const report = JSON.parse(result.stdout);
    assert.equal(report.url, `${simulation.url}/`);
    assert.deepEqual([report.duration, report.concurrency], ['1s', 2]);
    assert.ok(report.hey.statusCodes['200'] > 0);
    assert.deepEqual(report.pods.initial, { pods: 2, ready: 2 });
    assert.deepEqual([report.pods.peakPods, report.pods.firstScaleUpSeconds, report.pods.changes], [2, null, []]);
  });

  await t.test('a Knative Service without a URL yet is reported, not loaded, exit 1', async () => {
    await writeStatus(api, 'ksvc', namespace, loadTarget.name, { url: null, conditions: [{ type: 'Ready', status: 'Unknown', reason: 'Deploying', lastTransitionTime: '2026-11-25T10:00:00Z' }] });
    const before = await simulation.served('/simulate-requests');
    const cli = await startCli(['load', '-z', '1s'], api.env);
    const result = await cli.result();
    assert.equal(result.code, exitCodes.notReady);
    assert.equal(
      result.stderr,
      'error: ksvc/simulation in namespace promsnap has no URL yet (Ready Unknown, Deploying).\n  See what holds it up with `npm run cluster -- status`.\n',
    );
    assert.equal(await simulation.served('/simulate-requests'), before);
  });

  await t.test('no simulation Knative Service in the namespace: objects missing, exit 5', async () => {
    await api.kubectl('create', 'namespace', 'empty');
    const result = await (await startCli(['load', '-n', 'empty'], api.env)).result();
    assert.equal(result.code, exitCodes.objectsMissing);
    assert.match(result.stderr, /^error: 1 pipeline object is missing: ksvc\/simulation in namespace empty\.\n/);
  });
});
