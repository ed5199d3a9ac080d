// #16's proof, on the rendered platform and Knative Serving's own processes: one local cluster for the
// file (platform/localcluster: a real API server and controller manager, Knative Serving 0.50.0 as pods
// from its release YAML, our node running pods as processes). The platform's Knative Services and
// Prometheus are applied with kubectl as a user would (images named dev.local/<artifact>:<tag>, built
// from the Dockerfiles by platform/images), through Knative's real webhook; then Knative's controllers
// make the Revision and its Deployment, the real KPA scales the simulation under hey through our ingress,
// and the rendered Prometheus, running as its own ServiceAccount, discovers and scrapes every pod.
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { buildImageFiles, imageLayout, writeToStore } from '../images/index.js';
import { groupOf, objectsYaml, renderPlatform, type KubeObject } from '../manifests/index.js';
import { startLocalCluster, type LocalCluster } from '../localcluster/index.js';
import { runHey } from '../tools/hey.js';
import { httpGet } from '../tools/http.js';
import { processesIn, sandboxSupport } from '../tools/sandbox.js';
import { waitFor } from '../tools/wait.js';
import { ingressPorts } from '../node/network-host.js';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const started = Date.now();
const timings: Record<string, number> = {};
const mark = (step: string) => (timings[step] = Date.now() - started);

let cluster: LocalCluster;
let prometheusUrl: string;
const dataDir = path.join(os.tmpdir(), `promsnap-serving-data-${randomBytes(3).toString('hex')}`);
const nodeLines: string[] = [];
/** The simulation's scale bounds, from the rendered Service (what the test must see the KPA respect). */
let minScale = 0;
/** The simulation image's command line (its container's process). */
let simulationCommand: string[] = [];

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}
interface KnativeObject {
  metadata: { name: string; annotations?: Record<string, string>; generation?: number };
  spec?: Record<string, unknown>;
  status?: { conditions?: Condition[]; url?: string; observedGeneration?: number; desiredScale?: number; actualScale?: number };
}
interface Pod {
  metadata: { name: string; deletionTimestamp?: string; ownerReferences?: Array<{ kind: string; name: string }>; labels?: Record<string, string> };
  status?: {
    phase?: string;
    podIP?: string;
    conditions?: Condition[];
    containerStatuses?: Array<{ name: string; ready: boolean; restartCount: number; lastState?: { terminated?: { exitCode?: number; reason?: string } } }>;
  };
}

const isReady = (object: { status?: { conditions?: Condition[] } }) =>
  object.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
const knative = <T = KnativeObject>(resource: string, name: string, group = 'serving.knative.dev/v1') =>
  cluster.getJson<T>(`/apis/${group}/namespaces/promsnap/${resource}/${name}`);

async function simulationPods(): Promise<Pod[]> {
  const list = await cluster.getJson<{ items: Pod[] }>('/api/v1/namespaces/promsnap/pods?labelSelector=serving.knative.dev%2Fservice%3Dsimulation');
  return list.items;
}

/** GET through the ingress's host forward with a Host header, as `curl -H Host:` or `hey -host` send it (fetch cannot set Host). */
function viaIngress(urlPath: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.get(`${cluster.ingressUrl}${urlPath}`, { headers: { host }, timeout: 10_000 }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on('timeout', () => request.destroy(new Error(`GET ${urlPath} (Host ${host}) timed out`)));
    request.on('error', reject);
  });
}

/** What the node said last, for a failure's message. */
const lastNodeLines = () => nodeLines.slice(-12).join('\n');

/**
 * The applied copy of the rendered platform: the namespaces, Prometheus (its RBAC, ConfigMap, Deployment,
 * Service) and both Knative Services with what they need (ServiceAccounts, the snapshot function's S3
 * Secret), their images named as the local node runs them. The simulation's stable window is shortened
 * to 10 s so the scale-down is seen within the test; nothing else is changed.
 */
function appliedCopy(objects: readonly KubeObject[], images: Record<string, string>): KubeObject[] {
  const wanted = new Set(['monitoring', 'promsnap', 'prometheus', 'simulation', 'snapshot']);
  const eventing = new Set(['eventing.knative.dev', 'sources.knative.dev', 'messaging.knative.dev']);
  return objects
    .filter((o) => wanted.has(o.metadata.labels?.['app.kubernetes.io/name'] ?? '') && !eventing.has(groupOf(o)))
    .map((o) => {
      if (o.kind !== 'Service' || groupOf(o) !== 'serving.knative.dev') return o;
      const copy = structuredClone(o) as KubeObject & {
        spec: { template: { metadata: { annotations: Record<string, string> }; spec: { containers: Array<{ image: string }> } } };
      };
      for (const container of copy.spec.template.spec.containers) container.image = images[container.image] ?? container.image;
      if (o.metadata.name === 'simulation') copy.spec.template.metadata.annotations['autoscaling.knative.dev/window'] = '10s';
      return copy;
    });
}

before(async () => {
  const support = await sandboxSupport();
  if (!support.available) throw new Error(`the serving test needs the local cluster's sandbox: ${support.reason}\n  ${support.fix}`);
  const [rendered, simulation, snapshot, started_] = await Promise.all([
    renderPlatform(),
    buildImageFiles({ dockerfile: path.join(repo, 'functions/simulation/Dockerfile'), context: repo }),
    buildImageFiles({ dockerfile: path.join(repo, 'functions/snapshot/Dockerfile'), context: repo }),
    startLocalCluster({
      dataDir,
      knative: ['serving'],
      shutdownGraceSeconds: 3,
      onLine: (source, line) => {
        if (source !== 'node') return;
        nodeLines.push(line);
        if (nodeLines.length > 400) nodeLines.splice(0, 200);
      },
    }),
  ]);
  cluster = started_;
  mark('cluster with Serving ready');
  Object.assign(timings, Object.fromEntries(Object.entries(cluster.timings).map(([k, v]) => [`cluster: ${k}`, v])));
  // Tagged by content, as a registry digest would name them.
  const images = {
    simulation: `dev.local/simulation:${simulation.key.slice(0, 12)}`,
    snapshot: `dev.local/snapshot:${snapshot.key.slice(0, 12)}`,
  };
  const simulationLayout = await imageLayout(simulation, images.simulation);
  simulationCommand = [...simulationLayout.entrypoint, ...simulationLayout.cmd];
  await writeToStore(cluster.imageStore, simulationLayout);
  await writeToStore(cluster.imageStore, await imageLayout(snapshot, images.snapshot));
  const applied = appliedCopy(rendered.objects, images);
  const simulationService = applied.find((o) => o.kind === 'Service' && o.metadata.name === 'simulation') as KubeObject & {
    spec: { template: { metadata: { annotations: Record<string, string> } } };
  };
  minScale = Number(simulationService.spec.template.metadata.annotations['autoscaling.knative.dev/min-scale'] ?? 0);
  const result = await cluster.kubectl.with({ input: objectsYaml(applied) }, 'apply', '-f', '-');
  assert.match(result.stdout, /service\.serving\.knative\.dev\/simulation created/, result.stdout);
  mark('platform applied');
  const prometheus = await cluster.forward({ host: 'prometheus.monitoring.svc.cluster.local', port: 9090 });
  prometheusUrl = prometheus.url;
});

after(async () => {
  const memory = cluster?.memory();
  await cluster?.stop();
  await rm(dataDir, { recursive: true, force: true });
  if (memory) timings['cluster RSS at the end (MB)'] = Math.round(memory.rssBytes / 1e6);
  process.stdout.write(`# serving test timings (ms): ${JSON.stringify({ ...timings, total: Date.now() - started })}\n`);
});

test("the rendered Knative Services went through Serving's own webhook: defaulted by it, and a bad one refused", async () => {
  const service = await knative('services', 'simulation');
  // Set by the webhook's defaulting alone: who created it, and the traffic block the manifests leave out.
  assert.equal(service.metadata.annotations?.['serving.knative.dev/creator'], 'admin');
  assert.deepEqual(service.spec?.['traffic'], [{ latestRevision: true, percent: 100 }]);
  const template = (service.spec?.['template'] as { spec: { containerConcurrency?: number } }).spec;
  assert.equal(template.containerConcurrency, 0);

  const rendered = await renderPlatform();
  const bad = structuredClone(rendered.objects.find((o) => o.kind === 'Service' && o.metadata.name === 'simulation')!) as KubeObject & {
    spec: { template: { spec: { containerConcurrency?: number } } };
  };
  bad.spec.template.spec.containerConcurrency = 5000;
  const refused = await cluster.kubectl.with({ input: objectsYaml([bad]), allowFailure: true }, 'apply', '--dry-run=server', '-f', '-');
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /admission webhook "validation\.webhook\.serving\.knative\.dev" denied the request/);
  assert.match(refused.stderr, /containerConcurrency/);
});

test('Knative makes the Configuration, Revision and Deployment; the pods run and the Revision is Ready', async (t) => {
  const revision = await waitFor(
    async () => {
      const r = await knative('revisions', 'simulation-00001').catch(() => undefined);
      return r && isReady(r) ? r : undefined;
    },
    { what: `Revision simulation-00001 Ready\n${lastNodeLines()}`, timeoutMs: 90_000, intervalMs: 250 },
  );
  mark('simulation Revision Ready');
  assert.ok(revision);
  const configuration = await knative('configurations', 'simulation');
  assert.ok(isReady(configuration), JSON.stringify(configuration.status));
  const deployment = await cluster.getJson<{
    spec: { template: { spec: { containers: Array<{ name: string; image: string }> } } };
    status: { availableReplicas?: number };
  }>('/apis/apps/v1/namespaces/promsnap/deployments/simulation-00001-deployment');
  assert.deepEqual(
    deployment.spec.template.spec.containers.map((c) => c.name),
    ['simulation', 'queue-proxy'],
  );
  assert.ok((deployment.status.availableReplicas ?? 0) >= minScale);
  const pods = await simulationPods();
  assert.ok(pods.length >= 1);
  for (const pod of pods) {
    assert.equal(pod.status?.phase, 'Running');
    assert.deepEqual(pod.status?.containerStatuses?.map((c) => [c.name, c.ready]).sort(), [
      ['queue-proxy', true],
      ['simulation', true],
    ]);
  }
  const service = await waitFor(
    async () => {
      const s = await knative('services', 'simulation');
      return isReady(s) ? s : undefined;
    },
    { what: 'Knative Service simulation Ready', timeoutMs: 30_000, intervalMs: 250 },
  );
  assert.equal(service.status?.url, 'http://simulation.promsnap.example.com');
  // Through Knative's data path from this machine: our forward, our KIngress, the activator or the pod.
  const answer = await viaIngress('/', 'simulation.promsnap.example.com');
  assert.equal(answer.status, 200, answer.body);
  t.diagnostic(`Revision Ready ${timings['simulation Revision Ready']! - timings['platform applied']!} ms after the apply`);
});

test('the snapshot Route is cluster-local on the real Serving: a cluster.local URL, served in the cluster, not through the public listener', async () => {
  const service = await waitFor(
    async () => {
      const s = await knative('services', 'snapshot');
      return isReady(s) ? s : undefined;
    },
    { what: `Knative Service snapshot Ready\n${lastNodeLines()}`, timeoutMs: 90_000, intervalMs: 250 },
  );
  assert.equal(service.status?.url, 'http://snapshot.promsnap.svc.cluster.local');
  const ingress = await knative<{ spec: { rules: Array<{ hosts: string[]; visibility: string }> } }>(
    'ingresses',
    'snapshot',
    'networking.internal.knative.dev/v1alpha1',
  );
  assert.deepEqual([...new Set(ingress.spec.rules.map((r) => r.visibility))], ['ClusterLocal']);

  // In the cluster: the ingress's in-cluster listener, as a pod reaches it through the Route's ExternalName.
  const inCluster = await httpGet('http://snapshot.promsnap.svc.cluster.local/healthz', {
    dial: () => cluster.sandbox.dial({ host: cluster.sandbox.network.address.split('/')[0]!, port: ingressPorts.cluster }),
  });
  assert.equal(inCluster.status, 200, inCluster.body);
  // From this machine, through the public listener: no rule for it.
  for (const host of ['snapshot.promsnap.svc.cluster.local', 'snapshot.promsnap.example.com']) {
    const answer = await viaIngress('/healthz', host);
    assert.equal(answer.status, 404, `${host}: ${answer.body}`);
  }
});

interface Sample {
  at: number;
  desired?: number;
  ready: number;
  pods: number;
  terminating: number;
}

/** One simulation pod as the test saw it: when it was ready, and when Prometheus first had it up. */
interface PodSeen {
  readyFrom?: number;
  readyUntil?: number;
  /** First time up{job="kubernetes-pods"} == 1 for it, with its kubernetes_namespace label. */
  scrapedAt?: number;
  namespaceLabel?: string;
}

interface Observation {
  samples: Sample[];
  pods: Map<string, PodSeen>;
  peakRss: { bytes: number; pods: number };
  stop(): Promise<void>;
}

/**
 * Polls the simulation's PodAutoscaler, its pods and Prometheus's kubernetes-pods targets, keeping each
 * change: the scaling timeline, and for each pod when it was ready and when it was first scraped.
 */
function observe(origin: number): Observation {
  const samples: Sample[] = [];
  const pods = new Map<string, PodSeen>();
  const peakRss = { bytes: 0, pods: 0 };
  let running = true;
  const loop = (async () => {
    while (running) {
      const at = Date.now() - origin;
      const [pa, live, up] = await Promise.all([
        knative('podautoscalers', 'simulation-00001', 'autoscaling.internal.knative.dev/v1alpha1').catch(() => undefined),
        simulationPods().catch(() => []),
        query('up{job="kubernetes-pods"} == 1').catch(() => []),
      ]);
      for (const pod of live) {
        const seen = pods.get(pod.metadata.name) ?? {};
        if (!pod.metadata.deletionTimestamp && isReady(pod)) {
          seen.readyFrom ??= at;
          seen.readyUntil = at;
        }
        pods.set(pod.metadata.name, seen);
      }
      for (const series of up) {
        const seen = pods.get(series.metric['kubernetes_pod_name'] ?? '');
        if (seen && seen.scrapedAt === undefined) {
          seen.scrapedAt = at;
          seen.namespaceLabel = series.metric['kubernetes_namespace'];
        }
      }
      const sample: Sample = {
        at,
        ...(pa?.status?.desiredScale !== undefined ? { desired: pa.status.desiredScale } : {}),
        ready: live.filter((p) => !p.metadata.deletionTimestamp && isReady(p)).length,
        pods: live.filter((p) => !p.metadata.deletionTimestamp).length,
        terminating: live.filter((p) => p.metadata.deletionTimestamp).length,
      };
      if (live.length >= peakRss.pods) {
        const rss = cluster.memory().rssBytes;
        if (live.length > peakRss.pods || rss > peakRss.bytes) Object.assign(peakRss, { bytes: rss, pods: live.length });
      }
      const last = samples.at(-1);
      if (!last || last.desired !== sample.desired || last.ready !== sample.ready || last.pods !== sample.pods || last.terminating !== sample.terminating) {
        samples.push(sample);
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  })();
  return {
    samples,
    pods,
    peakRss,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

const seconds = (ms: number | undefined) => (ms === undefined ? '-' : `+${(ms / 1000).toFixed(1)} s`);

function printTimeline(t: TestContext, observation: Observation): void {
  t.diagnostic('scaling timeline (from the start of the load: desired by the KPA, ready pods, pods not terminating, terminating):');
  for (const s of observation.samples)
    t.diagnostic(`  ${seconds(s.at)}  desired ${s.desired ?? '-'}  ready ${s.ready}  pods ${s.pods}  terminating ${s.terminating}`);
  t.diagnostic('pods (ready from, ready until, first scraped by Prometheus with up == 1):');
  for (const [name, seen] of observation.pods) t.diagnostic(`  ${name}  ${seconds(seen.readyFrom)}  ${seconds(seen.readyUntil)}  ${seconds(seen.scrapedAt)}`);
}

interface PromVector {
  data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> };
}

async function query(promql: string): Promise<PromVector['data']['result']> {
  const answer = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(promql)}`);
  if (!answer.ok) throw new Error(`Prometheus answered ${answer.status}: ${await answer.text()}`);
  return ((await answer.json()) as PromVector).data.result;
}

/**
 * A pod ready this long must have been scraped: Prometheus's discovery sees it within seconds, its
 * targets are updated every 5 s, and the rendered config scrapes every 15 s (plus a scrape's own time).
 */
const scrapedWithinMs = 30_000;

test('under hey -z 30s -c 50 through the ingress, the KPA scales the simulation to 4 or more pods and back to min-scale; Prometheus scrapes every pod', async (t) => {
  await waitFor(async () => (await query('up{job="prometheus"}')).length > 0, { what: `Prometheus answering\n${lastNodeLines()}`, timeoutMs: 90_000 });
  mark('Prometheus answering');
  const origin = Date.now();
  const observation = observe(origin);
  const hey = await runHey({ url: `${cluster.ingressUrl}/simulate-requests`, host: 'simulation.promsnap.example.com', duration: '30s', concurrency: 50 });
  let summary: Awaited<typeof hey.done> | undefined;
  try {
    summary = await hey.done;
    mark('load done');
    // Back to min-scale: the KPA's desire after the 10 s window, and the pods gone after Knative's drain;
    // and the pod that stays scraped.
    await waitFor(
      () => {
        const last = observation.samples.at(-1);
        const atMin = last !== undefined && last.desired === minScale && last.pods === minScale && last.terminating === 0 && last.ready === minScale;
        return (
          atMin &&
          [...observation.pods.values()].every((p) => p.readyFrom === undefined || p.readyUntil! - p.readyFrom < scrapedWithinMs || p.scrapedAt !== undefined)
        );
      },
      { what: `the simulation back at min-scale ${minScale}, its long-lived pods scraped`, timeoutMs: 150_000, intervalMs: 250 },
    );
    mark('back at min-scale');
  } finally {
    await hey.stop();
    await observation.stop();
    printTimeline(t, observation);
  }
  const peak = Math.max(...observation.samples.map((s) => s.ready));
  const peakDesired = Math.max(...observation.samples.map((s) => s.desired ?? 0));
  t.diagnostic(
    `hey: ${Object.entries(summary.statusCodes)
      .map(([code, n]) => `${n} x ${code}`)
      .join(', ')}, ${summary.requestsPerSecond} req/s; peak ${peak} ready pods (KPA desired up to ${peakDesired}); ` +
      `cluster RSS ${Math.round(observation.peakRss.bytes / 1e6)} MB with ${observation.peakRss.pods} simulation pods`,
  );
  timings['peak simulation pods'] = observation.peakRss.pods;
  timings['cluster RSS at the peak (MB)'] = Math.round(observation.peakRss.bytes / 1e6);
  assert.equal(observation.samples[0]?.ready, minScale, 'the load started at min-scale');
  assert.ok(peak >= 4, `at least 4 ready pods under load (peak ${peak})`);
  assert.deepEqual(Object.keys(summary.statusCodes), ['200'], `every answer a 200: ${JSON.stringify(summary.statusCodes)} ${JSON.stringify(summary.errors)}`);
  assert.deepEqual(summary.errors, {});
  // Prometheus's kubernetes-pods job found the pods through their prometheus.io annotations and scraped them
  // (up == 1), labelled with their namespace and pod name: every pod that lived long enough, 4 or more.
  const scraped = [...observation.pods.entries()].filter(([, p]) => p.scrapedAt !== undefined);
  assert.ok(scraped.length >= 4, `4 or more simulation pods scraped, got ${scraped.map(([name]) => name).join(', ')}`);
  for (const [name, p] of scraped) assert.equal(p.namespaceLabel, 'promsnap', name);
  const unscraped = [...observation.pods.entries()].filter(
    ([, p]) => p.readyFrom !== undefined && p.readyUntil! - p.readyFrom >= scrapedWithinMs && p.scrapedAt === undefined,
  );
  assert.deepEqual(unscraped, [], 'every pod ready for 30 s was scraped');
});

/** The host PID of a pod's container process, found by the HOSTNAME its runtime gave it and its command line. */
function containerPid(pod: string, argv: readonly string[]): number {
  for (const pid of processesIn(Object.values(cluster.sandbox.traces.namespaces))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8') !== argv.join('\0') + '\0') continue;
      if (readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`HOSTNAME=${pod}`)) return pid;
    } catch {
      // ended while we looked
    }
  }
  throw new Error(`no process ${argv.join(' ')} of pod ${pod} in the sandbox`);
}

test('a pod whose process dies is restarted by the node; a deleted pod is replaced by its ReplicaSet', async () => {
  const [pod] = (await simulationPods()).filter((p) => !p.metadata.deletionTimestamp && isReady(p));
  assert.ok(pod, 'a ready simulation pod');
  const name = pod.metadata.name;
  process.kill(containerPid(name, simulationCommand), 'SIGKILL');
  const restarted = await waitFor(
    async () => {
      const live = await cluster.getJson<Pod>(`/api/v1/namespaces/promsnap/pods/${name}`);
      const status = live.status?.containerStatuses?.find((c) => c.name === 'simulation');
      return status && status.restartCount >= 1 && isReady(live) ? status : undefined;
    },
    { what: `pod ${name}'s simulation container restarted and ready\n${lastNodeLines()}`, timeoutMs: 60_000, intervalMs: 200 },
  );
  assert.equal(restarted.restartCount, 1);
  assert.equal(restarted.lastState?.terminated?.exitCode, 137);
  mark('restarted');

  await cluster.kubectl('delete', 'pod', '-n', 'promsnap', name, '--wait=false');
  const replacement = await waitFor(async () => (await simulationPods()).find((p) => p.metadata.name !== name && !p.metadata.deletionTimestamp && isReady(p)), {
    what: `a ready replacement for ${name}\n${lastNodeLines()}`,
    timeoutMs: 60_000,
    intervalMs: 200,
  });
  assert.equal(replacement.metadata.ownerReferences?.[0]?.kind, 'ReplicaSet');
  assert.ok(replacement.metadata.ownerReferences?.[0]?.name.startsWith('simulation-00001-deployment-'));
  mark('replaced');
});
