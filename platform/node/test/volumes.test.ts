import assert from 'node:assert/strict';
import { lstat, mkdtemp, readdir, readFile, readlink, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { validatePayloadPath, writeAtomically } from '../atomic-writer.js';
import { hostsFile, podHostname, resolvConf, userFiles } from '../etc-files.js';
import { PodIpam } from '../ipam.js';
import { containerMounts, planVolumes, tokenKey, tokenSpecs, volumePayload, volumeReferences, type Payload, type VolumeObjects } from '../volumes.js';

const pod: V1Pod = {
  metadata: { name: 'prometheus-0', namespace: 'monitoring', uid: 'u', labels: { app: 'prometheus' } },
  spec: {
    containers: [
      {
        name: 'prometheus',
        volumeMounts: [
          { name: 'data', mountPath: '/prometheus' },
          { name: 'config', mountPath: '/etc/prometheus' },
          { name: 'kube-api-access', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' },
          { name: 'scratch', mountPath: '/tmp', subPathExpr: '$(POD_NAME)' },
        ],
      },
    ],
    volumes: [
      { name: 'data', persistentVolumeClaim: { claimName: 'prometheus-data' } },
      {
        name: 'config',
        configMap: {
          name: 'prometheus-config',
          items: [
            { key: 'prometheus.yml', path: 'prometheus.yml' },
            { key: 'rules.yml', path: 'rules/alerts.yml', mode: 0o600 },
          ],
        },
      },
      {
        name: 'kube-api-access',
        projected: {
          defaultMode: 0o644,
          sources: [
            { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
            { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
            { downwardAPI: { items: [{ path: 'namespace', fieldRef: { fieldPath: 'metadata.namespace' } }] } },
          ],
        },
      },
      { name: 'scratch', emptyDir: { medium: 'Memory' } },
    ],
  },
};

const objects = (over: Partial<VolumeObjects> = {}): VolumeObjects => ({
  configMaps: new Map<string, { data: Record<string, string> }>([
    ['prometheus-config', { data: { 'prometheus.yml': 'global: {}\n', 'rules.yml': 'groups: []\n', unused: 'x' } }],
    ['kube-root-ca.crt', { data: { 'ca.crt': 'PEM' } }],
  ]),
  secrets: new Map([['creds', { data: { password: Buffer.from('s3cret').toString('base64') } }]]),
  tokens: new Map([[tokenKey({ audience: undefined, expirationSeconds: 3607 }), 'TOKEN']]),
  downward: { pod, podIP: '10.244.1.2', hostIP: '10.244.0.1', allocatable: {} },
  ...over,
});

const files = (payload: Payload) => Object.fromEntries([...payload].map(([file, p]) => [file, `${p.data.toString()}|${p.mode.toString(8)}`]));

test('the pod’s volumes are planned by kind; hostPath and other sources are refused with the reason', () => {
  const planned = planVolumes(pod);
  assert.ok('plans' in planned);
  assert.deepEqual(
    planned.plans.map((p) => [p.name, p.kind]),
    [
      ['data', 'claim'],
      ['config', 'files'],
      ['kube-api-access', 'files'],
      ['scratch', 'emptyDir'],
    ],
  );
  const hostPath = planVolumes({ spec: { containers: [], volumes: [{ name: 'h', hostPath: { path: '/etc' } }] } });
  assert.deepEqual(hostPath, { error: 'volume h: hostPath volumes are not supported by the local node (it writes only under its state directory)' });
  assert.match(
    JSON.stringify(planVolumes({ spec: { containers: [], volumes: [{ name: 'n', nfs: { server: 's', path: '/' } }] } })),
    /nfs volumes are not supported/,
  );
  assert.deepEqual(tokenSpecs(pod), [{ audience: undefined, expirationSeconds: 3607 }]);
  assert.deepEqual(volumeReferences(pod), { configMaps: ['prometheus-config', 'kube-root-ca.crt'], secrets: [] });
});

test('a ConfigMap volume with items writes those keys at their paths with their modes', () => {
  const result = volumePayload(pod.spec!.volumes![1]!, objects());
  assert.ok('payload' in result);
  assert.deepEqual(files(result.payload), { 'prometheus.yml': 'global: {}\n|644', 'rules/alerts.yml': 'groups: []\n|600' });
});

test('the projected service account volume holds the token, the cluster CA and the namespace', () => {
  const result = volumePayload(pod.spec!.volumes![2]!, objects());
  assert.ok('payload' in result);
  assert.deepEqual(files(result.payload), { token: 'TOKEN|644', 'ca.crt': 'PEM|644', namespace: 'monitoring|644' });
  const noToken = volumePayload(pod.spec!.volumes![2]!, objects({ tokens: new Map() }));
  assert.ok('error' in noToken && /no service account token yet/.test(noToken.error));
});

test('missing objects and keys fail the mount unless optional, as the kubelet’s MakePayload says', () => {
  const missing = volumePayload({ name: 'v', configMap: { name: 'nope' } }, objects());
  assert.deepEqual(missing, { error: 'MountVolume.SetUp failed for volume "v": configmap "nope" not found' });
  assert.deepEqual(files((volumePayload({ name: 'v', configMap: { name: 'nope', optional: true } }, objects()) as { payload: Payload }).payload), {});
  const badKey = volumePayload({ name: 'v', secret: { secretName: 'creds', items: [{ key: 'user', path: 'u' }] } }, objects());
  assert.deepEqual(badKey, { error: 'MountVolume.SetUp failed for volume "v": references non-existent secret key: user' });
  const secret = volumePayload({ name: 'v', secret: { secretName: 'creds', defaultMode: 0o400 } }, objects());
  assert.deepEqual(files((secret as { payload: Payload }).payload), { password: 's3cret|400' });
});

test('mounts: subPathExpr expands, API-data volumes are read-only, shallow paths first; escaping subPaths are refused', () => {
  const dirs = new Map([
    ['data', '/state/pv/1'],
    ['config', '/state/pods/u/volumes/kubernetes.io~configmap/config'],
    ['kube-api-access', '/state/pods/u/volumes/kubernetes.io~projected/kube-api-access'],
    ['scratch', '/state/pods/u/volumes/kubernetes.io~empty-dir/scratch'],
  ]);
  const result = containerMounts(pod.spec!.containers[0]!, pod, dirs, { POD_NAME: 'prometheus-0' });
  assert.ok('mounts' in result);
  assert.deepEqual(
    result.mounts.map((m) => `${m.target} <- ${m.source}${m.readOnly ? ' (ro)' : ''}`),
    [
      '/prometheus <- /state/pv/1',
      '/tmp <- /state/pods/u/volumes/kubernetes.io~empty-dir/scratch/prometheus-0',
      '/etc/prometheus <- /state/pods/u/volumes/kubernetes.io~configmap/config (ro)',
      '/var/run/secrets/kubernetes.io/serviceaccount <- /state/pods/u/volumes/kubernetes.io~projected/kube-api-access (ro)',
    ],
  );
  const escape = containerMounts({ name: 'c', volumeMounts: [{ name: 'data', mountPath: '/d', subPath: '../../etc' }] }, pod, dirs, {});
  assert.ok('error' in escape && /must be a relative path inside it/.test(escape.error));
  const twice = containerMounts(
    {
      name: 'c',
      volumeMounts: [
        { name: 'data', mountPath: '/d' },
        { name: 'config', mountPath: '/d/' },
      ],
    },
    pod,
    dirs,
    {},
  );
  assert.ok('error' in twice && /two volumes are mounted at \/d/.test(twice.error));
});

test('the atomic writer swaps ..data to a new timestamped folder and removes what the payload no longer has', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'node-atomic-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const payload = (entries: Record<string, string>): Payload => new Map(Object.entries(entries).map(([f, d]) => [f, { data: Buffer.from(d), mode: 0o644 }]));

  assert.equal(await writeAtomically(dir, payload({ 'a.yml': 'one', 'sub/b.yml': 'two' })), true);
  const first = await readlink(path.join(dir, '..data'));
  assert.match(first, /^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.\w+$/);
  assert.equal(await readlink(path.join(dir, 'a.yml')), '..data/a.yml');
  assert.equal(await readFile(path.join(dir, 'sub/b.yml'), 'utf8'), 'two');
  assert.equal((await stat(path.join(dir, 'a.yml'))).mode & 0o777, 0o644);

  assert.equal(await writeAtomically(dir, payload({ 'a.yml': 'one', 'sub/b.yml': 'two' })), false, 'an unchanged payload is not rewritten');
  assert.equal(await readlink(path.join(dir, '..data')), first);

  assert.equal(await writeAtomically(dir, payload({ 'a.yml': 'changed' })), true);
  assert.notEqual(await readlink(path.join(dir, '..data')), first);
  assert.equal(await readFile(path.join(dir, 'a.yml'), 'utf8'), 'changed');
  assert.equal(await lstat(path.join(dir, 'sub')).catch(() => undefined), undefined, 'a name no longer in the payload is removed');
  assert.deepEqual((await readdir(dir)).filter((e) => e.startsWith('..')).length, 2, 'only ..data and the current folder remain');
  await assert.rejects(writeAtomically(dir, payload({ '../x': 'no' })), /must not contain '\.\.'/);
  assert.equal(validatePayloadPath('..hidden/x'), "invalid path: must not start with '..': ..hidden/x");
});

test('/etc files: the kubelet’s hosts file, resolv.conf per dnsPolicy, users for every uid in the pod', () => {
  const hosts = hostsFile({ ...pod, spec: { ...pod.spec!, hostAliases: [{ ip: '10.0.0.9', hostnames: ['db', 'db.local'] }] } }, '10.244.1.2', 'cluster.local');
  assert.match(hosts, /^# Kubernetes-managed hosts file\.\n127\.0\.0\.1\tlocalhost\n/);
  assert.match(hosts, /\n10\.244\.1\.2\tprometheus-0\n/);
  assert.match(hosts, /# Entries added by HostAliases\.\n10\.0\.0\.9\tdb\tdb\.local\n$/);
  assert.match(
    hostsFile({ ...pod, spec: { ...pod.spec!, hostname: 'h', subdomain: 'sub' } }, '10.244.1.2', 'cluster.local'),
    /10\.244\.1\.2\th\.sub\.monitoring\.svc\.cluster\.local\th\n/,
  );
  assert.equal(podHostname({ metadata: { name: `${'a'.repeat(62)}-b` } }), 'a'.repeat(62));

  const dns = { clusterDns: '10.96.0.10', clusterDomain: 'cluster.local', hostResolvConf: 'nameserver 1.1.1.1\nsearch corp\n' };
  assert.equal(resolvConf(pod, dns), 'search monitoring.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n');
  assert.equal(resolvConf({ ...pod, spec: { ...pod.spec!, dnsPolicy: 'Default' } }, dns), 'search corp\nnameserver 1.1.1.1\n');
  assert.equal(
    resolvConf({ ...pod, spec: { ...pod.spec!, dnsPolicy: 'None', dnsConfig: { nameservers: ['9.9.9.9'], options: [{ name: 'ndots', value: '2' }] } } }, dns),
    'nameserver 9.9.9.9\noptions ndots:2\n',
  );
  const users = userFiles([{ uid: 4242, gid: 4343 }]);
  assert.match(users.passwd, /^root:x:0:0::\/root:/);
  assert.match(users.passwd, /user4242:x:4242:4343::/);
  assert.match(users.group, /user4242:x:4343:/);
});

test('pod IPs: never-used addresses first, freed ones last, oldest freed first; reserved ones skipped', () => {
  const ipam = new PodIpam('10.244.1.0/30', ['10.244.1.1']);
  assert.equal(ipam.allocate(), '10.244.1.2');
  ipam.release('10.244.1.2');
  assert.throws(() => new PodIpam('10.244.1.0/33'), /invalid IPv4 CIDR/);
  assert.equal(ipam.allocate(), '10.244.1.2', 'the range is exhausted: the freed address comes back');
  assert.throws(() => ipam.allocate(), /no free pod IP left in 10\.244\.1\.0\/30/);
  const bigger = new PodIpam('10.244.1.0/24');
  const a = bigger.allocate();
  bigger.allocate();
  bigger.release(a);
  assert.equal(bigger.allocate(), '10.244.1.3');
});
