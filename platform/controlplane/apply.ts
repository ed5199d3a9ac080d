// Server-side apply of many objects at once: what `kubectl apply --server-side -f` does (one PATCH of type
// application/apply-patch+yaml per object, the API server merging), with the objects of a step sent
// concurrently. kubectl sends its requests one after the other: on two cores, while the local cluster's
// node started, its client-side apply of Knative Eventing's 125 objects took 10 s at about 30 ms a
// request. The steps keep what a release file applied in order gives: namespaces (and CRDs) first; then
// workloads, so a ReplicaSet's first pods do not meet a missing ServiceAccount and go into back-off; and
// admission webhook configurations last, as releases list them: one that already names rules would refuse
// every object it matches while its webhook does not run yet (seen: Serving's Certificate, refused by
// webhook.serving.knative.dev, whose Deployment was still waiting for its step).
// A custom resource needs its CRD established before it is applied (controlplane/crds.ts waits for that).

/** What applying needs of an object: where it goes. Everything else is sent as it is. */
export interface ApplyObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
}

/** Requests on the API server as someone allowed to write the objects (ControlPlane['request']). */
export type ApiRequest = (method: string, apiPath: string, body?: { text: string; contentType: string }) => Promise<{ status: number; body: string }>;

export interface ApplyOptions {
  /** The field manager the API server records (default promsnap). */
  fieldManager?: string;
  /** Requests in flight at once (default 16). */
  concurrency?: number;
}

export class ApplyError extends Error {
  constructor(readonly failures: string[]) {
    super(`server-side apply refused ${failures.length} object${failures.length === 1 ? '' : 's'}:\n  ${failures.join('\n  ')}`);
    this.name = 'ApplyError';
  }
}

const stepOf = (kind: string): number =>
  ['Namespace', 'CustomResourceDefinition'].includes(kind)
    ? 0
    : ['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job', 'CronJob', 'Pod'].includes(kind)
      ? 2
      : ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration'].includes(kind)
        ? 3
        : 1;

interface ApiResource {
  name: string;
  kind: string;
  namespaced: boolean;
}

/** Applies the objects in four steps (see the top of this file); throws an ApplyError naming every object refused. */
export async function applyObjects(request: ApiRequest, objects: readonly ApplyObject[], options: ApplyOptions = {}): Promise<void> {
  const fieldManager = options.fieldManager ?? 'promsnap';
  const discovered = new Map<string, Promise<ApiResource[]>>();
  const resourcesOf = (apiVersion: string) => {
    let found = discovered.get(apiVersion);
    if (!found) {
      found = discover(request, apiVersion);
      discovered.set(apiVersion, found);
    }
    return found;
  };
  const applyOne = async (object: ApplyObject): Promise<string | undefined> => {
    const what = `${object.kind} ${object.metadata.namespace ? `${object.metadata.namespace}/` : ''}${object.metadata.name}`;
    try {
      const resource = (await resourcesOf(object.apiVersion)).find((r) => r.kind === object.kind);
      if (!resource) return `${what}: the API server serves no kind ${object.kind} in ${object.apiVersion}`;
      const prefix = object.apiVersion.includes('/') ? `/apis/${object.apiVersion}` : `/api/${object.apiVersion}`;
      const scope = resource.namespaced ? `/namespaces/${object.metadata.namespace ?? 'default'}` : '';
      const query = new URLSearchParams({ fieldManager, force: 'true' });
      const res = await request('PATCH', `${prefix}${scope}/${resource.name}/${object.metadata.name}?${query.toString()}`, {
        text: JSON.stringify(object),
        contentType: 'application/apply-patch+yaml',
      });
      return res.status < 300 ? undefined : `${what}: ${res.status} ${messageOf(res.body)}`;
    } catch (err) {
      return `${what}: ${(err as Error).message}`;
    }
  };
  const steps = [0, 1, 2, 3].map((step) => objects.filter((o) => stepOf(o.kind) === step));
  for (const step of steps) {
    const failures = (await inParallel(step, options.concurrency ?? 16, applyOne)).filter((f): f is string => f !== undefined);
    if (failures.length > 0) throw new ApplyError(failures);
  }
}

async function discover(request: ApiRequest, apiVersion: string): Promise<ApiResource[]> {
  const res = await request('GET', apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`);
  if (res.status !== 200) throw new Error(`discovery of ${apiVersion}: ${res.status} ${messageOf(res.body)}`);
  // Subresources (deployments/scale) are listed too; they are not where objects live.
  return (JSON.parse(res.body) as { resources: ApiResource[] }).resources.filter((r) => !r.name.includes('/'));
}

function messageOf(body: string): string {
  try {
    const status = JSON.parse(body) as { message?: unknown };
    if (typeof status.message === 'string') return status.message;
  } catch {
    // not a Status: the body says it
  }
  return body.slice(0, 300);
}

async function inParallel<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
