// Prometheus as its Deployment runs it: prometheus.yml and the rule files from the ConfigMap its
// --config.file reaches through the volume mounts, and the container's flags.
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { configMapData, describeObject, findObject, type KubeObject } from './objects.js';
import { podTemplates } from './pods.js';

export interface ScrapeConfig {
  job_name: string;
  [field: string]: unknown;
}

/** The parts of prometheus.yml the platform's checks read; the rest stays as parsed. */
export interface PrometheusYml {
  global?: Record<string, unknown>;
  rule_files?: string[];
  scrape_configs?: ScrapeConfig[];
  [field: string]: unknown;
}

export interface PrometheusSetup {
  namespace: string;
  deployment: string;
  image: string;
  /** The container's arguments, as rendered. */
  args: string[];
  /** The rendered (hash-suffixed) name of the ConfigMap holding the configuration. */
  configMap: string;
  /** --config.file inside the pod. */
  configPath: string;
  configText: string;
  config: PrometheusYml;
  /** Rule files prometheus.yml loads, by ConfigMap key, with their path inside the pod. */
  ruleFiles: Array<{ key: string; path: string; text: string }>;
  /** Every key of that ConfigMap, as a folder Prometheus (or promtool) would read. */
  files: Record<string, string>;
}

/** Glob matching as Prometheus's rule_files use it (`*`, `?`, no path separators crossed). */
function globToRegExp(pattern: string): RegExp {
  const escaped = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '[^/]*')
    .replace(/\?/g, '[^/]');
  return new RegExp(`^${escaped}$`);
}

/**
 * The configuration the Prometheus Deployment really loads: its --config.file, found through the
 * container's volume mounts in the ConfigMap they name, and the rule files that configuration lists,
 * resolved against its folder in the same mount.
 */
export function prometheusSetup(objects: readonly KubeObject[], name = 'prometheus', namespace = 'monitoring'): PrometheusSetup {
  const deployment = findObject(objects, 'Deployment', name, namespace);
  const template = podTemplates([deployment])[0]!;
  const container = template.spec.containers.find((c) => c.name === name) ?? template.spec.containers[0]!;
  const args = [...(container.command ?? []), ...(container.args ?? [])];
  const configPath = args.map((a) => /^--config\.file=(.+)$/.exec(a)?.[1]).find(Boolean) ?? '/etc/prometheus/prometheus.yml';
  const mount = (container.volumeMounts ?? [])
    .filter((m) => configPath.startsWith(m.mountPath.replace(/\/?$/, '/')))
    .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  if (!mount) throw new Error(`${describeObject(deployment)}: no volume is mounted where --config.file=${configPath} is`);
  const volume = (template.spec.volumes ?? []).find((v) => v.name === mount.name);
  if (!volume?.configMap) throw new Error(`${describeObject(deployment)}: volume ${mount.name} at ${mount.mountPath} is not a ConfigMap`);
  const files = configMapData(objects, volume.configMap.name, namespace);
  const keyAt = (inPod: string) => path.posix.relative(mount.mountPath, inPod);
  const configText = files[keyAt(configPath)];
  if (configText === undefined) throw new Error(`ConfigMap ${namespace}/${volume.configMap.name} has no key ${keyAt(configPath)} (${configPath})`);
  const config = parseYaml(configText) as PrometheusYml;
  const ruleFiles = (config.rule_files ?? []).flatMap((pattern) => {
    const inPod = path.posix.resolve(path.posix.dirname(configPath), pattern);
    const matcher = globToRegExp(keyAt(inPod));
    const keys = Object.keys(files)
      .filter((key) => matcher.test(key))
      .sort();
    if (keys.length === 0) throw new Error(`rule_files entry ${pattern} (${inPod}) matches no key of ConfigMap ${namespace}/${volume.configMap!.name}`);
    return keys.map((key) => ({ key, path: path.posix.join(mount.mountPath, key), text: files[key]! }));
  });
  return { namespace, deployment: name, image: container.image, args, configMap: volume.configMap.name, configPath, configText, config, ruleFiles, files };
}
