// The network components in the cluster sandbox itself (platform/tools/sandbox.ts: PID, network and
// mount namespaces, the host read-only, the cbr0 bridge, the ClusterIP range local), started the way the
// node will start them, and #16's load path from the host: hey on this machine -> the sandbox's forward
// -> the ingress's public listener -> the revision's endpoint. Also DNS on 10.96.0.10:53 and a ClusterIP
// bound inside, and nothing left once the sandbox stops.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startTestApiServer, type TestApiServer } from '../../testing/apiserver.js';
import { HostBridges } from '../../testing/netns.js';
import { runHey } from '../../tools/hey.js';
import { findSystemTool } from '../../tools/find.js';
import { httpGet } from '../../tools/http.js';
import { startProcess, type ManagedProcess } from '../../tools/process.js';
import { hostLinks, nodeScriptArgs, sandboxLeftovers, startSandbox, type Forward, type Sandbox } from '../../tools/sandbox.js';
import { waitFor } from '../../tools/wait.js';
import type { KIngress } from '../ingress-routes.js';
import { bridgeScript, knativeIngressCrdDir, networkMain, repoRoot, restrictedKubeconfig } from './testbed.js';

const node = '10.244.0.1';
const publicPort = 8081;
const host = 'simulation.promsnap.example.com';

let parent: string;
let api: TestApiServer;
let sandbox: Sandbox;
let bridges: HostBridges;
let network: ManagedProcess;
let forward: Forward;
let linksBefore: Array<{ name: string; kind: string }>;

before(async () => {
  // Short: the sandbox's sockets live under its state dir.
  parent = await mkdtemp(path.join(os.tmpdir(), 'psn-'));
  api = await startTestApiServer({ crdDirectoryPaths: [await knativeIngressCrdDir(parent)] });
  const kubeconfig = path.join(parent, 'network.kubeconfig');
  await writeFile(kubeconfig, await restrictedKubeconfig(api), { mode: 0o600 });
  linksBefore = await hostLinks();
  sandbox = await startSandbox({ dir: path.join(parent, 'sandbox') });
  bridges = new HostBridges(sandbox.dir);
  // The test API server listens on the host's loopback; the platform's control plane will run inside.
  const apiPort = Number(new URL(api.url).port);
  const bridge = { ip: findSystemTool('ip'), inbound: [{ port: apiPort, socket: await bridges.socketFor(apiPort) }], outbound: [] };

  await startProcess(
    sandbox.enter({
      name: 'simulation',
      command: process.execPath,
      args: ['--import', 'tsx', 'functions/simulation/src/server.ts'],
      cwd: repoRoot,
      env: { ...process.env, PORT: '8080', LOG_LEVEL: 'warn', K_SERVICE: 'simulation', K_REVISION: 'simulation-00001' },
      readyUrl: `http://${node}:8080/readyz`,
      readyTimeoutMs: 30_000,
    }),
  );
  let ready = false;
  network = await startProcess(
    sandbox.enter({
      name: 'network',
      command: process.execPath,
      args: [
        ...nodeScriptArgs(bridgeScript, JSON.stringify(bridge)),
        '--',
        process.execPath,
        '--import',
        'tsx',
        networkMain,
        `--kubeconfig=${kubeconfig}`,
        '--services',
        `--node-address=${node}`,
        '--dns=10.96.0.10:53',
        `--ingress=${node}:80`,
        `--ingress-public=${node}:${publicPort}`,
      ],
      cwd: repoRoot,
      onLine: (line) => (ready ||= line.includes('"network ready"')),
      readyCheck: { what: 'the network components', check: () => ready },
      readyTimeoutMs: 30_000,
    }),
  );
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
endpoints: [{addresses: [${node}]}]
ports: [{name: http, port: 8080}]
---
apiVersion: networking.internal.knative.dev/v1alpha1
kind: Ingress
metadata:
  name: simulation
  namespace: promsnap
  annotations: {networking.knative.dev/ingress.class: promsnap.ingress.networking.knative.dev}
spec:
  rules:
  - hosts: [${host}]
    visibility: ExternalIP
    http:
      paths:
      - splits:
        - {serviceNamespace: promsnap, serviceName: simulation-00001, servicePort: 80, percent: 100,
           appendHeaders: {Knative-Serving-Revision: simulation-00001, Knative-Serving-Namespace: promsnap}}
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
    { what: 'the Ingress to be Ready', timeoutMs: 15_000, intervalMs: 100 },
  );
  forward = await sandbox.forward({ host: node, port: publicPort });
});

after(async () => {
  await forward?.close();
  await sandbox?.stop();
  await bridges?.close();
  await api?.stop();
  if (parent) await rm(parent, { recursive: true, force: true });
});

test('hey on the host reaches the revision through the forward and the public listener, as #16 loads the simulation', async (t) => {
  for (const route of ['/', '/simulate-requests']) {
    const started = Date.now();
    const run = await runHey({ url: `${forward.url}${route}`, duration: '3s', concurrency: 50, host });
    const summary = await run.done;
    t.diagnostic(
      `hey -z 3s -c 50 ${route} via forward + ingress: ${summary.requestsPerSecond.toFixed(0)} req/s, ` +
        `p99 ${((summary.percentiles['99'] ?? NaN) * 1000).toFixed(1)} ms (hey ran ${Date.now() - started} ms)`,
    );
    assert.deepEqual(Object.keys(summary.statusCodes), ['200'], JSON.stringify(summary));
    assert.deepEqual(summary.errors, {});
  }
  const other = await httpGet(`${forward.url}/`);
  assert.equal(other.status, 404, 'the Host decides: 127.0.0.1 is no route');
});

test('inside the sandbox: DNS answers on 10.96.0.10:53 and the ClusterIP leads to the pod', async () => {
  const clusterIp = (await api.kubectl('get', 'service', '-n', 'promsnap', 'simulation-00001', '-o', 'jsonpath={.spec.clusterIP}')).stdout.trim();
  const lookup = await sandbox.run(process.execPath, [
    '-e',
    "const r = new (require('node:dns').promises.Resolver)(); r.setServers(['10.96.0.10']); r.resolve4(process.argv[1]).then((a) => console.log(a.join(',')))",
    'simulation-00001.promsnap.svc.cluster.local',
  ]);
  assert.equal(lookup.stdout.trim(), clusterIp);
  const res = await waitFor(async () => httpGet(`http://${clusterIp}/`, { dial: sandbox.dial }).catch(() => undefined), {
    what: 'the ClusterIP to answer',
    timeoutMs: 10_000,
    intervalMs: 100,
  });
  assert.equal(res.status, 200);
  assert.match(res.body, /"service":"simulation"/);
});

test('stopping the sandbox leaves no process, mount, link or state dir behind', async () => {
  const traces = sandbox.traces;
  assert.equal(network.alive, true);
  await forward.close();
  await sandbox.stop();
  await waitFor(() => !network.alive, { what: 'the network process to be gone', timeoutMs: 5_000 });
  assert.deepEqual(sandboxLeftovers(traces), { processes: [], mounts: [], dir: false });
  assert.deepEqual(
    (await hostLinks()).filter((link) => !linksBefore.some((b) => b.name === link.name)),
    [],
  );
});
