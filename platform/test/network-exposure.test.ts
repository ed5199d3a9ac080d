// What the platform exposes, and to whom, proven on a real kube-apiserver with the pinned Knative CRDs:
// the NetworkPolicies are accepted and select the pods they mean (the API server evaluates every
// selector against pods carrying the rendered templates' labels; a policy or peer that selects nothing
// fails), the flows the platform needs are allowed and the ones it does not are refused, the snapshot
// Knative Service's Route would be cluster-local (read from the rendered object with Knative Serving's
// own rule, its harness not being here), and Prometheus is a NodePort only with the opt-in component.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestApiServer } from '../testing/apiserver.js';
import {
  clusterAddress,
  describeObject,
  field,
  findObject,
  knativeService,
  objectsOfKind,
  parseObjects,
  podTemplates,
  prometheusSetup,
  renderPlatform,
  servicePorts,
  type KubeObject,
  type PodTemplate,
} from '../manifests/index.js';
import { MissingToolError } from '../tools/find.js';
import { kustomize } from '../tools/kubectl.js';
import { toolDir, versions } from '../tools/versions.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const applyArgs = ['apply', '--server-side', '--field-manager=promsnap', '--validate=strict'];

// ---- NetworkPolicy as the API defines it (networking.k8s.io/v1) ------------------------------------

interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }>;
}
interface PolicyPeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: { cidr: string; except?: string[] };
}
interface PolicyPort {
  protocol?: string;
  port?: number | string;
  endPort?: number;
}
interface IngressRule {
  from?: PolicyPeer[];
  ports?: PolicyPort[];
}
interface NetworkPolicySpec {
  podSelector: LabelSelector;
  policyTypes?: string[];
  ingress?: IngressRule[];
}

/** A label selector as kubectl's -l takes it. */
function selectorString(selector: LabelSelector): string {
  const terms = Object.entries(selector.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of selector.matchExpressions ?? []) {
    const values = (e.values ?? []).join(',');
    terms.push({ In: `${e.key} in (${values})`, NotIn: `${e.key} notin (${values})`, Exists: e.key, DoesNotExist: `!${e.key}` }[e.operator]);
  }
  return terms.join(',');
}

// ---- the pods a cluster would run, as the API server stores them -----------------------------------

/** A pod on the test API server: where it lives, its labels, and the ports its containers declare. */
interface PodRef {
  id: string;
  namespace: string;
  /** Container ports by number, with their names (for named ports in policies). */
  ports: Array<{ name?: string; containerPort: number }>;
}

/** What Knative Serving adds to a revision's pods besides the template's labels (enough to tell them apart). */
function knativeLabels(template: PodTemplate): Record<string, string> {
  return template.owner.apiVersion.startsWith('serving.knative.dev/') ? { 'serving.knative.dev/service': template.owner.metadata.name } : {};
}

/**
 * A Pod carrying a template's labels, so the API server can say which policies select it. Its spec is a
 * minimal one that passes Pod Security "restricted": labels are what selectors read.
 */
function standInPod(name: string, namespace: string, labels: Record<string, string>, ports: PodRef['ports'], serviceAccountName = 'default'): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels },
    spec: {
      serviceAccountName,
      automountServiceAccountToken: false,
      securityContext: { runAsNonRoot: true, runAsUser: 65534, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [
        {
          name: 'stand-in',
          image: 'registry.k8s.io/pause:3.10',
          ports: ports.map((p) => ({ ...(p.name ? { name: p.name } : {}), containerPort: p.containerPort })),
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
        },
      ],
    },
  };
}

test(`network exposure on kube-apiserver ${versions.kubernetes} with Knative Serving ${versions.knativeServing} CRDs`, async (t) => {
  const [api, { objects, yaml }] = await Promise.all([startTestApiServer(), renderPlatform()]);
  t.after(() => api.stop());
  const manifestFile = path.join(api.dir, 'platform.yaml');
  await writeFile(manifestFile, yaml);
  const policies = objectsOfKind(objects, 'NetworkPolicy.networking.k8s.io');

  await t.test('every NetworkPolicy is accepted by server-side apply with strict validation, with the rest of the platform', async () => {
    const applied = await api.kubectlWith({ allowFailure: true }, ...applyArgs, '-f', manifestFile, '-o', 'name');
    assert.equal(applied.code, 0, applied.stderr);
    const live = (await api.kubectl('get', 'networkpolicies', '-A', '-o', 'name')).stdout.split('\n').filter(Boolean);
    assert.equal(live.length, policies.length);
    assert.deepEqual(policies.map((p) => `${p.metadata.namespace}/${p.metadata.name}`).sort(), [
      'monitoring/default-deny-ingress',
      'monitoring/kube-state-metrics',
      'monitoring/prometheus',
      'promsnap/default-deny-ingress',
      'promsnap/minio',
      'promsnap/simulation',
      'promsnap/snapshot',
    ]);
  });

  // Pods with the rendered templates' labels, and stand-ins for the pods of Knative and of everyone
  // else, in namespaces the API server labels as a cluster's are (kubernetes.io/metadata.name).
  const pods: PodRef[] = [];
  const ours = new Map<string, PodRef>();
  for (const template of podTemplates(objects)) {
    const name = `${template.owner.metadata.name}-pod`;
    const ports = template.spec.containers.flatMap((c) =>
      (c.ports ?? []).map((p) => ({ ...(p.name ? { name: p.name } : {}), containerPort: p.containerPort })),
    );
    const labels = { ...template.labels, ...knativeLabels(template) };
    await api.kubectlWith(
      { input: JSON.stringify(standInPod(name, template.namespace, labels, ports, template.spec.serviceAccountName)) },
      'create',
      '-f',
      '-',
    );
    const pod = { id: `${template.namespace}/${name}`, namespace: template.namespace, ports };
    pods.push(pod);
    ours.set(template.owner.metadata.name, pod);
  }
  const others = {
    activator: { namespace: 'knative-serving', labels: { app: 'activator' } },
    autoscaler: { namespace: 'knative-serving', labels: { app: 'autoscaler' } },
    gateway: { namespace: 'kourier-system', labels: { app: '3scale-kourier-gateway' } },
    brokerFilter: { namespace: 'knative-eventing', labels: { 'eventing.knative.dev/brokerRole': 'filter' } },
    stranger: { namespace: 'default', labels: { app: 'something-else' } },
    strangerInPromsnap: { namespace: 'promsnap', labels: { app: 'something-else' } },
  };
  const other: Record<keyof typeof others, PodRef> = {} as Record<keyof typeof others, PodRef>;
  for (const ns of new Set(Object.values(others).map((o) => o.namespace))) {
    if (!objects.some((o) => o.kind === 'Namespace' && o.metadata.name === ns)) await api.kubectlWith({ allowFailure: true }, 'create', 'namespace', ns);
    // A cluster's controller-manager creates each namespace's default account; none runs here.
    await api.kubectlWith({ allowFailure: true }, 'create', 'serviceaccount', 'default', '-n', ns);
  }
  for (const [key, { namespace, labels }] of Object.entries(others)) {
    const name = `${key.toLowerCase()}-pod`;
    await api.kubectlWith({ input: JSON.stringify(standInPod(name, namespace, labels, [])) }, 'create', '-f', '-');
    other[key as keyof typeof others] = { id: `${namespace}/${name}`, namespace, ports: [] };
    pods.push(other[key as keyof typeof others]);
  }

  /** The pods the API server selects: in `namespaces` (all if undefined) matching the selector. */
  const selectPods = async (selector: LabelSelector, namespaces?: string[]): Promise<Set<string>> => {
    const listed = await api.kubectl(
      'get',
      'pods',
      '-A',
      '-l',
      selectorString(selector),
      '-o',
      'jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}{"\\n"}{end}',
    );
    return new Set(listed.stdout.split('\n').filter((id) => id && (namespaces === undefined || namespaces.includes(id.split('/')[0]!))));
  };
  const selectNamespaces = async (selector: LabelSelector): Promise<string[]> =>
    (await api.kubectl('get', 'namespaces', '-l', selectorString(selector), '-o', 'jsonpath={.items[*].metadata.name}')).stdout.split(' ').filter(Boolean);

  interface Evaluated {
    policy: KubeObject;
    spec: NetworkPolicySpec;
    selected: Set<string>;
    /** Per ingress rule, per peer: the pods it admits (undefined: no `from`, any source). */
    peers: Array<Array<Set<string>> | undefined>;
  }
  /** A policy with every selector evaluated by the API server, and the problems: what selects nothing. */
  const evaluate = async (policy: KubeObject): Promise<{ evaluated: Evaluated; problems: string[] }> => {
    const spec = policy['spec'] as NetworkPolicySpec;
    const namespace = policy.metadata.namespace!;
    const problems: string[] = [];
    const selected = await selectPods(spec.podSelector, [namespace]);
    if (selected.size === 0) problems.push(`${describeObject(policy)}: podSelector ${JSON.stringify(spec.podSelector)} selects no pod`);
    if ('app.kubernetes.io/version' in (spec.podSelector.matchLabels ?? {})) problems.push(`${describeObject(policy)}: podSelector names the version`);
    const peers: Evaluated['peers'] = [];
    for (const [r, rule] of (spec.ingress ?? []).entries()) {
      if (!rule.from) {
        peers.push(undefined);
        continue;
      }
      const sets: Array<Set<string>> = [];
      for (const [p, peer] of rule.from.entries()) {
        assert.equal(peer.ipBlock, undefined, 'the platform names pods and namespaces, never addresses');
        const namespaces = peer.namespaceSelector ? await selectNamespaces(peer.namespaceSelector) : [namespace];
        const admitted = await selectPods(peer.podSelector ?? {}, namespaces);
        if (admitted.size === 0) problems.push(`${describeObject(policy)}: ingress[${r}].from[${p}] ${JSON.stringify(peer)} selects no pod`);
        sets.push(admitted);
      }
      peers.push(sets);
      // A named port must be a port the selected pods declare, or the rule opens nothing.
      for (const port of rule.ports ?? []) {
        if (typeof port.port !== 'string') continue;
        for (const id of selected) {
          if (!pods.find((pod) => pod.id === id)?.ports.some((cp) => cp.name === port.port))
            problems.push(`${describeObject(policy)}: port ${port.port} is no port of ${id}`);
        }
      }
    }
    return { evaluated: { policy, spec, selected, peers }, problems };
  };

  const evaluated: Evaluated[] = [];
  await t.test('each policy, and each peer it admits, selects the pods it means: the API server finds them by the rendered labels', async () => {
    const problems: string[] = [];
    for (const policy of policies) {
      const result = await evaluate(policy);
      problems.push(...result.problems);
      evaluated.push(result.evaluated);
    }
    assert.deepEqual(problems, []);
    // Each workload's own policy selects exactly its own pod.
    for (const name of ['prometheus', 'kube-state-metrics', 'minio', 'simulation', 'snapshot']) {
      const own = evaluated.find((e) => e.policy.metadata.name === name);
      assert.ok(own, `a policy for ${name}`);
      assert.deepEqual([...own.selected], [ours.get(name)!.id], name);
    }
  });

  await t.test('the check can fail: a policy whose selector names a label no pod has is reported', async () => {
    const policy = structuredClone(findObject(objects, 'NetworkPolicy.networking.k8s.io', 'minio', 'promsnap'));
    const spec = policy['spec'] as NetworkPolicySpec;
    spec.podSelector = { matchLabels: { 'app.kubernetes.io/name': 'mino' } };
    spec.ingress![0]!.from![1] = { podSelector: { matchLabels: { 'app.kubernetes.io/name': 'minio-set-up' } } };
    const { problems } = await evaluate(policy);
    assert.equal(problems.length, 2, problems.join('\n'));
    assert.match(problems[0]!, /podSelector .*"mino".* selects no pod/);
    assert.match(problems[1]!, /ingress\[0\]\.from\[1\] .*"minio-set-up".* selects no pod/);
  });

  /**
   * Whether a connection from one pod to another pod's port is allowed, by NetworkPolicy's rules: a
   * pod no ingress policy selects takes anything; one that is selected takes what any of its policies
   * admit (a peer that matches, on a port that matches, by number or by the name of its container port).
   */
  const allowed = (from: PodRef, to: PodRef, port: number): boolean => {
    const applying = evaluated.filter((e) => e.selected.has(to.id) && (e.spec.policyTypes ?? ['Ingress']).includes('Ingress'));
    if (applying.length === 0) return true;
    const portMatches = (p: PolicyPort) =>
      p.port === undefined || p.port === port || (typeof p.port === 'string' && to.ports.some((cp) => cp.name === p.port && cp.containerPort === port));
    return applying.some((e) =>
      (e.spec.ingress ?? []).some((rule, r) => {
        const peers = e.peers[r];
        const peerMatches = peers === undefined || peers.some((set) => set.has(from.id));
        return peerMatches && (rule.ports === undefined || rule.ports.some(portMatches));
      }),
    );
  };
  const pod = (name: string) => ours.get(name) ?? assert.fail(`no pod of ${name}`);

  /** A cluster URL's Service, followed to the container port its targetPort names on the pods behind it. */
  const backendPort = (url: string): { to: PodRef; port: number } => {
    const address = clusterAddress(url);
    assert.ok(address, url);
    const service = findObject(objects, 'Service', address.service, address.namespace);
    const servicePort = servicePorts(objects, address.service, address.namespace).find((p) => p.port === address.port)!;
    const selector = (service['spec'] as { selector: Record<string, string> }).selector;
    const template = podTemplates(objects).find((t) => t.namespace === address.namespace && Object.entries(selector).every(([k, v]) => t.labels[k] === v))!;
    const to = pod(template.owner.metadata.name);
    const target = servicePort.targetPort ?? servicePort.port;
    const port = typeof target === 'number' ? target : to.ports.find((p) => p.name === target)!.containerPort;
    return { to, port };
  };

  await t.test('every flow the platform needs is allowed, each derived from the manifests', () => {
    const flows: Array<{ what: string; from: PodRef; to: PodRef; port: number }> = [];
    const fn = knativeService(objects, 'snapshot').env.env;
    flows.push({ what: 'the snapshot function queries Prometheus (PROMETHEUS_URL)', from: pod('snapshot'), ...backendPort(fn['PROMETHEUS_URL']!) });
    flows.push({ what: 'the snapshot function writes to MinIO (S3_ENDPOINT)', from: pod('snapshot'), ...backendPort(fn['S3_ENDPOINT']!) });
    const setup = JSON.stringify(field(findObject(objects, 'Job', 'minio-setup', 'promsnap'), 'spec', 'template', 'spec'));
    const setupUrl = /http:\/\/minio\.promsnap\.svc\.cluster\.local:\d+/.exec(setup)?.[0];
    assert.ok(setupUrl, 'the setup Job names MinIO');
    flows.push({ what: 'the minio-setup Job prepares MinIO', from: pod('minio-setup'), ...backendPort(setupUrl) });
    // Prometheus's scrapes: annotated pod templates and Services, and the static targets.
    for (const template of podTemplates(objects).filter((t) => t.annotations['prometheus.io/scrape'] === 'true')) {
      flows.push({
        what: `Prometheus scrapes ${template.owner.metadata.name}`,
        from: pod('prometheus'),
        to: pod(template.owner.metadata.name),
        port: Number(template.annotations['prometheus.io/port']),
      });
    }
    for (const service of objectsOfKind(objects, 'Service').filter((s) => s.metadata.annotations?.['prometheus.io/scrape'] === 'true')) {
      const url = `http://${service.metadata.name}.${service.metadata.namespace}.svc.cluster.local:${service.metadata.annotations!['prometheus.io/port']}`;
      flows.push({ what: `Prometheus scrapes Service ${service.metadata.name}`, from: pod('prometheus'), ...backendPort(url) });
    }
    for (const job of prometheusSetup(objects).config.scrape_configs ?? []) {
      for (const target of ((job['static_configs'] ?? []) as Array<{ targets: string[] }>).flatMap((c) => c.targets)) {
        if (target.startsWith('localhost:')) continue;
        flows.push({ what: `Prometheus scrapes ${target} (job ${job.job_name})`, from: pod('prometheus'), ...backendPort(`http://${target}`) });
      }
    }
    // Knative Serving in front of both Knative Services: the gateway and the activator send requests to
    // queue-proxy (8012), the autoscaler reads its metrics (9090).
    for (const name of ['simulation', 'snapshot']) {
      flows.push({ what: `the networking layer's gateway reaches ${name}`, from: other.gateway, to: pod(name), port: 8012 });
      flows.push({ what: `the activator reaches ${name}`, from: other.activator, to: pod(name), port: 8012 });
      flows.push({ what: `the autoscaler reads ${name}'s queue-proxy metrics`, from: other.autoscaler, to: pod(name), port: 9090 });
    }
    assert.ok(flows.length >= 13, `${flows.length} flows`);
    const refused = flows.filter((f) => !allowed(f.from, f.to, f.port)).map((f) => `${f.what}: ${f.from.id} -> ${f.to.id}:${f.port}`);
    assert.deepEqual(refused, [], 'needed but refused');
  });

  await t.test('everything else is refused: other pods, other ports, the consoles, and Knative bypassed', () => {
    const flows: Array<[string, PodRef, PodRef, number]> = [
      ['a pod elsewhere in the cluster queries Prometheus', other.stranger, pod('prometheus'), 9090],
      ['the simulation queries Prometheus', pod('simulation'), pod('prometheus'), 9090],
      ['a pod elsewhere reads kube-state-metrics', other.stranger, pod('kube-state-metrics'), 8080],
      ["Prometheus reaches kube-state-metrics's telemetry port (no job scrapes it)", pod('prometheus'), pod('kube-state-metrics'), 8081],
      ['the snapshot function reads kube-state-metrics', pod('snapshot'), pod('kube-state-metrics'), 8080],
      ['a pod elsewhere reaches MinIO', other.stranger, pod('minio'), 9000],
      ['another pod in promsnap reaches MinIO', other.strangerInPromsnap, pod('minio'), 9000],
      ['the simulation reaches MinIO', pod('simulation'), pod('minio'), 9000],
      ["the snapshot function opens MinIO's console", pod('snapshot'), pod('minio'), 9001],
      ["Prometheus opens MinIO's console", pod('prometheus'), pod('minio'), 9001],
      ["a pod elsewhere calls the snapshot function's container, skipping Knative", other.stranger, pod('snapshot'), 8080],
      ["a pod elsewhere calls the snapshot function's queue-proxy directly", other.stranger, pod('snapshot'), 8012],
      ["the broker filter calls the function's container directly", other.brokerFilter, pod('snapshot'), 8080],
      ['the simulation calls the snapshot function directly', pod('simulation'), pod('snapshot'), 8080],
      ['the gateway reaches the snapshot container, skipping queue-proxy', other.gateway, pod('snapshot'), 8080],
      ['a pod elsewhere calls the simulation directly', other.stranger, pod('simulation'), 8080],
    ];
    const open = flows.filter(([, from, to, port]) => allowed(from, to, port)).map(([what, from, to, port]) => `${what}: ${from.id} -> ${to.id}:${port}`);
    assert.deepEqual(open, [], 'allowed but not needed');
    // Every pod of the platform is isolated: selected by at least one ingress policy.
    const open2 = [...ours.values()].filter((p) => !evaluated.some((e) => e.selected.has(p.id))).map((p) => p.id);
    assert.deepEqual(open2, [], 'pods no policy selects take connections from anywhere');
  });

  await t.test("the snapshot Route would be cluster-local and the simulation's public, by Knative Serving's own rule", async () => {
    // Knative's Service reconciler makes the Route with the Service's labels (MakeRoute), and the Route's
    // domain is the cluster-local one when the visibility label says cluster-local (LookupDomainForLabels).
    const makeRoute = knativeSource('pkg/reconciler/service/resources/route.go');
    assert.match(
      makeRoute,
      /Labels: (?:kmap\.Union|kmeta\.UnionMaps)\(service\.GetLabels\(\), map\[string\]string\{\s*(?:\/\/[^\n]*\s*)*serving\.ServiceLabelKey: service\.Name,/,
    );
    const domain = knativeSource('pkg/reconciler/route/config/domain.go');
    assert.match(
      domain,
      /if labels\[networking\.VisibilityLabelKey\] == serving\.VisibilityClusterLocal \{\s*return "svc\." \+ network\.GetClusterDomainName\(\)/,
    );
    const value = /VisibilityClusterLocal = "([^"]+)"/.exec(knativeSource('pkg/apis/serving/register.go'))?.[1];
    assert.equal(value, 'cluster-local');
    // networking.VisibilityLabelKey lives in knative.dev/networking; its key is documented in the domain ConfigMap.
    const key = /"(networking\.knative\.dev\/visibility)=cluster-local"/.exec(knativeSource('config/core/configmaps/domain.yaml'))?.[1];
    assert.equal(key, 'networking.knative.dev/visibility');

    const routeOf = (name: string): KubeObject => {
      const service = findObject(objects, 'Service.serving.knative.dev', name, 'promsnap');
      return {
        apiVersion: 'serving.knative.dev/v1',
        kind: 'Route',
        metadata: { name, namespace: 'promsnap', labels: { ...service.metadata.labels, 'serving.knative.dev/service': name } },
        spec: { traffic: [{ configurationName: name, latestRevision: true, percent: 100 }] },
      };
    };
    const snapshotRoute = routeOf('snapshot');
    assert.equal(snapshotRoute.metadata.labels?.[key], value, 'the snapshot Route is cluster-local: snapshot.promsnap.svc.cluster.local, nothing outside');
    assert.notEqual(routeOf('simulation').metadata.labels?.[key], value, 'the simulation stays public, the target of hey');
    // The Route as Knative would make it passes Knative's own schema on the API server.
    const dryRun = await api.kubectlWith({ input: JSON.stringify(snapshotRoute), allowFailure: true }, ...applyArgs, '--dry-run=server', '-f', '-');
    assert.equal(dryRun.code, 0, dryRun.stderr);
    // And the Trigger names the Service, whose cluster-local address is where Knative delivers.
    const subscriber = field(findObject(objects, 'Trigger.eventing.knative.dev', 'snapshot', 'promsnap'), 'spec', 'subscriber', 'ref') as {
      kind: string;
      name: string;
    };
    assert.deepEqual([subscriber.kind, subscriber.name], ['Service', 'snapshot']);
  });

  await t.test('nothing is a NodePort or LoadBalancer by default; the nodeport component opens Prometheus on 30900, and says so', async () => {
    const exposed = objectsOfKind(objects, 'Service').filter((s) => ['NodePort', 'LoadBalancer'].includes(String(field(s, 'spec', 'type'))));
    assert.deepEqual(exposed.map(describeObject), []);

    const overlay = path.join(api.dir, 'nodeport-overlay');
    await mkdir(overlay, { recursive: true });
    await writeFile(
      path.join(overlay, 'kustomization.yaml'),
      [
        'apiVersion: kustomize.config.k8s.io/v1beta1',
        'kind: Kustomization',
        // As README tells a user to write their own overlay (kustomize takes relative paths only).
        `resources: [${JSON.stringify(path.relative(overlay, path.join(repoRoot, 'platform')))}]`,
        `components: [${JSON.stringify(path.relative(overlay, path.join(repoRoot, 'platform/monitoring/nodeport')))}]`,
        '',
      ].join('\n'),
    );
    const withComponent = parseObjects(await kustomize(overlay), 'the nodeport overlay');
    const ports = servicePorts(withComponent, 'prometheus', 'monitoring');
    assert.equal(field(findObject(withComponent, 'Service', 'prometheus', 'monitoring'), 'spec', 'type'), 'NodePort');
    assert.deepEqual(
      ports.map((p) => [p.name, p.port, p.targetPort, p.nodePort]),
      [['web', 9090, 'web', 30900]],
    );
    const opened = findObject(withComponent, 'NetworkPolicy.networking.k8s.io', 'prometheus-nodeport', 'monitoring');
    const rules = (opened['spec'] as NetworkPolicySpec).ingress ?? [];
    assert.ok(
      rules.every((r) => r.from === undefined),
      'a NodePort client can come from anywhere: the policy admits any source',
    );
    assert.equal(withComponent.length, objects.length + 1, 'the component changes the Service and adds its policy, nothing else');
    const file = path.join(overlay, 'rendered.yaml');
    await writeFile(file, await kustomize(overlay));
    const applied = await api.kubectlWith({ allowFailure: true }, ...applyArgs, '--dry-run=server', '-f', file);
    assert.equal(applied.code, 0, applied.stderr);
  });
});

/** A file of the pinned Knative Serving's sources, as provision.sh knative-crds keeps them. */
function knativeSource(file: string): string {
  const full = path.join(toolDir('knative-serving-src'), 'src', file);
  if (!existsSync(full)) throw new MissingToolError(`Knative Serving sources (${full})`, 'bash platform/tools/provision.sh knative-crds');
  return readFileSync(full, 'utf8');
}
