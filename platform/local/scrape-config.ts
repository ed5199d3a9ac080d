// The manifests' prometheus.yml made runnable on one machine, changing only what has no local
// equivalent: each kubernetes_sd_configs entry becomes an http_sd_configs entry served by the runner
// (discovery.ts), static targets at cluster addresses point at the local processes serving them, and
// jobs that cannot work here (Kubernetes nodes, the API server, files only a pod has, components not
// run locally) are left out with a reason. Relabel rules, intervals and rule files stay as they are.
import type { LocalNetwork } from './addresses.js';
import type { DiscoveryQuery, Role } from './discovery.js';
import type { LocalPod } from './workloads.js';

export interface LeftOut {
  job: string;
  reason: string;
}

export interface LocalScrapeConfig {
  /** The configuration to give the local Prometheus (a plain object; serialise with yaml). */
  config: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- prometheus.yml is untyped YAML
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

/** Fields of a scrape job that name a file Prometheus must read. */
function filesOf(job: Record<string, any>): string[] {
  const files: string[] = [];
  const tls = (t: any) => t && files.push(...['ca_file', 'cert_file', 'key_file'].map((k) => t[k]).filter(Boolean));
  tls(job['tls_config']);
  if (job['bearer_token_file']) files.push(job['bearer_token_file']);
  if (job['authorization']?.credentials_file) files.push(job['authorization'].credentials_file);
  if (job['basic_auth']?.password_file) files.push(job['basic_auth'].password_file);
  if (job['oauth2']?.client_secret_file) files.push(job['oauth2'].client_secret_file);
  tls(job['oauth2']?.tls_config);
  return files;
}

const noLocalEquivalent: Partial<Record<string, string>> = {
  node: 'role node: there are no Kubernetes nodes (kubelets, cAdvisor) on this machine',
  ingress: 'role ingress: there are no Ingress objects locally',
};

export function localScrapeConfig(source: Record<string, any>, options: ScrapeConfigOptions): LocalScrapeConfig {
  const config = structuredClone(source);
  const kept: LocalScrapeConfig['kept'] = [];
  const leftOut: LeftOut[] = [];
  const ownNamespace = options.prometheusPod.template.namespace;
  const from = { namespace: ownNamespace, pod: options.prometheusPod };

  const jobs: Array<Record<string, any>> = config['scrape_configs'] ?? [];
  config['scrape_configs'] = jobs.flatMap((job) => {
    const name = String(job['job_name']);
    const missing = filesOf(job).filter((file) => !options.fileExists(file));
    const sdConfigs: Array<Record<string, any>> = job['kubernetes_sd_configs'] ?? [];
    const unsupported = sdConfigs.map((sd) => noLocalEquivalent[String(sd['role'])]).find(Boolean);
    if (unsupported) return (leftOut.push({ job: name, reason: unsupported }), []);
    if (missing.length > 0) {
      leftOut.push({ job: name, reason: `reads ${missing.join(', ')}, which only a pod in the cluster has` });
      return [];
    }
    const local: Record<string, any> = { ...job };
    const via: string[] = [];

    if (sdConfigs.length > 0) {
      delete local['kubernetes_sd_configs'];
      local['http_sd_configs'] = [
        ...(job['http_sd_configs'] ?? []),
        ...sdConfigs.map((sd) => {
          const role = String(sd['role']) as Role;
          const namespaces = [...(sd['namespaces']?.names ?? []), ...(sd['namespaces']?.own_namespace ? [ownNamespace] : [])].map(String);
          const labelSelector = ((sd['selectors'] ?? []) as Array<Record<string, string>>)
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
      local['static_configs'] = (job['static_configs'] as Array<Record<string, any>>)
        .map((sc) => ({
          ...sc,
          targets: ((sc['targets'] ?? []) as string[]).flatMap((target) => {
            const match = /^(.*):(\d+)$/.exec(target);
            const address = match ? options.network.resolve(match[1]!, Number(match[2]), from) : undefined;
            if (!address) return (dropped.push(target), []);
            via.push(`${target} -> ${address.host}:${address.port}`);
            return [`${address.host}:${address.port}`];
          }),
        }))
        .filter((sc) => sc.targets.length > 0);
      if (local['static_configs'].length === 0 && sdConfigs.length === 0) {
        leftOut.push({ job: name, reason: `${dropped.join(', ')} is not run locally` });
        return [];
      }
      if (local['static_configs'].length === 0) delete local['static_configs'];
    }
    kept.push({ job: name, via: via.join('; ') || 'as configured' });
    return [local];
  });

  // No Alertmanager runs locally: alerts are evaluated and visible in Prometheus's API, not sent.
  if (config['alerting']?.alertmanagers) {
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
