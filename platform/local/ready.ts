// What `npm start` waits for after applying: every Deployment, Job and Knative object it applied, Ready by
// its controller's own rule (the rules `npm run cluster -- status` uses for Deployments and Knative
// objects; a Job is ready once Complete, and a Failed one ends the wait at once).
import type { V1Deployment, V1Job } from '@kubernetes/client-node';
import { deploymentRow, knativeReadiness, type Readiness } from '../cluster/status.js';
import type { KubeObject } from '../manifests/index.js';
import { waitFor } from '../tools/wait.js';

export interface Waited {
  kind: string;
  namespace: string;
  name: string;
  /** The API path to read it from. */
  path: string;
}

export interface ObjectState {
  object: Waited;
  ready: Readiness;
  /** Why not, when not ready. */
  reason: string;
}

/** The applied objects to wait for, each with the API path it is read from. */
export function objectsToWaitFor(objects: readonly KubeObject[]): Waited[] {
  return objects.flatMap((o): Waited[] => {
    const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['', o.apiVersion];
    const namespace = o.metadata.namespace ?? 'default';
    const plural = `${o.kind.toLowerCase()}s`;
    const at = (prefix: string) => [{ kind: o.kind, namespace, name: o.metadata.name, path: `${prefix}/namespaces/${namespace}/${plural}/${o.metadata.name}` }];
    if (o.apiVersion === 'apps/v1' && o.kind === 'Deployment') return at('/apis/apps/v1');
    if (o.apiVersion === 'batch/v1' && o.kind === 'Job') return at('/apis/batch/v1');
    if (group!.endsWith('.knative.dev')) return at(`/apis/${group}/${version}`);
    return [];
  });
}

export class JobFailedError extends Error {
  constructor(object: Waited, message: string) {
    super(`Job ${object.namespace}/${object.name} failed: ${message}`);
    this.name = 'JobFailedError';
  }
}

/** One object's state from what the API server returned (undefined: not there yet). */
export function stateOf(object: Waited, found: unknown): ObjectState {
  if (found === undefined) return { object, ready: 'Unknown', reason: 'not found yet' };
  if (object.kind === 'Deployment') {
    const row = deploymentRow(found as V1Deployment);
    return { object, ready: row.ready, reason: row.ready === 'True' ? '' : `${row.reason}: ${row.message}` };
  }
  if (object.kind === 'Job') {
    const conditions = (found as V1Job).status?.conditions ?? [];
    const failed = conditions.find((c) => c.type === 'Failed' && c.status === 'True');
    if (failed) throw new JobFailedError(object, `${failed.reason ?? 'Failed'}: ${failed.message ?? ''}`);
    const complete = conditions.some((c) => c.type === 'Complete' && c.status === 'True');
    const active = (found as V1Job).status?.active ?? 0;
    return { object, ready: complete ? 'True' : 'False', reason: complete ? '' : `not complete (${active} pod${active === 1 ? '' : 's'} running)` };
  }
  const readiness = knativeReadiness(found as Parameters<typeof knativeReadiness>[0]);
  return {
    object,
    ready: readiness.ready,
    reason: readiness.ready === 'True' ? '' : `${readiness.reason}${readiness.message ? `: ${readiness.message}` : ''}`,
  };
}

export interface WaitReadyOptions {
  getJson: <T>(apiPath: string) => Promise<T>;
  timeoutMs: number;
  /** Called with the objects still not ready each time that list changes. */
  onWaiting?: (notReady: ObjectState[]) => void;
  signal?: AbortSignal;
}

/** Waits until every object is Ready; throws naming the ones that are not when time runs out. */
export async function waitReady(objects: readonly Waited[], options: WaitReadyOptions): Promise<void> {
  let last = '';
  let notReady: ObjectState[] = [];
  let failed: JobFailedError | undefined;
  const read = async (object: Waited) => {
    try {
      return await options.getJson<unknown>(object.path);
    } catch (err) {
      if (/\b404\b|not found/i.test((err as Error).message)) return undefined;
      throw err;
    }
  };
  try {
    await waitFor(
      async () => {
        let states: ObjectState[];
        try {
          states = await Promise.all(objects.map(async (object) => stateOf(object, await read(object))));
        } catch (err) {
          // A failed Job will not recover: stop waiting (waitFor would keep polling past an error).
          if (!(err instanceof JobFailedError)) throw err;
          failed = err;
          return true;
        }
        notReady = states.filter((s) => s.ready !== 'True');
        const now = notReady.map(describeState).join('\n');
        if (now !== last && notReady.length > 0) options.onWaiting?.(notReady);
        last = now;
        return notReady.length === 0;
      },
      {
        what: 'every applied Deployment, Job and Knative object to be Ready',
        timeoutMs: options.timeoutMs,
        intervalMs: 500,
        ...(options.signal ? { signal: options.signal } : {}),
      },
    );
    if (failed) throw failed;
  } catch (err) {
    if (err === failed || notReady.length === 0) throw err;
    throw new Error(`not Ready after ${Math.round(options.timeoutMs / 1000)} s:\n${notReady.map((s) => `  ${describeState(s)}`).join('\n')}`, { cause: err });
  }
}

export function describeState(state: ObjectState): string {
  const { object } = state;
  return `${object.kind.toLowerCase()}/${object.name} (${object.namespace}): ${state.reason}`;
}
