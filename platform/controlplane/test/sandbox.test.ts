// The control plane in its sandbox placement, for real: etcd, kube-apiserver and kube-controller-manager
// in one cluster sandbox, reached from the host through a forward whose kubeconfig verifies the API
// server's CA, from inside with the in-cluster kubeconfigs; the node's identity limited as a kubelet's
// is; the controllers the platform needs at work; and nothing left on the machine after stop.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { runCommand } from '../../tools/command.js';
import { findSystemTool, findTool } from '../../tools/find.js';
import { hostLinks, sandboxLeftovers, startSandbox } from '../../tools/sandbox.js';
import { versions } from '../../tools/versions.js';
import { waitFor } from '../../tools/wait.js';
import { nodeName, startControlPlane } from '../index.js';

/** Resident memory of a process and its descendants, in MB (an entered process runs under nsenter). */
function rssMb(pid: number): number {
  let kb = 0;
  const pending = [pid];
  for (let p = pending.pop(); p !== undefined; p = pending.pop()) {
    try {
      kb += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0);
      for (const task of readdirSync(`/proc/${p}/task`)) {
        pending.push(
          ...readFileSync(`/proc/${p}/task/${task}/children`, 'utf8')
            .split(' ')
            .filter((s) => s.trim() !== '')
            .map(Number),
        );
      }
    } catch {
      // exited while we looked
    }
  }
  return Math.round(kb / 1024);
}

test('a control plane in a sandbox', async (t) => {
  const parent = await mkdtemp(path.join(os.tmpdir(), 'promsnap-cp-'));
  t.after(() => rm(parent, { recursive: true, force: true }));
  const linksBefore = await hostLinks();
  const started = Date.now();
  const sandbox = await startSandbox({ dir: path.join(parent, 'state') });
  const sandboxMs = Date.now() - started;
  t.after(() => sandbox.stop());
  const readOnlyRefusals: string[] = [];
  const flexDirBefore = existsSync('/usr/libexec/kubernetes/kubelet-plugins/volume/exec');
  const cp = await startControlPlane({
    placement: { sandbox },
    controllerManager: true,
    onLine: (component, line) => {
      if (/read-only file system/i.test(line)) readOnlyRefusals.push(`${component}: ${line}`);
    },
  });
  t.after(() => cp.stop());
  const { etcdMs, apiServerMs, controllerManagerMs, totalMs } = cp.timings;
  t.diagnostic(
    `sandbox ${sandboxMs} ms; control plane ready in ${totalMs} ms (etcd ${etcdMs}, kube-apiserver ${apiServerMs}, kube-controller-manager ${controllerManagerMs})`,
  );
  t.diagnostic(
    `memory (RSS): etcd ${rssMb(cp.processes.etcd.pid)} MB, kube-apiserver ${rssMb(cp.processes.kubeApiserver.pid)} MB, ` +
      `kube-controller-manager ${rssMb(cp.processes.kubeControllerManager!.pid)} MB`,
  );

  const kubectlBinary = findTool('kubectl');
  /** kubectl inside the sandbox with a sandbox-side kubeconfig (its cache in the state dir: the host is read-only there). */
  const kubectlInside = (kubeconfig: string, args: string[], input?: string) =>
    sandbox.run(kubectlBinary, [`--kubeconfig=${kubeconfig}`, ...args], {
      env: { ...process.env, KUBECACHEDIR: path.join(sandbox.dir, 'tmp', 'kubectl-cache') },
      allowFailure: true,
      ...(input !== undefined ? { input } : {}),
    });

  await t.test('serves from the host through a forward, verified against its own CA, never skipping verification', async () => {
    assert.match(cp.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const kubeconfig = readFileSync(cp.kubeconfigPath, 'utf8');
    assert.match(kubeconfig, /certificate-authority-data: /);
    assert.doesNotMatch(kubeconfig, /insecure-skip-tls-verify/);
    const version = await cp.getJson<{ gitVersion: string }>('/version');
    assert.equal(version.gitVersion, `v${versions.kubernetes}`);
    assert.equal((await cp.kubectl('get', 'namespace', 'default', '-o', 'name')).stdout.trim(), 'namespace/default');
    const config = new KubeConfig();
    config.loadFromFile(cp.kubeconfigPath);
    const namespaces = await config.makeApiClient(CoreV1Api).listNamespace();
    assert.ok(namespaces.items.some((ns) => ns.metadata?.name === 'kube-system'));

    // The same server with a CA that did not sign its certificate is refused.
    const stranger = path.join(parent, 'stranger.kubeconfig');
    const otherCa = (
      await runCommand(findSystemTool('openssl'), [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-subj',
        '/CN=stranger',
        '-days',
        '1',
        '-keyout',
        '/dev/null',
      ])
    ).stdout;
    await writeFile(stranger, kubeconfig.replace(/certificate-authority-data: \S+/, `certificate-authority-data: ${Buffer.from(otherCa).toString('base64')}`));
    const refused = await cp.kubectl.with({ allowFailure: true }, `--kubeconfig=${stranger}`, 'get', 'namespaces');
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /certificate/);
  });

  await t.test('gives the `kubernetes` Service the API server on the bridge address (lease reconciler)', async () => {
    const endpoints = await waitFor(
      async () => {
        const e = await cp.getJson<{ subsets?: Array<{ addresses: Array<{ ip: string }>; ports: Array<{ port: number }> }> }>(
          '/api/v1/namespaces/default/endpoints/kubernetes',
        );
        return e.subsets?.length ? e : undefined;
      },
      { what: 'the kubernetes Service endpoints' },
    );
    assert.deepEqual(endpoints.subsets, [{ addresses: [{ ip: '10.244.0.1' }], ports: [{ name: 'https', port: 6443, protocol: 'TCP' }] }]);
    assert.equal(cp.inClusterUrl, 'https://10.244.0.1:6443');
  });

  await t.test('serves processes inside with the in-cluster kubeconfig (https://10.244.0.1:6443, the same CA)', async () => {
    const result = await kubectlInside(cp.inClusterKubeconfigPath!, ['get', 'namespace', 'kube-system', '-o', 'name']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), 'namespace/kube-system');
  });

  await t.test(`authenticates the node as system:node:${nodeName} and limits it as a kubelet is limited`, async () => {
    const node = cp.nodeKubeconfigPath!;
    const whoami = await kubectlInside(node, ['auth', 'whoami', '-o', 'json']);
    assert.equal(whoami.code, 0, whoami.stderr);
    const user = (JSON.parse(whoami.stdout) as { status: { userInfo: { username: string; groups: string[] } } }).status.userInfo;
    assert.equal(user.username, `system:node:${nodeName}`);
    assert.ok(user.groups.includes('system:nodes'));
    const nodeObject = (name: string) => JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name } });
    const own = await kubectlInside(node, ['create', '-f', '-'], nodeObject(nodeName));
    assert.equal(own.code, 0, `the node may register itself: ${own.stderr}`);
    const other = await kubectlInside(node, ['create', '-f', '-'], nodeObject('another-node'));
    assert.notEqual(other.code, 0);
    assert.match(other.stderr, /is not allowed to modify node "another-node"/);
    const secrets = await kubectlInside(node, ['get', 'secrets', '-n', 'kube-system']);
    assert.notEqual(secrets.code, 0);
    assert.match(secrets.stderr, /forbidden/);
    await cp.kubectl('delete', 'node', nodeName, '--wait=false');
  });

  await t.test('runs the controllers: Deployment to ReplicaSet to Pod, Job to Pod, garbage collection', async () => {
    await cp.kubectl('create', 'namespace', 'work');
    await cp.kubectl('create', 'deployment', 'hello', '--image=dev.local/hello:1', '--replicas=2', '-n', 'work');
    await cp.kubectl('create', 'job', 'once', '--image=dev.local/once:1', '-n', 'work');
    const pods = await waitFor(
      async () => {
        const list = await cp.getJson<{ items: Array<{ metadata: { name: string; ownerReferences?: Array<{ kind: string }> } }> }>(
          '/api/v1/namespaces/work/pods',
        );
        const kinds = list.items.map((p) => p.metadata.ownerReferences?.[0]?.kind).sort();
        return kinds.join(',') === 'Job,ReplicaSet,ReplicaSet' && list.items;
      },
      { what: 'two pods of the Deployment and one of the Job', timeoutMs: 30_000 },
    );
    assert.equal(pods.length, 3);
    await cp.kubectl('delete', 'deployment', 'hello', '-n', 'work');
    await waitFor(async () => (await cp.getJson<{ items: unknown[] }>('/apis/apps/v1/namespaces/work/replicasets')).items.length === 0, {
      what: "the Deployment's ReplicaSet collected",
      timeoutMs: 30_000,
    });
  });

  await t.test('mirrors hand-written Endpoints of a Service without selector into EndpointSlices', async () => {
    const objects = [
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'webhook', namespace: 'work' },
        spec: { ports: [{ name: 'https', port: 443, targetPort: 8443 }] },
      },
      {
        apiVersion: 'v1',
        kind: 'Endpoints',
        metadata: { name: 'webhook', namespace: 'work' },
        subsets: [{ addresses: [{ ip: '10.244.1.9' }], ports: [{ name: 'https', port: 8443 }] }],
      },
    ];
    await cp.kubectl.with({ input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }) }, 'apply', '-f', '-');
    const slices = await waitFor(
      async () => {
        const list = await cp.getJson<{ items: Array<{ endpoints: Array<{ addresses: string[] }> }> }>(
          '/apis/discovery.k8s.io/v1/namespaces/work/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dwebhook',
        );
        return list.items.length > 0 && list.items;
      },
      { what: 'a mirrored EndpointSlice', timeoutMs: 30_000 },
    );
    assert.deepEqual(slices[0]!.endpoints[0]!.addresses, ['10.244.1.9']);
  });

  await t.test('binds a claim to a matching volume, releases its protection when deleted, and aggregates ClusterRoles', async () => {
    const objects = [
      {
        apiVersion: 'v1',
        kind: 'PersistentVolume',
        metadata: { name: 'local-1' },
        spec: {
          capacity: { storage: '1Gi' },
          accessModes: ['ReadWriteOnce'],
          storageClassName: 'promsnap-local',
          hostPath: { path: path.join(sandbox.dir, 'volumes', 'local-1') },
        },
      },
      {
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        metadata: { name: 'data', namespace: 'work' },
        spec: { accessModes: ['ReadWriteOnce'], storageClassName: 'promsnap-local', resources: { requests: { storage: '1Gi' } } },
      },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: { name: 'aggregate' },
        aggregationRule: { clusterRoleSelectors: [{ matchLabels: { 'promsnap.dev/aggregate': 'true' } }] },
      },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: { name: 'part', labels: { 'promsnap.dev/aggregate': 'true' } },
        rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get'] }],
      },
    ];
    await cp.kubectl.with({ input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }) }, 'apply', '-f', '-');
    await waitFor(
      async () => (await cp.getJson<{ status?: { phase?: string } }>('/api/v1/namespaces/work/persistentvolumeclaims/data')).status?.phase === 'Bound',
      {
        what: 'the claim Bound',
        timeoutMs: 30_000,
      },
    );
    await waitFor(
      async () => ((await cp.getJson<{ rules?: unknown[] }>('/apis/rbac.authorization.k8s.io/v1/clusterroles/aggregate')).rules ?? []).length === 1,
      {
        what: 'the aggregated ClusterRole filled',
        timeoutMs: 30_000,
      },
    );
    // Without the protection controller the claim would stay Terminating on its finalizer.
    await cp.kubectl('delete', 'pvc', 'data', '-n', 'work', '--timeout=30s');
  });

  await t.test('deletes a namespace and everything in it', async () => {
    await cp.kubectl('create', 'namespace', 'doomed');
    await cp.kubectl('create', 'configmap', 'settings', '--from-literal=a=b', '-n', 'doomed');
    await cp.kubectl('delete', 'namespace', 'doomed', '--timeout=60s');
    await assert.rejects(cp.getJson('/api/v1/namespaces/doomed'), /404/);
  });

  await t.test('no component wrote outside the state dir', () => {
    // The host is read-only inside the sandbox: a write anywhere else would have failed, and said so.
    assert.deepEqual(readOnlyRefusals, []);
    assert.equal(existsSync('/usr/libexec/kubernetes/kubelet-plugins/volume/exec'), flexDirBefore, 'the default flex-volume dir was not made');
  });

  await t.test('stops, and with its sandbox leaves nothing on the machine', async () => {
    const traces = sandbox.traces;
    const stopStarted = Date.now();
    await cp.stop();
    const cpStopMs = Date.now() - stopStarted;
    await sandbox.stop();
    t.diagnostic(`stopped in ${Date.now() - stopStarted} ms (control plane ${cpStopMs})`);
    assert.equal(cp.processes.kubeApiserver.alive, false);
    assert.deepEqual(sandboxLeftovers(traces), { processes: [], mounts: [], dir: false });
    const links = await hostLinks();
    assert.deepEqual(
      links.filter((l) => !linksBefore.some((b) => b.name === l.name)),
      [],
    );
  });
});
