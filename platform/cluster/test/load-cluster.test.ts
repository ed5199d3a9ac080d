// `npm run cluster -- load` as a real process against a real kube-apiserver with the rendered platform
// applied: the simulation's Knative Service (status written by the test, as Knative's reconciler
// would) points at a simulation process on loopback, hey sends it real traffic, and the test plays the autoscaler, creating, readying and
// deleting pods with Knative's labels while the load runs. The CLI must report each of those changes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { knativeService, renderPlatform, type KubeObject } from '../../manifests/index.js';
import { freePort } from '../../tools/ports.js';
import { waitFor } from '../../tools/wait.js';
import { startProcess } from '../../tools/process.js';
import { startTestApiServer } from '../../testing/apiserver.js';
import { exitCodes } from '../errors.js';
import { defaultNamespaces, loadTarget } from '../pipeline.js';
import { knativeStatus } from './fixture.js';
import { hasStackTrace, repoRoot, runCli, startCli, writeStatus } from './harness.js';

const namespace = defaultNamespaces.pipeline;

/** The parts of `load -o json`'s report these tests read. */
interface LoadReportJson {
  url: string;
  via: { address: string; requestUrl: string; host: string } | null;
  duration: string;
  concurrency: number;
  hey: { statusCodes: Record<string, number> };
  pods: { initial: { pods: number; ready: number }; peakPods: number; firstScaleUpSeconds: number | null; changes: unknown[] };
}

async function startSimulation(t: { after(fn: () => unknown): void }) {
  const port = await freePort();
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
    const line = text
      .split('\n')
      .find((l) => l.startsWith('simulation_app_requests_total{') && l.includes(`route="${route}"`) && l.includes(`statusCode="${statusCode}"`));
    return line ? Number(line.split(' ').pop()) : 0;
  };
  return { url, served };
}

/**
 * What Kourier does for a ksvc reached through a port-forward: one address for every service, the
 * request's Host header picking the backend, 404 for a Host it has no route for (as Envoy answers).
 * Records the Host of every request it gets.
 */
async function startIngress(t: { after(fn: () => unknown): void }, routes: Record<string, string>) {
  const hosts = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const host = req.headers.host ?? '';
    hosts.set(host, (hosts.get(host) ?? 0) + 1);
    const backend = routes[host];
    if (backend === undefined) {
      res.writeHead(404).end(`no route for host ${host}\n`);
      return;
    }
    const target = new URL(req.url ?? '/', backend);
    const upstream = http.request(target, { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.writeHead(503).end('upstream connect error\n'));
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hosts };
}

/**
 * A pod as Knative's revision Deployment makes it from a rendered Knative Service: its template's
 * labels plus Knative's, its service account and security context (the namespace enforces the
 * restricted Pod Security profile), the user container's name and image.
 */
function revisionPod(objects: readonly KubeObject[], service: string, name: string): V1Pod {
  const ksvc = knativeService(objects, service, namespace);
  const spec = ksvc.template.spec;
  return {
    metadata: {
      name,
      labels: { ...ksvc.labels, [loadTarget.podLabel]: service, 'serving.knative.dev/revision': `${service}-00001` },
    },
    spec: {
      ...(ksvc.serviceAccountName ? { serviceAccountName: ksvc.serviceAccountName } : {}),
      ...(spec['automountServiceAccountToken'] !== undefined ? { automountServiceAccountToken: spec['automountServiceAccountToken'] } : {}),
      ...(spec['securityContext'] ? { securityContext: spec['securityContext'] } : {}),
      containers: [
        {
          name: ksvc.container.name ?? 'user-container',
          image: ksvc.container.image,
          ...(ksvc.container['securityContext'] ? { securityContext: ksvc.container['securityContext'] } : {}),
        },
      ],
    },
  };
}

test('load sends hey at the Knative Service URL and reports every pod change made during the run', async (t) => {
  const [api, platform, simulation] = await Promise.all([startTestApiServer(), renderPlatform(), startSimulation(t)]);
  t.after(() => api.stop());
  await api.kubectlWith({ input: platform.yaml }, 'apply', '--server-side', '--field-manager=promsnap-test', '-f', '-');
  // Knative's reconciler would publish the Route's URL; here it is the local simulation.
  await writeStatus(api, 'ksvc', namespace, loadTarget.name, knativeStatus('ksvc', loadTarget.name, namespace, { ready: 'True', url: simulation.url }));

  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(api.kubeconfigPath);
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const createPod = async (name: string, ready: boolean) => {
    const pod = await core.createNamespacedPod({ namespace, body: revisionPod(platform.objects, loadTarget.name, name) });
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
  await core.createNamespacedPod({ namespace, body: revisionPod(platform.objects, 'snapshot', 'snapshot-00001-deployment-x') });
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
    assert.equal(
      lines[0],
      `Sending load to ${simulation.url}/simulate-requests for 3s with 4 workers (hey); watching pods ${loadTarget.podLabel}=${loadTarget.name}`,
    );
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
    const report = JSON.parse(result.stdout) as LoadReportJson;
    assert.equal(report.url, `${simulation.url}/`);
    assert.equal(report.via, null);
    assert.deepEqual([report.duration, report.concurrency], ['1s', 2]);
    assert.ok((report.hey.statusCodes['200'] ?? 0) > 0);
    assert.deepEqual(report.pods.initial, { pods: 2, ready: 2 });
    assert.deepEqual([report.pods.peakPods, report.pods.firstScaleUpSeconds, report.pods.changes], [2, null, []]);
  });

  await t.test('Ctrl-C ends the load early and still reports what was measured', async () => {
    const before = await simulation.served('/simulate-requests');
    const cli = await startCli(['load', '--duration', '10m', '-c', '2'], api.env);
    await cli.waitForLine(/\(at start\)$/);
    await waitFor(async () => (await simulation.served('/simulate-requests')) > before, { what: 'hey traffic at the simulation' });
    cli.process.child.kill('SIGINT');
    const result = await cli.result();
    assert.equal(result.code, exitCodes.ok, result.stderr);
    assert.match(result.stderr, /^\ninterrupted: stopping hey and reporting what was measured/);
    const summary = /^hey: (\d+) responses in ([\d.]+) s/m.exec(result.stdout);
    assert.ok(summary && Number(summary[1]) > 0 && Number(summary[2]) < 60, result.stdout);
    assert.match(result.stdout, /^pods: peak 2 \(2 ready\), 2 at start; no scale-up during the run$/m);
  });

  await t.test("--via sends through an ingress address with the ksvc URL's host as Host header", async (t) => {
    // As on a real cluster: a URL under the Knative domain, not reachable from here but through the ingress.
    const host = 'simulation.promsnap.example.com';
    await writeStatus(api, 'ksvc', namespace, loadTarget.name, knativeStatus('ksvc', loadTarget.name, namespace, { ready: 'True', url: `http://${host}` }));
    const ingress = await startIngress(t, { [host]: simulation.url });
    const before = await simulation.served('/simulate-requests');

    const result = await runCli(['load', '--via', ingress.url, '-z', '2s', '-c', '3'], api.env);
    t.diagnostic(`npm run cluster -- load --via printed:\n${result.stdout}`);
    assert.equal(result.code, exitCodes.ok, result.stdout + result.stderr);
    assert.equal(result.stderr, '');
    assert.equal(
      result.stdout.split('\n')[0],
      `Sending load to http://${host}/simulate-requests via ${ingress.url} (Host: ${host}) for 2s with 3 workers (hey); watching pods ${loadTarget.podLabel}=${loadTarget.name}`,
    );
    // All 200: a request without the ksvc's Host would have been the ingress's 404.
    const responses = Number(/^hey: (\d+) responses in [\d.]+ s \([\d.]+\/s\): \1 x 200$/m.exec(result.stdout)?.[1]);
    assert.ok(responses > 0, result.stdout);
    assert.deepEqual([...ingress.hosts.keys()], [host]);
    assert.ok(ingress.hosts.get(host)! >= responses, `ingress saw ${ingress.hosts.get(host)}, hey counted ${responses}`);
    const served = (await simulation.served('/simulate-requests')) - before;
    assert.ok(responses <= served, `hey counted ${responses}, the simulation served ${served}`);

    const json = await runCli(['load', '--via', `${ingress.url}/`, '-z', '1s', '-c', '1', '--path', '/', '-o', 'json'], api.env);
    assert.equal(json.code, exitCodes.ok, json.stderr);
    const report = JSON.parse(json.stdout) as LoadReportJson;
    assert.equal(report.url, `http://${host}/`);
    assert.deepEqual(report.via, { address: ingress.url, requestUrl: `${ingress.url}/`, host });
    assert.ok((report.hey.statusCodes['200'] ?? 0) > 0 && report.hey.statusCodes['404'] === undefined, JSON.stringify(report.hey.statusCodes));
    assert.deepEqual([...ingress.hosts.keys()], [host]);
  });

  await t.test('a Knative Service without a URL yet is reported, not loaded, exit 1', async () => {
    await writeStatus(api, 'ksvc', namespace, loadTarget.name, {
      url: null,
      conditions: [{ type: 'Ready', status: 'Unknown', reason: 'Deploying', lastTransitionTime: '2026-11-25T10:00:00Z' }],
    });
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
