// The rendered platform follows the project's manifest practices (STYLE.md 9) everywhere, derived from
// what `kubectl kustomize platform` renders so a new object is held to them without being listed here:
// recommended labels, selectors without the version, namespaces with Pod Security "restricted",
// requests and limits, probes, restricted security contexts, no service-account token where no API
// access is needed. Also the names the other parts of promsnap rely on, and the rules of platform/manifests/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAllDocuments, stringify } from 'yaml';
import {
  allContainers,
  clusterAddress,
  deliveryPolicy,
  describeObject,
  findGenerated,
  findObject,
  groupOf,
  isoDurationMs,
  knativeService,
  objectsOfKind,
  objectsYaml,
  parseObjects,
  podTemplates,
  retryDelayMs,
  retryDelaysMs,
  renderPlatform,
  servicePorts,
  type Container,
  type KubeObject,
  type PodTemplate,
} from '../manifests/index.js';

const { objects } = await renderPlatform();
const templates = podTemplates(objects);
const recommended = ['app.kubernetes.io/name', 'app.kubernetes.io/component', 'app.kubernetes.io/part-of', 'app.kubernetes.io/version'];
const clusterScoped = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'PersistentVolume', 'StorageClass', 'CustomResourceDefinition']);

function owner(template: PodTemplate): string {
  return describeObject(template.owner);
}

function isKnative(template: PodTemplate): boolean {
  return groupOf(template.owner) === 'serving.knative.dev';
}

/** A Job's containers run to completion; probes are for the long-running ones. */
function longRunning(template: PodTemplate): boolean {
  return groupOf(template.owner) !== 'batch';
}

test('the platform renders the objects every part of promsnap names', () => {
  const expected = [
    'Namespace/monitoring',
    'Namespace/promsnap',
    'Deployment.apps/monitoring/prometheus',
    'Service/monitoring/prometheus',
    'Deployment.apps/monitoring/kube-state-metrics',
    'Service/monitoring/kube-state-metrics',
    'Deployment.apps/promsnap/minio',
    'Service/promsnap/minio',
    'Job.batch/promsnap/minio-setup',
    'Service.serving.knative.dev/promsnap/simulation',
    'Service.serving.knative.dev/promsnap/snapshot',
    'Broker.eventing.knative.dev/promsnap/default',
    'Trigger.eventing.knative.dev/promsnap/snapshot',
    'PingSource.sources.knative.dev/promsnap/snapshot-schedule',
  ];
  const rendered = new Set(objects.map(describeObject));
  assert.deepEqual(
    expected.filter((id) => !rendered.has(id)),
    [],
  );
  assert.ok(findGenerated(objects, 'Secret', 'minio-root', 'promsnap'));
  assert.ok(findGenerated(objects, 'Secret', 'snapshot-s3', 'promsnap'));
  assert.ok(findGenerated(objects, 'ConfigMap', 'prometheus-config', 'monitoring'));
  // Inside the cluster only: the reference's NodePort 30900 is the opt-in monitoring/nodeport component.
  const prometheus = servicePorts(objects, 'prometheus', 'monitoring');
  assert.deepEqual(
    prometheus.map((p) => [p.port, p.nodePort]),
    [[9090, undefined]],
  );
  assert.equal((findObject(objects, 'Service', 'prometheus', 'monitoring')['spec'] as { type?: string }).type, 'ClusterIP');
  assert.deepEqual(
    servicePorts(objects, 'minio', 'promsnap').map((p) => [p.name, p.port]),
    [
      ['api', 9000],
      ['console', 9001],
    ],
  );
});

test('every object carries the four recommended labels, part-of promsnap', () => {
  const missing = objects.flatMap((o) => {
    const labels = o.metadata.labels ?? {};
    return [
      ...recommended.filter((l) => !labels[l]).map((l) => `${describeObject(o)}: ${l}`),
      ...(labels['app.kubernetes.io/part-of'] && labels['app.kubernetes.io/part-of'] !== 'promsnap' ? [`${describeObject(o)}: part-of`] : []),
    ];
  });
  assert.deepEqual(missing, []);
});

test('every pod template carries the same four labels as its owner, Knative revision templates too', () => {
  const problems = templates.flatMap((t) =>
    recommended
      .filter((l) => t.labels[l] !== t.owner.metadata.labels?.[l])
      .map((l) => `${owner(t)}: ${l}=${t.labels[l]} (owner: ${t.owner.metadata.labels?.[l]})`),
  );
  assert.deepEqual(problems, []);
});

test('selectors leave the version out and select exactly their own pods', () => {
  const problems: string[] = [];
  for (const object of objectsOfKind(objects, 'Deployment')) {
    const selector = (object['spec'] as { selector?: { matchLabels?: Record<string, string> } }).selector?.matchLabels ?? {};
    const template = podTemplates([object])[0]!;
    if ('app.kubernetes.io/version' in selector) problems.push(`${describeObject(object)}: selector has the version`);
    if (Object.keys(selector).length === 0) problems.push(`${describeObject(object)}: empty selector`);
    for (const [k, v] of Object.entries(selector)) if (template.labels[k] !== v) problems.push(`${describeObject(object)}: selector ${k}=${v} not on its pods`);
  }
  for (const service of objectsOfKind(objects, 'Service')) {
    const selector = (service['spec'] as { selector?: Record<string, string> }).selector ?? {};
    if ('app.kubernetes.io/version' in selector) problems.push(`${describeObject(service)}: selector has the version`);
    const selected = templates.filter((t) => t.namespace === service.metadata.namespace && Object.entries(selector).every(([k, v]) => t.labels[k] === v));
    if (selected.length !== 1) problems.push(`${describeObject(service)} selects ${selected.map(owner).join(', ') || 'nothing'}`);
  }
  assert.deepEqual(problems, []);
});

test('every namespaced object says its namespace, and each namespace is created with Pod Security "restricted"', () => {
  const unplaced = objects.filter((o) => !clusterScoped.has(o.kind) && !o.metadata.namespace).map(describeObject);
  assert.deepEqual(unplaced, []);
  const used = [...new Set(objects.flatMap((o) => (o.metadata.namespace ? [o.metadata.namespace] : [])))].sort();
  assert.deepEqual(used, ['monitoring', 'promsnap']);
  for (const name of used) {
    const labels = findObject(objects, 'Namespace', name).metadata.labels ?? {};
    assert.equal(labels['pod-security.kubernetes.io/enforce'], 'restricted', name);
    assert.equal(labels['pod-security.kubernetes.io/enforce-version'], 'latest', name);
  }
});

test('every container has CPU and memory requests and limits, requests not above limits', () => {
  const problems: string[] = [];
  const quantity = (value: string | number | undefined): number => {
    const match = /^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi)?$/.exec(String(value ?? ''));
    if (!match) return NaN;
    const scale = { m: 0.001, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 }[match[2] as 'm' | 'Ki' | 'Mi' | 'Gi'] ?? 1;
    return Number(match[1]) * scale;
  };
  for (const t of templates) {
    for (const c of allContainers(t.spec)) {
      const resources = (c['resources'] ?? {}) as { requests?: Record<string, string>; limits?: Record<string, string> };
      for (const resource of ['cpu', 'memory']) {
        const request = quantity(resources.requests?.[resource]);
        const limit = quantity(resources.limits?.[resource]);
        if (Number.isNaN(request) || Number.isNaN(limit)) problems.push(`${owner(t)} ${c.name}: ${resource} request and limit`);
        else if (request > limit) problems.push(`${owner(t)} ${c.name}: ${resource} request above limit`);
      }
    }
  }
  assert.deepEqual(problems, []);
});

test('every long-running container has readiness and liveness probes', () => {
  const problems = templates
    .filter(longRunning)
    .flatMap((t) => t.spec.containers.flatMap((c) => ['readinessProbe', 'livenessProbe'].filter((p) => !c[p]).map((p) => `${owner(t)} ${c.name}: no ${p}`)));
  assert.deepEqual(problems, []);
});

/** The restricted Pod Security profile's container rules, with what the pod level may supply. */
function securityProblems(t: PodTemplate, c: Container): string[] {
  const pod = (t.spec['securityContext'] ?? {}) as Record<string, unknown>;
  const own = (c['securityContext'] ?? {}) as Record<string, unknown>;
  const either = (key: string) => own[key] ?? pod[key];
  const problems: string[] = [];
  if (either('runAsNonRoot') !== true) problems.push('runAsNonRoot: true');
  if (either('runAsUser') === 0) problems.push('runAsUser not 0');
  if (own['allowPrivilegeEscalation'] !== false) problems.push('allowPrivilegeEscalation: false');
  if (own['privileged'] === true) problems.push('not privileged');
  if (own['readOnlyRootFilesystem'] !== true) problems.push('readOnlyRootFilesystem: true');
  const drop = (own['capabilities'] as { drop?: string[] } | undefined)?.drop ?? [];
  if (!drop.includes('ALL')) problems.push('capabilities.drop: [ALL]');
  if (((own['capabilities'] as { add?: string[] } | undefined)?.add ?? []).length > 0) problems.push('no added capabilities');
  const seccomp = (either('seccompProfile') as { type?: string } | undefined)?.type;
  if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') problems.push('seccompProfile RuntimeDefault');
  return problems;
}

test('every container runs under a restricted security context: non-root, read-only root, no escalation, no capabilities, seccomp', () => {
  const problems = templates.flatMap((t) => allContainers(t.spec).flatMap((c) => securityProblems(t, c).map((p) => `${owner(t)} ${c.name}: ${p}`)));
  assert.deepEqual(problems, []);
});

test('the security check can fail: a container without its security context is reported on every rule', () => {
  const t = templates.find(isKnative)!;
  const c = { ...t.spec.containers[0]!, securityContext: undefined };
  assert.deepEqual(securityProblems(t, c), [
    'runAsNonRoot: true',
    'allowPrivilegeEscalation: false',
    'readOnlyRootFilesystem: true',
    'capabilities.drop: [ALL]',
    'seccompProfile RuntimeDefault',
  ]);
});

test('Knative revision templates set the security context on the container (a pod-level one needs a Knative feature flag)', () => {
  const withPodLevel = templates.filter((t) => isKnative(t) && t.spec['securityContext'] !== undefined).map(owner);
  assert.deepEqual(withPodLevel, []);
});

test('pods whose account has no role mount no service-account token; those with one do', () => {
  const bound = new Set(
    objects
      .filter((o) => o.kind === 'RoleBinding' || o.kind === 'ClusterRoleBinding')
      .flatMap((b) => ((b['subjects'] ?? []) as Array<{ kind: string; name: string; namespace?: string }>).filter((s) => s.kind === 'ServiceAccount'))
      .map((s) => `${s.namespace}/${s.name}`),
  );
  const problems: string[] = [];
  for (const t of templates) {
    const name = t.spec.serviceAccountName;
    if (!name) {
      problems.push(`${owner(t)}: runs as the namespace's default account`);
      continue;
    }
    const account = findObject(objects, 'ServiceAccount', name, t.namespace);
    const mounts = t.spec.automountServiceAccountToken ?? (account['automountServiceAccountToken'] as boolean | undefined) ?? true;
    const needs = bound.has(`${t.namespace}/${name}`);
    if (mounts !== needs) problems.push(`${owner(t)} (account ${name}, ${needs ? 'has a role' : 'no role'}): token ${mounts ? 'mounted' : 'not mounted'}`);
    if (!needs && account['automountServiceAccountToken'] !== false)
      problems.push(`ServiceAccount ${t.namespace}/${name}: automountServiceAccountToken: false`);
  }
  assert.deepEqual(problems, []);
});

test('images are pinned by tag or digest, never latest (bare names are Skaffold artifacts: skaffold.test.ts)', () => {
  const problems = templates.flatMap((t) =>
    allContainers(t.spec).flatMap((c) => {
      const image = c.image;
      if (!image.includes('/') && !image.includes(':')) return [];
      const pinned = /@sha256:[0-9a-f]{64}$/.test(image) || /:[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(image.split('/').at(-1)!);
      return !pinned || /:latest$/.test(image) ? [`${owner(t)} ${c.name}: ${image}`] : [];
    }),
  );
  assert.deepEqual(problems, []);
});

test('ISO-8601 durations read as Knative reads backoffDelay, timeout and retryAfterMax (rickb777/date period)', () => {
  assert.equal(isoDurationMs('PT0.2S'), 200);
  assert.equal(isoDurationMs('PT2S'), 2_000);
  assert.equal(isoDurationMs('PT1M30S'), 90_000);
  assert.equal(isoDurationMs('PT1H'), 3_600_000);
  assert.equal(isoDurationMs('P1D'), 86_400_000);
  assert.equal(isoDurationMs('P1W'), 7 * 86_400_000);
  assert.equal(isoDurationMs('PT0,5S'), 500);
  // Values Knative's own parser gave (period.Parse, then Duration()): a month is 30.436875 days, a
  // year 365.2425, only the first decimal counts, P0 is zero, a leading + is allowed.
  assert.equal(isoDurationMs('P1M'), 2_629_746_000);
  assert.equal(isoDurationMs('P1Y'), 31_556_952_000);
  assert.equal(isoDurationMs('P2Y3M1W4DT5H6M7.8S'), 71_971_909_800);
  assert.equal(isoDurationMs('PT0.25S'), 200);
  assert.equal(isoDurationMs('P0'), 0);
  assert.equal(isoDurationMs('+PT1S'), 1_000);
  for (const bad of ['', 'P', 'PT', '2s', 'PT2', 'P1DT', '1S', 'PTS', '-PT1S', 'PT1S1M']) {
    assert.throws(() => isoDurationMs(bad), /duration|negative/, bad);
  }
});

test("deliveryPolicy: the one reader of a delivery spec, every field Knative's dispatcher uses, checked", () => {
  const dls = { ref: { apiVersion: 'serving.knative.dev/v1', kind: 'Service', name: 'snapshot' }, uri: '/dead-letters' };
  assert.deepEqual(
    deliveryPolicy({ retry: 2, backoffPolicy: 'linear', backoffDelay: 'PT0.5S', timeout: 'PT30S', retryAfterMax: 'PT1M', deadLetterSink: dls }),
    {
      retry: 2,
      backoffPolicy: 'linear',
      backoffDelay: 'PT0.5S',
      backoffDelayMs: 500,
      timeout: 'PT30S',
      timeoutMs: 30_000,
      retryAfterMax: 'PT1M',
      retryAfterMaxMs: 60_000,
      deadLetterSink: dls,
    },
  );
  assert.deepEqual(deliveryPolicy(undefined), { retry: 0 });
  assert.deepEqual(deliveryPolicy({}), { retry: 0 });
  assert.throws(() => deliveryPolicy({ retry: 1.5 }, 'Trigger x'), /^Error: Trigger x\.retry must be a whole number/);
  assert.throws(() => deliveryPolicy({ retry: '3' }), /delivery\.retry/);
  assert.throws(() => deliveryPolicy({ backoffPolicy: 5 }), /delivery\.backoffPolicy must be exponential or linear, got 5/);
  // A value of the wrong type is refused naming its field, not ignored.
  assert.throws(() => deliveryPolicy({ backoffDelay: 2 }), /delivery\.backoffDelay must be an ISO-8601 duration/);
  assert.throws(() => deliveryPolicy({ timeout: '30s' }), /delivery\.timeout: "30s" is not an ISO-8601 duration/);
  assert.throws(() => deliveryPolicy({ retryAfterMax: '-PT1S' }), /delivery\.retryAfterMax: .* is negative/);
  assert.throws(() => deliveryPolicy({ deadLetterSink: {} }), /delivery\.deadLetterSink has neither ref nor uri/);
  // One wait at a time, as the local dispatcher asks for it, and the same waits as the list.
  assert.deepEqual(
    [0, 1, 2, 3].map((i) => retryDelayMs({ backoffPolicy: 'exponential', backoffDelayMs: 1_000 }, i)),
    [1_000, 2_000, 4_000, 8_000],
  );
  assert.equal(retryDelayMs({ backoffDelayMs: 1_000 }, 2), 0);
  assert.equal(retryDelayMs({ backoffPolicy: 'linear' }, 2), 0);
  assert.deepEqual(retryDelaysMs({ retry: 0, backoffPolicy: 'exponential', backoffDelayMs: 1_000 }), []);
});

test("platform/manifests: kinds as kubectl reads them, generated names, durations and Knative's backoff", () => {
  assert.equal(findObject(objects, 'Service', 'prometheus', 'monitoring').apiVersion, 'v1');
  assert.equal(findObject(objects, 'Service.serving.knative.dev', 'snapshot', 'promsnap').apiVersion, 'serving.knative.dev/v1');
  assert.throws(() => findObject(objects, 'Service', 'snapshot', 'promsnap'), /has no Service promsnap\/snapshot/);
  const twoGroups: KubeObject[] = [
    { apiVersion: 'a.example/v1', kind: 'Thing', metadata: { name: 'x' } },
    { apiVersion: 'b.example/v1', kind: 'Thing', metadata: { name: 'x' } },
  ];
  assert.throws(() => findObject(twoGroups, 'Thing', 'x'), /ambiguous: say Thing\.a\.example or Thing\.b\.example/);
  assert.throws(() => parseObjects('kind: Thing\n'), /not a Kubernetes object/);
  assert.equal(isoDurationMs('PT1S'), 1000);
  assert.equal(isoDurationMs('PT0.2S'), 200);
  assert.equal(isoDurationMs('P1DT1H1M1.5S'), 90_061_500);
  assert.throws(() => isoDurationMs('1s'), /not an ISO-8601 duration/);
  assert.throws(() => isoDurationMs('PT'), /not an ISO-8601 duration/);
  assert.throws(() => isoDurationMs('P1S'), /not an ISO-8601 duration/);
  // Knative's dispatcher (pkg/kncloudevents/retries.go): attempt i from 0, exponential d*2^i, linear d*i.
  assert.deepEqual(retryDelaysMs({ retry: 3, backoffPolicy: 'exponential', backoffDelayMs: 200 }), [200, 400, 800]);
  assert.deepEqual(retryDelaysMs({ retry: 3, backoffPolicy: 'linear', backoffDelayMs: 200 }), [0, 200, 400]);
  assert.deepEqual(clusterAddress('http://prometheus.monitoring.svc.cluster.local:9090'), { service: 'prometheus', namespace: 'monitoring', port: 9090 });
  assert.deepEqual(clusterAddress('http://minio.promsnap:9000/x'), { service: 'minio', namespace: 'promsnap', port: 9000 });
  assert.equal(clusterAddress('http://127.0.0.1:9000'), undefined);
  assert.equal(knativeService(objects, 'simulation').port, 8080);
});

test('objectsYaml writes what kubectl reads back unchanged (YAML 1.1: on, yes, y and the like stay strings)', () => {
  const asKubectlReads = (text: string) => parseAllDocuments(text, { version: '1.1' }).map((doc) => doc.toJS() as unknown);
  // The rendered platform has such a string: minio-setup's `mc alias set ... --path on`.
  assert.ok(JSON.stringify(objects).includes('"on"'), 'the platform renders a bare-looking "on"');
  assert.deepEqual(asKubectlReads(objectsYaml(objects)), objects);
  const tricky = ['on', 'off', 'yes', 'no', 'y', 'N', 'true', '1.0', '010', '0x1F', '1_000', '12:30', '~', 'null', '', '2001-12-14'];
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'c', image: 'c:1', args: tricky }] } };
  assert.deepEqual(asKubectlReads(objectsYaml([pod])), [pod]);
  // What the yaml package writes by default would not survive: the reason objectsYaml exists.
  assert.notDeepEqual(asKubectlReads(stringify(pod)), [pod]);
});
