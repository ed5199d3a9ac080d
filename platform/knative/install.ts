// Installing a Knative release on a cluster as its documentation says (`kubectl apply -f` the release),
// in two steps the local cluster needs apart: the CRDs first (the node's KIngress and Knative's
// controllers watch them from their first moment), the rest once a node runs pods. Then waiting until
// Knative is really there: every Deployment and StatefulSet Available with all its replicas, every
// webhook configuration given its CA bundle by the webhook itself, and a dry-run through the admission
// webhooks accepted, so the first real write is validated and defaulted by Knative instead of refused.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import { installCrds } from '../controlplane/crds.js';
import type { KubeObject } from '../manifests/objects.js';
import type { Kubectl } from '../tools/kubectl.js';
import { sleep, waitFor } from '../tools/wait.js';
import type { KnativeComponent, KnativeRelease } from './release.js';

/** What install needs of a cluster: kubectl as its admin and GET on its API. */
export interface KnativeTarget {
  kubectl: Kubectl;
  getJson: <T = unknown>(apiPath: string) => Promise<T>;
}

export interface InstallOptions {
  /** How long applying, and then becoming Available, may each take. Default 180 s. */
  timeoutMs?: number;
  /** Progress, one line per step. */
  log?: (line: string) => void;
}

/** A YAML stream of the objects, as a release file is. */
export function releaseYaml(objects: readonly KubeObject[]): string {
  return objects.map((object) => stringify(object, { lineWidth: 0 })).join('---\n');
}

/** Applies and waits for the CRDs of the releases (Established and served); dir holds the files applied. Returns their names. */
export async function installKnativeCrds(
  target: KnativeTarget,
  releases: readonly KnativeRelease[],
  options: InstallOptions & { dir: string },
): Promise<string[]> {
  const dir = path.join(options.dir, 'knative-crds');
  await mkdir(dir, { recursive: true });
  for (const release of releases) await writeFile(path.join(dir, `${release.component}.yaml`), releaseYaml(release.crds));
  const names = await installCrds([dir], target.kubectl.with, target.getJson, options.timeoutMs ?? 180_000);
  options.log?.(`Knative ${releases.map((r) => `${r.component} ${r.version}`).join(' and ')}: ${names.length} CRDs established`);
  return names;
}

/** `kubectl apply -f` of the release's objects (not its CRDs), tried again while the API server refuses for a moment. */
export async function applyKnative(target: KnativeTarget, release: KnativeRelease, options: InstallOptions = {}): Promise<void> {
  const input = releaseYaml(release.objects);
  const deadline = Date.now() + (options.timeoutMs ?? 180_000);
  for (let attempt = 1; ; attempt++) {
    const result = await target.kubectl.with({ input, allowFailure: true, timeoutMs: 120_000 }, 'apply', '-f', '-');
    if (result.code === 0) break;
    if (Date.now() > deadline) throw new Error(`kubectl apply of Knative ${release.component} ${release.version} failed:\n${result.stderr.trim()}`);
    options.log?.(`Knative ${release.component}: apply attempt ${attempt} failed, again in 1 s: ${result.stderr.trim().split('\n')[0]}`);
    await sleep(1_000);
  }
  options.log?.(`Knative ${release.component} ${release.version}: ${release.objects.length} objects applied`);
}

interface Workload {
  metadata: { name: string; generation?: number };
  spec?: { replicas?: number };
  status?: { observedGeneration?: number; updatedReplicas?: number; availableReplicas?: number; readyReplicas?: number };
}

interface WebhookConfiguration {
  webhooks?: Array<{ name: string; clientConfig?: { caBundle?: string } }>;
}

interface PodList {
  items: Array<{
    metadata: { name: string };
    status?: {
      phase?: string;
      containerStatuses?: Array<{ name: string; ready?: boolean; restartCount?: number; state?: { waiting?: { reason?: string; message?: string } } }>;
    };
  }>;
}

const workloadKinds: Record<string, string> = { Deployment: 'deployments', StatefulSet: 'statefulsets' };
const webhookKinds: Record<string, string> = {
  MutatingWebhookConfiguration: 'mutatingwebhookconfigurations',
  ValidatingWebhookConfiguration: 'validatingwebhookconfigurations',
};

/** What is not there yet, one entry each; empty once the release is installed and Available. */
export async function notYetAvailable(target: KnativeTarget, release: KnativeRelease): Promise<string[]> {
  const waiting: string[] = [];
  for (const object of release.objects) {
    const workloads = workloadKinds[object.kind];
    if (workloads) {
      const wanted = (object['spec'] as Workload['spec'])?.replicas ?? 1;
      if (wanted === 0) continue;
      const live = await target.getJson<Workload>(`/apis/apps/v1/namespaces/${object.metadata.namespace}/${workloads}/${object.metadata.name}`);
      const status = live.status ?? {};
      const current = (status.observedGeneration ?? 0) >= (live.metadata.generation ?? 1);
      const available = object.kind === 'Deployment' ? status.availableReplicas : status.readyReplicas;
      if (!current || status.updatedReplicas !== wanted || available !== wanted)
        waiting.push(`${object.kind} ${object.metadata.name}: ${available ?? 0}/${wanted} available`);
    }
    const webhooks = webhookKinds[object.kind];
    if (webhooks) {
      const live = await target.getJson<WebhookConfiguration>(`/apis/admissionregistration.k8s.io/v1/${webhooks}/${object.metadata.name}`);
      const bare = (live.webhooks ?? []).filter((w) => !w.clientConfig?.caBundle).map((w) => w.name);
      if (bare.length > 0) waiting.push(`${object.kind} ${object.metadata.name}: no CA bundle yet for ${bare.join(', ')}`);
    }
  }
  return waiting;
}

/** Objects a user would apply first, sent as server-side dry runs: accepted only through Knative's admission webhooks. */
export function admissionChecks(component: KnativeComponent, namespace = 'default'): KubeObject[] {
  const metadata = { name: 'promsnap-admission-check', namespace };
  if (component === 'serving') {
    return [
      {
        apiVersion: 'serving.knative.dev/v1',
        kind: 'Service',
        metadata,
        spec: { template: { spec: { containers: [{ image: 'dev.local/promsnap-admission-check:1' }] } } },
      },
    ];
  }
  return [
    { apiVersion: 'eventing.knative.dev/v1', kind: 'Broker', metadata },
    { apiVersion: 'messaging.knative.dev/v1', kind: 'InMemoryChannel', metadata },
  ];
}

/** The release's pods, one line each with what keeps a container from running, for a failed wait's message. */
export async function describePods(target: KnativeTarget, namespace: string): Promise<string> {
  const pods = await target.getJson<PodList>(`/api/v1/namespaces/${namespace}/pods`).catch((err: Error) => ({ error: err.message }));
  if ('error' in pods) return `  (pods unreadable: ${pods.error})`;
  if (pods.items.length === 0) return '  (no pods)';
  return pods.items
    .map((pod) => {
      const containers = (pod.status?.containerStatuses ?? [])
        .map((c) => {
          const waiting = c.state?.waiting;
          return `${c.name} ${c.ready ? 'ready' : 'not ready'}${c.restartCount ? ` restarts=${c.restartCount}` : ''}${waiting?.reason ? ` ${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}` : ''}`;
        })
        .join('; ');
      return `  ${pod.metadata.name} ${pod.status?.phase ?? 'unknown'} ${containers}`;
    })
    .join('\n');
}

/** Waits until the release is Available and its webhooks admit what a user applies; see the top of this file. */
export async function waitForKnative(target: KnativeTarget, release: KnativeRelease, options: InstallOptions = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 180_000;
  const started = Date.now();
  let waiting: string[] = [];
  try {
    await waitFor(
      async () => {
        waiting = await notYetAvailable(target, release);
        return waiting.length === 0;
      },
      { what: `Knative ${release.component} to be Available`, timeoutMs, intervalMs: 250 },
    );
    options.log?.(`Knative ${release.component}: Deployments Available and webhooks configured after ${Date.now() - started} ms`);
    const input = releaseYaml(admissionChecks(release.component));
    let refusal = '';
    await waitFor(
      async () => {
        const result = await target.kubectl.with({ input, allowFailure: true }, 'create', '--dry-run=server', '-o', 'name', '-f', '-');
        refusal = result.stderr.trim();
        return result.code === 0;
      },
      {
        what: `Knative ${release.component}'s admission webhooks to accept a dry run`,
        timeoutMs: Math.max(10_000, timeoutMs - (Date.now() - started)),
        intervalMs: 250,
      },
    ).catch((err: Error) => {
      throw new Error(`${err.message}\nlast refusal: ${refusal}`);
    });
  } catch (err) {
    const pods = await describePods(target, release.namespace);
    throw new Error(`${(err as Error).message}${waiting.length > 0 ? `\nnot yet: ${waiting.join('; ')}` : ''}\npods in ${release.namespace}:\n${pods}`, {
      cause: err,
    });
  }
  options.log?.(`Knative ${release.component} ${release.version}: installed, its webhooks admitting, after ${Date.now() - started} ms`);
}

/** Applies the release (its CRDs must be installed) and waits until it is Available. */
export async function installKnative(
  target: KnativeTarget,
  release: KnativeRelease,
  options: InstallOptions = {},
): Promise<{ applyMs: number; availableMs: number }> {
  const started = Date.now();
  await applyKnative(target, release, options);
  const applied = Date.now();
  await waitForKnative(target, release, options);
  return { applyMs: applied - started, availableMs: Date.now() - applied };
}
