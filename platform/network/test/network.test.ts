// The three network components as the node will host them (main.ts, one process, one shared catalog),
// running in a network namespace that stands in for the cluster's sandbox, as a ServiceAccount bound to
// nothing but the network ClusterRole, against a real API server. Real clients: TCP and HTTP from this
// process through the namespace's connector, glibc's resolver (getent) and Go's (kubectl) reading a
// pod's resolv.conf, Knative-shaped Ingresses and the status Knative waits for.
import assert from 'node:assert/strict';
import type http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { objectsYaml } from '../../manifests/index.js';
import type { ManagedProcess } from '../../tools/process.js';
import { waitFor } from '../../tools/wait.js';
import type { KIngress } from '../ingress-routes.js';
import { ingressDomainInternal, ingressServiceObjects } from '../ingress-service.js';
import { networkMain, requestInside, startTestbed, type Testbed } from './testbed.js';

const echo = ['10.244.1.1:8080', '10.244.1.2:8080', '10.244.1.3:8080'];
const ingressInternal = '10.244.0.1';
const ingressPublicPort = 8081;
const domainInternal = ingressDomainInternal();

let bed: Testbed;
let network: ManagedProcess;
const networkLog: string[] = [];

before(async () => {
  bed = await startTestbed({
    echo,
    knativeIngressCrd: true,
    // What the node writes for a pod in namespace promsnap (dnsPolicy ClusterFirst).
    resolvConf: 'nameserver 10.96.0.10\nsearch promsnap.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n',
  });
  let ready = false;
  network = await bed.startInside({
    name: 'network',
    command: process.execPath,
    args: [
      '--import',
      'tsx',
      networkMain,
      `--kubeconfig=${bed.networkKubeconfig}`,
      '--services',
      '--node-address=10.244.0.1',
      '--dns=10.96.0.10:53',
      `--ingress=${ingressInternal}:80`,
      `--ingress-public=${ingressInternal}:${ingressPublicPort}`,
      `--ingress-domain=${domainInternal}`,
      // Debug shows each endpoint that refused a connection, which the failover test looks for.
      '--log-level=debug',
    ],
    onLine: (line) => {
      networkLog.push(line);
      ready ||= line.includes('"network ready"');
    },
    readyCheck: { what: 'the network components to be ready', check: () => ready },
    readyTimeoutMs: 30_000,
  });
  await apply(`apiVersion: v1
kind: Namespace
metadata: {name: promsnap}
---
apiVersion: v1
kind: Namespace
metadata: {name: knative-serving}
`);
});

after(async () => {
  await bed?.stop();
});

function apply(yaml: string) {
  return bed.api.kubectlWith({ input: yaml }, 'apply', '-f', '-');
}

async function clusterIp(namespace: string, name: string): Promise<string> {
  return (await bed.api.kubectl('get', 'service', '-n', namespace, name, '-o', 'jsonpath={.spec.clusterIP}')).stdout.trim();
}

interface Echo {
  backend: string;
  connection: number;
  url: string;
  headers: Record<string, string>;
}

/** One request on a connection of its own. */
async function fresh(url: string, headers: http.OutgoingHttpHeaders = {}): Promise<{ status: number; body: string; echo?: Echo }> {
  const agent = bed.agent({ keepAlive: false });
  try {
    const res = await requestInside(agent, url, { headers });
    return { status: res.status, body: res.body, ...(res.status === 200 && res.headers['x-backend'] ? { echo: JSON.parse(res.body) as Echo } : {}) };
  } finally {
    agent.destroy();
  }
}

async function refused(host: string, port: number): Promise<boolean> {
  try {
    (await bed.connect(host, port)).destroy();
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ECONNREFUSED';
  }
}

function slice(namespace: string, service: string, ips: string[], options: { port?: number; name?: string; unready?: string[] } = {}): string {
  const endpoints = [...ips.map((ip) => `{addresses: [${ip}]}`), ...(options.unready ?? []).map((ip) => `{addresses: [${ip}], conditions: {ready: false}}`)];
  return `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ${options.name ?? `${service}-1`}, namespace: ${namespace}, labels: {kubernetes.io/service-name: ${service}}}
addressType: IPv4
endpoints: [${endpoints.join(', ')}]
ports: [{name: http, port: ${options.port ?? 8080}}]
`;
}

describe('the Service proxy', () => {
  let web: string;

  test('connections to a ClusterIP go round-robin over the ready endpoints, at the target port the slice names', async () => {
    await apply(`apiVersion: v1
kind: Service
metadata: {name: web, namespace: promsnap}
spec: {ports: [{name: http, port: 80, targetPort: web}]}
---
${slice('promsnap', 'web', ['10.244.1.1', '10.244.1.2'], { unready: ['10.244.1.3'] })}`);
    web = await clusterIp('promsnap', 'web');
    await waitFor(async () => !(await refused(web, 80)), { what: `${web}:80 to accept`, timeoutMs: 10_000, intervalMs: 100 });
    const backends = [];
    for (let i = 0; i < 6; i++) backends.push((await fresh(`http://${web}/round-robin`)).echo?.backend);
    assert.deepEqual(backends.slice().sort(), [
      '10.244.1.1:8080',
      '10.244.1.1:8080',
      '10.244.1.1:8080',
      '10.244.1.2:8080',
      '10.244.1.2:8080',
      '10.244.1.2:8080',
    ]);
    assert.notEqual(backends[0], backends[1], 'in turn');
  });

  test('an endpoint that refuses connections is skipped: every connection still reaches a live one', async () => {
    // 10.244.1.9 is a local address with nothing listening: connecting to it is refused at once.
    await apply(slice('promsnap', 'web', ['10.244.1.9', '10.244.1.1', '10.244.1.2']));
    const refusals = () => networkLog.filter((line) => line.includes('trying the next') && line.includes('10.244.1.9:8080')).length;
    let requests = 0;
    await waitFor(
      async () => {
        const res = await fresh(`http://${web}/failover`);
        requests++;
        assert.equal(res.status, 200);
        assert.notEqual(res.echo?.backend, '10.244.1.9:8080');
        return refusals() >= 3;
      },
      { what: 'three connections to have been refused by 10.244.1.9 and passed on', timeoutMs: 10_000, intervalMs: 0 },
    );
    assert.ok(requests >= 3);
  });

  test('a Service without endpoints has no listener: connection refused, as kube-proxy rejects', async () => {
    await apply(`apiVersion: v1
kind: Service
metadata: {name: empty, namespace: promsnap}
spec: {ports: [{name: http, port: 80}]}
`);
    const empty = await clusterIp('promsnap', 'empty');
    assert.equal(await refused(empty, 80), true);
  });

  test('an established connection outlives the removal of its endpoint and the deletion of its Service', async () => {
    const kept = bed.agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = JSON.parse((await requestInside(kept, `http://${web}/kept/1`)).body) as Echo;
      const other = first.backend === '10.244.1.1:8080' ? '10.244.1.2' : '10.244.1.1';
      await apply(slice('promsnap', 'web', [other]));
      await waitFor(
        async () => {
          for (let i = 0; i < 3; i++) if ((await fresh(`http://${web}/`)).echo?.backend === first.backend) return false;
          return true;
        },
        { what: `new connections to stop reaching ${first.backend}`, timeoutMs: 10_000, intervalMs: 100 },
      );
      const second = JSON.parse((await requestInside(kept, `http://${web}/kept/2`)).body) as Echo;
      assert.deepEqual([second.backend, second.connection], [first.backend, first.connection], 'same endpoint, same connection');

      await bed.api.kubectl('delete', 'service', '-n', 'promsnap', 'web');
      await waitFor(() => refused(web, 80), { what: 'the deleted Service to stop accepting', timeoutMs: 10_000, intervalMs: 100 });
      const third = JSON.parse((await requestInside(kept, `http://${web}/kept/3`)).body) as Echo;
      assert.deepEqual([third.backend, third.connection], [first.backend, first.connection]);
    } finally {
      kept.destroy();
    }
  });

  test('a NodePort Service listens on the node address too', async () => {
    await apply(`apiVersion: v1
kind: Service
metadata: {name: nodeport, namespace: promsnap}
spec: {type: NodePort, ports: [{name: http, port: 80, nodePort: 30080}]}
---
${slice('promsnap', 'nodeport', ['10.244.1.3'])}`);
    await waitFor(async () => !(await refused('10.244.0.1', 30080)), { what: 'the NodePort to accept', timeoutMs: 10_000, intervalMs: 100 });
    assert.equal((await fresh('http://10.244.0.1:30080/')).echo?.backend, '10.244.1.3:8080');
    assert.equal((await fresh(`http://${await clusterIp('promsnap', 'nodeport')}/`)).echo?.backend, '10.244.1.3:8080');
  });
});

describe('DNS through the resolvers programs use, from a pod in namespace promsnap (resolv.conf ndots:5)', () => {
  let api: string;

  before(async () => {
    await apply(`apiVersion: v1
kind: Service
metadata: {name: api, namespace: promsnap}
spec: {ports: [{name: http, port: 80}]}
---
${slice('promsnap', 'api', ['10.244.1.2'])}
---
apiVersion: v1
kind: Service
metadata: {name: workers, namespace: promsnap}
spec: {clusterIP: None, ports: [{name: http, port: 8080}]}
---
${slice('promsnap', 'workers', ['10.244.1.1', '10.244.1.3'], { unready: ['10.244.1.2'] })}`);
    api = await clusterIp('promsnap', 'api');
    await waitFor(async () => !(await refused(api, 80)), { what: `${api}:80 to accept`, timeoutMs: 10_000, intervalMs: 100 });
    // The headless Service's slice may arrive in a later watch event than the one that opened api's listener.
    await waitFor(async () => (await bed.inside('getent', ['ahostsv4', 'workers.promsnap.svc.cluster.local'], { allowFailure: true })).code === 0, {
      what: 'the headless Service to resolve',
      timeoutMs: 10_000,
      intervalMs: 100,
    });
  });

  test('glibc (getent) resolves the short name, the namespaced one and the full one; names outside the cluster do not exist', async () => {
    for (const name of ['api', 'api.promsnap', 'api.promsnap.svc', 'api.promsnap.svc.cluster.local']) {
      const { stdout } = await bed.inside('getent', ['hosts', name]);
      assert.equal(stdout.split(/\s+/)[0], api, name);
    }
    const headless = await bed.inside('getent', ['ahostsv4', 'workers.promsnap.svc.cluster.local']);
    assert.deepEqual(
      [
        ...new Set(
          headless.stdout
            .split('\n')
            .map((line) => line.split(/\s+/)[0])
            .filter(Boolean),
        ),
      ].sort(),
      ['10.244.1.1', '10.244.1.3'],
    );
    const outside = await bed.inside('getent', ['hosts', 'registry.npmjs.org'], { allowFailure: true });
    assert.equal(outside.code, 2, 'getent: key not found');
  });

  test("Go's resolver (kubectl, built without cgo) finds a Service by its short name and reaches it through the proxy", async () => {
    const { stdout } = await bed.inside('kubectl', ['get', '--raw', '/from-go', '--server=http://api']);
    const answer = JSON.parse(stdout) as Echo;
    assert.equal(answer.backend, '10.244.1.2:8080');
    assert.equal(answer.url, '/from-go');
    assert.equal(answer.headers['host'], 'api');
  });
});

describe('the KIngress', () => {
  const ingressPath = '/apis/networking.internal.knative.dev/v1alpha1/namespaces/promsnap/ingresses';
  const getIngress = (name: string) => bed.api.getJson<KIngress>(`${ingressPath}/${name}`);
  const condition = (ingress: KIngress, type: string) => ingress.status?.conditions?.find((c) => c.type === type);
  const internal = (path: string, host: string, headers: http.OutgoingHttpHeaders = {}) => fresh(`http://${ingressInternal}${path}`, { host, ...headers });
  const publicly = (path: string, host: string) => fresh(`http://${ingressInternal}:${ingressPublicPort}${path}`, { host });

  /** As Knative Serving 0.50 makes it for ksvc `name` (route/resources/ingress.go). */
  function knativeIngress(
    name: string,
    splits: Array<{ revision: string; percent: number }>,
    ingressClass = 'promsnap.ingress.networking.knative.dev',
  ): string {
    const paths = JSON.stringify([
      {
        splits: splits.map(({ revision, percent }) => ({
          serviceNamespace: 'promsnap',
          serviceName: revision,
          servicePort: 80,
          percent,
          appendHeaders: { 'Knative-Serving-Revision': revision, 'Knative-Serving-Namespace': 'promsnap' },
        })),
      },
    ]);
    return `apiVersion: networking.internal.knative.dev/v1alpha1
kind: Ingress
metadata:
  name: ${name}
  namespace: promsnap
  annotations: {networking.knative.dev/ingress.class: ${ingressClass}}
  labels: {serving.knative.dev/route: ${name}, serving.knative.dev/routeNamespace: promsnap}
spec:
  httpOption: Enabled
  rules:
  - hosts: [${name}.promsnap, ${name}.promsnap.svc, ${name}.promsnap.svc.cluster.local]
    visibility: ClusterLocal
    http: {paths: ${paths}}
  - hosts: [${name}.promsnap.example.com]
    visibility: ExternalIP
    http: {paths: ${paths}}
`;
  }

  /** A revision's public Service as Knative's SKS writes it: no selector, port 80 -> 8012, its own slices. */
  function revisionService(revision: string, ips: string[]): string {
    return `apiVersion: v1
kind: Service
metadata: {name: ${revision}, namespace: promsnap}
spec: {ports: [{name: http, port: 80, targetPort: 8012}]}
${ips.length > 0 ? `---\n${slice('promsnap', revision, ips)}` : ''}`;
  }

  before(async () => {
    await apply(revisionService('simulation-00001', ['10.244.1.1', '10.244.1.2']));
    await apply(knativeIngress('simulation', [{ revision: 'simulation-00001', percent: 100 }]));
    await apply(knativeIngress('other-class', [{ revision: 'simulation-00001', percent: 100 }], 'kourier.ingress.networking.knative.dev'));
  });

  test('an Ingress of our class gets the status Knative waits for; one of another class is left alone', async () => {
    const ingress = await waitFor(
      async () => {
        const found = await getIngress('simulation');
        return found.status?.observedGeneration === 1 && condition(found, 'Ready')?.status === 'True' ? found : undefined;
      },
      { what: 'Ingress simulation to be Ready', timeoutMs: 15_000, intervalMs: 100 },
    );
    assert.deepEqual(
      ingress.status?.conditions?.map((c) => [c.type, c.status]),
      [
        ['LoadBalancerReady', 'True'],
        ['NetworkConfigured', 'True'],
        ['Ready', 'True'],
      ],
    );
    assert.deepEqual(ingress.status?.publicLoadBalancer, { ingress: [{ domainInternal }] });
    assert.deepEqual(ingress.status?.privateLoadBalancer, { ingress: [{ domainInternal }] });
    assert.equal((await getIngress('other-class')).status, undefined);
  });

  test('requests are routed by Host, with or without a port, to the revision, with the headers Knative routes by', async () => {
    const res = await internal('/simulate-requests?x=1', 'simulation.promsnap.svc.cluster.local', { 'Knative-Serving-Revision': 'spoofed' });
    assert.equal(res.status, 200);
    assert.equal(res.echo?.url, '/simulate-requests?x=1');
    assert.equal(res.echo?.headers['knative-serving-revision'], 'simulation-00001', 'set, not appended: a client cannot choose');
    assert.equal(res.echo?.headers['knative-serving-namespace'], 'promsnap');
    assert.equal(res.echo?.headers['host'], 'simulation.promsnap.svc.cluster.local');
    assert.match(res.echo?.headers['x-forwarded-for'] ?? '', /^\d+\.\d+\.\d+\.\d+$/, 'the client, as the ingress saw it');
    assert.equal((await internal('/', 'simulation.promsnap:80')).status, 200);
    assert.equal((await internal('/', 'simulation.promsnap.example.com:8080')).status, 200);
    const unknown = await internal('/', 'nothing.promsnap.example.com');
    assert.equal(unknown.status, 404);
  });

  test('visibility: the public listener serves ExternalIP hosts only', async () => {
    assert.equal((await publicly('/', 'simulation.promsnap.example.com')).status, 200);
    assert.equal((await publicly('/', 'simulation.promsnap.svc.cluster.local')).status, 404);
  });

  test('upstream connections are kept alive and reused across requests', async () => {
    const client = bed.agent({ keepAlive: true, maxSockets: 1 });
    try {
      const seen = new Set<string>();
      for (let i = 0; i < 40; i++) {
        const res = await requestInside(client, `http://${ingressInternal}/keep-alive`, { headers: { host: 'simulation.promsnap.example.com' } });
        const answer = JSON.parse(res.body) as Echo;
        seen.add(`${answer.backend}#${answer.connection}`);
      }
      // Sequential requests alternate between the two endpoints, each over one kept connection.
      assert.equal(seen.size, 2, [...seen].join(' '));
    } finally {
      client.destroy();
    }
  });

  test('a new generation with two splits sends traffic by percent', async () => {
    await apply(revisionService('simulation-00002', ['10.244.1.3']));
    await apply(
      knativeIngress('simulation', [
        { revision: 'simulation-00001', percent: 80 },
        { revision: 'simulation-00002', percent: 20 },
      ]),
    );
    await waitFor(async () => (await getIngress('simulation')).status?.observedGeneration === 2, {
      what: 'generation 2 observed',
      timeoutMs: 10_000,
      intervalMs: 100,
    });
    const client = bed.agent({ keepAlive: true, maxSockets: 4 });
    try {
      let toSecond = 0;
      const total = 400;
      for (let i = 0; i < total; i++) {
        const res = await requestInside(client, `http://${ingressInternal}/split`, { headers: { host: 'simulation.promsnap' } });
        const answer = JSON.parse(res.body) as Echo;
        if (answer.headers['knative-serving-revision'] === 'simulation-00002') {
          toSecond++;
          assert.equal(answer.backend, '10.244.1.3:8080');
        }
      }
      // 20 % of 400 is 80; a binomial spread of 8: 56 to 104 holds with overwhelming probability.
      assert.ok(toSecond >= 56 && toSecond <= 104, `${toSecond} of ${total} to the 20 % split`);
    } finally {
      client.destroy();
    }
  });

  test('an Ingress whose revision has no ready endpoint waits, saying which, and becomes Ready when one appears', async () => {
    await apply(revisionService('pending-00001', []));
    await apply(knativeIngress('pending', [{ revision: 'pending-00001', percent: 100 }]));
    const waiting = await waitFor(
      async () => {
        const found = await getIngress('pending');
        return condition(found, 'LoadBalancerReady')?.status === 'Unknown' ? found : undefined;
      },
      { what: 'Ingress pending to wait', timeoutMs: 10_000, intervalMs: 100 },
    );
    assert.equal(condition(waiting, 'NetworkConfigured')?.status, 'True');
    assert.match(condition(waiting, 'Ready')?.message ?? '', /promsnap\/pending-00001:80/);
    assert.equal((await internal('/', 'pending.promsnap')).status, 503);
    await apply(slice('promsnap', 'pending-00001', ['10.244.1.2']));
    await waitFor(async () => condition(await getIngress('pending'), 'Ready')?.status === 'True', {
      what: 'Ingress pending to be Ready',
      timeoutMs: 10_000,
      intervalMs: 100,
    });
    assert.equal((await internal('/', 'pending.promsnap')).echo?.backend, '10.244.1.2:8080');
  });

  test('an Ingress claiming a host another already serves is rejected with DomainConflict', async () => {
    const yaml = knativeIngress('simulation', [{ revision: 'simulation-00001', percent: 100 }]).replace('name: simulation\n', 'name: copycat\n');
    await apply(yaml);
    const rejected = await waitFor(
      async () => {
        const found = await getIngress('copycat');
        return condition(found, 'LoadBalancerReady')?.status === 'False' ? found : undefined;
      },
      { what: 'Ingress copycat to be rejected', timeoutMs: 10_000, intervalMs: 100 },
    );
    assert.equal(condition(rejected, 'LoadBalancerReady')?.reason, 'DomainConflict');
    assert.equal(condition(rejected, 'Ready')?.status, 'False');
    assert.equal(condition(await getIngress('simulation'), 'Ready')?.status, 'True', 'the older one keeps its hosts');
    await bed.api.kubectl('delete', 'ingresses.networking.internal.knative.dev', '-n', 'promsnap', 'copycat');
  });

  test("Knative's whole data path from a pod: a Go client, the route's ExternalName, DNS, the ingress's ClusterIP, the ingress, the revision", async () => {
    // What Knative and the node write: the ingress's Service (endpoint: the node's listener) and the
    // Route's placeholder pointing at the private load balancer's domainInternal from the status.
    const lb = (await getIngress('simulation')).status?.privateLoadBalancer?.ingress?.[0]?.domainInternal;
    assert.equal(lb, domainInternal);
    await apply(
      [
        objectsYaml(ingressServiceObjects({ address: ingressInternal, port: 80 })),
        `apiVersion: v1
kind: Service
metadata: {name: simulation, namespace: promsnap}
spec: {type: ExternalName, externalName: ${lb}, ports: [{name: http2, port: 80}]}`,
      ].join('\n---\n'),
    );
    const ingressIp = await clusterIp('knative-serving', 'promsnap-ingress');
    await waitFor(async () => !(await refused(ingressIp, 80)), { what: 'the ingress ClusterIP to accept', timeoutMs: 10_000, intervalMs: 100 });
    const { stdout } = await bed.inside('kubectl', ['get', '--raw', '/simulate-requests', '--server=http://simulation.promsnap.svc.cluster.local']);
    const answer = JSON.parse(stdout) as Echo;
    assert.equal(answer.url, '/simulate-requests');
    assert.match(answer.headers['knative-serving-revision'] ?? '', /^simulation-0000[12]$/);
  });
});

describe('stopping', () => {
  test('SIGTERM closes every listener and the process exits 0', async () => {
    assert.equal(await network.stop('SIGTERM', 10_000), 0);
    assert.equal(await refused(ingressInternal, 80), true);
    assert.equal(await refused('10.244.0.1', 30080), true);
    assert.ok(!networkLog.some((line) => /"level":"(warn|error)"/.test(line) && /forbidden|403/i.test(line)), 'the network ClusterRole was enough');
  });
});
