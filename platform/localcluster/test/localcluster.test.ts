// The local cluster with Knative Serving and Eventing as pods (one cluster for most of the file): both
// releases Available from their own YAML, the platform's Broker, Trigger and PingSource applied as a user
// applies them and admitted by Eventing's own webhook, an event carried by Knative's own processes from
// the PingSource through the Broker and Trigger (with the Trigger's retries and dead-letter sink) to the
// snapshot function; a Service reached by its DNS name through a forward; then stop() leaving nothing,
// and a second cluster on the same data dir finding a volume's data again.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { buildImageFiles, imageLayout, writeToStore, type ImageLayout } from '../../images/index.js';
import { groupOf, objectsYaml, renderPlatform, type KubeObject } from '../../manifests/index.js';
import { httpGet } from '../../tools/http.js';
import { hostLinks, sandboxLeftovers, sandboxSupport } from '../../tools/sandbox.js';
import { waitFor } from '../../tools/wait.js';
import { startLocalCluster, type LocalCluster } from '../index.js';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const started = Date.now();
const timings: Record<string, number | string> = {};
const dataDir = path.join(os.tmpdir(), `promsnap-lc-data-${randomBytes(3).toString('hex')}`);
let cluster: LocalCluster;
let snapshotImage: string;
let snapshotLayout: ImageLayout;
const nodeLines: string[] = [];
const lastNodeLines = () => nodeLines.slice(-12).join('\n');
const onLine = (source: string, line: string) => {
  if (source !== 'node') return;
  nodeLines.push(line);
  if (nodeLines.length > 400) nodeLines.splice(0, 200);
};

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}
interface LiveObject {
  metadata: { name: string; annotations?: Record<string, string>; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  status?: { conditions?: Condition[]; phase?: string; containerStatuses?: Array<{ name: string; ready: boolean; image: string }> };
}
const isReady = (object: LiveObject) => object.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

before(async () => {
  const support = await sandboxSupport();
  if (!support.available) throw new Error(`the local cluster needs its sandbox: ${support.reason}\n  ${support.fix}`);
  const [snapshot, started_] = await Promise.all([
    buildImageFiles({ dockerfile: path.join(repo, 'functions/snapshot/Dockerfile'), context: repo }),
    startLocalCluster({
      dataDir,
      knative: ['serving', 'eventing'],
      forwards: { api: { host: 'kubernetes.default.svc.cluster.local', port: 443 } },
      shutdownGraceSeconds: 3,
      onLine,
    }),
  ]);
  cluster = started_;
  timings['start with Serving and Eventing'] = Date.now() - started;
  for (const [step, ms] of Object.entries(cluster.timings)) timings[`cluster: ${step}`] = ms;
  snapshotImage = `dev.local/snapshot:${snapshot.key.slice(0, 12)}`;
  snapshotLayout = await imageLayout(snapshot, snapshotImage);
  await writeToStore(cluster.imageStore, snapshotLayout);
});

after(async () => {
  await cluster?.stop();
  await rm(dataDir, { recursive: true, force: true });
  process.stdout.write(`# local cluster test timings (ms): ${JSON.stringify({ ...timings, total: Date.now() - started })}\n`);
});

test("Knative Serving and Eventing run as pods from their own release YAML, each container from Knative's own ko:// image", async (t) => {
  for (const namespace of ['knative-serving', 'knative-eventing']) {
    const pods = (await cluster.getJson<{ items: LiveObject[] }>(`/api/v1/namespaces/${namespace}/pods`)).items;
    assert.ok(pods.length >= 4, `${namespace}: ${pods.length} pods`);
    for (const pod of pods) {
      assert.equal(pod.status?.phase, 'Running', `${pod.metadata.name}\n${lastNodeLines()}`);
      for (const container of pod.status?.containerStatuses ?? []) {
        assert.ok(container.ready, `${pod.metadata.name}/${container.name} ready`);
        assert.match(container.image, /^ko:\/\/knative\.dev\/(serving|eventing)\/cmd\//);
      }
    }
    t.diagnostic(`${namespace}: ${pods.map((p) => p.metadata.name.replace(/-[a-z0-9]+(-[a-z0-9]+)?$/, '')).join(', ')}`);
  }
  const memory = cluster.memory();
  timings['RSS at rest with Serving and Eventing (MB)'] = Math.round(memory.rssBytes / 1e6);
  t.diagnostic(
    `RSS at rest: ${Math.round(memory.rssBytes / 1e6)} MB (${memory.byCommand
      .slice(0, 8)
      .map((c) => `${c.command} ${Math.round(c.rssBytes / 1e6)}`)
      .join(', ')}, ...)`,
  );
});

test('a forward named at start reaches a Service by its DNS name (the API server through kubernetes.default.svc, verified by the CA)', async () => {
  const forward = cluster.forwards['api'];
  assert.ok(forward);
  const answer = await httpGet(`https://127.0.0.1:${forward.hostPort}/version`, {
    ca: cluster.controlPlane.caPem,
    servername: 'kubernetes.default.svc',
    token: cluster.controlPlane.token,
  });
  assert.equal(answer.status, 200, answer.body);
  assert.match((JSON.parse(answer.body) as { gitVersion: string }).gitVersion, /^v1\.37\./);
});

/** The snapshot function and the platform's eventing objects, as rendered; the PingSource every 5 s (as npm start's --ping-every sets it). */
function eventingCopy(objects: readonly KubeObject[]): KubeObject[] {
  const wanted = new Set(['promsnap', 'snapshot', 'broker', 'snapshot-trigger', 'snapshot-schedule']);
  return objects
    .filter((o) => wanted.has(o.metadata.labels?.['app.kubernetes.io/name'] ?? '') && o.kind !== 'NetworkPolicy')
    .map((o) => {
      const copy = structuredClone(o) as KubeObject & { spec: Record<string, unknown> };
      if (o.kind === 'Service' && groupOf(o) === 'serving.knative.dev') {
        const spec = copy.spec as { template: { spec: { containers: Array<{ image: string }> } } };
        for (const container of spec.template.spec.containers) container.image = snapshotImage;
      }
      if (o.kind === 'PingSource') copy.spec['schedule'] = '*/5 * * * * *';
      return copy;
    });
}

test("the platform's Broker, Trigger and PingSource go through Eventing's own webhook: defaulted by it, and a bad one refused", async () => {
  const applied = eventingCopy((await renderPlatform()).objects);
  assert.deepEqual(applied.map((o) => o.kind).sort(), ['Broker', 'Namespace', 'PingSource', 'Secret', 'Service', 'ServiceAccount', 'Trigger']);
  const result = await cluster.kubectl.with({ input: objectsYaml(applied) }, 'apply', '-f', '-');
  assert.match(result.stdout, /pingsource\.sources\.knative\.dev\/snapshot-schedule created/);
  const live = (resource: string, name: string) => cluster.getJson<LiveObject>(`/apis/${resource}/namespaces/promsnap/${name}`);
  // What only Eventing's defaulting webhook writes: who made each object.
  for (const [resource, name] of [
    ['eventing.knative.dev/v1', 'brokers/default'],
    ['eventing.knative.dev/v1', 'triggers/snapshot'],
    ['sources.knative.dev/v1', 'pingsources/snapshot-schedule'],
  ] as const) {
    const annotations = (await live(resource, name)).metadata.annotations ?? {};
    assert.ok(
      Object.entries(annotations).some(([key, value]) => key.endsWith('.knative.dev/creator') && value === 'admin'),
      `${name}: ${JSON.stringify(annotations)}`,
    );
  }
  const bad = structuredClone(applied.find((o) => o.kind === 'PingSource')!) as KubeObject & { spec: Record<string, unknown> };
  bad.spec['schedule'] = 'every five minutes';
  const refused = await cluster.kubectl.with({ input: objectsYaml([bad]), allowFailure: true }, 'apply', '--dry-run=server', '-f', '-');
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /admission webhook "validation\.webhook\.eventing\.knative\.dev" denied the request/);
  assert.match(refused.stderr, /schedule/);
});

/** The snapshot pod's Prometheus metrics, read through the API server's pod proxy. */
async function snapshotMetrics(): Promise<string> {
  const pods = await cluster.getJson<{ items: LiveObject[] }>('/api/v1/namespaces/promsnap/pods?labelSelector=serving.knative.dev%2Fservice%3Dsnapshot');
  const pod = pods.items.find(isReady);
  if (!pod) return '';
  const answer = await httpGet(`${cluster.apiUrl}/api/v1/namespaces/promsnap/pods/${pod.metadata.name}:8080/proxy/metrics`, {
    ca: cluster.controlPlane.caPem,
    servername: 'kubernetes.default.svc',
    token: cluster.controlPlane.token,
  });
  return answer.status === 200 ? answer.body : '';
}

/** The sum of a counter's series whose labels contain `labels` (e.g. '{outcome="failed"}' or '' for all). */
function counter(metrics: string, name: string, labels = ''): number {
  const wanted = labels.replace(/^\{|\}$/g, '');
  return metrics
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .filter((line) => line.slice(name.length).split(' ')[0]!.includes(wanted))
    .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
}

test("Knative's own processes carry the ping: PingSource -> Broker -> Trigger -> snapshot, retried, then dead-lettered (no MinIO here to store it)", async (t) => {
  const ready = (resource: string, name: string) =>
    waitFor(
      async () => {
        const object = await cluster.getJson<LiveObject>(`/apis/${resource}/namespaces/promsnap/${name}`);
        return isReady(object) ? object : undefined;
      },
      { what: `${name} Ready\n${lastNodeLines()}`, timeoutMs: 90_000, intervalMs: 250 },
    );
  const readyFrom = Date.now();
  await ready('serving.knative.dev/v1', 'services/snapshot');
  await ready('eventing.knative.dev/v1', 'brokers/default');
  await ready('eventing.knative.dev/v1', 'triggers/snapshot');
  await ready('sources.knative.dev/v1', 'pingsources/snapshot-schedule');
  timings['snapshot, Broker, Trigger, PingSource Ready after'] = Date.now() - readyFrom;
  // The pings fail (no MinIO in this cluster: a retryable 503); the Trigger's delivery retries each, then
  // sends it to the dead-letter sink, the function's /dead-letters, which cannot store it either (counted).
  const delivered = Date.now();
  const metrics = await waitFor(
    async () => {
      const text = await snapshotMetrics();
      return counter(text, 'snapshot_dead_letter_failures_total', '{reason="storage_unavailable"}') >= 1 ? text : undefined;
    },
    { what: `a ping dead-lettered to the snapshot function\n${lastNodeLines()}`, timeoutMs: 90_000, intervalMs: 1_000 },
  );
  timings['first dead letter after'] = Date.now() - delivered;
  const failed = counter(metrics, 'snapshot_requests_total', '{outcome="failed"}');
  assert.ok(failed >= 5, `each ping tried 5 times (1 + retry 4) before its dead letter: ${failed} failed deliveries`);
  t.diagnostic(`failed deliveries ${failed}, dead letters received (not storable) ${counter(metrics, 'snapshot_dead_letter_failures_total')}`);
});

test('stop() leaves nothing behind, and a second cluster on the same data dir finds a volume’s data', async (t) => {
  const token = randomBytes(8).toString('hex');
  const job = (name: string, script: string): object => ({
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, namespace: 'kept' },
    spec: {
      backoffLimit: 0,
      template: {
        spec: {
          restartPolicy: 'Never',
          containers: [
            {
              name,
              image: snapshotImage,
              command: ['node', '-e', script],
              env: [{ name: 'TOKEN', value: token }],
              volumeMounts: [{ name: 'data', mountPath: '/data' }],
            },
          ],
          volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'kept' } }],
        },
      },
    },
  });
  const namespaceAndClaim = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'kept' } },
    {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: 'kept', namespace: 'kept' },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Mi' } } },
    },
  ];
  const complete = (c: LocalCluster, name: string) =>
    waitFor(
      async () => {
        const found = await c.getJson<{ status?: { conditions?: Condition[] } }>(`/apis/batch/v1/namespaces/kept/jobs/${name}`);
        return found.status?.conditions?.find((cond) => (cond.type === 'Complete' || cond.type === 'Failed') && cond.status === 'True')?.type;
      },
      { what: `Job ${name} to finish\n${lastNodeLines()}`, timeoutMs: 90_000, intervalMs: 250 },
    );
  await cluster.kubectl.with(
    { input: objectsYaml([...namespaceAndClaim, job('write', "require('fs').writeFileSync('/data/kept.txt', process.env.TOKEN)")] as KubeObject[]) },
    'apply',
    '-f',
    '-',
  );
  assert.equal(await complete(cluster, 'write'), 'Complete');

  const linksBefore = (await hostLinks()).map((l) => l.name).sort();
  const traces = cluster.sandbox.traces;
  const stopping = Date.now();
  await cluster.stop();
  timings['stop'] = Date.now() - stopping;
  assert.deepEqual(sandboxLeftovers(traces), { processes: [], mounts: [], dir: false });
  assert.deepEqual((await hostLinks()).map((l) => l.name).sort(), linksBefore);

  const restart = Date.now();
  cluster = await startLocalCluster({ dataDir, knative: ['serving'], shutdownGraceSeconds: 3, onLine });
  timings['second start, Serving only'] = Date.now() - restart;
  await writeToStore(cluster.imageStore, snapshotLayout);
  await cluster.kubectl.with(
    {
      input: objectsYaml([
        ...namespaceAndClaim,
        job('read', "process.exit(require('fs').readFileSync('/data/kept.txt', 'utf8') === process.env.TOKEN ? 0 : 3)"),
      ] as KubeObject[]),
    },
    'apply',
    '-f',
    '-',
  );
  assert.equal(await complete(cluster, 'read'), 'Complete', 'the second cluster’s claim holds what the first one wrote');
  t.diagnostic(`data kept under ${dataDir}/volumes/kept/kept`);
});
