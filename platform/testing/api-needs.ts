// What API access a monitoring component needs, derived from its own configuration as rendered in
// the manifests: Prometheus's from its scrape and service-discovery configuration, kube-state-metrics's
// from its --resources flag. The least-privilege test grants exactly this and nothing else, so
// changing a scrape job or an exported resource without its RBAC (or the reverse) fails a test.
import { parse } from 'yaml';
import type { NonResourceAccess, ResourceAccess } from './access.js';

interface KubernetesSdConfig {
  role: string;
  namespaces?: { names?: string[]; own_namespace?: boolean };
  attach_metadata?: { node?: boolean; namespace?: boolean };
}

interface ScrapeConfig {
  job_name: string;
  kubernetes_sd_configs?: KubernetesSdConfig[];
  metrics_path?: string;
  relabel_configs?: Array<{ replacement?: string; target_label?: string }>;
}

export interface Needs {
  /** Each: list and watch (and get, which reads the same data) in the given scope. */
  read: ResourceAccess[];
  /** Single `get`s on subresources and paths (scraping through the API server or kubelet). */
  get: ResourceAccess[];
  nonResource: NonResourceAccess[];
  /** Why each need exists, for failure messages: `job kubernetes-pods: role pod`. */
  reasons: string[];
}

/** Objects each Kubernetes SD role watches (Prometheus discovery/kubernetes/kubernetes.go). */
const sdRoleResources: Record<string, Array<[group: string, resource: string]>> = {
  node: [['', 'nodes']],
  pod: [['', 'pods']],
  service: [['', 'services']],
  endpoints: [
    ['', 'endpoints'],
    ['', 'services'],
    ['', 'pods'],
  ],
  endpointslice: [
    ['discovery.k8s.io', 'endpointslices'],
    ['', 'services'],
    ['', 'pods'],
  ],
  ingress: [['networking.k8s.io', 'ingresses']],
};

/**
 * Needs of a Prometheus running in `namespace` with this prometheus.yml: list and watch for every
 * SD role in the namespaces it names (all when it names none), nodes/proxy when a job scrapes
 * kubelets through the API server's node proxy, nodes/metrics when it scrapes kubelets directly,
 * and GET /metrics on the API server.
 */
export function prometheusNeeds(prometheusYml: string, namespace: string): Needs {
  const config = parse(prometheusYml) as { scrape_configs?: ScrapeConfig[] };
  const needs: Needs = { read: [], get: [], nonResource: [{ verb: 'get', path: '/metrics' }], reasons: [] };
  for (const job of config.scrape_configs ?? []) {
    for (const sd of job.kubernetes_sd_configs ?? []) {
      const resources = sdRoleResources[sd.role];
      if (!resources) throw new Error(`job ${job.job_name}: unknown kubernetes_sd_configs role ${sd.role}`);
      const extra: Array<[string, string]> = [];
      if (sd.attach_metadata?.node && ['pod', 'endpoints', 'endpointslice'].includes(sd.role)) extra.push(['', 'nodes']);
      if (sd.attach_metadata?.namespace) extra.push(['', 'namespaces']);
      const names = sd.namespaces?.own_namespace ? [namespace, ...(sd.namespaces.names ?? [])] : sd.namespaces?.names;
      for (const [group, resource] of [...resources, ...extra]) {
        const clusterScoped = resource === 'nodes' || resource === 'namespaces';
        for (const ns of clusterScoped || !names?.length ? [undefined] : names) {
          needs.read.push({ verb: 'list', group, resource, ...(ns ? { namespace: ns } : {}) });
        }
      }
      needs.reasons.push(`job ${job.job_name}: kubernetes_sd_configs role ${sd.role}${names?.length ? ` in ${names.join(', ')}` : ''}`);
      if (sd.role === 'node') {
        const viaProxy = (job.relabel_configs ?? []).some((r) => /\/api\/v1\/nodes\/.*\/proxy\//.test(r.replacement ?? ''));
        const subresource = viaProxy ? 'proxy' : 'metrics';
        needs.get.push({ verb: 'get', group: '', resource: 'nodes', subresource });
        needs.reasons.push(`job ${job.job_name}: scrapes kubelets ${viaProxy ? 'through the API server (nodes/proxy)' : 'directly (nodes/metrics)'}`);
      }
    }
  }
  needs.read = unique(needs.read);
  needs.get = unique(needs.get);
  return needs;
}

/** kube-state-metrics's resource names (its --resources flag) and the API group each is read from. */
export const kubeStateMetricsResources: Record<string, string> = {
  certificatesigningrequests: 'certificates.k8s.io',
  configmaps: '',
  cronjobs: 'batch',
  daemonsets: 'apps',
  deployments: 'apps',
  endpoints: '',
  endpointslices: 'discovery.k8s.io',
  horizontalpodautoscalers: 'autoscaling',
  ingresses: 'networking.k8s.io',
  ingressclasses: 'networking.k8s.io',
  ipaddresses: 'networking.k8s.io',
  jobs: 'batch',
  leases: 'coordination.k8s.io',
  limitranges: '',
  mutatingwebhookconfigurations: 'admissionregistration.k8s.io',
  namespaces: '',
  networkpolicies: 'networking.k8s.io',
  nodes: '',
  persistentvolumeclaims: '',
  persistentvolumes: '',
  poddisruptionbudgets: 'policy',
  pods: '',
  replicasets: 'apps',
  replicationcontrollers: '',
  resourcequotas: '',
  secrets: '',
  servicecidrs: 'networking.k8s.io',
  services: '',
  statefulsets: 'apps',
  storageclasses: 'storage.k8s.io',
  validatingwebhookconfigurations: 'admissionregistration.k8s.io',
  volumeattachments: 'storage.k8s.io',
  clusterrolebindings: 'rbac.authorization.k8s.io',
  clusterroles: 'rbac.authorization.k8s.io',
  rolebindings: 'rbac.authorization.k8s.io',
  roles: 'rbac.authorization.k8s.io',
  serviceaccounts: '',
};

const clusterScoped = new Set([
  'certificatesigningrequests',
  'ingressclasses',
  'ipaddresses',
  'mutatingwebhookconfigurations',
  'namespaces',
  'nodes',
  'persistentvolumes',
  'servicecidrs',
  'storageclasses',
  'validatingwebhookconfigurations',
  'volumeattachments',
  'clusterrolebindings',
  'clusterroles',
]);

/** The value of `--name=value` or `--name value` in a container's args, if given. */
export function flagValue(args: readonly string[], name: string): string | undefined {
  for (const [index, arg] of args.entries()) {
    if (arg.startsWith(`--${name}=`)) return arg.slice(name.length + 3);
    if (arg === `--${name}`) return args[index + 1];
  }
  return undefined;
}

/**
 * Needs of kube-state-metrics started with these args: list and watch for each exported resource, in
 * its --namespaces (all when none). Without --resources it exports its default set, secrets included,
 * which the least-privilege rule forbids: that is reported, not silently accepted.
 */
export function kubeStateMetricsNeeds(args: readonly string[]): Needs {
  const resources = flagValue(args, 'resources');
  if (!resources) {
    throw new Error('kube-state-metrics has no --resources flag, so it exports its default set, secrets included');
  }
  const namespaces = flagValue(args, 'namespaces')?.split(',').filter(Boolean);
  const needs: Needs = { read: [], get: [], nonResource: [], reasons: [`--resources=${resources}`] };
  for (const name of resources
    .split(',')
    .map((r) => r.trim())
    .filter(Boolean)) {
    const group = kubeStateMetricsResources[name];
    if (group === undefined) throw new Error(`kube-state-metrics --resources names ${name}, which it does not export`);
    for (const ns of clusterScoped.has(name) || !namespaces?.length ? [undefined] : namespaces) {
      needs.read.push({ verb: 'list', group, resource: name, ...(ns ? { namespace: ns } : {}) });
    }
  }
  return needs;
}

function unique<T>(items: T[]): T[] {
  const seen = new Map<string, T>();
  for (const item of items) seen.set(JSON.stringify(item), item);
  return [...seen.values()];
}
