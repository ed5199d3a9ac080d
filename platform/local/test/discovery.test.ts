// Local discovery: the pods a cluster would run for the manifests' workloads, announced with the
// __meta_kubernetes_* labels Prometheus's kubernetes_sd gives them, and the manifests' own
// prometheus.yml rewritten to ask the runner for them. The last test gives a real Prometheus that
// configuration, so the manifests' relabel rules themselves decide the target labels.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { findObject, prometheusSetup, renderPlatform } from '../../manifests/index.js';
import { LocalNetwork } from '../addresses.js';
import { endpointSliceTargetGroups, podTargetGroups, sanitizeLabelName, serveDiscovery, targetGroups, type TargetGroup } from '../discovery.js';
import { startPrometheus } from '../../tools/prometheus.js';
import { localScrapeConfig } from '../scrape-config.js';
import { localPod, podTemplateOf, type KubeObject, type LocalPod } from '../workloads.js';
import { waitFor } from '../../tools/wait.js';

// The rendered platform, as the runner reads it: Prometheus's Deployment and the configuration and rules
// in the ConfigMap it mounts.
const rendered = (await renderPlatform()).objects;
const setup = prometheusSetup(rendered);
const prometheusYml = setup.config;
const prometheusDeployment = findObject(rendered, 'Deployment', setup.deployment, setup.namespace) as unknown as KubeObject;

const simulation: KubeObject = {
  apiVersion: 'serving.knative.dev/v1',
  kind: 'Service',
  metadata: { name: 'simulation', namespace: 'promsnap', labels: { 'app.kubernetes.io/name': 'simulation' } },
  spec: {
    template: {
      metadata: {
        labels: { 'app.kubernetes.io/name': 'simulation', 'app.kubernetes.io/component': 'function' },
        annotations: {
          'autoscaling.knative.dev/min-scale': '2',
          'autoscaling.knative.dev/target': '50',
          'prometheus.io/scrape': 'true',
          'prometheus.io/port': '8080',
          'prometheus.io/path': '/metrics',
        },
      },
      spec: { containers: [{ image: 'simulation', ports: [{ containerPort: 8080 }] }] },
    },
  },
};

const minio: KubeObject = {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'minio', namespace: 'promsnap' },
  spec: {
    template: {
      metadata: { labels: { 'app.kubernetes.io/name': 'minio', 'app.kubernetes.io/component': 'storage' } },
      spec: {
        containers: [
          {
            name: 'minio',
            image: 'quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z',
            ports: [
              { name: 'api', containerPort: 9000, protocol: 'TCP' },
              { name: 'console', containerPort: 9001, protocol: 'TCP' },
            ],
          },
        ],
      },
    },
  },
};

const minioService: KubeObject = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: {
    name: 'minio',
    namespace: 'promsnap',
    labels: { 'app.kubernetes.io/name': 'minio' },
    annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9000', 'prometheus.io/path': '/minio/v2/metrics/cluster' },
  },
  spec: {
    selector: { 'app.kubernetes.io/name': 'minio', 'app.kubernetes.io/component': 'storage' },
    ports: [
      { name: 'api', port: 9000, targetPort: 'api', protocol: 'TCP' },
      { name: 'console', port: 9001, targetPort: 'console', protocol: 'TCP' },
    ],
  },
};

const up = { running: () => true, ready: () => true };

function byAddress(groups: TargetGroup[]): Map<string, Record<string, string>> {
  return new Map(groups.map((g) => [g.targets[0]!, g.labels]));
}

test('a Knative Service runs min-scale pods labelled and annotated as Knative Serving makes them', () => {
  const template = podTemplateOf(simulation);
  assert.equal(template.replicas, 2);
  assert.equal(template.labels['serving.knative.dev/service'], 'simulation');
  assert.equal(template.labels['serving.knative.dev/revision'], 'simulation-00001');
  assert.equal(template.labels['app'], 'simulation-00001', 'Knative adds app=<revision> when the template has no app label');
  assert.equal(template.labels['app.kubernetes.io/component'], 'function');
  assert.equal(template.annotations['autoscaling.knative.dev/min-scale'], undefined, 'autoscaling annotations stay on the Revision');
  assert.equal(template.annotations['prometheus.io/scrape'], 'true');
  const [user] = template.containers;
  assert.equal(user!.name, 'user-container');
  assert.deepEqual(user!.ports, [{ name: 'user-port', containerPort: 8080, protocol: 'TCP' }]);
  assert.deepEqual(template.platformEnv, { PORT: '8080', K_SERVICE: 'simulation', K_CONFIGURATION: 'simulation', K_REVISION: 'simulation-00001' });
  assert.match(template.podName(0), /^simulation-00001-deployment-[a-z2-9]{10}-[a-z2-9]{5}$/);
  assert.notEqual(template.podName(0), template.podName(1));
  assert.equal(template.podName(1), podTemplateOf(simulation).podName(1), 'names are stable across restarts');
});

test("role pod: one target per container port at the local port, with the pod's labels and annotations", () => {
  const template = podTemplateOf(simulation);
  const pods = [0, 1].map((i) => localPod(template, i, '127.0.0.1', new Map([[8080, 23450 + i]]), up));
  const targets = byAddress(podTargetGroups(pods));
  assert.deepEqual([...targets.keys()], ['127.0.0.1:23450', '127.0.0.1:23451']);
  const labels = targets.get('127.0.0.1:23451')!;
  assert.equal(labels['__meta_kubernetes_namespace'], 'promsnap');
  assert.equal(labels['__meta_kubernetes_pod_name'], pods[1]!.name);
  assert.equal(labels['__meta_kubernetes_pod_annotation_prometheus_io_scrape'], 'true');
  assert.equal(labels['__meta_kubernetes_pod_annotationpresent_prometheus_io_scrape'], 'true');
  assert.equal(labels['__meta_kubernetes_pod_annotation_prometheus_io_port'], '23451', 'the annotated container port, served locally on 23451');
  assert.equal(labels['__meta_kubernetes_pod_annotation_prometheus_io_path'], '/metrics');
  assert.equal(labels['__meta_kubernetes_pod_label_serving_knative_dev_service'], 'simulation');
  assert.equal(labels['__meta_kubernetes_pod_labelpresent_app_kubernetes_io_name'], 'true');
  assert.equal(labels['__meta_kubernetes_pod_container_name'], 'user-container');
  assert.equal(labels['__meta_kubernetes_pod_container_port_name'], 'user-port');
  assert.equal(labels['__meta_kubernetes_pod_container_port_number'], '23451');
  assert.equal(labels['__meta_kubernetes_pod_container_init'], 'false');
  assert.equal(labels['__meta_kubernetes_pod_phase'], 'Running');
  assert.equal(labels['__meta_kubernetes_pod_ready'], 'true');
  assert.equal(labels['__meta_kubernetes_pod_controller_kind'], 'ReplicaSet');
  assert.equal(labels['__meta_kubernetes_pod_ip'], '127.0.0.1');
  assert.equal(sanitizeLabelName('app.kubernetes.io/name'), 'app_kubernetes_io_name');
});

test('a pod whose process has not started is Pending and not ready, as kubelet reports it', () => {
  const pod = localPod(podTemplateOf(simulation), 0, '127.0.0.1', new Map([[8080, 23450]]), { running: () => false, ready: () => false });
  const [group] = podTargetGroups([pod]);
  assert.equal(group!.labels['__meta_kubernetes_pod_phase'], 'Pending');
  assert.equal(group!.labels['__meta_kubernetes_pod_ready'], 'false');
});

test("role endpointslice: a Service's named targetPort resolves to the selected pod's local port", () => {
  const pod = localPod(
    podTemplateOf(minio),
    0,
    '127.0.0.1',
    new Map([
      [9000, 24000],
      [9001, 24001],
    ]),
    up,
  );
  const network = new LocalNetwork([pod], [minio, minioService]);
  const targets = byAddress(endpointSliceTargetGroups(network, [pod]));
  assert.deepEqual([...targets.keys()].sort(), ['127.0.0.1:24000', '127.0.0.1:24001']);
  const api = targets.get('127.0.0.1:24000')!;
  assert.equal(api['__meta_kubernetes_service_name'], 'minio');
  assert.equal(api['__meta_kubernetes_service_annotation_prometheus_io_path'], '/minio/v2/metrics/cluster');
  assert.equal(api['__meta_kubernetes_service_annotation_prometheus_io_port'], '24000', 'Service port 9000 reaches the pod on local port 24000');
  assert.equal(targets.get('127.0.0.1:24001')!['__meta_kubernetes_service_annotation_prometheus_io_port'], '24000');
  assert.equal(api['__meta_kubernetes_endpointslice_port_name'], 'api');
  assert.equal(api['__meta_kubernetes_endpointslice_label_kubernetes_io_service_name'], 'minio');
  assert.equal(api['__meta_kubernetes_endpointslice_endpoint_conditions_ready'], 'true');
  assert.equal(api['__meta_kubernetes_endpointslice_address_target_kind'], 'Pod');
  assert.equal(api['__meta_kubernetes_pod_name'], pod.name);
  assert.equal(api['__meta_kubernetes_pod_container_port_name'], 'api');
  // Namespaces scope discovery as kubernetes_sd_configs namespaces.names does.
  assert.equal(targetGroups({ role: 'endpointslice', namespaces: ['default'] }, network, [pod]).length, 0);
  assert.equal(targetGroups({ role: 'endpointslice', namespaces: ['promsnap'] }, network, [pod]).length, 2);
});

test('cluster addresses resolve to the local process behind the Service, by port or port name', () => {
  const minioPod = localPod(
    podTemplateOf(minio),
    0,
    '127.0.0.1',
    new Map([
      [9000, 24000],
      [9001, 24001],
    ]),
    up,
  );
  const simPod = localPod(podTemplateOf(simulation), 0, '127.0.0.1', new Map([[8080, 23450]]), up);
  const network = new LocalNetwork([minioPod, simPod], [minio, minioService, simulation]);
  assert.equal(network.rewriteUrl('http://minio.promsnap.svc.cluster.local:9000', { namespace: 'promsnap' }), 'http://127.0.0.1:24000');
  assert.equal(network.rewriteUrl('http://minio:9001/', { namespace: 'promsnap' }), 'http://127.0.0.1:24001/');
  assert.equal(network.rewriteUrl('http://minio.promsnap.svc:9000/x', { namespace: 'monitoring' }), 'http://127.0.0.1:24000/x');
  assert.equal(network.rewriteUrl('http://simulation.promsnap.svc.cluster.local', { namespace: 'promsnap' }), 'http://127.0.0.1:23450');
  assert.equal(network.rewriteUrl('http://minio:9000', { namespace: 'monitoring' }), 'http://minio:9000', 'another namespace has no minio');
  assert.equal(network.rewriteUrl('https://example.com/', { namespace: 'promsnap' }), 'https://example.com/');
  assert.deepEqual(network.resolve('localhost', 9000, { namespace: 'promsnap', pod: minioPod }), { host: '127.0.0.1', port: 24000 });
});

function prometheusPod(port: number): LocalPod {
  return localPod(podTemplateOf(prometheusDeployment), 0, '127.0.0.1', new Map([[9090, port]]), up);
}

test("the manifests' prometheus.yml: kubernetes_sd jobs ask the runner, jobs with no local equivalent are left out", () => {
  const promPod = prometheusPod(29090);
  const network = new LocalNetwork([promPod], [prometheusDeployment]);
  const { config, kept, leftOut } = localScrapeConfig(prometheusYml, {
    network,
    prometheusPod: promPod,
    discoveryUrl: (q) => `http://127.0.0.1:1/v1/targets?role=${q.role}`,
    fileExists: () => false,
  });
  assert.deepEqual(kept.map((k) => k.job).sort(), ['kubernetes-pods', 'kubernetes-service-endpoints', 'prometheus']);
  assert.deepEqual(leftOut.map((l) => l.job).sort(), ['kube-state-metrics', 'kubernetes-apiservers', 'kubernetes-cadvisor', 'kubernetes-nodes']);
  assert.match(leftOut.find((l) => l.job === 'kubernetes-nodes')!.reason, /no Kubernetes nodes/);
  const jobs = new Map((config['scrape_configs'] ?? []).map((j) => [j['job_name'], j]));
  assert.deepEqual(jobs.get('prometheus')!['static_configs'], [{ targets: ['127.0.0.1:29090'] }], 'localhost:9090 in the pod is the local Prometheus');
  const pods = jobs.get('kubernetes-pods')!;
  assert.equal(pods['kubernetes_sd_configs'], undefined);
  assert.deepEqual(pods['http_sd_configs'], [{ url: 'http://127.0.0.1:1/v1/targets?role=pod', refresh_interval: '5s' }]);
  const original = (prometheusYml['scrape_configs'] ?? []).find((j) => j['job_name'] === 'kubernetes-pods')!;
  assert.deepEqual(pods['relabel_configs'], original['relabel_configs'], "relabel rules are the manifests' own");
  assert.deepEqual(config['rule_files'], prometheusYml['rule_files']);
});

test("a real Prometheus applies the manifests' relabel rules to the announced pods", async (t) => {
  // A stand-in for a simulation instance: any server with a /metrics page.
  const metrics = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end('demo_total{app="simulation"} 1\n');
  });
  await new Promise<void>((resolve) => metrics.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => metrics.close(() => resolve())));
  // The simulation Knative Service as rendered, so its real template labels and annotations are announced.
  const renderedSimulation = findObject(rendered, 'Service.serving.knative.dev', 'simulation', 'promsnap') as unknown as KubeObject;
  const simPod = localPod(podTemplateOf(renderedSimulation), 0, '127.0.0.1', new Map([[8080, (metrics.address() as AddressInfo).port]]), up);

  const dir = await mkdtemp(path.join(os.tmpdir(), 'promsnap-discovery-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  // Asked for targets only by the Prometheus started below, once promPod is set.
  const discovery = await serveDiscovery(() => ({ network: new LocalNetwork([simPod, promPod], rendered), pods: [simPod, promPod] }));
  t.after(() => discovery.close());
  const { freePort } = await import('../../tools/ports.js');
  const port = await freePort();
  const promPod = prometheusPod(port);
  const { config } = localScrapeConfig(prometheusYml, {
    network: new LocalNetwork([simPod, promPod], rendered),
    prometheusPod: promPod,
    discoveryUrl: (q) => discovery.urlFor(q),
    refreshInterval: '1s',
    fileExists: existsSync,
  });
  config['global'] = { ...config['global'], scrape_interval: '1s', scrape_timeout: '1s' };
  const files = Object.fromEntries(setup.ruleFiles.map((r) => [r.key, r.text]));
  const prometheus = await startPrometheus({ config: stringify(config), files, dataDir: dir, port });
  t.after(() => prometheus.stop());

  type Target = { labels: Record<string, string>; scrapePool: string; health: string };
  const target = await waitFor(
    async () => {
      const res = await fetch(`${prometheus.url}/api/v1/targets?state=active`);
      const body = (await res.json()) as { data: { activeTargets: Target[] } };
      return body.data.activeTargets.find((t) => t.scrapePool === 'kubernetes-pods' && t.health === 'up');
    },
    { what: 'the simulation pod scraped by job kubernetes-pods', timeoutMs: 30_000 },
  );
  assert.equal(target.labels['instance'], `127.0.0.1:${simPod.ports.get(8080)}`);
  assert.equal(target.labels['kubernetes_namespace'], 'promsnap');
  assert.equal(target.labels['kubernetes_pod_name'], simPod.name);
  assert.equal(target.labels['serving_knative_dev_service'], 'simulation');
  assert.equal(target.labels['app'], undefined, "the manifests drop Knative's app=<revision> label");
  const series = await waitFor(
    async () => {
      const res = await fetch(`${prometheus.url}/api/v1/query?query=${encodeURIComponent('demo_total')}`);
      const body = (await res.json()) as { data: { result: Array<{ metric: Record<string, string> }> } };
      return body.data.result[0];
    },
    { what: 'demo_total in Prometheus', timeoutMs: 30_000 },
  );
  assert.equal(series.metric['app'], 'simulation', "the application's own app label survives");
  assert.equal(series.metric['kubernetes_pod_name'], simPod.name);
});
