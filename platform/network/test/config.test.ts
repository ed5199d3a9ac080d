import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, parseNetworkArgs } from '../config.js';
import { ingressServiceObjects } from '../ingress-service.js';

test('the sandbox command line starts all three with the defaults Knative and the pods expect', () => {
  const config = parseNetworkArgs([
    '--kubeconfig=/state/network.kubeconfig',
    '--services',
    '--node-address=10.244.0.1',
    '--dns=10.96.0.10:53',
    '--ingress=10.244.0.1:80',
    '--ingress-public=10.244.0.1:8081',
  ]);
  assert.deepEqual(config, {
    kubeconfig: '/state/network.kubeconfig',
    logLevel: 'info',
    services: { nodeAddress: '10.244.0.1' },
    dns: { address: '10.96.0.10', port: 53, domain: 'cluster.local' },
    ingress: {
      listen: { host: '10.244.0.1', port: 80 },
      publicListen: { host: '10.244.0.1', port: 8081 },
      ingressClass: 'promsnap.ingress.networking.knative.dev',
      domainInternal: 'promsnap-ingress.knative-serving.svc.cluster.local',
    },
  });
  assert.deepEqual(Object.keys(parseNetworkArgs(['--kubeconfig=k', '--dns=127.0.0.1:0'])), ['kubeconfig', 'logLevel', 'dns'], 'only what is asked for');
});

test('every problem is named at once, with the usage', () => {
  assert.throws(
    () => parseNetworkArgs(['--dns=10.96.0.10', '--ingress-public=1.2.3.4:80', '--node-address=x', '--log-level=loud']),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      for (const part of [
        '--kubeconfig is required',
        '--dns "10.96.0.10" is not IP:PORT',
        '--node-address "x" is not an IP',
        '--ingress-public needs --ingress',
        '--log-level must be one of',
        'usage:',
      ]) {
        assert.ok(err.message.includes(part), `${part} in:\n${err.message}`);
      }
      return true;
    },
  );
  assert.throws(() => parseNetworkArgs(['--kubeconfig=k']), /nothing to run/);
  assert.throws(() => parseNetworkArgs(['--kubeconfig=k', '--dns=1.2.3.4:53', '--bogus']), /Unknown option '--bogus'/);
});

test("the ingress's Service has no selector and one slice naming the node's listener", () => {
  const [service, slice] = ingressServiceObjects({ address: '10.244.0.1', port: 80 });
  assert.equal(service.metadata?.name, 'promsnap-ingress');
  assert.equal(service.metadata?.namespace, 'knative-serving');
  assert.equal(service.spec?.selector, undefined);
  assert.equal(slice.metadata?.labels?.['kubernetes.io/service-name'], 'promsnap-ingress');
  assert.deepEqual(slice.endpoints, [{ addresses: ['10.244.0.1'], conditions: { ready: true } }]);
  assert.deepEqual(slice.ports, [{ name: 'http', port: 80, protocol: 'TCP' }]);
});
