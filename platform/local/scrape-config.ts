// The manifests' prometheus.yml made runnable on one machine, changing only what has no local
// equivalent: each kubernetes_sd_configs entry becomes an http_sd_configs entry served by the runner
// (discovery.ts), static targets at cluster addresses point at the local processes serving them, and
// jobs that cannot work here (Kubernetes nodes, the API server, files only a pod has, components not
// run locally) are left out with a reason. Relabel rules, intervals and rule files stay as they are.
import { field, type PrometheusYml, type ScrapeConfig } from '../manifests/index.js';
import type { LocalNetwork } from './addresses.js';
import type { DiscoveryQuery, Role } from './discovery.js';
import type { LocalPod } from './workloads.js';

export interface LeftOut {
  job: string;
  reason: string;
}

export interface LocalScrapeConfig {
  /** The configuration to give the local Prometheus (a plain object; serialise with yaml). */
  config: PrometheusYml;
  /** Jobs kept, with how their targets are found locally. */
  kept: Array<{ job: string; via: string }>;
  leftOut: LeftOut[];
}

export interface ScrapeConfigOptions {
  network: LocalNetwork;
  /** The local pod standing in for Prometheus itself: its namespace and `localhost` are its own. */
  prometheusPod: LocalPod;
  /** http_sd URL for one kubernetes_sd_configs entry. */
  discoveryUrl(query: DiscoveryQuery): string;
  /** How often Prometheus asks the runner for targets (a local process comes and goes quickly). */
  refreshInterval?: string;
  /** Whether a file a job reads exists here (service account token, CA); the runner passes existsSync. */
  fileExists(path: string): boolean;
}

/** The parts of a kubernetes_sd_configs entry read here. */
interface KubernetesSdConfig {
  role: string;
  namespaces?: { names?: string[]; own_namespace?: boolean };
  selectors?: Array<{ role: string; label?: string; field?: string }>;
}

interface StaticConfig {
  targets?: string[];
}

/** The fields of a scrape job this module reads or rewrites; the others are kept as they are. */
interface Job extends ScrapeConfig {
  kubernetes_sd_configs?: KubernetesSdConfig[];
  http_sd_configs?: unknown[];
  static_configs?: StaticConfig[];
}

/** Fields of a scrape job that name a file Prometheus must read. */
function filesOf(job: Job): string[] {
  const tls = (config: unknown) => ['ca_file', 'cert_file', 'key_file'].map((k) => field(config, k));
  const files = [
    ...tls(job['tls_config']),
    job['bearer_token_file'],
    field(job, 'authorization', 'credentials_file'),
    field(job, 'basic_auth', 'password_file'),
    field(job, 'oauth2', 'client_secret_file'),
    ...tls(field(job, 'oauth2', 'tls_config')),
  ];
  return files.filter((file): file is string => typeof file === 'string' && file !== '');
}

const noLocalEquivalent: Partial<Record<string, string>> = {
  node: 'role node: there are no Kubernetes nodes (kubelets, cAdvisor) on this machine',
  ingress: 'role ingress: there are no Ingress objects locally',
};

export function localScrapeConfig(source: PrometheusYml, options: ScrapeConfigOptions): LocalScrapeConfig {
  const config = structuredClone(source);
  const kept: LocalScrapeConfig['kept'] = [];
  const leftOut: LeftOut[] = [];
  const ownNamespace = options.prometheusPod.template.namespace;
  const from = { namespace: ownNamespace, pod: options.prometheusPod };

  const jobs = (config['scrape_configs'] ?? []) as Job[];
  config['scrape_configs'] = jobs.flatMap((job): Job[] => {
    const name = String(job['job_name']);
    const missing = filesOf(job).filter((file) => !options.fileExists(file));
    const sdConfigs = job['kubernetes_sd_configs'] ?? [];
    const unsupported = sdConfigs.map((sd) => noLocalEquivalent[String(sd['role'])]).find(Boolean);
    if (unsupported) return (leftOut.push({ job: name, reason: unsupported }), []);
    if (missing.length > 0) {
      leftOut.push({ job: name, reason: `reads ${missing.join(', ')}, which only a pod in the cluster has` });
      return [];
    }
    const local: Job = { ...job };
    const via: string[] = [];

    if (sdConfigs.length > 0) {
      delete local['kubernetes_sd_configs'];
      local['http_sd_configs'] = [
        ...(job['http_sd_configs'] ?? []),
        ...sdConfigs.map((sd) => {
          const role = String(sd['role']) as Role;
          const namespaces = [...(sd['namespaces']?.names ?? []), ...(sd['namespaces']?.own_namespace ? [ownNamespace] : [])].map(String);
          const labelSelector = (sd['selectors'] ?? [])
            .filter((s) => s['role'] === role && s['label'])
            .map((s) => s['label'])
            .join(',');
          via.push(`role ${role}${namespaces.length ? ` in ${namespaces.join(', ')}` : ''}`);
          return {
            url: options.discoveryUrl({ role, namespaces, ...(labelSelector ? { labelSelector } : {}) }),
            refresh_interval: options.refreshInterval ?? '5s',
          };
        }),
      ];
    }

    if (job['static_configs']) {
      const dropped: string[] = [];
      const staticConfigs = job['static_configs']
        .map((sc) => ({
          ...sc,
          targets: (sc['targets'] ?? []).flatMap((target) => {
            const match = /^(.*):(\d+)$/.exec(target);
            const address = match ? options.network.resolve(match[1]!, Number(match[2]), from) : undefined;
            if (!address) return (dropped.push(target), []);
            via.push(`${target} -> ${address.host}:${address.port}`);
            return [`${address.host}:${address.port}`];
          }),
        }))
        .filter((sc) => sc.targets.length > 0);
      local['static_configs'] = staticConfigs;
      if (staticConfigs.length === 0 && sdConfigs.length === 0) {
        leftOut.push({ job: name, reason: `${dropped.join(', ')} is not run locally` });
        return [];
      }
      if (staticConfigs.length === 0) delete local['static_configs'];
    }
    kept.push({ job: name, via: via.join('; ') || 'as configured' });
    return [local];
  });

  // No Alertmanager runs locally: alerts are evaluated and visible in Prometheus's API, not sent.
  if (field(config, 'alerting', 'alertmanagers')) {
    leftOut.push({ job: 'alerting.alertmanagers', reason: 'no Alertmanager runs locally; alerts show in /api/v1/alerts' });
    delete config['alerting'];
  }
  for (const key of ['remote_write', 'remote_read'] as const) {
    if (config[key]) {
      leftOut.push({ job: key, reason: 'remote storage is not reached from the local runner' });
      delete config[key];
    }
  }
  return { config, kept, leftOut };
}
