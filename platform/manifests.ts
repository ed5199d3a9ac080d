// The one reader of the rendered platform: `kubectl kustomize platform` (after ensureCredentials, so a
// fresh clone renders), parsed, and the typed views the tests, the local runner and the CLI need: the
// Prometheus configuration and rule files from the generated ConfigMap, the PingSource, the Trigger's
// delivery policy, a Knative Service's container, every pod template and the service accounts they run
// as. Every derivation reads what is rendered, never a copy of it, and fails with a message naming what
// is missing. Apart from renderPlatform, all pure.
import path from 'node:path';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { ensureCredentials, platformDir } from './credentials.js';
import { kustomize } from './tools/kubectl.js';

export { platformDir };

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** A rendered object; fields beyond these are read through the typed derivations below. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

export interface RenderedPlatform {
  /** kubectl's output, as it would be applied. */
  yaml: string;
  objects: KubeObject[];
}

export interface RenderOptions {
  /** The kustomization to render (default: this platform/ folder). */
  dir?: string;
  /** kubectl binary (default: `kubectl` on PATH). */
  kubectl?: string;
  /** Called with each line ensureCredentials reports (a *.env created). */
  log?: (line: string) => void;
}

/** Renders the platform as `kubectl apply -k` would see it, creating missing credentials first. */
export async function renderPlatform(options: RenderOptions = {}): Promise<RenderedPlatform> {
  const dir = options.dir ?? platformDir;
  await ensureCredentials({ dir, ...(options.log ? { log: options.log } : {}) });
  const stdout = await kustomize(dir, options.kubectl);
  return { yaml: stdout, objects: parseObjects(stdout, `kubectl kustomize ${dir}`) };
}

/** Parses a multi-document YAML stream of Kubernetes objects; any YAML error or non-object fails. */
export function parseObjects(text: string, source = 'manifests'): KubeObject[] {
  const objects: KubeObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`${source}: invalid YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value = doc.toJS() as unknown;
    if (value === null || value === undefined) continue;
    const object = value as Partial<KubeObject>;
    if (typeof object.apiVersion !== 'string' || typeof object.kind !== 'string' || typeof object.metadata?.name !== 'string') {
      throw new Error(`${source}: not a Kubernetes object: ${JSON.stringify(value).slice(0, 200)}`);
    }
    objects.push(object as KubeObject);
  }
  return objects;
}

// ---------------------------------------------------------------------------------------------------
// Finding objects

/** The API group of an object (`''` for the core group). */
export function groupOf(object: { apiVersion: string }): string {
  return object.apiVersion.includes('/') ? object.apiVersion.split('/')[0]! : '';
}

/** `Kind[.group]/namespace/name`, for messages. */
export function describeObject(object: KubeObject): string {
  const group = groupOf(object);
  return [group ? `${object.kind}.${group}` : object.kind, object.metadata.namespace, object.metadata.name].filter(Boolean).join('/');
}

/**
 * Objects of a kind, written as kubectl takes it: `Service` is the core Service, as kubectl resolves
 * a bare kind to the core group first; `Service.serving.knative.dev` is Knative's. Any other bare kind
 * matches the one group that has it, and is refused as ambiguous if two groups do.
 */
export function objectsOfKind(objects: readonly KubeObject[], kind: string): KubeObject[] {
  const dot = kind.indexOf('.');
  if (dot >= 0) {
    const [name, group] = [kind.slice(0, dot), kind.slice(dot + 1)];
    return objects.filter((o) => o.kind === name && groupOf(o) === group);
  }
  const matching = objects.filter((o) => o.kind === kind);
  const core = matching.filter((o) => groupOf(o) === '');
  if (core.length > 0) return core;
  const groups = [...new Set(matching.map(groupOf))];
  if (groups.length > 1) throw new Error(`kind ${kind} is ambiguous: say ${groups.map((g) => `${kind}.${g}`).join(' or ')}`);
  return matching;
}

/** The object of that kind and name (and namespace, for a namespaced kind); throws if it is not rendered. */
export function findObject(objects: readonly KubeObject[], kind: string, name: string, namespace?: string): KubeObject {
  const found = objectsOfKind(objects, kind).find(
    (o) => o.metadata.name === name && (namespace === undefined || o.metadata.namespace === namespace),
  );
  if (!found) throw new Error(`the rendered platform has no ${kind} ${namespace ? `${namespace}/` : ''}${name}`);
  return found;
}

/**
 * A ConfigMap or Secret from a kustomize generator, by the name it was given there: the rendered name
 * carries a content hash (`minio-root` renders as `minio-root-<10 characters>`).
 */
export function findGenerated(objects: readonly KubeObject[], kind: 'ConfigMap' | 'Secret', name: string, namespace: string): KubeObject {
  const found = objectsOfKind(objects, kind).filter(
    (o) => o.metadata.namespace === namespace && new RegExp(`^${name.replace(/[.]/g, '\\.')}-[a-z0-9]{10}$`).test(o.metadata.name),
  );
  if (found.length !== 1) throw new Error(`expected one generated ${kind} ${namespace}/${name}-<hash>, found ${found.length}`);
  return found[0]!;
}

function field(value: unknown, ...keys: Array<string | number>): unknown {
  let current = value;
  for (const key of keys) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string | number, unknown>)[key];
  }
  return current;
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function record(value: unknown): Record<string, string> {
  if (value === null || typeof value !== 'object') return {};
  return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, String(v)]));
}

/** A ConfigMap's data (binaryData is not used by the platform). */
export function configMapData(objects: readonly KubeObject[], name: string, namespace: string): Record<string, string> {
  return record(findObject(objects, 'ConfigMap', name, namespace)['data']);
}

/** A Secret's data, decoded from base64, with stringData on top (as the API server merges them). */
export function secretData(objects: readonly KubeObject[], name: string, namespace: string): Record<string, string> {
  const secret = findObject(objects, 'Secret', name, namespace);
  const decoded = Object.entries(record(secret['data'])).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]);
  return { ...Object.fromEntries(decoded), ...record(secret['stringData']) };
}

// ---------------------------------------------------------------------------------------------------
// Pods and containers

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    secretKeyRef?: { name: string; key: string; optional?: boolean };
    configMapKeyRef?: { name: string; key: string; optional?: boolean };
    fieldRef?: { fieldPath: string };
  };
}

export interface EnvFromSource {
  prefix?: string;
  secretRef?: { name: string; optional?: boolean };
  configMapRef?: { name: string; optional?: boolean };
}

export interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol?: string;
}

export interface Container {
  name?: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  envFrom?: EnvFromSource[];
  ports?: ContainerPort[];
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean; subPath?: string }>;
  [field: string]: unknown;
}

export interface Volume {
  name: string;
  configMap?: { name: string; items?: Array<{ key: string; path: string }> };
  secret?: { secretName: string; items?: Array<{ key: string; path: string }> };
  [source: string]: unknown;
}

export interface PodSpec {
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  containers: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
  [field: string]: unknown;
}

export interface PodTemplate {
  /** The object holding the template. */
  owner: KubeObject;
  namespace: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  spec: PodSpec;
}

/** Where each kind that makes pods keeps its pod template (a bare Pod is its own: an empty path). */
const templatePaths: Record<string, string[]> = {
  '/Pod': [],
  '/ReplicationController': ['spec', 'template'],
  'apps/Deployment': ['spec', 'template'],
  'apps/StatefulSet': ['spec', 'template'],
  'apps/DaemonSet': ['spec', 'template'],
  'apps/ReplicaSet': ['spec', 'template'],
  'batch/Job': ['spec', 'template'],
  'batch/CronJob': ['spec', 'jobTemplate', 'spec', 'template'],
  'serving.knative.dev/Service': ['spec', 'template'],
  'serving.knative.dev/Configuration': ['spec', 'template'],
  'sources.knative.dev/ContainerSource': ['spec', 'template'],
};

/**
 * Every pod template in the objects, Knative Services' revision templates included, so a check over
 * them covers a workload added later without anyone listing it.
 */
export function podTemplates(objects: readonly KubeObject[]): PodTemplate[] {
  const templates: PodTemplate[] = [];
  for (const object of objects) {
    const at = templatePaths[`${groupOf(object)}/${object.kind}`];
    if (!at) continue;
    const template = field(object, ...at);
    const spec = field(template, 'spec') as PodSpec | undefined;
    if (!spec || !Array.isArray(spec.containers)) throw new Error(`${describeObject(object)} has no pod spec with containers at ${[...at, 'spec'].join('.')}`);
    templates.push({
      owner: object,
      namespace: object.metadata.namespace ?? 'default',
      labels: record(field(template, 'metadata', 'labels')),
      annotations: record(field(template, 'metadata', 'annotations')),
      spec,
    });
  }
  return templates;
}

/** Init containers first, then containers, as the kubelet runs them. */
export function allContainers(spec: PodSpec): Container[] {
  return [...(spec.initContainers ?? []), ...spec.containers];
}

export interface ResolvedEnv {
  env: Record<string, string>;
  /** References that do not resolve (a missing Secret, ConfigMap or key that is not optional). */
  problems: string[];
}

/**
 * A container's environment as the kubelet builds it: envFrom first, then env in order (later wins),
 * Secret and ConfigMap values from the rendered objects, `$(VAR)` in values expanded from variables
 * defined before. Values only the cluster knows (fieldRef) are left out.
 */
export function resolveEnv(objects: readonly KubeObject[], namespace: string, container: Container): ResolvedEnv {
  const env: Record<string, string> = {};
  const problems: string[] = [];
  const lookup = (kind: 'Secret' | 'ConfigMap', name: string): Record<string, string> | undefined => {
    try {
      return kind === 'Secret' ? secretData(objects, name, namespace) : configMapData(objects, name, namespace);
    } catch {
      return undefined;
    }
  };
  for (const source of container.envFrom ?? []) {
    const ref = source.secretRef ?? source.configMapRef;
    if (!ref) continue;
    const kind = source.secretRef ? 'Secret' : 'ConfigMap';
    const data = lookup(kind, ref.name);
    if (!data) {
      if (!ref.optional) problems.push(`envFrom: ${kind} ${namespace}/${ref.name} is not rendered`);
      continue;
    }
    for (const [key, value] of Object.entries(data)) env[`${source.prefix ?? ''}${key}`] = value;
  }
  for (const variable of container.env ?? []) {
    if (variable.value !== undefined) {
      env[variable.name] = expandReferences(variable.value, env);
      continue;
    }
    const secretRef = variable.valueFrom?.secretKeyRef;
    const keyRef = secretRef ?? variable.valueFrom?.configMapKeyRef;
    if (!keyRef) {
      if (!variable.valueFrom) env[variable.name] = '';
      continue;
    }
    const kind = secretRef ? 'Secret' : 'ConfigMap';
    const value = lookup(kind, keyRef.name)?.[keyRef.key];
    if (value !== undefined) env[variable.name] = value;
    else if (!keyRef.optional) problems.push(`${variable.name}: key ${keyRef.key} of ${kind} ${namespace}/${keyRef.name} is not rendered`);
  }
  return { env, problems };
}

/** Kubernetes' `$(VAR)` expansion: a defined variable is replaced, `$$` is a literal `$`, others stay. */
export function expandReferences(value: string, env: Record<string, string>): string {
  return value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (match, name: string | undefined) => {
    if (match === '$$') return '$';
    return name !== undefined && name in env ? env[name]! : match;
  });
}

// ---------------------------------------------------------------------------------------------------
// Service accounts and namespaces

export interface ServiceAccountRef {
  namespace: string;
  name: string;
  /** Username the API server gives the account's tokens. */
  username: string;
  /** Whether the objects create the account (otherwise it is only referred to, like `default`). */
  declared: boolean;
  /** Pod templates that run as it. */
  usedBy: PodTemplate[];
  /** automountServiceAccountToken on the ServiceAccount object, if declared. */
  automountToken?: boolean;
}

/**
 * Every service account the objects bring into play: those they declare, those their pods run as
 * (`default` where a pod names none), and those their RoleBindings and ClusterRoleBindings name.
 */
export function serviceAccounts(objects: readonly KubeObject[]): ServiceAccountRef[] {
  const accounts = new Map<string, ServiceAccountRef>();
  const ref = (namespace: string, name: string): ServiceAccountRef => {
    const key = `${namespace}/${name}`;
    let account = accounts.get(key);
    if (!account) {
      account = { namespace, name, username: `system:serviceaccount:${namespace}:${name}`, declared: false, usedBy: [] };
      accounts.set(key, account);
    }
    return account;
  };
  for (const object of objects) {
    if (object.kind === 'ServiceAccount' && groupOf(object) === '') {
      const account = ref(object.metadata.namespace ?? 'default', object.metadata.name);
      account.declared = true;
      if (typeof object['automountServiceAccountToken'] === 'boolean') {
        account.automountToken = object['automountServiceAccountToken'];
      }
    }
    if ((object.kind === 'RoleBinding' || object.kind === 'ClusterRoleBinding') && groupOf(object) === 'rbac.authorization.k8s.io') {
      for (const subject of (object['subjects'] ?? []) as Array<{ kind: string; name: string; namespace?: string }>) {
        if (subject.kind === 'ServiceAccount') ref(subject.namespace ?? object.metadata.namespace ?? 'default', subject.name);
      }
    }
  }
  for (const template of podTemplates(objects)) {
    ref(template.namespace, template.spec.serviceAccountName ?? 'default').usedBy.push(template);
  }
  return [...accounts.values()].sort((a, b) => a.username.localeCompare(b.username));
}

/** Whether pods from this template get a service-account token: the pod's choice wins over the account's. */
export function mountsToken(template: PodTemplate, account: ServiceAccountRef | undefined): boolean {
  return template.spec.automountServiceAccountToken ?? account?.automountToken ?? true;
}

/** The namespaces the objects live in, and those they create. */
export function namespacesOf(objects: readonly KubeObject[]): string[] {
  const names = new Set<string>();
  for (const object of objects) {
    if (object.kind === 'Namespace' && groupOf(object) === '') names.add(object.metadata.name);
    else if (object.metadata.namespace) names.add(object.metadata.namespace);
  }
  return [...names].sort();
}

// ---------------------------------------------------------------------------------------------------
// Prometheus

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
  const escaped = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]');
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
    const keys = Object.keys(files).filter((key) => matcher.test(key)).sort();
    if (keys.length === 0) throw new Error(`rule_files entry ${pattern} (${inPod}) matches no key of ConfigMap ${namespace}/${volume.configMap!.name}`);
    return keys.map((key) => ({ key, path: path.posix.join(mount.mountPath, key), text: files[key]! }));
  });
  return { namespace, deployment: name, image: container.image, args, configMap: volume.configMap.name, configPath, configText, config, ruleFiles, files };
}

// ---------------------------------------------------------------------------------------------------
// Knative Eventing

/** A Knative Destination (duck v1): an object reference, a URI, or a URI relative to the reference. */
export interface Destination {
  ref?: { apiVersion: string; kind: string; name: string; namespace?: string };
  uri?: string;
}

function destination(value: unknown, where: string): Destination {
  const ref = field(value, 'ref') as Destination['ref'] | undefined;
  const uri = text(field(value, 'uri'));
  if (!ref && uri === undefined) throw new Error(`${where} has neither ref nor uri`);
  return { ...(ref ? { ref } : {}), ...(uri !== undefined ? { uri } : {}) };
}

/** The object a Destination's ref names, among the rendered ones (its namespace defaulting to `namespace`). */
export function destinationObject(objects: readonly KubeObject[], dest: Destination, namespace: string): KubeObject {
  if (!dest.ref) throw new Error(`destination ${JSON.stringify(dest)} names no object`);
  const group = dest.ref.apiVersion.includes('/') ? dest.ref.apiVersion.split('/')[0] : '';
  return findObject(objects, group ? `${dest.ref.kind}.${group}` : dest.ref.kind, dest.ref.name, dest.ref.namespace ?? namespace);
}

export interface PingSourceSpec {
  namespace: string;
  name: string;
  schedule: string;
  timezone?: string;
  contentType?: string;
  /** spec.data, or spec.dataBase64 decoded. */
  data?: string;
  sink: Destination;
}

export function pingSource(objects: readonly KubeObject[], name = 'snapshot-schedule', namespace = 'promsnap'): PingSourceSpec {
  const object = findObject(objects, 'PingSource.sources.knative.dev', name, namespace);
  const spec = field(object, 'spec');
  const schedule = text(field(spec, 'schedule'));
  if (!schedule) throw new Error(`${describeObject(object)} has no spec.schedule`);
  const base64 = text(field(spec, 'dataBase64'));
  const data = base64 ? Buffer.from(base64, 'base64').toString('utf8') : text(field(spec, 'data'));
  const timezone = text(field(spec, 'timezone'));
  const contentType = text(field(spec, 'contentType'));
  return {
    namespace,
    name,
    schedule,
    ...(timezone ? { timezone } : {}),
    ...(contentType ? { contentType } : {}),
    ...(data !== undefined && data !== '' ? { data } : {}),
    sink: destination(field(spec, 'sink'), `${describeObject(object)} spec.sink`),
  };
}

/** spec.delivery as written (Knative's duck v1 DeliverySpec): what deliveryPolicy reads and checks. */
export interface DeliverySpec {
  retry?: number;
  backoffPolicy?: 'exponential' | 'linear';
  backoffDelay?: string;
  timeout?: string;
  retryAfterMax?: string;
  deadLetterSink?: Destination;
}

/** A delivery spec as Knative applies it: durations as written (ISO-8601) and in milliseconds. */
export interface DeliveryPolicy {
  /** Retries after the first attempt (Knative: spec.delivery.retry, none when unset). */
  retry: number;
  backoffPolicy?: 'exponential' | 'linear';
  backoffDelay?: string;
  backoffDelayMs?: number;
  /** Per-attempt timeout; none when unset. */
  timeout?: string;
  timeoutMs?: number;
  /** Set only when spec.delivery.retryAfterMax is: Knative honours Retry-After only then. */
  retryAfterMax?: string;
  retryAfterMaxMs?: number;
  deadLetterSink?: Destination;
}

export interface TriggerSpec {
  namespace: string;
  name: string;
  broker: string;
  /** spec.filter.attributes (exact match; empty matches every event). */
  filter: Record<string, string>;
  subscriber: Destination;
  /** The Trigger's own delivery, else its Broker's (Knative's fallback). */
  delivery: DeliveryPolicy;
}

export function trigger(objects: readonly KubeObject[], name = 'snapshot', namespace = 'promsnap'): TriggerSpec {
  const object = findObject(objects, 'Trigger.eventing.knative.dev', name, namespace);
  const spec = field(object, 'spec');
  const broker = text(field(spec, 'broker'));
  if (!broker) throw new Error(`${describeObject(object)} has no spec.broker`);
  const brokerObject = findObject(objects, 'Broker.eventing.knative.dev', broker, namespace);
  const delivery = field(spec, 'delivery') ?? field(brokerObject, 'spec', 'delivery');
  return {
    namespace,
    name,
    broker,
    filter: record(field(spec, 'filter', 'attributes')),
    subscriber: destination(field(spec, 'subscriber'), `${describeObject(object)} spec.subscriber`),
    delivery: deliveryPolicy(delivery, `${describeObject(object)} spec.delivery`),
  };
}

/**
 * The one reader of a delivery spec (a Trigger's, else its Broker's): every field Knative's dispatcher
 * uses, checked, so a value of the wrong type or form fails here naming the field rather than being
 * ignored. Durations are read by isoDurationMs, as Knative reads them.
 */
export function deliveryPolicy(spec: unknown, where = 'delivery'): DeliveryPolicy {
  if (spec === undefined || spec === null) return { retry: 0 };
  const retry = field(spec, 'retry');
  if (retry !== undefined && (typeof retry !== 'number' || !Number.isInteger(retry) || retry < 0)) {
    throw new Error(`${where}.retry must be a whole number of at least 0, got ${JSON.stringify(retry)}`);
  }
  const policy = field(spec, 'backoffPolicy');
  if (policy !== undefined && policy !== 'exponential' && policy !== 'linear') {
    throw new Error(`${where}.backoffPolicy must be exponential or linear, got ${JSON.stringify(policy)}`);
  }
  const duration = (name: 'backoffDelay' | 'timeout' | 'retryAfterMax'): { text: string; ms: number } | undefined => {
    const value = field(spec, name);
    if (value === undefined) return undefined;
    if (typeof value !== 'string') throw new Error(`${where}.${name} must be an ISO-8601 duration such as PT1S, got ${JSON.stringify(value)}`);
    try {
      return { text: value, ms: isoDurationMs(value) };
    } catch (err) {
      throw new Error(`${where}.${name}: ${(err as Error).message}`);
    }
  };
  const delay = duration('backoffDelay');
  const timeout = duration('timeout');
  const retryAfterMax = duration('retryAfterMax');
  const dls = field(spec, 'deadLetterSink');
  return {
    retry: (retry as number | undefined) ?? 0,
    ...(policy !== undefined ? { backoffPolicy: policy as 'exponential' | 'linear' } : {}),
    ...(delay ? { backoffDelay: delay.text, backoffDelayMs: delay.ms } : {}),
    ...(timeout ? { timeout: timeout.text, timeoutMs: timeout.ms } : {}),
    ...(retryAfterMax ? { retryAfterMax: retryAfterMax.text, retryAfterMaxMs: retryAfterMax.ms } : {}),
    ...(dls !== undefined ? { deadLetterSink: destination(dls, `${where}.deadLetterSink`) } : {}),
  };
}

/**
 * The wait before the retry that follows failed attempt `attempt` (counted from 0), as Knative's
 * dispatcher computes it (knative.dev/eventing pkg/kncloudevents/retries.go): exponential
 * backoffDelay * 2^attempt, linear backoffDelay * attempt (so the first linear retry is immediate).
 * Without both a policy and a delay, Knative retries at once.
 */
export function retryDelayMs(policy: Pick<DeliveryPolicy, 'backoffPolicy' | 'backoffDelayMs'>, attempt: number): number {
  const { backoffPolicy, backoffDelayMs } = policy;
  if (backoffPolicy === undefined || backoffDelayMs === undefined) return 0;
  return backoffPolicy === 'exponential' ? backoffDelayMs * 2 ** attempt : backoffDelayMs * attempt;
}

/** The waits between a delivery's 1 + retry attempts. */
export function retryDelaysMs(policy: Pick<DeliveryPolicy, 'retry' | 'backoffPolicy' | 'backoffDelayMs'>): number[] {
  return Array.from({ length: policy.retry }, (_, i) => retryDelayMs(policy, i));
}

const msPer = {
  // github.com/rickb777/date period: a year is 365.2425 days, a month a twelfth of that (30.436875).
  year: 31_556_952_000,
  month: 2_629_746_000,
  week: 604_800_000,
  day: 86_400_000,
  hour: 3_600_000,
  minute: 60_000,
  second: 1_000,
};

/** A number as the period library reads it: fixed point with one decimal place, further digits dropped. */
function tenths(number: string | undefined): number {
  if (number === undefined) return 0;
  const [whole, fraction = ''] = number.split(/[.,]/);
  return Number(whole) * 10 + Number(fraction.slice(0, 1) || '0');
}

/**
 * Milliseconds in an ISO-8601 duration, read as Knative Eventing reads a delivery's backoffDelay,
 * timeout and retryAfterMax (pkg/kncloudevents/retries.go: github.com/rickb777/date v1.13.0
 * period.Parse, then Duration()): any of Y, M, W, D and, after T, H, M, S; a decimal fraction with
 * `.` or `,`, of which only the first digit counts; a year 365.2425 days, a month 30.436875; `P0` is
 * zero. Refused although the library takes them: a negative duration (no delivery setting may be
 * one), a T with nothing after it (`P1DT`), and numbers without digits on both sides of the point.
 * Not followed: the library's rounding of a month's fraction to tenths of a day when smaller units
 * come after it (`P1.5M1D`).
 */
export function isoDurationMs(value: string): number {
  if (value === 'P0') return 0;
  const number = '(\\d+(?:[.,]\\d+)?)';
  const match = new RegExp(`^([-+]?)P(?:${number}Y)?(?:${number}M)?(?:${number}W)?(?:${number}D)?(?:T(?:${number}H)?(?:${number}M)?(?:${number}S)?)?$`).exec(value);
  if (!match || value.endsWith('T') || match.slice(2).every((part) => part === undefined)) {
    throw new Error(`${JSON.stringify(value)} is not an ISO-8601 duration (for example PT0.5S, PT2S, PT1M)`);
  }
  if (match[1] === '-') throw new Error(`${JSON.stringify(value)} is negative; a delivery duration must not be`);
  const [years, months, weeks, days, hours, minutes, seconds] = match.slice(2).map(tenths) as [number, number, number, number, number, number, number];
  const total =
    years * msPer.year + months * msPer.month + weeks * msPer.week + days * msPer.day + hours * msPer.hour + minutes * msPer.minute + seconds * msPer.second;
  return total / 10;
}

// ---------------------------------------------------------------------------------------------------
// Knative Serving

export interface KnativeServiceSpec {
  namespace: string;
  name: string;
  /** The revision template's annotations (autoscaling, prometheus.io). */
  annotations: Record<string, string>;
  labels: Record<string, string>;
  serviceAccountName?: string;
  timeoutSeconds?: number;
  container: Container;
  /** The port Knative sends requests to and sets as $PORT: the container's port, else 8080. */
  port: number;
  /** The container's environment, with Secret values resolved from the rendered Secrets. */
  env: ResolvedEnv;
  template: PodTemplate;
}

export function knativeService(objects: readonly KubeObject[], name: string, namespace = 'promsnap'): KnativeServiceSpec {
  const object = findObject(objects, 'Service.serving.knative.dev', name, namespace);
  const template = podTemplates([object])[0]!;
  // Knative serves exactly one container's port; with several containers, the one that declares it.
  const container = template.spec.containers.find((c) => (c.ports ?? []).length > 0) ?? template.spec.containers[0]!;
  const timeout = template.spec['timeoutSeconds'];
  return {
    namespace,
    name,
    annotations: template.annotations,
    labels: template.labels,
    ...(template.spec.serviceAccountName ? { serviceAccountName: template.spec.serviceAccountName } : {}),
    ...(typeof timeout === 'number' ? { timeoutSeconds: timeout } : {}),
    container,
    port: container.ports?.[0]?.containerPort ?? 8080,
    env: resolveEnv(objects, namespace, container),
    template,
  };
}

// ---------------------------------------------------------------------------------------------------
// Services and addresses

export interface ServicePort {
  name?: string;
  port: number;
  targetPort?: number | string;
  nodePort?: number;
  protocol?: string;
}

/** A core Service's ports. */
export function servicePorts(objects: readonly KubeObject[], name: string, namespace: string): ServicePort[] {
  return (field(findObject(objects, 'Service', name, namespace), 'spec', 'ports') ?? []) as ServicePort[];
}

export interface ClusterAddress {
  service: string;
  namespace: string;
  port: number;
}

/**
 * The Service a cluster-internal URL points at: `http://NAME.NAMESPACE.svc.cluster.local:PORT/...`
 * (or the shorter `NAME.NAMESPACE.svc` and `NAME.NAMESPACE` forms); undefined for any other host.
 */
export function clusterAddress(url: string): ClusterAddress | undefined {
  const parsed = new URL(url);
  const match = /^([a-z0-9-]+)\.([a-z0-9-]+)(?:\.svc(?:\.cluster\.local)?)?$/.exec(parsed.hostname);
  if (!match) return undefined;
  const port = parsed.port ? Number(parsed.port) : parsed.protocol === 'https:' ? 443 : 80;
  return { service: match[1]!, namespace: match[2]!, port };
}
