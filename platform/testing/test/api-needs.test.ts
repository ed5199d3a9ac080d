// What Prometheus and kube-state-metrics are judged to need, from configurations written here to
// exercise each rule (the manifests' own are checked on the API server in platform/test).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeAccess } from '../access.js';
import { flagValue, kubeStateMetricsNeeds, prometheusNeeds } from '../api-needs.js';

const needsOf = (yml: string, ns = 'monitoring') => {
  const needs = prometheusNeeds(yml, ns);
  return { read: needs.read.map(describeAccess).sort(), get: needs.get.map(describeAccess).sort(), nonResource: needs.nonResource.map(describeAccess) };
};

test('Prometheus needs GET /metrics on the API server even with no Kubernetes discovery', () => {
  assert.deepEqual(needsOf('scrape_configs:\n  - job_name: prometheus\n    static_configs: [{targets: [localhost:9090]}]\n'), {
    read: [],
    get: [],
    nonResource: ['get /metrics'],
  });
});

test('an endpointslice role limited to one namespace needs slices, services and pods there only', () => {
  const yml = `
scrape_configs:
  - job_name: kubernetes-apiservers
    kubernetes_sd_configs:
      - role: endpointslice
        namespaces: {names: [default]}
`;
  assert.deepEqual(needsOf(yml).read, ['list endpointslices.discovery.k8s.io -n default', 'list pods -n default', 'list services -n default']);
});

test('own_namespace means the namespace Prometheus runs in', () => {
  const yml = 'scrape_configs:\n  - job_name: p\n    kubernetes_sd_configs: [{role: pod, namespaces: {own_namespace: true}}]\n';
  assert.deepEqual(needsOf(yml, 'obs').read, ['list pods -n obs']);
});

test('a node role scraping kubelets directly needs nodes/metrics, through the API server nodes/proxy', () => {
  const direct = 'scrape_configs:\n  - job_name: nodes\n    kubernetes_sd_configs: [{role: node}]\n';
  assert.deepEqual(needsOf(direct), { read: ['list nodes (all namespaces)'], get: ['get nodes/metrics (all namespaces)'], nonResource: ['get /metrics'] });
  const proxied = `
scrape_configs:
  - job_name: nodes
    kubernetes_sd_configs: [{role: node}]
    relabel_configs:
      - target_label: __metrics_path__
        source_labels: [__meta_kubernetes_node_name]
        replacement: /api/v1/nodes/$1/proxy/metrics/cadvisor
`;
  assert.deepEqual(needsOf(proxied).get, ['get nodes/proxy (all namespaces)']);
});

test('attach_metadata adds nodes, and the same resource from several jobs is needed once', () => {
  const yml = `
scrape_configs:
  - job_name: a
    kubernetes_sd_configs: [{role: pod, attach_metadata: {node: true}}]
  - job_name: b
    kubernetes_sd_configs: [{role: pod}]
`;
  assert.deepEqual(needsOf(yml).read, ['list nodes (all namespaces)', 'list pods (all namespaces)']);
});

test('an unknown discovery role is an error, not an empty need', () => {
  assert.throws(
    () => prometheusNeeds('scrape_configs:\n  - job_name: x\n    kubernetes_sd_configs: [{role: nodes}]\n', 'm'),
    /unknown kubernetes_sd_configs role nodes/,
  );
});

test('kube-state-metrics needs list and watch on each --resources entry, in its --namespaces', () => {
  const needs = kubeStateMetricsNeeds(['--port=8080', '--resources=pods,deployments,nodes', '--namespaces', 'a,b']);
  assert.deepEqual(needs.read.map(describeAccess).sort(), [
    'list deployments.apps -n a',
    'list deployments.apps -n b',
    'list nodes (all namespaces)',
    'list pods -n a',
    'list pods -n b',
  ]);
});

test('kube-state-metrics without --resources exports secrets by default, which is refused', () => {
  assert.throws(() => kubeStateMetricsNeeds(['--port=8080']), /no --resources flag.*secrets/);
  assert.throws(() => kubeStateMetricsNeeds(['--resources=pods,widgets']), /widgets, which it does not export/);
});

test('flagValue reads both --name=value and --name value', () => {
  assert.equal(flagValue(['--a=1', '--b', '2'], 'a'), '1');
  assert.equal(flagValue(['--a=1', '--b', '2'], 'b'), '2');
  assert.equal(flagValue(['--ab=1'], 'a'), undefined);
});
