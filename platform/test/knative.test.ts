// What Knative's own admission webhooks would say about our Knative objects on a user's cluster. The
// test API server (apiserver-platform.test.ts) validates them against Knative's CRD schemas, but no
// webhook runs there, so the rules Knative enforces in code are checked here, read from the pinned
// Knative release's own sources where they live in files (feature flags, defaults, reserved names,
// the retry rule). And the Eventing path is wired as the contract says: PingSource -> Broker -> Trigger
// -> the snapshot function, with a delivery policy that fits the schedule and the alerts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Cron } from 'croner';
import { parse as parseYaml } from 'yaml';
import { createPingEvent, PING_EVENT_TYPE, type PingData } from '../../events/src/index.js';
import { loadConfig as loadSnapshotConfig } from '../../functions/snapshot/src/config.js';
import { rejectedStatuses, retryableStatuses } from '../../functions/snapshot/src/errors.js';
import { MissingToolError } from '../tools/find.js';
import {
  describeObject,
  destinationObject,
  findObject,
  groupOf,
  knativeService,
  objectsOfKind,
  pingSource,
  podTemplates,
  prometheusSetup,
  renderPlatform,
  retryDelaysMs,
  trigger,
  type KubeObject,
} from '../manifests/index.js';
import { toolDir, versions } from '../tools/versions.js';

function source(tool: 'knative-serving-src' | 'knative-eventing-src', file: string): string {
  const full = path.join(toolDir(tool), 'src', file);
  if (!existsSync(full)) throw new MissingToolError(`Knative ${tool} sources (${full})`, 'bash platform/tools/provision.sh knative-crds');
  return readFileSync(full, 'utf8');
}

/** A Knative ConfigMap's documented defaults: the `_example` block (Knative checks it matches the code). */
function configDefaults(tool: 'knative-serving-src' | 'knative-eventing-src', file: string): Record<string, string> {
  const map = parseYaml(source(tool, file)) as { data: Record<string, string> };
  const values: Record<string, string> = {};
  for (const line of (map.data['_example'] ?? '').split('\n')) {
    const match = /^\s*([a-z0-9.-]+):\s*"?([^"#]*?)"?\s*(?:#.*)?$/.exec(line);
    if (match && !line.trim().startsWith('#')) values[match[1]!] = match[2]!;
  }
  return values;
}

/** The string members of a Go `name = sets.New(...)` block. */
function goStringSet(file: string, name: string): string[] {
  const block = new RegExp(`${name} = sets\\.New(?:\\[string\\])?\\(([^)]*)\\)`).exec(file);
  assert.ok(block, `${name} not found in Knative's source`);
  return [...block[1]!.matchAll(/"([^"]*)"/g)].map((m) => m[1]!);
}

const { objects } = await renderPlatform();
const knativeServices = objectsOfKind(objects, 'Service.serving.knative.dev');
const validation = source('knative-serving-src', 'pkg/apis/serving/k8s_validation.go');

test(`Knative Serving ${versions.knativeServing}'s webhook rules hold for every Knative Service`, async (t) => {
  assert.equal(knativeServices.length, 2);
  const features = configDefaults('knative-serving-src', 'config/core/configmaps/features.yaml');
  const defaults = configDefaults('knative-serving-src', 'config/core/configmaps/defaults.yaml');
  const reservedEnv = goStringSet(validation, 'reservedEnvVars');
  const reservedPaths = goStringSet(validation, 'reservedPaths');
  const portNames = goStringSet(validation, 'validPortNames');
  assert.ok(reservedEnv.includes('PORT') && reservedPaths.includes('/') && portNames.includes('http1'), 'the sets were read');

  for (const object of knativeServices) {
    const template = podTemplates([object])[0]!;
    await t.test(describeObject(object), () => {
      const problems: string[] = [];
      assert.equal(template.spec.containers.length, 1, 'one container (sidecars need more Knative settings)');
      const container = template.spec.containers[0]!;
      if (container.name === 'queue-proxy') problems.push('container name queue-proxy is reserved');
      for (const env of container.env ?? []) if (reservedEnv.includes(env.name)) problems.push(`env ${env.name} is set by Knative`);
      const ports = container.ports ?? [];
      if (ports.length > 1) problems.push('more than one port');
      for (const port of ports) if (port.name && !portNames.includes(port.name)) problems.push(`port name ${port.name} (allowed: ${portNames.join(', ')})`);
      for (const mount of container.volumeMounts ?? [])
        if (reservedPaths.includes(path.posix.normalize(mount.mountPath))) problems.push(`mountPath ${mount.mountPath} is reserved`);
      for (const probe of ['readinessProbe', 'livenessProbe', 'startupProbe']) {
        const port = (container[probe] as { httpGet?: { port?: number | string } } | undefined)?.httpGet?.port;
        if (port !== undefined && port !== ports[0]?.containerPort) problems.push(`${probe} port ${port} is not the container port`);
      }
      // Volume kinds beyond configMap, secret and projected need a feature flag; so does a pod-level
      // security context. Knative silently drops automountServiceAccountToken: true.
      for (const volume of template.spec.volumes ?? []) {
        const kind = Object.keys(volume).find((k) => k !== 'name')!;
        const flag = {
          emptyDir: 'kubernetes.podspec-volumes-emptydir',
          persistentVolumeClaim: 'kubernetes.podspec-persistent-volume-claim',
          hostPath: 'kubernetes.podspec-volumes-hostpath',
        }[kind];
        if (!['configMap', 'secret', 'projected'].includes(kind) && features[flag ?? kind] !== 'enabled')
          problems.push(`volume ${volume.name}: ${kind} needs ${flag ?? kind} (default ${features[flag ?? ''] ?? 'none'})`);
      }
      if (template.spec['securityContext'] !== undefined && features['kubernetes.podspec-securitycontext'] !== 'enabled')
        problems.push('pod-level securityContext needs kubernetes.podspec-securitycontext');
      if (template.spec.automountServiceAccountToken === true) problems.push('automountServiceAccountToken: true is dropped by Knative');
      const timeout = template.spec['timeoutSeconds'];
      if (typeof timeout === 'number' && timeout > Number(defaults['max-revision-timeout-seconds']))
        problems.push(`timeoutSeconds ${timeout} > max-revision-timeout-seconds ${defaults['max-revision-timeout-seconds']}`);
      assert.deepEqual(problems, []);
    });
  }
});

test('the Knative Services autoscale by annotation, and carry the prometheus.io annotations on their pods', () => {
  const limits = configDefaults('knative-serving-src', 'config/core/configmaps/autoscaler.yaml');
  for (const name of ['simulation', 'snapshot']) {
    const ksvc = knativeService(objects, name);
    const a = ksvc.annotations;
    assert.equal(a['autoscaling.knative.dev/class'], 'kpa.autoscaling.knative.dev', name);
    assert.ok(['concurrency', 'rps'].includes(a['autoscaling.knative.dev/metric']!), name);
    assert.ok(Number(a['autoscaling.knative.dev/target']) > 0, name);
    const min = Number(a['autoscaling.knative.dev/min-scale']);
    const max = Number(a['autoscaling.knative.dev/max-scale']);
    assert.ok(Number.isInteger(min) && Number.isInteger(max) && min >= 1 && min <= max, `${name}: min ${min} max ${max}`);
    const limit = Number(limits['max-scale-limit']);
    assert.ok(limit === 0 || max <= limit, `${name}: max-scale above max-scale-limit ${limit}`);
    assert.equal(a['prometheus.io/scrape'], 'true', name);
    assert.equal(a['prometheus.io/port'], String(ksvc.port), `${name}: prometheus.io/port is the user container's port`);
    assert.equal(a['prometheus.io/path'], '/metrics', name);
  }
  // The snapshot function keeps one pod, so its metrics (and the alerts on them) never go missing.
  assert.equal(knativeService(objects, 'snapshot').annotations['autoscaling.knative.dev/min-scale'], '1');
});

test("the fields Knative Eventing's defaulting webhook would add are written out (the test API server runs none)", () => {
  const brokerDefaults = parseYaml(
    (parseYaml(source('knative-eventing-src', 'config/core/configmaps/default-broker.yaml')) as { data: Record<string, string> }).data['default-br-config']!,
  ) as { clusterDefault: { brokerClass: string; apiVersion: string; kind: string; name: string; namespace: string } };
  const broker = findObject(objects, 'Broker.eventing.knative.dev', 'default', 'promsnap');
  assert.equal(broker.metadata.annotations?.['eventing.knative.dev/broker.class'], brokerDefaults.clusterDefault.brokerClass);
  // The webhook would also copy the cluster's default delivery onto a Broker without one; it matters only
  // for Triggers without their own, and ours has one, so it is left to the cluster.
  const { apiVersion, kind, name, namespace } = brokerDefaults.clusterDefault;
  assert.deepEqual((broker['spec'] as { config?: unknown }).config, { apiVersion, kind, name, namespace });

  const triggerObject = findObject(objects, 'Trigger.eventing.knative.dev', 'snapshot', 'promsnap');
  const spec = triggerObject['spec'] as { broker: string; filter?: unknown };
  assert.equal(triggerObject.metadata.labels?.['eventing.knative.dev/broker'], spec.broker);
  assert.ok(spec.filter, 'filter is set');
  const refs = [trigger(objects).subscriber.ref, trigger(objects).delivery.deadLetterSink?.ref, pingSource(objects).sink.ref];
  for (const ref of refs) assert.equal(ref?.namespace, 'promsnap', JSON.stringify(ref));
});

test('PingSource snapshot-schedule: a valid cron schedule in its time zone, sending pings the function as configured accepts', () => {
  const ping = pingSource(objects);
  assert.ok(ping.timezone, 'a time zone is set');
  const cron = new Cron(ping.schedule, { timezone: ping.timezone });
  const [first, second] = cron.nextRuns(2);
  assert.ok(first && second, 'the schedule fires');
  // The very event Knative's adapter would send, built and validated by the shared event contract.
  const data = ping.data === undefined ? undefined : (JSON.parse(ping.data) as PingData);
  if (data !== undefined) assert.equal(ping.contentType, 'application/json');
  const event = createPingEvent({ namespace: ping.namespace, name: ping.name, ...(data ? { data } : {}) });
  assert.equal(event.type, PING_EVENT_TYPE);
  // Queries a ping names must be ones the function, with the environment its manifest gives it, takes
  // from events; as shipped the ping names none and the function runs its own SNAPSHOT_QUERIES.
  const config = loadSnapshotConfig(knativeService(objects, 'snapshot').env.env);
  const allowed = config.events.allowedQueries;
  assert.deepEqual(
    (data?.queries ?? []).filter((q) => allowed !== 'any' && !allowed.includes(q)),
    [],
    'queries the function would refuse (403)',
  );
  assert.equal(data?.queries, undefined, 'the schedule leaves the queries to the function');
  assert.deepEqual(allowed, [], 'and the function takes none from events');
});

test('the path PingSource -> Broker -> Trigger -> snapshot names objects that exist, and dead letters go to its /dead-letters', () => {
  const ping = pingSource(objects);
  const broker = destinationObject(objects, ping.sink, ping.namespace);
  assert.equal(describeObject(broker), 'Broker.eventing.knative.dev/promsnap/default');
  const snapshot = trigger(objects);
  assert.equal(snapshot.broker, broker.metadata.name);
  assert.deepEqual(snapshot.filter, { type: PING_EVENT_TYPE });
  assert.equal(describeObject(destinationObject(objects, snapshot.subscriber, snapshot.namespace)), 'Service.serving.knative.dev/promsnap/snapshot');
  const dls = snapshot.delivery.deadLetterSink;
  assert.ok(dls, 'a dead-letter sink');
  assert.equal(describeObject(destinationObject(objects, dls, snapshot.namespace)), 'Service.serving.knative.dev/promsnap/snapshot');
  assert.equal(dls.uri, '/dead-letters', 'relative to the ksvc, as Knative resolves a uri beside a ref');
  // Every other Trigger would be a second consumer of the pings: none.
  assert.deepEqual(objectsOfKind(objects, 'Trigger.eventing.knative.dev').map(describeObject), ['Trigger.eventing.knative.dev/promsnap/snapshot']);
  assert.deepEqual(
    objectsOfKind(objects, 'PingSource.sources.knative.dev').map((o: KubeObject) => groupOf(o)),
    ['sources.knative.dev'],
  );
});

test('the delivery policy: retries with exponential backoff that end before the next tick, within what the alerts allow', () => {
  const policy = trigger(objects).delivery;
  assert.ok(policy.retry >= 3, `retry ${policy.retry}`);
  assert.equal(policy.backoffPolicy, 'exponential');
  assert.ok(policy.backoffDelayMs! >= 500, 'a dependency gets time to come back between attempts');
  const windowMs = retryDelaysMs(policy).reduce((a, b) => a + b, 0);
  const ping = pingSource(objects);
  const [first, second] = new Cron(ping.schedule, { timezone: ping.timezone! }).nextRuns(2);
  const periodMs = second!.getTime() - first!.getTime();
  assert.ok(windowMs < periodMs / 2, `retries take ${windowMs} ms, the schedule's period is ${periodMs} ms`);
  // SnapshotsStale allows a few missed periods: the threshold in the rule and the schedule agree.
  const rules = prometheusSetup(objects)
    .ruleFiles.map((f) => f.text)
    .join('\n');
  const stale = /alert: SnapshotsStale\s+expr: .*> (\d+)/.exec(rules);
  assert.ok(stale, 'SnapshotsStale compares the age with a number of seconds');
  const thresholdMs = Number(stale[1]) * 1000;
  assert.ok(
    thresholdMs >= 2 * periodMs + windowMs,
    `SnapshotsStale at ${thresholdMs} ms fires before two periods (${periodMs} ms) and the retries have passed`,
  );
});

test("the function's answers and Knative's retry rule agree: dependency failures retried, rejected events not", () => {
  // knative.dev/eventing pkg/kncloudevents/retries.go, SelectiveRetry: the statuses it retries.
  const retries = source('knative-eventing-src', 'pkg/kncloudevents/retries.go');
  const rule = /if (statusCode >= 500(?: \|\| statusCode == \d+)+) \{/.exec(retries);
  assert.ok(rule, "SelectiveRetry's condition found");
  const retried = (status: number) => rule[1]!.split(' || ').some((c) => (c === 'statusCode >= 500' ? status >= 500 : c === `statusCode == ${status}`));
  // The statuses the function answers with (functions/snapshot/src/errors.ts).
  assert.ok(rejectedStatuses.length > 0 && retryableStatuses.length > 0);
  assert.deepEqual(rejectedStatuses.filter(retried), [], 'rejected events must go to the dead-letter sink at once');
  assert.deepEqual(
    retryableStatuses.filter((s) => !retried(s)),
    [],
    'dependency failures must be retried',
  );
  assert.ok(retried(500) && retried(404) && !retried(400), 'the rule as read behaves as Knative documents it');
});
