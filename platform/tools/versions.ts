// The pinned tool versions, read from versions.env (the one place they live, shared with provision.sh
// and run.sh), and where provision.sh installs each tool. TypeScript code asks here instead of
// repeating a version or a cache path.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const versionsFile = fileURLToPath(new URL('./versions.env', import.meta.url));

/** Every variable versions.env must define, by the name TypeScript uses for it. */
const variables = {
  node: 'NODE_VERSION',
  prometheus: 'PROMETHEUS_VERSION',
  prometheusModule: 'PROMETHEUS_MODULE_VERSION',
  minio: 'MINIO_VERSION',
  mc: 'MC_VERSION',
  etcd: 'ETCD_VERSION',
  kubernetes: 'KUBERNETES_VERSION',
  knativeServing: 'KNATIVE_SERVING_VERSION',
  knativeEventing: 'KNATIVE_EVENTING_VERSION',
  skaffold: 'SKAFFOLD_VERSION',
  kubeStateMetrics: 'KUBE_STATE_METRICS_VERSION',
} as const;

export type Versions = { readonly [K in keyof typeof variables]: string };

/** Parses shell-style `NAME=value` lines; comments and blank lines are skipped. */
export function parseVersionsEnv(text: string, source = versionsFile): Versions {
  const values = new Map<string, string>();
  for (const [index, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([A-Z][A-Z0-9_]*)=([^\s"'#$`]+)$/.exec(line);
    // provision.sh sources this file, so anything a shell would treat specially is refused here too.
    if (!match) throw new Error(`${source}:${index + 1}: expected NAME=value, got ${JSON.stringify(raw)}`);
    values.set(match[1]!, match[2]!);
  }
  const missing = Object.values(variables).filter((name) => !values.has(name));
  if (missing.length > 0) throw new Error(`${source} does not define ${missing.join(', ')}`);
  return Object.fromEntries(Object.entries(variables).map(([key, name]) => [key, values.get(name)!])) as Versions;
}

export const versions: Versions = parseVersionsEnv(readFileSync(versionsFile, 'utf8'));

/** The per-user tool cache, resolved exactly as run.sh and provision.sh resolve it. */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env['PROMSNAP_CACHE']) return env['PROMSNAP_CACHE'];
  const xdg = env['XDG_CACHE_HOME'] || path.join(os.homedir(), '.cache');
  return path.join(xdg, 'promsnap');
}

/**
 * Folder provision.sh installs a tool into (`<cache>/<name>-<version>`, binaries in `bin/`). The names
 * are provision.sh's: `knative-serving` and `knative-eventing` hold Knative's built binaries;
 * `knative-serving-src` and `knative-eventing-src` its module sources (in `src/`; Serving's with the
 * knative.dev/networking and knative.dev/caching modules its go.mod requires beside them, as
 * `networking/` and `caching/`).
 */
export function toolDir(name: ToolName, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(cacheDir(env), `${name}-${toolVersion[name]}`);
}

export const toolVersion = {
  node: versions.node,
  prometheus: versions.prometheus,
  minio: versions.minio,
  mc: versions.mc,
  etcd: versions.etcd,
  'kube-apiserver': versions.kubernetes,
  'kube-controller-manager': versions.kubernetes,
  skaffold: versions.skaffold,
  'kube-state-metrics': versions.kubeStateMetrics,
  'knative-eventing': versions.knativeEventing,
  'knative-serving': versions.knativeServing,
  'knative-serving-src': versions.knativeServing,
  'knative-eventing-src': versions.knativeEventing,
} as const;

export type ToolName = keyof typeof toolVersion;
