// References between the rendered objects, each followed to its end: a scrape annotation to a port a
// container declares, a URL in a function's environment to a Service, its port and the container
// behind it, every Secret reference to a generated Secret holding that key. And each function's
// environment, as the manifests give it, passes that function's own configuration check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Cron } from 'croner';
import { loadConfig as loadSimulationConfig } from '../../functions/simulation/src/config.js';
import { loadConfig as loadSnapshotConfig, prometheusDurationMs } from '../../functions/snapshot/src/config.js';
import {
  allContainers,
  clusterAddress,
  describeObject,
  findObject,
  knativeService,
  objectsOfKind,
  pingSource,
  podTemplates,
  prometheusSetup,
  renderPlatform,
  resolveEnv,
  servicePorts,
  type Container,
  type KubeObject,
  type PodTemplate,
} from '../manifests/index.js';
import { runCommand } from '../tools/command.js';
import { cachedBinary } from '../tools/find.js';
import { versions } from '../tools/versions.js';

const { objects } = await renderPlatform();
const templates = podTemplates(objects);

/** The pod template a core Service selects (exactly one, or the test fails). */
function selectedTemplate(service: KubeObject): PodTemplate {
  const selector = (service['spec'] as { selector?: Record<string, string> }).selector ?? {};
  const selected = templates.filter((t) => t.namespace === service.metadata.namespace && Object.entries(selector).every(([k, v]) => t.labels[k] === v));
  assert.equal(selected.length, 1, `${describeObject(service)} selects ${selected.length} workloads`);
  return selected[0]!;
}

/** The container and port number a Service port reaches (targetPort by name or number). */
function backend(service: KubeObject, port: number): { container: Container; containerPort: number } {
  const servicePort = servicePorts(objects, service.metadata.name, service.metadata.namespace!).find((p) => p.port === port);
  assert.ok(servicePort, `${describeObject(service)} has no port ${port}`);
  const target = servicePort.targetPort ?? servicePort.port;
  for (const container of selectedTemplate(service).spec.containers) {
    const match = (container.ports ?? []).find((p) => (typeof target === 'number' ? p.containerPort === target : p.name === target));
    if (match) return { container, containerPort: match.containerPort };
  }
  assert.fail(`${describeObject(service)} port ${port} targets ${target}, which no container of its pods declares`);
}

/** Where a cluster URL ends up: Service, port, and the container listening behind it. */
function followUrl(url: string): { service: KubeObject; container: Container; containerPort: number } {
  const address = clusterAddress(url);
  assert.ok(address, `${url} is not a cluster Service address (NAME.NAMESPACE.svc.cluster.local)`);
  const service = findObject(objects, 'Service', address.service, address.namespace);
  return { service, ...backend(service, address.port) };
}

test('prometheus.io/port on every scraped pod template is a port its container declares', () => {
  const scraped = templates.filter((t) => t.annotations['prometheus.io/scrape'] === 'true');
  assert.deepEqual(scraped.map((t) => describeObject(t.owner)).sort(), [
    'Service.serving.knative.dev/promsnap/simulation',
    'Service.serving.knative.dev/promsnap/snapshot',
  ]);
  for (const t of scraped) {
    const ports = t.spec.containers.flatMap((c) => (c.ports ?? []).map((p) => p.containerPort));
    assert.ok(
      ports.includes(Number(t.annotations['prometheus.io/port'])),
      `${describeObject(t.owner)}: ${t.annotations['prometheus.io/port']} not in ${ports.join(', ')}`,
    );
  }
});

test('prometheus.io/port on every scraped Service is a port the pods behind it declare', () => {
  const scraped = objectsOfKind(objects, 'Service').filter((s) => s.metadata.annotations?.['prometheus.io/scrape'] === 'true');
  assert.deepEqual(scraped.map(describeObject), ['Service/promsnap/minio']);
  for (const service of scraped) {
    const port = Number(service.metadata.annotations!['prometheus.io/port']);
    const ports = selectedTemplate(service).spec.containers.flatMap((c) => (c.ports ?? []).map((p) => p.containerPort));
    assert.ok(ports.includes(port), `${describeObject(service)}: ${port} not in ${ports.join(', ')}`);
  }
  // MinIO serves that path without a token only when told so.
  const minio = resolveEnv(objects, 'promsnap', selectedTemplate(scraped[0]!).spec.containers[0]!);
  assert.equal(minio.env['MINIO_PROMETHEUS_AUTH_TYPE'], 'public');
});

test("the snapshot function's URLs reach the Prometheus and MinIO Services, on the ports those containers listen on", () => {
  const { env } = knativeService(objects, 'snapshot').env;
  const prometheus = followUrl(env['PROMETHEUS_URL']!);
  assert.equal(describeObject(prometheus.service), 'Service/monitoring/prometheus');
  assert.equal(prometheus.container.image, prometheusSetup(objects).image);
  assert.ok(prometheus.container.args?.includes(`--web.listen-address=:${prometheus.containerPort}`), 'Prometheus listens on that port');
  const minio = followUrl(env['S3_ENDPOINT']!);
  assert.equal(describeObject(minio.service), 'Service/promsnap/minio');
  const args = minio.container.args ?? [];
  assert.equal(args[args.indexOf('--address') + 1], `:${minio.containerPort}`, "MinIO's API listens on that port");
  assert.equal(env['S3_BUCKET'], 'snapshots');
});

test('the static scrape targets in prometheus.yml reach a Service port with a container behind it', () => {
  const jobs = prometheusSetup(objects).config.scrape_configs ?? [];
  const targets = jobs.flatMap((job) =>
    ((job['static_configs'] ?? []) as Array<{ targets: string[] }>).flatMap((c) => c.targets.map((target) => ({ job: job.job_name, target }))),
  );
  assert.ok(targets.length >= 2);
  for (const { job, target } of targets) {
    if (target.startsWith('localhost:')) {
      // Prometheus itself: its own listen address.
      assert.ok(prometheusSetup(objects).args.includes(`--web.listen-address=:${target.split(':')[1]}`), `${job}: ${target}`);
      continue;
    }
    const reached = followUrl(`http://${target}`);
    assert.ok(reached.containerPort > 0, `${job}: ${target}`);
  }
});

test('every Secret and ConfigMap a pod refers to is rendered, generated by kustomize, and holds the keys named', () => {
  const problems: string[] = [];
  const generated = /-[a-z0-9]{10}$/;
  for (const t of templates) {
    for (const c of allContainers(t.spec)) {
      problems.push(...resolveEnv(objects, t.namespace, c).problems.map((p) => `${describeObject(t.owner)} ${c.name}: ${p}`));
      const names = [
        ...(c.envFrom ?? []).flatMap((e) => [e.secretRef?.name, e.configMapRef?.name]),
        ...(c.env ?? []).flatMap((e) => [e.valueFrom?.secretKeyRef?.name, e.valueFrom?.configMapKeyRef?.name]),
      ].filter((n): n is string => n !== undefined);
      for (const name of names) if (!generated.test(name)) problems.push(`${describeObject(t.owner)} ${c.name}: ${name} is not a generated name`);
    }
    for (const volume of t.spec.volumes ?? []) {
      const name = volume.configMap?.name ?? volume.secret?.secretName;
      if (name === undefined) continue;
      try {
        findObject(objects, volume.configMap ? 'ConfigMap' : 'Secret', name, t.namespace);
      } catch (err) {
        problems.push(`${describeObject(t.owner)} volume ${volume.name}: ${(err as Error).message}`);
      }
      if (!generated.test(name)) problems.push(`${describeObject(t.owner)} volume ${volume.name}: ${name} is not a generated name`);
    }
  }
  assert.deepEqual(problems, []);
});

test('the MinIO root credentials reach only MinIO and its setup Job; the function gets its own user', () => {
  const users = templates
    .filter((t) => allContainers(t.spec).some((c) => JSON.stringify([c.env ?? [], c.envFrom ?? []]).includes('"minio-root-')))
    .map((t) => describeObject(t.owner))
    .sort();
  assert.deepEqual(users, ['Deployment.apps/promsnap/minio', 'Job.batch/promsnap/minio-setup']);
  const fn = knativeService(objects, 'snapshot').env.env;
  const setup = podTemplates([findObject(objects, 'Job', 'minio-setup', 'promsnap')])[0]!;
  const created = allContainers(setup.spec).find((c) => c.args?.slice(0, 3).join(' ') === 'admin user add');
  assert.ok(created, 'the setup Job adds a user');
  const env = resolveEnv(objects, 'promsnap', created).env;
  assert.deepEqual(
    [env['AWS_ACCESS_KEY_ID'], env['AWS_SECRET_ACCESS_KEY']],
    [fn['AWS_ACCESS_KEY_ID'], fn['AWS_SECRET_ACCESS_KEY']],
    'the Job creates the very user the function is given',
  );
});

test("each function's environment, as its Knative Service sets it (PORT from Knative), passes the function's own config check", () => {
  const simulation = knativeService(objects, 'simulation');
  assert.deepEqual(simulation.env.problems, []);
  const sim = loadSimulationConfig({ ...simulation.env.env, PORT: String(simulation.port), K_SERVICE: 'simulation' });
  assert.equal(sim.port, 8080);
  // Knative gives a revision's pods terminationGracePeriodSeconds = timeoutSeconds: the drain fits in it.
  assert.ok(sim.shutdownGraceMs < (simulation.timeoutSeconds ?? 300) * 1000);

  const snapshot = knativeService(objects, 'snapshot');
  assert.deepEqual(snapshot.env.problems, []);
  assert.deepEqual(Object.keys(snapshot.env.env).sort(), [
    'AWS_ACCESS_KEY_ID',
    'AWS_SECRET_ACCESS_KEY',
    'LOG_LEVEL',
    'PROMETHEUS_RETENTION',
    'PROMETHEUS_TIMEOUT_MS',
    'PROMETHEUS_URL',
    'S3_BUCKET',
    'S3_ENDPOINT',
    'S3_REGION',
    'SHUTDOWN_GRACE_MS',
    'SNAPSHOT_GZIP',
    'SNAPSHOT_MAX_FUTURE_MS',
    'SNAPSHOT_MAX_SERIES',
    'SNAPSHOT_QUERIES',
    'SNAPSHOT_RANGE',
  ]);
  const snap = loadSnapshotConfig({ ...snapshot.env.env, PORT: String(snapshot.port), K_SERVICE: 'snapshot' });
  assert.equal(snap.port, 8080);
  assert.ok(snap.shutdownGraceMs < (snapshot.timeoutSeconds ?? 300) * 1000, 'the drain fits in the termination grace');
  assert.ok(snap.prometheus.timeoutMs < (snapshot.timeoutSeconds ?? 300) * 1000, "a query ends before Knative's request timeout");
});

test("the function's PROMETHEUS_RETENTION is the retention its Prometheus runs with, so it refuses exactly the instants Prometheus has no data for", () => {
  const { env } = knativeService(objects, 'snapshot').env;
  const prometheus = followUrl(env['PROMETHEUS_URL']!);
  const args = [...(prometheus.container.command ?? []), ...(prometheus.container.args ?? [])];
  const flag = args.map((a) => /^--storage\.tsdb\.retention\.time=(.+)$/.exec(a)?.[1]).find(Boolean);
  assert.ok(flag, 'the Prometheus the function queries sets --storage.tsdb.retention.time');
  assert.equal(env['PROMETHEUS_RETENTION'], flag);
  const config = loadSnapshotConfig({ ...env, PORT: '8080' });
  assert.equal(config.prometheus.retentionMs, prometheusDurationMs(flag));
  // Pings name no queries: the function runs its own, and takes none from events.
  assert.deepEqual(config.events.allowedQueries, []);
});

test('kube-state-metrics runs the pinned release, which the tool cache builds for the local cluster', async () => {
  const [deployment] = podTemplates([findObject(objects, 'Deployment', 'kube-state-metrics', 'monitoring')]);
  assert.equal(deployment?.spec.containers[0]?.image, `registry.k8s.io/kube-state-metrics/kube-state-metrics:v${versions.kubeStateMetrics}`);
  const built = await runCommand(cachedBinary('kube-state-metrics'), ['version']);
  assert.match(built.stdout, new RegExp(`^kube-state-metrics, version v${versions.kubeStateMetrics.replaceAll('.', '\\.')} `));
});

test("the function's SNAPSHOT_RANGE is the period of the PingSource's schedule, so its exports tile time", () => {
  const { env } = knativeService(objects, 'snapshot').env;
  const config = loadSnapshotConfig({ ...env, PORT: '8080' });
  const ping = pingSource(objects);
  const runs = new Cron(ping.schedule, { timezone: ping.timezone }).nextRuns(12);
  const periods = new Set(runs.slice(1).map((run, i) => run.getTime() - runs[i]!.getTime()));
  assert.deepEqual([...periods], [config.range.defaultRangeMs], `the schedule fires every ${[...periods].join(', ')} ms`);
  // Every tick is a multiple of the range, as the function floors a ping's time to it.
  for (const run of runs) assert.equal(run.getTime() % config.range.defaultRangeMs, 0);
  assert.ok(config.range.catchUpMs >= config.range.defaultRangeMs, 'a missed tick is covered by the next one');
});
