import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { V1Container, V1Pod, V1Service } from '@kubernetes/client-node';
import { containerEnv, envReferences, fieldRefValue, formatMap, serviceEnv, type DownwardContext, type EnvObjects } from '../env.js';
import { parseQuantity, resourceValue } from '../quantity.js';

const pod: V1Pod = {
  metadata: { name: 'web-1', namespace: 'promsnap', uid: 'abc', labels: { app: 'web', tier: 'front' }, annotations: { 'a.b/c': 'x"y' } },
  spec: {
    nodeName: 'promsnap-node',
    serviceAccountName: 'web',
    containers: [{ name: 'app', resources: { limits: { memory: '128Mi' }, requests: { cpu: '250m' } } }],
  },
};
const context: DownwardContext = { pod, podIP: '10.244.1.7', hostIP: '10.244.0.1', allocatable: { cpu: '2', memory: '8Gi' } };
const objects: EnvObjects = {
  configMaps: new Map([['settings', { LEVEL: 'debug', URL: 'http://x' }]]),
  secrets: new Map([['creds', { user: 'admin', password: 's3cret' }]]),
};

test('envFrom comes first, env after it wins, and $(VAR) sees what was defined before', () => {
  const container: V1Container = {
    name: 'app',
    envFrom: [{ configMapRef: { name: 'settings' } }, { prefix: 'DB_', secretRef: { name: 'creds' } }],
    env: [
      { name: 'LEVEL', value: 'info' },
      { name: 'GREETING', value: 'user $(DB_user) at $(LATER) costs $$(DB_user)' },
      { name: 'LATER', value: 'x' },
    ],
  };
  const result = containerEnv(container, objects, context, {});
  assert.ok('env' in result);
  assert.equal(result.env['LEVEL'], 'info');
  assert.equal(result.env['URL'], 'http://x');
  assert.equal(result.env['DB_password'], 's3cret');
  assert.equal(result.env['GREETING'], 'user admin at $(LATER) costs $(DB_user)');
});

test('secretKeyRef and configMapKeyRef resolve; a missing optional one is left out', () => {
  const container: V1Container = {
    name: 'app',
    env: [
      { name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'creds', key: 'password' } } },
      { name: 'LEVEL', valueFrom: { configMapKeyRef: { name: 'settings', key: 'LEVEL' } } },
      { name: 'MAYBE', valueFrom: { secretKeyRef: { name: 'nope', key: 'k', optional: true } } },
    ],
  };
  const result = containerEnv(container, objects, context, {});
  assert.deepEqual(result, { env: { PASSWORD: 's3cret', LEVEL: 'debug' } });
});

test('a missing Secret, ConfigMap or key that is not optional is an error naming it (CreateContainerConfigError)', () => {
  const result = containerEnv(
    {
      name: 'app',
      env: [
        { name: 'A', valueFrom: { secretKeyRef: { name: 'nope', key: 'k' } } },
        { name: 'B', valueFrom: { configMapKeyRef: { name: 'settings', key: 'missing' } } },
      ],
      envFrom: [{ configMapRef: { name: 'absent' } }],
    },
    objects,
    context,
    {},
  );
  assert.ok('error' in result);
  assert.match(result.error, /envFrom: ConfigMap promsnap\/absent not found/);
  assert.match(result.error, /A: Secret promsnap\/nope not found/);
  assert.match(result.error, /B: key missing of ConfigMap promsnap\/settings not found/);
});

test('the downward API gives the pod’s name, namespace, uid, labels, node, service account and addresses', () => {
  const env = containerEnv(
    {
      name: 'app',
      env: [
        { name: 'NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
        { name: 'NS', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
        { name: 'UID', valueFrom: { fieldRef: { fieldPath: 'metadata.uid' } } },
        { name: 'APP', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
        { name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
        { name: 'SA', valueFrom: { fieldRef: { fieldPath: 'spec.serviceAccountName' } } },
        { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
        { name: 'HOST_IP', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } },
        { name: 'ADDR', value: '$(POD_IP):8080' },
      ],
    },
    objects,
    context,
    {},
  );
  assert.deepEqual(env, {
    env: {
      NAME: 'web-1',
      NS: 'promsnap',
      UID: 'abc',
      APP: 'web',
      NODE: 'promsnap-node',
      SA: 'web',
      POD_IP: '10.244.1.7',
      HOST_IP: '10.244.0.1',
      ADDR: '10.244.1.7:8080',
    },
  });
  assert.equal(fieldRefValue('metadata.labels', context), 'app="web"\ntier="front"');
  assert.equal(formatMap(pod.metadata!.annotations), 'a.b/c="x\\"y"');
  assert.throws(() => fieldRefValue('spec.hostname', context), /unsupported fieldPath/);
});

test('resourceFieldRef divides and rounds up; a limit the container does not set is the node’s allocatable', () => {
  const container: V1Container = {
    ...pod.spec!.containers[0]!,
    env: [
      { name: 'MEM_MI', valueFrom: { resourceFieldRef: { resource: 'limits.memory', divisor: '1Mi' } } },
      { name: 'CPU_REQ', valueFrom: { resourceFieldRef: { resource: 'requests.cpu' } } },
      { name: 'CPU_REQ_M', valueFrom: { resourceFieldRef: { resource: 'requests.cpu', divisor: '1m' } } },
      { name: 'CPU_LIMIT', valueFrom: { resourceFieldRef: { resource: 'limits.cpu' } } },
    ],
  };
  const result = containerEnv(container, objects, context, {});
  assert.deepEqual(result, { env: { MEM_MI: '128', CPU_REQ: '1', CPU_REQ_M: '250', CPU_LIMIT: '2' } });
  assert.equal(parseQuantity('1.5Gi'), 1.5 * 2 ** 30);
  assert.equal(parseQuantity('2e3'), 2000);
  assert.equal(resourceValue('memory', '1G', '1Mi'), '954');
  assert.throws(() => parseQuantity('12XB'), /invalid quantity/);
});

test('Service links: the kubernetes Service always, the namespace’s Services when enableServiceLinks, usable in $(VAR)', () => {
  const services: V1Service[] = [
    { metadata: { name: 'kubernetes', namespace: 'default' }, spec: { clusterIP: '10.96.0.1', ports: [{ name: 'https', port: 443, protocol: 'TCP' }] } },
    { metadata: { name: 'my-db', namespace: 'promsnap' }, spec: { clusterIP: '10.96.3.4', ports: [{ port: 5432 }] } },
    { metadata: { name: 'headless', namespace: 'promsnap' }, spec: { clusterIP: 'None', ports: [{ port: 80 }] } },
    { metadata: { name: 'other', namespace: 'elsewhere' }, spec: { clusterIP: '10.96.9.9', ports: [{ port: 80 }] } },
  ];
  const linked = serviceEnv(services, 'promsnap', true);
  assert.equal(linked['KUBERNETES_SERVICE_HOST'], '10.96.0.1');
  assert.equal(linked['KUBERNETES_SERVICE_PORT'], '443');
  assert.equal(linked['KUBERNETES_SERVICE_PORT_HTTPS'], '443');
  assert.equal(linked['KUBERNETES_PORT'], 'tcp://10.96.0.1:443');
  assert.equal(linked['MY_DB_PORT_5432_TCP_ADDR'], '10.96.3.4');
  assert.equal(linked['HEADLESS_SERVICE_HOST'], undefined);
  assert.equal(linked['OTHER_SERVICE_HOST'], undefined);
  assert.deepEqual(
    Object.keys(serviceEnv(services, 'promsnap', false)).filter((k) => k.startsWith('MY_DB')),
    [],
  );

  const result = containerEnv(
    {
      name: 'app',
      env: [
        { name: 'API', value: 'https://$(KUBERNETES_SERVICE_HOST)' },
        { name: 'KUBERNETES_PORT', value: 'mine' },
      ],
    },
    objects,
    context,
    linked,
  );
  assert.ok('env' in result);
  assert.equal(result.env['API'], 'https://10.96.0.1');
  assert.equal(result.env['KUBERNETES_PORT'], 'mine', 'the container’s own variable wins over a Service link');
  assert.equal(result.env['MY_DB_SERVICE_HOST'], '10.96.3.4');
});

test('the references of a container are listed so they can be fetched before resolving', () => {
  assert.deepEqual(
    envReferences({
      name: 'a',
      envFrom: [{ configMapRef: { name: 'c1' } }, { secretRef: { name: 's1' } }],
      env: [
        { name: 'X', valueFrom: { secretKeyRef: { name: 's2', key: 'k' } } },
        { name: 'Y', valueFrom: { configMapKeyRef: { name: 'c1', key: 'k' } } },
      ],
    }),
    { configMaps: ['c1'], secrets: ['s1', 's2'] },
  );
});
