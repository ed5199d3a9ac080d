// The drivers of etcd, kube-apiserver and kube-controller-manager: the pinned builds report the pinned
// versions, and the flags they are given say what the local cluster relies on.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { etcdArgs, etcdVersion } from '../etcd.js';
import { kubeApiserverArgs, kubeApiserverVersion } from '../kube-apiserver.js';
import { kubeControllerManagerArgs, kubeControllerManagerVersion, platformControllers } from '../kube-controller-manager.js';
import { versions } from '../versions.js';

test('the pinned builds report the pinned versions', async () => {
  assert.equal(await etcdVersion(), versions.etcd);
  assert.equal(await kubeApiserverVersion(), versions.kubernetes);
  assert.equal(await kubeControllerManagerVersion(), versions.kubernetes);
});

test('etcd: one member, throwaway data', () => {
  const args = etcdArgs({ dataDir: '/s/etcd', clientUrl: 'http://127.0.0.1:2379', peerUrl: 'http://127.0.0.1:2380' });
  assert.ok(args.includes('--initial-cluster=default=http://127.0.0.1:2380'));
  assert.ok(args.includes('--unsafe-no-fsync=true'));
});

test('kube-apiserver: the flags a sandboxed control plane needs, and extra flags last', () => {
  const args = kubeApiserverArgs({
    etcdServers: 'http://127.0.0.1:2379',
    bindAddress: '10.244.0.1',
    advertiseAddress: '10.244.0.1',
    securePort: 6443,
    certDir: '/s/certs',
    tokenAuthFile: '/s/tokens.csv',
    serviceAccountKeyFile: '/s/sa.key',
    serviceClusterIpRange: '10.96.0.0/16',
    authorizationModes: ['Node', 'RBAC'],
    admissionPlugins: ['NodeRestriction'],
    endpointReconciler: 'lease',
    aggregatorRouting: true,
    kubeletAddressTypes: ['InternalIP'],
    extraArgs: ['--v=2'],
  });
  for (const flag of [
    '--authorization-mode=Node,RBAC',
    '--enable-admission-plugins=NodeRestriction',
    '--endpoint-reconciler-type=lease',
    '--enable-aggregator-routing=true',
    '--kubelet-preferred-address-types=InternalIP',
  ]) {
    assert.ok(args.includes(flag), `${flag} in ${args.join(' ')}`);
  }
  assert.equal(args.at(-1), '--v=2');
});

test('kube-controller-manager: its files under its dir, the platform controllers, its own RBAC per controller', () => {
  const args = kubeControllerManagerArgs({
    kubeconfig: '/s/kcm/kubeconfig',
    dir: '/s/kcm',
    rootCaFile: '/s/ca.crt',
    serviceAccountKeyFile: '/s/sa.key',
    bindAddress: '127.0.0.1',
    securePort: 10257,
  });
  assert.ok(args.includes('--flex-volume-plugin-dir=/s/kcm/flexvolume'), 'never the host default /usr/libexec/kubernetes/...');
  assert.ok(args.includes('--cert-dir=/s/kcm/certs'));
  assert.ok(args.includes('--use-service-account-credentials=true'));
  const controllers = args
    .find((a) => a.startsWith('--controllers='))!
    .slice('--controllers='.length)
    .split(',');
  assert.deepEqual(controllers, [...platformControllers]);
  for (const needed of [
    'deployment-controller',
    'endpointslice-mirroring-controller',
    'clusterrole-aggregation-controller',
    'persistentvolumeclaim-protection-controller',
  ]) {
    assert.ok((controllers as string[]).includes(needed), needed);
  }
});
