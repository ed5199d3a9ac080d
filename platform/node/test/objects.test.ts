import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseNodeArgs } from '../main.js';
import { nodeObject, nodeStatus } from '../node.js';
import { claimPath, volumeFor } from '../provisioner.js';
import { nodeControllerObjects } from '../rbac.js';
import { microTime, deleteBody } from '../kube.js';
import { refreshTime } from '../token.js';

test('the command line takes the interface’s flags with their defaults and names a wrong one', () => {
  const options = parseNodeArgs(['--kubeconfig', 'k', '--state-dir', '/s', '--images', 'i.json']);
  assert.deepEqual(
    { ...options },
    {
      kubeconfig: 'k',
      controllerKubeconfig: 'k',
      name: 'promsnap-node',
      nodeIp: '10.244.0.1',
      podCidr: '10.244.1.0/24',
      stateDir: '/s',
      images: 'i.json',
      network: false,
      knativeIngress: false,
      dataDir: '/s/volumes',
      clusterDns: '10.96.0.10',
      clusterDomain: 'cluster.local',
      shutdownGraceSeconds: 10,
      kubeletPort: 10250,
      logLevel: 'info',
    },
  );
  assert.equal(parseNodeArgs(['--kubeconfig', 'k', '--state-dir', '/s', '--images', 'i', '--network', '--knative-ingress']).knativeIngress, true);
  assert.throws(() => parseNodeArgs(['--kubeconfig', 'k', '--images', 'i']), /--state-dir is required/);
  assert.throws(() => parseNodeArgs(['--kubeconfig', 'k', '--state-dir', '/s', '--images', 'i', '--pod-cidr', '10.0.0.0/40']), /invalid IPv4 CIDR/);
  assert.throws(() => parseNodeArgs(['--kubeconfig', 'k', '--state-dir', '/s', '--images', 'i', '--shutdown-grace-seconds', 'soon']), /whole number/);
  assert.throws(() => parseNodeArgs(['--kubeconfig', 'k', '--state-dir', '/s', '--images', 'i', '--bogus']), /Unknown option '--bogus'/);
});

test('the Node carries only labels a kubelet may set, its pod CIDR, addresses, capacity and a Ready condition', () => {
  const identity = { name: 'promsnap-node', nodeIp: '10.244.0.1', podCidr: '10.244.1.0/24' };
  const node = nodeObject(identity);
  assert.deepEqual(Object.keys(node.metadata!.labels!).sort(), [
    'beta.kubernetes.io/arch',
    'beta.kubernetes.io/os',
    'kubernetes.io/arch',
    'kubernetes.io/hostname',
    'kubernetes.io/os',
  ]);
  assert.equal(node.spec!.podCIDR, '10.244.1.0/24');
  const { status } = nodeStatus(identity, new Date('2026-12-04T12:00:00.5Z'), new Date('2026-12-04T11:00:00Z')) as {
    status: {
      addresses: unknown;
      conditions: Array<{ type: string; status: string; lastHeartbeatTime: string }>;
      capacity: Record<string, string>;
      nodeInfo: { kubeletVersion: string };
    };
  };
  assert.deepEqual(status.addresses, [
    { type: 'InternalIP', address: '10.244.0.1' },
    { type: 'Hostname', address: 'promsnap-node' },
  ]);
  assert.deepEqual(
    status.conditions.map((c) => [c.type, c.status]),
    [
      ['MemoryPressure', 'False'],
      ['DiskPressure', 'False'],
      ['PIDPressure', 'False'],
      ['Ready', 'True'],
    ],
  );
  assert.equal(status.conditions[3]!.lastHeartbeatTime, '2026-12-04T12:00:00Z');
  assert.equal(status.capacity['pods'], '110');
  assert.equal(status.nodeInfo.kubeletVersion, 'v1.37.2');
});

test('a pending claim gets a local PV pre-bound to it, on this node, in <data dir>/<namespace>/<claim>', () => {
  const volume = volumeFor(
    {
      metadata: { name: 'minio-data', namespace: 'promsnap', uid: 'u-1' },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '5Gi' } } },
    },
    'promsnap-node',
    '/data',
  );
  assert.equal(volume.metadata!.name, 'pvc-u-1');
  assert.deepEqual(volume.spec!.claimRef, { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: 'promsnap', name: 'minio-data', uid: 'u-1' });
  assert.equal(volume.spec!.local!.path, claimPath('/data', 'promsnap', 'minio-data'));
  assert.equal(volume.spec!.local!.path, '/data/promsnap/minio-data');
  assert.equal(volume.spec!.capacity!['storage'], '5Gi');
  assert.equal(volume.spec!.storageClassName, '');
  assert.deepEqual(volume.spec!.nodeAffinity!.required!.nodeSelectorTerms[0]!.matchExpressions![0]!.values, ['promsnap-node']);
});

test('the controllers’ account may bind pods and make volumes; nothing grants it Secrets', () => {
  const [account, role, binding, networkRole, networkBinding] = nodeControllerObjects();
  assert.equal(networkBinding.roleRef.name, networkRole.metadata!.name);
  assert.deepEqual(networkBinding.subjects, binding.subjects, 'the network parts run on the same account');
  assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', namespace: account.metadata!.namespace, name: account.metadata!.name }]);
  const allows = (resource: string, verb: string) => role.rules!.some((r) => r.resources!.includes(resource) && r.verbs.includes(verb));
  assert.equal(allows('pods/binding', 'create'), true);
  assert.equal(allows('persistentvolumes', 'create'), true);
  assert.equal(allows('secrets', 'get'), false);
});

test('MicroTime has six fractional digits; delete options carry grace and the uid precondition', () => {
  assert.equal(microTime(new Date('2026-12-04T12:00:00.123Z')), '2026-12-04T12:00:00.123000Z');
  assert.deepEqual(deleteBody(0, 'u'), { gracePeriodSeconds: 0, preconditions: { uid: 'u' } });
});

test('a service account token is asked again at 80 % of its life, at most after 24 h', () => {
  assert.equal(refreshTime(0, 3_600_000), 2_880_000);
  assert.equal(refreshTime(1_000, 1_000 + 365 * 24 * 3_600_000), 1_000 + 24 * 3_600_000);
});
