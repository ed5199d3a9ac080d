// The platform's manifests on a real kube-apiserver with the pinned Knative CRDs: accepted with strict
// field validation, idempotent, Pod Security "restricted" everywhere (Knative Services included), and
// every service account held to least privilege by the real RBAC authorizer. No cluster needed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import {
  AccessReviewer,
  beyondBaseline,
  describeAccess,
  describeRule,
  serviceAccountSubject,
  type Access,
  type FlatRule,
  type ResourceAccess,
  type Rules,
} from '../testing/access.js';
import { kubeStateMetricsNeeds, prometheusNeeds, type Needs } from '../testing/api-needs.js';
import { startTestApiServer, type KubectlResult, type TestApiServer } from '../testing/apiserver.js';
import {
  allContainers,
  describeObject,
  groupOf,
  mountsToken,
  namespacesOf,
  objectsOfKind,
  renderPlatform,
  podTemplates,
  serviceAccounts,
  type KubeObject,
  type PodTemplate,
  type ServiceAccountRef,
} from '../manifests/index.js';
import { versions } from '../tools/versions.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const applyArgs = ['apply', '--server-side', '--field-manager=promsnap', '--validate=strict'];

test(`the platform on kube-apiserver ${versions.kubernetes} with Knative Serving ${versions.knativeServing} and Eventing ${versions.knativeEventing} CRDs`, async (t) => {
  const api = await startTestApiServer();
  t.after(() => api.stop());
  const { etcdMs, apiServerMs, crdsMs, totalMs } = api.timings;
  t.diagnostic(`API server ready in ${totalMs} ms (etcd ${etcdMs}, kube-apiserver ${apiServerMs}, ${api.crds.length} CRDs ${crdsMs})`);

  // Rendered as a fresh clone renders it: missing credentials are created first (renderPlatform).
  const { yaml: rendered, objects } = await renderPlatform();
  const manifestFile = path.join(api.dir, 'platform.yaml');
  await writeFile(manifestFile, rendered);
  const namespaces = [...new Set([...namespacesOf(objects), 'default', 'kube-system'])].sort();
  const reviewer = new AccessReviewer(api.kubeconfigPath);
  // What an account the platform does not know gets on a stock cluster, per namespace, read before
  // the platform is applied: the yardstick for "no rights" and "nothing else".
  const stockRules = new Map<string, Rules>();
  for (const ns of namespaces) stockRules.set(ns, await reviewer.rules(`system:serviceaccount:${ns}:promsnap-unknown`, ns));

  let firstApply: KubectlResult | undefined;

  await t.test('every rendered object is accepted by server-side apply with strict field validation', async () => {
    firstApply = await api.kubectlWith({ allowFailure: true }, ...applyArgs, '-f', manifestFile, '-o', 'name');
    assert.equal(firstApply.code, 0, `apply failed:\n${firstApply.stderr}`);
    const applied = firstApply.stdout.split('\n').filter(Boolean);
    assert.equal(applied.length, objects.length, `applied:\n${applied.join('\n')}`);
    assert.deepEqual(warnings(firstApply), [], 'the API server warned while applying');

    // An object without a namespace of its own lands in whatever namespace the user's context names.
    const live = await liveObjects(api, manifestFile);
    const strays = objects.filter((object, index) => !object.metadata.namespace && live[index]?.metadata.namespace).map(describeObject);
    assert.deepEqual(strays, [], 'namespaced objects without metadata.namespace');
  });

  await t.test('a second apply changes nothing', async () => {
    const before = comparable(await liveObjects(api, manifestFile));
    const again = await api.kubectl(...applyArgs, '-f', manifestFile, '-o', 'name');
    assert.deepEqual(warnings(again), []);
    const after = comparable(await liveObjects(api, manifestFile));
    assert.equal(Object.keys(after).length, objects.length);
    const changed = Object.keys(after).filter((id) => JSON.stringify(after[id]) !== JSON.stringify(before[id]));
    assert.deepEqual(changed, [], 'objects the second apply changed (spec, metadata, generation or field owners)');
  });

  await t.test('a misspelled field anywhere in the tree is rejected, in core kinds and in Knative kinds', async (t) => {
    const targets = [objectsOfKind(objects, 'Deployment.apps')[0], objectsOfKind(objects, 'Service.serving.knative.dev')[0]].filter(
      (o): o is KubeObject => o !== undefined,
    );
    assert.equal(targets.length, 2, 'expected a Deployment and a Knative Service in the manifests');
    for (const target of targets) {
      await t.test(describeObject(target), async () => {
        const copy = await copyWithMisspelling(api, target, 'imagePullPolcy');
        const result = await api.kubectlWith({ allowFailure: true }, ...applyArgs, '--dry-run=server', '-f', copy);
        assert.notEqual(result.code, 0, 'the misspelled field was accepted');
        // Core kinds are refused by server-side apply's typed patch ("field not declared in schema",
        // containers keyed by name), CRDs by strict validation against their schema ("unknown field").
        assert.match(
          result.stderr,
          /spec\.template\.spec\.containers\[(0|name="[^"]+")\]\.imagePullPolcy(: field not declared in schema|" ?$)|unknown field "spec\.template\.spec\.containers\[0\]\.imagePullPolcy"/m,
        );
      });
    }
  });

  await t.test('every namespace is created by the manifests with Pod Security "restricted" enforced', () => {
    const declared = new Map(objects.filter((o) => o.kind === 'Namespace').map((o) => [o.metadata.name, o]));
    for (const ns of namespacesOf(objects)) {
      const namespace = declared.get(ns);
      assert.ok(namespace, `objects live in namespace ${ns}, which the manifests do not create`);
      assert.equal(namespace.metadata.labels?.['pod-security.kubernetes.io/enforce'], 'restricted', `namespace ${ns}`);
    }
  });

  await t.test('applying drew no PodSecurity warning, and a pod template without its security context does', async () => {
    assert.ok(firstApply, 'the first apply ran');
    assert.deepEqual(
      warnings(firstApply).filter((w) => /PodSecurity/.test(w)),
      [],
    );
    // The same admission, shown to object: without this, "no warning" could mean "never looked".
    const deployment = objectsOfKind(objects, 'Deployment.apps')[0];
    assert.ok(deployment);
    const stripped = structuredClone(deployment);
    stripSecurityContext((stripped['spec'] as { template: { spec: Record<string, unknown> } }).template.spec);
    const result = await api.kubectlWith({ input: JSON.stringify(stripped) }, ...applyArgs, '--dry-run=server', '-f', '-');
    assert.match(result.stderr, /would violate PodSecurity "restricted:latest"/);
  });

  await t.test("Knative Services' pod templates meet the restricted profile, as judged by Pod Security admission", async (t) => {
    // Knative's pods are created by its controller, so admission never sees these templates at apply
    // time. A Pod built from each template, created with --dry-run=server in the same namespace, is
    // judged by the real admission plugin against the namespace's own level.
    const templates = podTemplates(objects).filter((p) => groupOf(p.owner) !== 'apps' && groupOf(p.owner) !== 'batch');
    assert.ok(templates.some(isKnativeService), 'no Knative Service found in the manifests');
    for (const template of templates) {
      await t.test(describeObject(template.owner), async () => {
        await ensureServiceAccount(api, template);
        const verdict = await dryRunPod(api, podFromTemplate(template, 'pod-security-check'));
        assert.equal(verdict.code, 0, verdict.stderr);
        assert.deepEqual(warnings(verdict), []);
      });
    }
    await t.test('the check can fail: the same template without its security context is refused', async () => {
      const template = templates.find(isKnativeService)!;
      const pod = podFromTemplate(template, 'pod-security-control');
      stripSecurityContext(pod.spec);
      const verdict = await dryRunPod(api, pod);
      assert.notEqual(verdict.code, 0);
      assert.match(verdict.stderr, /violates PodSecurity "restricted:latest"/);
    });
  });

  const accounts = serviceAccounts(objects);
  const roles = accountRoles(objects, accounts);

  await t.test('every service account a pod runs as is created by the manifests (or is the namespace default)', () => {
    const missing = accounts.filter((a) => a.usedBy.length > 0 && !a.declared && a.name !== 'default');
    assert.deepEqual(
      missing.map((a) => a.username),
      [],
    );
  });

  await t.test('least privilege, asked of the RBAC authorizer, for every service account in the manifests', async (t) => {
    assert.ok(roles.get('prometheus'), 'no Prometheus workload found');
    assert.ok(roles.get('kube-state-metrics'), 'no kube-state-metrics workload found');
    for (const account of accounts) {
      const role = [...roles.entries()].find(([, r]) => r?.account === account)?.[1];
      const runBy = account.usedBy.map((p) => describeObject(p.owner)).join(', ') || 'no pod';
      await t.test(`${account.username} (${role ? role.name : 'no API rights'}; runs ${runBy})`, async (t) => {
        const needs = role?.needs ?? noNeeds();
        if (role) t.diagnostic(`needs from its configuration: ${needs.reasons.join('; ')}`);
        const found = await privilegeFindings(reviewer, account.username, needs, role?.readVerbs ?? [], namespaces, stockRules);
        assert.deepEqual(found.denied, [], 'needed but denied');
        assert.deepEqual(found.excess, [], 'granted but not needed');
        assert.deepEqual(found.forbidden, [], 'allowed but must never be');
      });
    }
    await t.test('the check can fail: an account given a Role that reads secrets and creates pods is caught', async (t) => {
      // A Role of its own: the built-in edit and view roles are aggregated by kube-controller-manager,
      // which does not run here, so they hold no rules.
      const control = { namespace: 'promsnap', name: 'promsnap-privilege-control' };
      await api.kubectl('create', 'role', control.name, '-n', control.namespace, '--verb=get,create', '--resource=secrets,pods');
      await api.kubectl(
        'create',
        'rolebinding',
        control.name,
        '-n',
        control.namespace,
        `--role=${control.name}`,
        `--serviceaccount=${control.namespace}:${control.name}`,
      );
      t.after(() => api.kubectl('delete', 'rolebinding,role', control.name, '-n', control.namespace));
      const username = serviceAccountSubject(control.namespace, control.name).username;
      const found = await privilegeFindings(reviewer, username, noNeeds(), [], namespaces, stockRules);
      assert.ok(found.excess.includes('get secrets -n promsnap'), found.excess.join('\n'));
      assert.ok(found.forbidden.includes('create pods -n promsnap'), found.forbidden.join('\n'));
      assert.deepEqual(
        found.excess.filter((e) => !e.endsWith('-n promsnap')),
        [],
        'a RoleBinding grants in its own namespace only',
      );
    });
    await t.test('an account the manifests do not name gets nothing beyond a stock cluster', async () => {
      for (const ns of namespaces) {
        const extra = beyondBaseline(await reviewer.rules(`system:serviceaccount:${ns}:promsnap-unknown`, ns), stockRules.get(ns)!);
        assert.deepEqual([...extra.resource.map(describeRule), ...extra.nonResource.map(describeAccess)], [], `in ${ns}`);
      }
    });
  });

  await t.test('pods that need no API access mount no service-account token', () => {
    const needToken = new Set([...roles.values()].map((r) => r?.account));
    const mounting = accounts
      .filter((a) => !needToken.has(a))
      .flatMap((a) => a.usedBy.filter((p) => mountsToken(p, a)).map((p) => `${describeObject(p.owner)} (account ${a.name})`));
    assert.deepEqual(mounting, [], 'set automountServiceAccountToken: false on the pod template or its ServiceAccount');
  });
});

function noNeeds(): Needs {
  return { read: [], get: [], nonResource: [], reasons: [] };
}

interface Findings {
  /** Needed but denied. */
  denied: string[];
  /** Granted (beyond a stock cluster's grants to any account) but not needed. */
  excess: string[];
  /** Allowed among the actions no account of ours may ever take. */
  forbidden: string[];
}

/**
 * Asks the authorizer about one service account three ways: each thing it needs (SubjectAccessReview);
 * the complete list of what it may do in each namespace, less what any account gets on a stock
 * cluster, each checked against the needs (SelfSubjectRulesReview); and the actions that matter most
 * (secrets, writes, escalation), each asked directly, so a wildcard rule cannot hide.
 */
async function privilegeFindings(
  reviewer: AccessReviewer,
  username: string,
  needs: Needs,
  readVerbs: string[],
  namespaces: string[],
  stockRules: Map<string, Rules>,
): Promise<Findings> {
  const [, namespace = '', name = ''] = /^system:serviceaccount:([^:]+):(.+)$/.exec(username) ?? [];
  const subject = serviceAccountSubject(namespace, name);
  const required: Access[] = [...needs.read.flatMap((n) => readVerbs.map((verb) => ({ ...n, verb }))), ...needs.get, ...needs.nonResource];
  const denied = await filterAsync(required, async (a) => !(await reviewer.can(subject, a)));

  const excess = new Set<string>();
  for (const ns of namespaces) {
    const extra = beyondBaseline(await reviewer.rules(username, ns), stockRules.get(ns)!);
    for (const rule of extra.resource) {
      if (!ruleNeeded(rule, ns, needs, readVerbs)) excess.add(`${describeRule(rule)} -n ${ns}`);
    }
    for (const rule of extra.nonResource) {
      if (!needs.nonResource.some((n) => n.verb === rule.verb && n.path === rule.path)) excess.add(`${rule.verb} ${rule.path}`);
    }
  }
  const forbidden = await filterAsync(forbiddenProbes(namespaces), (a) => reviewer.can(subject, a));
  return { denied: denied.map(describeAccess), excess: [...excess], forbidden: forbidden.map(describeAccess) };
}

interface Role {
  name: string;
  account: ServiceAccountRef;
  needs: Needs;
  readVerbs: string[];
}

/**
 * The two accounts that need the API, found by the image their pods run, with what each needs read
 * from its own configuration. Every other account is expected to have no rights at all.
 */
function accountRoles(objects: KubeObject[], accounts: ServiceAccountRef[]): Map<string, Role | undefined> {
  const byImage = (fragment: string) => accounts.find((a) => a.usedBy.some((p) => allContainers(p.spec).some((c) => c.image.includes(fragment))));
  const roles = new Map<string, Role | undefined>();

  const prometheus = byImage('prometheus/prometheus');
  if (prometheus) {
    const template = prometheus.usedBy.find((p) => allContainers(p.spec).some((c) => c.image.includes('prometheus/prometheus')))!;
    roles.set('prometheus', {
      name: 'prometheus',
      account: prometheus,
      needs: prometheusNeeds(prometheusConfig(objects, template), template.namespace),
      // Service discovery lists and watches; get reads the same objects, so it is allowed, not required.
      readVerbs: ['list', 'watch'],
    });
  } else roles.set('prometheus', undefined);

  const ksm = byImage('kube-state-metrics');
  if (ksm) {
    const container = ksm.usedBy.flatMap((p) => allContainers(p.spec)).find((c) => c.image.includes('kube-state-metrics'))!;
    roles.set('kube-state-metrics', {
      name: 'kube-state-metrics',
      account: ksm,
      needs: kubeStateMetricsNeeds([...(container.command ?? []), ...(container.args ?? [])]),
      readVerbs: ['list', 'watch'],
    });
  } else roles.set('kube-state-metrics', undefined);
  return roles;
}

/** Whether an extra rule is covered by the needs: reads of needed resources, gets of needed subresources. */
function ruleNeeded(rule: FlatRule, namespace: string, needs: Needs, readVerbs: string[]): boolean {
  const inScope = (n: ResourceAccess) => n.namespace === undefined || n.namespace === namespace;
  if (rule.resource.includes('/')) {
    return needs.get.some((n) => inScope(n) && n.group === rule.group && `${n.resource}/${n.subresource}` === rule.resource && rule.verb === n.verb);
  }
  const verbs = new Set([...readVerbs, 'get']);
  return verbs.has(rule.verb) && needs.read.some((n) => inScope(n) && n.group === rule.group && n.resource === rule.resource);
}

/** Reads of secrets, writes, and the verbs that lead to more rights, in every namespace and cluster-wide. */
function forbiddenProbes(namespaces: string[]): Access[] {
  const scopes = [undefined, ...namespaces];
  const probes: Access[] = [];
  for (const namespace of scopes) {
    const at = (a: ResourceAccess): ResourceAccess => (namespace ? { ...a, namespace } : a);
    for (const verb of ['get', 'list', 'watch']) probes.push(at({ verb, group: '', resource: 'secrets' }));
    for (const [groupName, resource] of [
      ['', 'pods'],
      ['', 'secrets'],
      ['', 'configmaps'],
      ['', 'services'],
      ['', 'serviceaccounts'],
      ['apps', 'deployments'],
      ['serving.knative.dev', 'services'],
      ['sources.knative.dev', 'pingsources'],
      ['eventing.knative.dev', 'triggers'],
      ['rbac.authorization.k8s.io', 'rolebindings'],
    ] as const) {
      for (const verb of ['create', 'update', 'patch', 'delete', 'deletecollection']) probes.push(at({ verb, group: groupName, resource }));
    }
    probes.push(at({ verb: 'create', group: '', resource: 'pods', subresource: 'exec' }));
    probes.push(at({ verb: 'create', group: '', resource: 'serviceaccounts', subresource: 'token' }));
    probes.push(at({ verb: 'get', group: '', resource: 'nodes', subresource: 'proxy' }));
  }
  probes.push({ verb: 'impersonate', group: '', resource: 'users' });
  probes.push({ verb: 'impersonate', group: '', resource: 'serviceaccounts' });
  probes.push({ verb: 'escalate', group: 'rbac.authorization.k8s.io', resource: 'clusterroles' });
  probes.push({ verb: 'bind', group: 'rbac.authorization.k8s.io', resource: 'clusterroles' });
  probes.push({ verb: 'create', group: '', resource: 'nodes' });
  probes.push({ verb: 'update', group: '', resource: 'nodes', subresource: 'status' });
  return probes;
}

/** The prometheus.yml Prometheus's pod mounts, from the ConfigMap its volumes name. */
function prometheusConfig(objects: KubeObject[], template: PodTemplate): string {
  for (const volume of template.spec.volumes ?? []) {
    const configMap = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === volume.configMap?.name && o.metadata.namespace === template.namespace);
    for (const value of Object.values((configMap?.['data'] ?? {}) as Record<string, string>)) {
      const parsed = parseYaml(value) as { scrape_configs?: unknown } | null;
      if (parsed && typeof parsed === 'object' && 'scrape_configs' in parsed) return value;
    }
  }
  throw new Error(`${describeObject(template.owner)} mounts no ConfigMap holding a Prometheus configuration with scrape_configs`);
}

function isKnativeService(template: PodTemplate): boolean {
  return groupOf(template.owner) === 'serving.knative.dev';
}

function warnings(result: KubectlResult): string[] {
  return result.stderr.split('\n').filter((line) => /^Warning:/.test(line));
}

async function liveObjects(api: TestApiServer, file: string): Promise<KubeObject[]> {
  const list = JSON.parse((await api.kubectl('get', '-f', file, '-o', 'json')).stdout) as { items?: KubeObject[] };
  // `get -f` of several objects answers a List; of one, the object itself.
  return list.items ?? [list as unknown as KubeObject];
}

/**
 * Each object as stored, less what moves without a change: resourceVersion, and the time stamps of
 * field owners. Not the resourceVersion alone: kube-apiserver rewrites a PersistentVolumeClaim once
 * on its first update after creation with nothing visible changed (seen with 1.37: the version moves
 * once, never again), which says nothing about the manifests. generation, which moves on every spec
 * change, stays in.
 */
function comparable(objects: KubeObject[]): Record<string, unknown> {
  return Object.fromEntries(
    objects.map((o) => {
      const copy = structuredClone(o) as KubeObject & { metadata: { resourceVersion?: string; managedFields?: Array<{ time?: string }> } };
      delete copy.metadata.resourceVersion;
      for (const entry of copy.metadata.managedFields ?? []) delete entry.time;
      return [describeObject(o), copy];
    }),
  );
}

async function filterAsync<T>(items: T[], keep: (item: T) => Promise<boolean>): Promise<T[]> {
  const kept: T[] = [];
  // A few at a time: each is one request to the API server, which shares two cores with the tests.
  for (let i = 0; i < items.length; i += 16) {
    const batch = items.slice(i, i + 16);
    const verdicts = await Promise.all(batch.map(keep));
    kept.push(...batch.filter((_, j) => verdicts[j]));
  }
  return kept;
}

/**
 * Copies platform/ and adds `field` (a misspelling of imagePullPolicy) to the first container of the
 * object `target` in the source file that defines it, then renders the copy. Patches and optional
 * components also match by kind and name, so the first file whose edit reaches the rendered output wins.
 */
async function copyWithMisspelling(api: TestApiServer, target: KubeObject, field: string): Promise<string> {
  const workDir = path.join(api.dir, `misspelled-${target.kind}-${target.metadata.name}`);
  await mkdir(workDir, { recursive: true });
  const copy = path.join(workDir, 'platform');
  await cp(path.join(repoRoot, 'platform'), copy, {
    recursive: true,
    filter: (source) => !source.endsWith('.ts') && !source.includes(`${path.sep}node_modules`),
  });
  const files = (await readdir(copy, { recursive: true })).filter((f) => /\.ya?ml$/.test(f)).sort();
  for (const file of files) {
    const full = path.join(copy, file);
    const original = await readFile(full, 'utf8');
    const docs = parseAllDocuments(original);
    if (!Array.isArray(docs)) continue;
    const index = docs.findIndex((doc) => {
      const value = doc.toJS() as Partial<KubeObject> | null;
      return value?.kind === target.kind && value.metadata?.name === target.metadata.name && value.apiVersion === target.apiVersion;
    });
    const doc = docs[index];
    if (!doc || !doc.hasIn(['spec', 'template', 'spec', 'containers', 0])) continue;
    doc.setIn(['spec', 'template', 'spec', 'containers', 0, field], 'IfNotPresent');
    await writeFile(full, docs.map((d) => d.toString()).join(''));
    const out = await api.kubectlWith({ cwd: workDir, allowFailure: true }, 'kustomize', 'platform');
    if (out.code === 0 && out.stdout.includes(field)) {
      const renderedFile = path.join(workDir, 'rendered.yaml');
      await writeFile(renderedFile, out.stdout);
      return renderedFile;
    }
    await writeFile(full, original);
  }
  throw new Error(`no file under platform/ defines the containers of ${describeObject(target)}`);
}

/** Removes every securityContext from a pod spec and its containers. */
function stripSecurityContext(spec: Record<string, unknown>): void {
  delete spec['securityContext'];
  for (const key of ['containers', 'initContainers']) {
    for (const container of (spec[key] ?? []) as Array<Record<string, unknown>>) delete container['securityContext'];
  }
}

/** Fields of a Knative revision template that a PodSpec does not have (Knative's RevisionSpec). */
const knativeOnlyFields = ['containerConcurrency', 'timeoutSeconds', 'responseStartTimeoutSeconds', 'idleTimeoutSeconds'];

interface PodObject extends KubeObject {
  spec: Record<string, unknown>;
}

function podFromTemplate(template: PodTemplate, suffix: string): PodObject {
  const spec = structuredClone(template.spec) as Record<string, unknown>;
  for (const field of knativeOnlyFields) delete spec[field];
  // What Knative's defaulting adds that a Pod requires: a name for each container (user-container for
  // the first), and a port for probes that give none (the container's port, 8080 by default).
  for (const [i, container] of ((spec['containers'] ?? []) as Array<Record<string, unknown>>).entries()) {
    container['name'] ??= i === 0 ? 'user-container' : `container-${i}`;
    const ports = (container['ports'] ?? []) as Array<{ containerPort?: number }>;
    const port = ports[0]?.containerPort ?? 8080;
    for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
      const handler = container[probe] as Record<string, { port?: number | string } | undefined> | undefined;
      for (const kind of ['httpGet', 'tcpSocket', 'grpc']) {
        const action = handler?.[kind];
        if (action && action.port === undefined) action.port = port;
      }
    }
  }
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `${template.owner.metadata.name}-${suffix}`, namespace: template.namespace },
    spec,
  };
}

async function dryRunPod(api: TestApiServer, pod: PodObject): Promise<KubectlResult> {
  return api.kubectlWith({ input: JSON.stringify(pod), allowFailure: true }, 'create', '--dry-run=server', '-f', '-');
}

/**
 * Service-account admission refuses a pod whose account does not exist. A cluster's controller-manager
 * creates each namespace's `default` account; no controller runs here, so the test does it.
 */
async function ensureServiceAccount(api: TestApiServer, template: PodTemplate): Promise<void> {
  const name = template.spec.serviceAccountName ?? 'default';
  if (name !== 'default') return;
  await api.kubectlWith({ allowFailure: true }, 'create', 'serviceaccount', 'default', '-n', template.namespace);
}
