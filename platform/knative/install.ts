// Installing a Knative release on a cluster as its documentation says (apply the release's YAML), in two
// steps the local cluster needs apart: the CRDs first (the node's KIngress and Knative's controllers watch
// them from their first moment), then the rest, server-side and in parallel (controlplane/apply.ts: what
// `kubectl apply --server-side -f` does, in a tenth of the time on two cores). Then waiting until Knative
// is really there: every Deployment and StatefulSet Available with all its replicas, every webhook
// configuration given its CA bundle by the webhook itself, and a dry-run through the admission webhooks
// accepted, so the first real write is validated and defaulted by Knative instead of refused.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { applyObjects, type ApiRequest } from '../controlplane/apply.js';
import { installCrds } from '../controlplane/crds.js';
import type { KubeObject } from '../manifests/objects.js';
import { objectsYaml } from '../manifests/render.js';
import type { Kubectl } from '../tools/kubectl.js';
import { sleep, waitFor } from '../tools/wait.js';
import type { KnativeComponent, KnativeRelease } from './release.js';

/** What install needs of a cluster: kubectl as its admin, and its API as the admin. */
export interface KnativeTarget {
  kubectl: Kubectl;
  getJson: <T = unknown>(apiPath: string) => Promise<T>;
  request: ApiRequest;
}

export interface InstallOptions {
  /** How long applying, and then becoming Available, may each take. Default 180 s. */
  timeoutMs?: number;
  /** Progress, one line per step. */
  log?: (line: string) => void;
}

/** Applies and waits for the CRDs of the releases (Established and served); dir holds the files applied. Returns their names. */
export async function installKnativeCrds(
  target: KnativeTarget,
  releases: readonly KnativeRelease[],
  options: InstallOptions & { dir: string },
): Promise<string[]> {
  const dir = path.join(options.dir, 'knative-crds');
  await mkdir(dir, { recursive: true });
  for (const release of releases) await writeFile(path.join(dir, `${release.component}.yaml`), objectsYaml(release.crds));
  const names = await installCrds([dir], target.kubectl.with, target.getJson, options.timeoutMs ?? 180_000);
  options.log?.(`Knative ${releases.map((r) => `${r.component} ${r.version}`).join(' and ')}: ${names.length} CRDs established`);
  return names;
}

/** Server-side apply of the release's objects (not its CRDs), tried again while the API server refuses for a moment. */
export async function applyKnative(target: KnativeTarget, release: KnativeRelease, options: InstallOptions = {}): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 180_000);
  for (let attempt = 1; ; attempt++) {
    try {
      await applyObjects(target.request, release.objects, { fieldManager: 'promsnap-localcluster' });
      break;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`applying Knative ${release.component} ${release.version} failed: ${(err as Error).message}`, { cause: err });
      options.log?.(`Knative ${release.component}: apply attempt ${attempt} failed, again in 1 s: ${(err as Error).message.split('\n').slice(0, 2).join(' ')}`);
      await sleep(1_000);
    }
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
    const input = objectsYaml(admissionChecks(release.component));
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
