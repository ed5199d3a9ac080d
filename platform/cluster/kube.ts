// The user's cluster through @kubernetes/client-node: kubeconfig and context chosen as kubectl chooses
// them, Knative looked up in API discovery, pipeline objects read one by one. Every failure leaves here
// as a CliError (errors.ts), so the commands never see a raw HTTP or socket error.
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApisApi, AppsV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { describeRequestError, httpStatus, knativeMissing, noContext, noKubeconfig, unreadableKubeconfig } from './errors.js';
import { knativeApiGroups, type KnativePart } from './knative.js';
import { resourceTypes, type ObjectRef } from './pipeline.js';

export interface Cluster {
  readonly kubeConfig: KubeConfig;
  /** The context in use (--context, else the kubeconfig's current context). */
  readonly context: string;
  /** The API server's URL, for messages. */
  readonly server: string;
  /** Runs an API request, turning its failure into a CliError that says what was asked. */
  request<T>(what: string, call: () => Promise<T>): Promise<T>;
}

export interface ConnectOptions {
  context?: string | undefined;
  env?: NodeJS.ProcessEnv;
  homeDir?: string;
}

/** Where the service account's token is mounted inside a pod (client-node's in-cluster config). */
const inClusterToken = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/**
 * Loads the kubeconfig as kubectl does: the files in KUBECONFIG (missing ones skipped, the rest
 * merged, the first file's current context winning), else ~/.kube/config, else the in-cluster
 * service account. client-node would fall back to http://localhost:8080 instead of saying so.
 */
export function loadKubeConfig(options: ConnectOptions = {}): KubeConfig {
  const env = options.env ?? process.env;
  const kubeConfig = new KubeConfig();
  const listed = (env['KUBECONFIG'] ?? '').split(path.delimiter).filter((file) => file !== '');
  const defaultFile = path.join(options.homeDir ?? os.homedir(), '.kube', 'config');
  const candidates = listed.length > 0 ? listed : [defaultFile];
  const files = candidates.filter((file) => existsSync(file));
  if (files.length === 0) {
    if (listed.length === 0 && env['KUBERNETES_SERVICE_HOST'] && existsSync(inClusterToken)) {
      kubeConfig.loadFromCluster();
      return kubeConfig;
    }
    throw noKubeconfig(listed.length > 0 ? listed.map((file) => `KUBECONFIG=${file}`) : [defaultFile]);
  }
  for (const file of files) {
    const one = new KubeConfig();
    try {
      one.loadFromFile(file);
    } catch (err) {
      throw unreadableKubeconfig(file, err instanceof Error ? err.message.split('\n')[0]! : String(err));
    }
    // kubectl's merge rule: the first file to name a cluster, user, context or current context wins.
    if (!kubeConfig.getCurrentContext() && one.getCurrentContext()) kubeConfig.setCurrentContext(one.getCurrentContext());
    for (const entry of one.getClusters()) if (!kubeConfig.getCluster(entry.name)) kubeConfig.addCluster(entry);
    for (const entry of one.getUsers()) if (!kubeConfig.getUser(entry.name)) kubeConfig.addUser(entry);
    for (const entry of one.getContexts()) if (!kubeConfig.getContextObject(entry.name)) kubeConfig.addContext(entry);
  }
  return kubeConfig;
}

/** The kubeconfig, switched to --context when given, ready for requests. */
export function connect(options: ConnectOptions = {}): Cluster {
  const kubeConfig = loadKubeConfig(options);
  const contexts = kubeConfig.getContexts().map((context) => context.name);
  const context = options.context ?? kubeConfig.getCurrentContext();
  if (!context || !kubeConfig.getContextObject(context)) throw noContext(options.context, contexts);
  kubeConfig.setCurrentContext(context);
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster) throw noContext(options.context ?? context, contexts);
  const server = cluster.server;
  return {
    kubeConfig,
    context,
    server,
    async request(what, call) {
      try {
        return await call();
      } catch (err) {
        throw describeRequestError(err, { server, context, what });
      }
    },
  };
}

/** Checks the API server answers and serves Knative's API groups; throws the install commands if not. */
export async function requireKnative(cluster: Cluster, parts: readonly KnativePart[] = ['serving', 'eventing']): Promise<void> {
  const apis = cluster.kubeConfig.makeApiClient(ApisApi);
  const list = await cluster.request('list the API groups (discovery)', () => apis.getAPIVersions());
  const served = new Set(list.groups.flatMap((group) => group.versions.map((version) => version.groupVersion)));
  const missing = parts.filter((part) => knativeApiGroups[part].some(({ group, version }) => !served.has(`${group}/${version}`)));
  if (missing.length > 0) throw knativeMissing(missing);
}

/** One object as the API server stores it, or undefined when it does not exist. */
export async function readObject(cluster: Cluster, ref: ObjectRef): Promise<unknown> {
  const type = resourceTypes[ref.resource];
  const what = `get ${ref.resource}/${ref.name} in namespace ${ref.namespace}`;
  try {
    if (ref.resource === 'deployment') {
      const apps = cluster.kubeConfig.makeApiClient(AppsV1Api);
      return await apps.readNamespacedDeployment({ name: ref.name, namespace: ref.namespace });
    }
    const custom = cluster.kubeConfig.makeApiClient(CustomObjectsApi);
    return await custom.getNamespacedCustomObject({
      group: type.group,
      version: type.version,
      namespace: ref.namespace,
      plural: type.plural,
      name: ref.name,
    });
  } catch (err) {
    if (httpStatus(err) === 404) return undefined;
    throw describeRequestError(err, { server: cluster.server, context: cluster.context, what });
  }
}

/** Every object, read in parallel; each missing one is undefined. */
export async function readObjects(cluster: Cluster, refs: readonly ObjectRef[]): Promise<Array<{ ref: ObjectRef; object: unknown }>> {
  return Promise.all(refs.map(async (ref) => ({ ref, object: await readObject(cluster, ref) })));
}
