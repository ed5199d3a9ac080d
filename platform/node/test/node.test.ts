// The local node against the real control plane in a real cluster sandbox (one of each for the file):
// what a kubelet gives the platform's pods, checked through the API server (status, events, the pod proxy
// to a test container), then the node stopped and every trace of its pods counted.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, EventsV1Api, KubeConfig, KubernetesObjectApi, Watch, type KubernetesObject, type V1Container, type V1Pod } from '@kubernetes/client-node';
import { startControlPlane, type ControlPlane } from '../../controlplane/index.js';
import { cachedBinary, findSystemTool } from '../../tools/find.js';
import { startProcess, type ManagedProcess } from '../../tools/process.js';
import { hostLinks, sandboxLeftovers, sandboxSupport, startSandbox, type Sandbox } from '../../tools/sandbox.js';
import { waitFor } from '../../tools/wait.js';
import { writeToStore, type ImageLayout } from '../../images/index.js';
import { mergePatch } from '../kube.js';
import { claimPath } from '../provisioner.js';
import { prepareNodeIdentity } from '../setup.js';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const fixtures = fileURLToPath(new URL('./fixtures', import.meta.url));

let sandbox: Sandbox;
let cluster: ControlPlane;
let node: ManagedProcess;
let core: CoreV1Api;
let events: EventsV1Api;
let objects: KubernetesObjectApi;
let kubeConfig: KubeConfig;
let nodeLines: string[] = [];
const started = Date.now();
const timings: Record<string, number> = {};

/** The test container: the pinned Node running fixtures/agent.ts, as user 1000 (dev.local/agent:1), or as root (dev.local/agent-root:1). */
function agentImages(): ImageLayout[] {
  const agent: ImageLayout = {
    reference: 'dev.local/agent:1',
    binds: [
      { source: cachedBinary('node'), target: '/usr/local/bin/node' },
      { source: fixtures, target: '/app' },
    ],
    entrypoint: ['/usr/local/bin/node'],
    cmd: ['/app/agent.ts'],
    workdir: '/app',
    env: { NODE_ENV: 'production' },
    user: { uid: 1000, gid: 1000 },
  };
  const { user: _user, ...root } = agent;
  return [agent, { ...root, reference: 'dev.local/agent-root:1' }];
}

before(async () => {
  const support = await sandboxSupport();
  if (!support.available) throw new Error(`the node test needs a cluster sandbox: ${support.reason}\n  ${support.fix}`);
  sandbox = await startSandbox({ dir: path.join(os.tmpdir(), `psn-${randomBytes(3).toString('hex')}`) });
  cluster = await startControlPlane({ placement: { sandbox }, controllerManager: true });
  timings['control plane'] = Date.now() - started;
  const controllers = await prepareNodeIdentity({
    adminKubeconfig: cluster.kubeconfigPath,
    nodeKubeconfig: cluster.nodeKubeconfigPath!,
    out: path.join(sandbox.dir, 'controllers.kubeconfig'),
  });
  // The image store, written as platform/images writes it.
  const images = path.join(sandbox.dir, 'images');
  for (const layout of agentImages()) await writeToStore(images, layout);
  const nodeStart = Date.now();
  node = await startProcess(
    sandbox.enter({
      name: 'promsnap-node',
      command: process.execPath,
      args: [
        '--import',
        'tsx',
        'platform/node/main.ts',
        '--kubeconfig',
        cluster.nodeKubeconfigPath!,
        '--controller-kubeconfig',
        controllers,
        '--state-dir',
        path.join(sandbox.dir, 'node'),
        '--images',
        images,
        '--shutdown-grace-seconds',
        '5',
        '--network',
      ],
      cwd: repo,
      onLine: (line) => {
        nodeLines.push(line);
        if (nodeLines.length > 400) nodeLines = nodeLines.slice(-200);
      },
      readyCheck: { what: 'the node to say it is ready', check: () => nodeLines.some((l) => l.includes('"msg":"node ready"')) },
      readyTimeoutMs: 60_000,
    }),
  );
  timings['node ready'] = Date.now() - nodeStart;
  kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(cluster.kubeconfigPath);
  core = kubeConfig.makeApiClient(CoreV1Api);
  events = kubeConfig.makeApiClient(EventsV1Api);
  objects = KubernetesObjectApi.makeApiClient(kubeConfig);
});

after(async () => {
  if (node?.alive) await node.stop('SIGKILL', 1_000);
  await cluster?.stop();
  await sandbox?.stop();
  process.stdout.write(`# node test timings (ms): ${JSON.stringify({ ...timings, total: Date.now() - started })}\n`);
});

// ----- helpers

async function apply(...manifests: object[]): Promise<void> {
  for (const manifest of manifests) await objects.create(manifest);
}

/** A namespace of its own per test, with its default ServiceAccount (pods are refused before it exists). */
async function namespace(name: string): Promise<string> {
  await core.createNamespace({ body: { metadata: { name } } });
  await waitFor(() => core.readNamespacedServiceAccount({ name: 'default', namespace: name }).then(() => true), {
    what: `the default ServiceAccount of ${name}`,
    timeoutMs: 30_000,
  });
  return name;
}

/**
 * The test container: listening on PORT (8080), ready once it answers (as an application would declare
 * itself), HOST_IP for /kubelet; the API server is found as any in-cluster client finds it.
 */
function agentContainer(over: Partial<V1Container> = {}): V1Container {
  const port = Number(over.env?.find((e) => e.name === 'PORT')?.value ?? 8080);
  return {
    name: 'agent',
    image: 'dev.local/agent:1',
    ports: [{ name: port === 8080 ? 'http' : `http-${port}`, containerPort: port }],
    readinessProbe: { httpGet: { path: '/ready', port }, periodSeconds: 1 },
    ...over,
    env: [{ name: 'HOST_IP', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } }, ...(over.env ?? [])],
  };
}

function agentPod(ns: string, name: string, spec: Partial<NonNullable<V1Pod['spec']>> = {}): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns, labels: { app: name } },
    spec: { terminationGracePeriodSeconds: 5, containers: [agentContainer()], ...spec },
  };
}

async function pod(ns: string, name: string): Promise<V1Pod> {
  return core.readNamespacedPod({ name, namespace: ns });
}

async function whenReady(ns: string, name: string, timeoutMs = 30_000): Promise<V1Pod> {
  return waitFor(
    async () => {
      const p = await pod(ns, name);
      return p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? p : undefined;
    },
    { what: `pod ${ns}/${name} to be Ready\n${nodeLines.slice(-15).join('\n')}`, timeoutMs, intervalMs: 100 },
  );
}

/** GET on the test container through the API server's pod proxy; a failure says what the pod and the node said. */
async function agent<T>(ns: string, name: string, what: string, port = 8080): Promise<T> {
  try {
    return await cluster.getJson<T>(`/api/v1/namespaces/${ns}/pods/${name}:${port}/proxy/${what}`);
  } catch (err) {
    const status = await pod(ns, name).then(
      (p) => JSON.stringify(p.status),
      (e: Error) => e.message,
    );
    const happened = await eventsOf(ns, name).then((list) => list.map((e) => `${e.type} ${e.reason}: ${e.note}`).join('\n'));
    (err as Error).message += `\npod status: ${status}\nevents:\n${happened}\nnode:\n${nodeLines.slice(-10).join('\n')}`;
    throw err;
  }
}

type PodLike = { status?: { containerStatuses?: Array<{ state?: { terminated?: { exitCode?: number } } }> } };

/**
 * Starts watching a pod; `deleted` resolves with its last state once it is deleted (the DELETED event
 * carries the status the node wrote last, however close to the delete it came).
 */
async function watchDeletion(ns: string, name: string): Promise<{ deleted: Promise<PodLike> }> {
  let resolve!: (pod: PodLike) => void;
  const last = new Promise<PodLike>((r) => (resolve = r));
  const controller = await new Watch(kubeConfig).watch(
    `/api/v1/namespaces/${ns}/pods`,
    { fieldSelector: `metadata.name=${name}` },
    (phase, object: PodLike) => {
      if (phase === 'DELETED') resolve(object);
    },
    () => undefined,
  );
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`pod ${ns}/${name} was not deleted within 20 s`)), 20_000)));
  return {
    deleted: Promise.race([last, timeout]).finally(() => {
      clearTimeout(timer);
      controller.abort();
    }),
  };
}

async function eventsOf(ns: string, name: string): Promise<Array<{ reason: string; note: string; type: string }>> {
  const list = await events.listNamespacedEvent({ namespace: ns, fieldSelector: `regarding.name=${name}` });
  return list.items.map((e) => ({ reason: e.reason ?? '', note: e.note ?? '', type: e.type ?? '' }));
}

// ----- the tests

test('a pod is bound, set up as kwok’s stages say, gets an IP from the pod CIDR and the downward API, envFrom and secretKeyRef, and turns Ready through its probe with headers', async () => {
  const ns = await namespace('basics');
  await apply(
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings', namespace: ns }, data: { LEVEL: 'debug' } },
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'creds', namespace: ns }, stringData: { password: 's3cret' } },
  );
  const created = Date.now();
  await apply(
    agentPod(ns, 'web', {
      containers: [
        agentContainer({
          envFrom: [{ configMapRef: { name: 'settings' } }],
          env: [
            { name: 'MY_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
            { name: 'MY_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
            { name: 'NODE_IP', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } },
            { name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'creds', key: 'password' } } },
            { name: 'READY_HEADER', value: 'K-Network-Probe=queue' },
          ],
          readinessProbe: { httpGet: { path: '/ready', port: 'http', httpHeaders: [{ name: 'K-Network-Probe', value: 'queue' }] }, periodSeconds: 1 },
        }),
      ],
    }),
  );
  const ready = await whenReady(ns, 'web');
  timings['pod ready'] = Date.now() - created;
  assert.equal(ready.spec?.nodeName, 'promsnap-node');
  assert.match(ready.status?.podIP ?? '', /^10\.244\.1\.\d+$/);
  assert.equal(ready.status?.hostIP, '10.244.0.1');
  assert.equal(ready.status?.phase, 'Running');
  assert.ok(ready.status?.startTime, 'startTime is set (Knative’s autoscaler needs it)');
  const status = ready.status?.containerStatuses?.[0];
  assert.deepEqual([status?.ready, status?.started, status?.restartCount, status?.user?.linux?.uid], [true, true, 0, 1000]);
  assert.ok(status?.state?.running?.startedAt);
  for (const type of ['PodScheduled', 'PodReadyToStartContainers', 'Initialized', 'ContainersReady', 'Ready']) {
    assert.equal(ready.status?.conditions?.find((c) => c.type === type)?.status, 'True', type);
  }

  const env = await agent<Record<string, string>>(ns, 'web', 'env');
  assert.deepEqual(
    { name: env['MY_NAME'], ip: env['MY_IP'], node: env['NODE_IP'], level: env['LEVEL'], password: env['PASSWORD'], k8s: env['KUBERNETES_SERVICE_HOST'] },
    { name: 'web', ip: ready.status?.podIP, node: '10.244.0.1', level: 'debug', password: 's3cret', k8s: '10.96.0.1' },
  );
  const id = await agent<{ uid: number; gid: number; cwd: string; hostname: string; argv: string[] }>(ns, 'web', 'id');
  assert.deepEqual(id, { uid: 1000, gid: 1000, cwd: '/app', hostname: 'web', argv: ['/app/agent.ts'] });
  const probes = await agent<Array<Record<string, string>>>(ns, 'web', 'probes');
  assert.ok(probes.length > 0);
  assert.equal(probes.at(-1)!['user-agent'], 'kube-probe/1.37');
  assert.equal(probes.at(-1)!['k-network-probe'], 'queue');

  const reasons = (await eventsOf(ns, 'web')).map((e) => e.reason);
  for (const reason of ['Scheduled', 'Pulled', 'Created', 'Started']) assert.ok(reasons.includes(reason), `event ${reason} in ${reasons.join(', ')}`);

  // The pod's resolv.conf names the cluster DNS the node hosts; its search path finds short names.
  assert.deepEqual(await agent(ns, 'web', 'resolve?name=kubernetes.default'), ['10.96.0.1']);
  await assert.rejects(agent(ns, 'web', 'resolve?name=nothing.example.invalid'), /404 \{"error":"ENOTFOUND"\}/);
});

test('ConfigMap and Secret volumes are files, and a ConfigMap update reaches the running container', async () => {
  const ns = await namespace('files');
  await apply(
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'config', namespace: ns }, data: { 'app.yml': 'version: 1\n' } },
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'keys', namespace: ns }, stringData: { key: 'k1' } },
    agentPod(ns, 'reader', {
      containers: [
        agentContainer({
          volumeMounts: [
            { name: 'config', mountPath: '/etc/app' },
            { name: 'keys', mountPath: '/etc/keys' },
          ],
        }),
      ],
      volumes: [
        { name: 'config', configMap: { name: 'config' } },
        { name: 'keys', secret: { secretName: 'keys', defaultMode: 0o400 } },
      ],
    }),
  );
  await whenReady(ns, 'reader');
  assert.deepEqual(await agent(ns, 'reader', 'file?path=/etc/app/app.yml'), { content: 'version: 1\n' });
  // 0400 and owned by root: the container (user 1000) may not read the Secret's file.
  await assert.rejects(agent(ns, 'reader', 'file?path=/etc/keys/key'), /404/);
  await assert.rejects(agent(ns, 'reader', 'write?path=/etc/app/other'), /500 \{"error":"EROFS"\}/, 'API data volumes are read-only');

  const changed = Date.now();
  await core.patchNamespacedConfigMap({ name: 'config', namespace: ns, body: { data: { 'app.yml': 'version: 2\n' } } }, mergePatch);
  await waitFor(async () => (await agent<{ content: string }>(ns, 'reader', 'file?path=/etc/app/app.yml')).content === 'version: 2\n', {
    what: 'the changed ConfigMap in the container',
    timeoutMs: 20_000,
    intervalMs: 100,
  });
  timings['configmap update seen'] = Date.now() - changed;
});

test('the projected service account token authenticates as the pod’s account: RBAC allows what its Role grants and denies the rest', async () => {
  const ns = await namespace('token');
  await apply(
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'reader', namespace: ns } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'pod-reader', namespace: ns },
      rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] }],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'pod-reader', namespace: ns },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pod-reader' },
      subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace: ns }],
    },
  );
  await apply(agentPod(ns, 'caller', { serviceAccountName: 'reader' }));
  await whenReady(ns, 'caller');
  const sa = '/var/run/secrets/kubernetes.io/serviceaccount';
  assert.equal((await agent<{ content: string }>(ns, 'caller', `file?path=${sa}/namespace`)).content, ns);
  assert.match((await agent<{ content: string }>(ns, 'caller', `file?path=${sa}/ca.crt`)).content, /^-----BEGIN CERTIFICATE-----/);
  const allowed = await agent<{ status: number; body: string }>(ns, 'caller', `api?path=/api/v1/namespaces/${ns}/pods`);
  assert.equal(allowed.status, 200, allowed.body);
  assert.ok((JSON.parse(allowed.body) as { items: Array<{ metadata: { name: string } }> }).items.some((p) => p.metadata.name === 'caller'));
  const denied = await agent<{ status: number; body: string }>(ns, 'caller', `api?path=/api/v1/namespaces/${ns}/secrets`);
  assert.equal(denied.status, 403);
  assert.match(denied.body, new RegExp(`system:serviceaccount:${ns}:reader`));
});

test('emptyDir is shared by a pod’s containers; a PVC is provisioned, Bound, and its data outlives the pod', async () => {
  const ns = await namespace('storage');
  await apply(
    {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: 'data', namespace: ns },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
    },
    agentPod(ns, 'store', {
      containers: [
        agentContainer({
          volumeMounts: [
            { name: 'shared', mountPath: '/shared' },
            { name: 'data', mountPath: '/data' },
          ],
        }),
        agentContainer({ name: 'second', env: [{ name: 'PORT', value: '8081' }], volumeMounts: [{ name: 'shared', mountPath: '/mnt/shared' }] }),
      ],
      volumes: [
        { name: 'shared', emptyDir: {} },
        { name: 'data', persistentVolumeClaim: { claimName: 'data' } },
      ],
    }),
  );
  await whenReady(ns, 'store');
  const claim = await core.readNamespacedPersistentVolumeClaim({ name: 'data', namespace: ns });
  assert.equal(claim.status?.phase, 'Bound');
  await agent(ns, 'store', 'write?path=/shared/note&data=from-agent');
  assert.deepEqual(await agent(ns, 'store', 'file?path=/mnt/shared/note', 8081), { content: 'from-agent' });
  await agent(ns, 'store', 'write?path=/data/kept&data=persistent');
  await core.deleteNamespacedPod({ name: 'store', namespace: ns, body: { gracePeriodSeconds: 1 } });
  await waitFor(
    () =>
      pod(ns, 'store').then(
        () => false,
        () => true,
      ),
    { what: 'the pod to be gone', timeoutMs: 20_000 },
  );
  assert.equal(await readFile(path.join(claimPath(path.join(sandbox.dir, 'node', 'volumes'), ns, 'data'), 'kept'), 'utf8'), 'persistent');
});

test('runAsUser and runAsGroup are the process’s user; runAsNonRoot refuses an image that would run as root', async () => {
  const ns = await namespace('users');
  await apply(
    agentPod(ns, 'custom', { securityContext: { runAsUser: 4242, runAsGroup: 4343 } }),
    agentPod(ns, 'root-image', { containers: [{ name: 'agent', image: 'dev.local/agent-root:1', securityContext: { runAsNonRoot: true } }] }),
  );
  await whenReady(ns, 'custom');
  const id = await agent<{ uid: number; gid: number }>(ns, 'custom', 'id');
  if (sandbox.privilege === 'root') assert.deepEqual([id.uid, id.gid], [4242, 4343]);
  else {
    assert.deepEqual([id.uid, id.gid], [0, 0]);
    assert.ok((await eventsOf(ns, 'custom')).some((e) => e.reason === 'SecurityContextNotApplied' && e.type === 'Warning'));
  }
  const refused = await waitFor(
    async () => {
      const waiting = (await pod(ns, 'root-image')).status?.containerStatuses?.[0]?.state?.waiting;
      return waiting?.reason === 'CreateContainerConfigError' ? waiting : undefined;
    },
    { what: 'CreateContainerConfigError', timeoutMs: 20_000, intervalMs: 100 },
  );
  assert.match(refused.message ?? '', /container has runAsNonRoot and image will run as root/);
});

test('a Job runs its init container then its container to completion; a failing Job fails', async () => {
  const ns = await namespace('jobs');
  const job = (name: string, script: string) => ({
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, namespace: ns },
    spec: {
      backoffLimit: 0,
      template: {
        spec: {
          restartPolicy: 'Never',
          initContainers: [
            {
              name: 'prepare',
              image: 'dev.local/agent:1',
              command: ['/usr/local/bin/node', '-e', "require('fs').writeFileSync('/work/step', 'prepared')"],
              volumeMounts: [{ name: 'work', mountPath: '/work' }],
            },
          ],
          containers: [
            { name: 'main', image: 'dev.local/agent:1', command: ['/usr/local/bin/node', '-e', script], volumeMounts: [{ name: 'work', mountPath: '/work' }] },
          ],
          volumes: [{ name: 'work', emptyDir: {} }],
        },
      },
    },
  });
  await apply(job('succeeds', "if (require('fs').readFileSync('/work/step', 'utf8') !== 'prepared') process.exit(9)"), job('fails', 'process.exit(7)'));
  const condition = (name: string) =>
    waitFor(
      async () => {
        const found = await objects.read<KubernetesObject & { status?: { conditions?: Array<{ type: string; status: string }> } }>({
          apiVersion: 'batch/v1',
          kind: 'Job',
          metadata: { name, namespace: ns },
        });
        return found.status?.conditions?.find((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True')?.type;
      },
      { what: `Job ${name} to finish`, timeoutMs: 30_000, intervalMs: 200 },
    );
  assert.equal(await condition('succeeds'), 'Complete');
  assert.equal(await condition('fails'), 'Failed');
  const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: 'job-name=fails' });
  const terminated = pods.items[0]?.status?.containerStatuses?.[0]?.state?.terminated;
  assert.deepEqual([pods.items[0]?.status?.phase, terminated?.exitCode, terminated?.reason], ['Failed', 7, 'Error']);
});

test('a crashing container restarts at once, then only after 10 s of CrashLoopBackOff', async () => {
  const ns = await namespace('crash');
  await apply(agentPod(ns, 'crasher', { containers: [{ name: 'c', image: 'dev.local/agent:1', command: ['/usr/local/bin/node', '-e', 'process.exit(3)'] }] }));
  const seen = new Map<number, number>();
  let backOff: string | undefined;
  await waitFor(
    async () => {
      const status = (await pod(ns, 'crasher')).status?.containerStatuses?.[0];
      if (status && !seen.has(status.restartCount)) seen.set(status.restartCount, Date.now());
      if (status?.state?.waiting?.reason === 'CrashLoopBackOff') backOff ??= status.state.waiting.message;
      return seen.has(2);
    },
    { what: 'two restarts', timeoutMs: 40_000, intervalMs: 100 },
  );
  const first = seen.get(1)! - seen.get(0)!;
  const second = seen.get(2)! - seen.get(1)!;
  timings['restart 1 after'] = first;
  timings['restart 2 after'] = second;
  assert.ok(first < 5_000, `the first restart is immediate (took ${first} ms)`);
  assert.ok(second >= 9_500, `the second waits the 10 s back-off (took ${second} ms)`);
  assert.match(backOff ?? '', /^back-off 10s restarting failed container=c pod=crasher_crash\(/);
  const last = (await pod(ns, 'crasher')).status!.containerStatuses![0]!.lastState?.terminated;
  assert.equal(last?.exitCode, 3);
  assert.ok((await eventsOf(ns, 'crasher')).some((e) => e.reason === 'BackOff' && e.type === 'Warning'));
});

test('deleting a pod runs preStop, then SIGTERM; a process ignoring SIGTERM is killed at the deadline, and the node deletes the pod', async () => {
  const ns = await namespace('stop');
  await apply(
    {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: 'log', namespace: ns },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
    },
    agentPod(ns, 'stubborn', {
      terminationGracePeriodSeconds: 3,
      containers: [
        agentContainer({
          env: [
            { name: 'EVENTS_FILE', value: '/log/events' },
            { name: 'IGNORE_SIGTERM', value: '1' },
          ],
          lifecycle: { preStop: { httpGet: { path: '/prestop', port: 8080 } } },
          volumeMounts: [{ name: 'log', mountPath: '/log' }],
        }),
      ],
      volumes: [{ name: 'log', persistentVolumeClaim: { claimName: 'log' } }],
    }),
  );
  await whenReady(ns, 'stubborn');
  const watch = await watchDeletion(ns, 'stubborn');
  const deleted = Date.now();
  await core.deleteNamespacedPod({ name: 'stubborn', namespace: ns });
  const last = await watch.deleted;
  const took = Date.now() - deleted;
  timings['deletion with 3 s grace'] = took;
  assert.ok(took >= 2_900 && took < 8_000, `gone after the 3 s grace period (took ${took} ms)`);
  assert.equal(last?.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 137, 'SIGKILL at the deadline');
  const lines = (await readFile(path.join(claimPath(path.join(sandbox.dir, 'node', 'volumes'), ns, 'log'), 'events'), 'utf8')).trim().split('\n');
  assert.deepEqual(
    lines.map((l) => l.split(' ')[1]),
    ['started', 'prestop', 'sigterm'],
  );
  const reasons = (await eventsOf(ns, 'stubborn')).map((e) => e.reason);
  assert.ok(reasons.includes('Killing'), reasons.join(', '));
});

test('an image the node does not have: ErrImagePull with the reason and a Warning event, the pod Pending, never a hang', async () => {
  const ns = await namespace('images');
  await apply(agentPod(ns, 'unknown', { containers: [{ name: 'c', image: 'dev.local/missing:1' }] }));
  const waiting = await waitFor(
    async () => {
      const w = (await pod(ns, 'unknown')).status?.containerStatuses?.[0]?.state?.waiting;
      return w?.reason === 'ErrImagePull' ? w : undefined;
    },
    { what: 'ErrImagePull', timeoutMs: 20_000, intervalMs: 50 },
  );
  assert.match(waiting.message ?? '', /^image dev\.local\/missing:1: no local build; the local node runs dev\.local\/agent-root:1, dev\.local\/agent:1$/);
  const p = await pod(ns, 'unknown');
  assert.equal(p.status?.phase, 'Pending');
  assert.equal(p.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'False');
  await waitFor(
    async () =>
      (await eventsOf(ns, 'unknown')).some(
        (e) => e.type === 'Warning' && e.reason === 'Failed' && e.note.startsWith('Failed to pull image "dev.local/missing:1"'),
      ),
    {
      what: 'the Failed event',
      timeoutMs: 10_000,
    },
  );
  await waitFor(async () => (await pod(ns, 'unknown')).status?.containerStatuses?.[0]?.state?.waiting?.reason === 'ImagePullBackOff', {
    what: 'ImagePullBackOff',
    timeoutMs: 10_000,
  });
});

test('the kubelet endpoint serves /metrics and /metrics/cadvisor to whom RBAC grants nodes/metrics, and refuses the rest', async () => {
  const ns = await namespace('scrape');
  await apply(
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'prometheus', namespace: ns } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'node-test-scraper' },
      rules: [{ apiGroups: [''], resources: ['nodes/metrics'], verbs: ['get'] }],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'node-test-scraper' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'node-test-scraper' },
      subjects: [{ kind: 'ServiceAccount', name: 'prometheus', namespace: ns }],
    },
    agentPod(ns, 'scraper', { serviceAccountName: 'prometheus' }),
    agentPod(ns, 'nobody'),
  );
  await whenReady(ns, 'scraper');
  await whenReady(ns, 'nobody');
  const cadvisor = await agent<{ status: number; body: string }>(ns, 'scraper', 'kubelet?path=/metrics/cadvisor');
  assert.equal(cadvisor.status, 200, cadvisor.body);
  const cpu = new RegExp(`^container_cpu_usage_seconds_total\\{container="agent",[^}]*namespace="${ns}",pod="scraper"\\} (\\S+)$`, 'm').exec(cadvisor.body);
  assert.ok(cpu && Number(cpu[1]) > 0, 'the scraper’s own container has used CPU');
  assert.match(
    cadvisor.body,
    new RegExp(`^container_memory_working_set_bytes\\{container="",id="/kubepods/pod[^"]+",image="",name="",namespace="${ns}",pod="nobody"\\} [1-9]`, 'm'),
  );
  const kubelet = await agent<{ status: number; body: string }>(ns, 'scraper', 'kubelet?path=/metrics');
  assert.match(kubelet.body, /^kubelet_running_pods [1-9]/m);
  assert.match(kubelet.body, /^kubelet_node_name\{node="promsnap-node"\} 1$/m);
  const refused = await agent<{ status: number; body: string }>(ns, 'nobody', 'kubelet?path=/metrics/cadvisor');
  assert.equal(refused.status, 403);
  assert.match(refused.body, new RegExp(`user=system:serviceaccount:${ns}:default, verb=get, resource=nodes, subresource=metrics`));
});

test('on SIGTERM the node stops every pod within the capped grace and leaves no process, veth, mount or pod folder behind', async () => {
  const ns = await namespace('shutdown');
  await apply(
    agentPod(ns, 'last', {
      terminationGracePeriodSeconds: 30,
      containers: [agentContainer({ env: [{ name: 'IGNORE_SIGTERM', value: '1' }] })],
    }),
  );
  await whenReady(ns, 'last');
  const stopping = Date.now();
  const code = await node.stop('SIGTERM', 30_000);
  const took = Date.now() - stopping;
  timings['node shutdown'] = took;
  assert.equal(code, 0, nodeLines.slice(-10).join('\n'));
  assert.ok(took < 12_000, `the 30 s grace is capped at 5 s (took ${took} ms)`);
  const last = await pod(ns, 'last');
  assert.deepEqual([last.status?.phase, last.status?.reason], ['Failed', 'Terminated']);

  const ps = await sandbox.run(findSystemTool('ps'), ['-eo', 'pid=,args=']);
  const left = ps.stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .filter((l) => !/etcd|kube-apiserver|kube-controller-manager|promsnap-sandbox-init|forwarder|ps -eo|setpriv|nsenter/.test(l))
    // the sandbox init's own `sleep infinity`; a pod's holder would show as /usr/bin/sleep infinity
    .filter((l) => !/^\s*\d+ sleep infinity$/.test(l));
  assert.deepEqual(left, [], 'no pod process is left in the sandbox');
  const links = JSON.parse((await sandbox.run(findSystemTool('ip'), ['-j', 'link', 'show'])).stdout) as Array<{ ifname: string }>;
  assert.deepEqual(links.map((l) => l.ifname).sort(), ['cbr0', 'lo']);
  const mounts = (await sandbox.run(findSystemTool('cat'), ['/proc/self/mountinfo'])).stdout
    .split('\n')
    .filter((l) => l.includes(path.join(sandbox.dir, 'node')));
  assert.deepEqual(mounts, []);
  assert.deepEqual(await readdir(path.join(sandbox.dir, 'node', 'pods')), []);

  await cluster.stop();
  const traces = sandbox.traces;
  await sandbox.stop();
  assert.deepEqual(sandboxLeftovers(traces), { processes: [], mounts: [], dir: false });
  assert.deepEqual(
    (await hostLinks()).filter((l) => l.kind === 'veth' && l.name.startsWith('v0af4')),
    [],
  );
});
