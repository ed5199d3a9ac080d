// `status` as a pure function: the objects read from the API in, one row per object and the overall
// verdict out, then printers for people (an aligned table like `kn service list`) and for machines
// (JSON). Readiness follows each controller's own rule: Knative's Ready condition for a generation the
// controller has observed, and a Deployment's ready, up-to-date replicas against the desired count.
import type { V1Deployment } from '@kubernetes/client-node';
import { resourceTypes, type ObjectRef, type Resource } from './pipeline.js';
import { formatTable } from './table.js';

export type Readiness = 'True' | 'False' | 'Unknown';

export interface StatusRow {
  namespace: string;
  name: string;
  resource: Resource;
  ready: Readiness;
  /** Why it is not ready (the Ready condition's reason); empty when ready. */
  reason: string;
  /** The condition's message, or what we found instead of one. */
  message: string;
  /** The column people read: URL, replicas, schedule and sink, dead-letter sink. */
  detail: string;
  /** The same facts, typed, for --output json. */
  fields: Record<string, string | number | boolean | null>;
}

export interface PipelineStatus {
  /** True only when every object exists and is ready: the exit code scripts gate on. */
  ready: boolean;
  rows: StatusRow[];
  /** Objects the API server does not have. */
  missing: ObjectRef[];
}

export interface ObservedObject {
  ref: ObjectRef;
  /** As the API server returned it; undefined when it does not exist. */
  object: unknown;
}

export function pipelineStatus(observed: readonly ObservedObject[]): PipelineStatus {
  const rows = observed.map(({ ref, object }) => rowFor(ref, object));
  const missing = observed.filter(({ object }) => object === undefined).map(({ ref }) => ref);
  return { ready: rows.every((row) => row.ready === 'True'), rows, missing };
}

// The few fields of Knative objects we read; everything optional, as a half-reconciled object has.
interface Condition {
  type?: string;
  status?: string;
  reason?: string;
  message?: string;
}
interface Destination {
  ref?: { kind?: string; name?: string; namespace?: string };
  uri?: string;
}
interface KnativeObject {
  metadata?: { generation?: number; deletionTimestamp?: string };
  spec?: {
    schedule?: string;
    timezone?: string;
    sink?: Destination;
    broker?: string;
    subscriber?: Destination;
    delivery?: { deadLetterSink?: Destination };
  };
  status?: {
    observedGeneration?: number;
    conditions?: Condition[];
    url?: string;
    address?: { url?: string };
    latestReadyRevisionName?: string;
    latestCreatedRevisionName?: string;
    sinkUri?: string;
    subscriberUri?: string;
    deadLetterSinkUri?: string;
  };
}

function rowFor(ref: ObjectRef, object: unknown): StatusRow {
  const base = { namespace: ref.namespace, name: ref.name, resource: ref.resource };
  if (object === undefined) {
    return {
      ...base,
      ready: 'False',
      reason: 'NotFound',
      message: `${ref.resource}/${ref.name} not found in namespace ${ref.namespace}`,
      detail: '-',
      fields: { found: false },
    };
  }
  if (ref.resource === 'deployment') return { ...base, ...deploymentRow(object as V1Deployment) };
  const knative = object as KnativeObject;
  const readiness = knativeReadiness(knative);
  const described = describeKnative(ref.resource, knative);
  return { ...base, ...readiness, ...described, fields: { found: true, ...described.fields } };
}

/** A Deployment's readiness as status reports it (also what `npm start` waits for). */
export function deploymentRow(deployment: V1Deployment): Omit<StatusRow, 'namespace' | 'name' | 'resource'> {
  const desired = deployment.spec?.replicas ?? 1;
  const status = deployment.status ?? {};
  const readyReplicas = status.readyReplicas ?? 0;
  const updated = status.updatedReplicas ?? 0;
  const generation = deployment.metadata?.generation;
  const fields = { found: true, desiredReplicas: desired, readyReplicas, updatedReplicas: updated };
  const detail = `${readyReplicas}/${desired} replicas ready`;
  const conditions = status.conditions ?? [];
  // The controller's own explanation, when it gave one: a stuck rollout before a mere shortfall.
  const failure =
    conditions.find((c) => c.type === 'Progressing' && c.status === 'False') ?? conditions.find((c) => c.type === 'Available' && c.status === 'False');
  const replicaFailure = conditions.find((c) => c.type === 'ReplicaFailure' && c.status === 'True');
  const notReady = (reason: string, message: string) => ({ ready: 'False' as const, reason, message, detail, fields });
  if (desired === 0) return notReady('ScaledToZero', 'spec.replicas is 0: nothing runs');
  if (generation !== undefined && (status.observedGeneration ?? 0) < generation) {
    return { ready: 'Unknown', reason: 'Reconciling', message: `generation ${generation} not yet observed by the Deployment controller`, detail, fields };
  }
  if (replicaFailure) return notReady(replicaFailure.reason ?? 'ReplicaFailure', replicaFailure.message ?? '');
  if (updated < desired) return notReady(failure?.reason ?? 'RollingOut', failure?.message ?? `${updated} of ${desired} replicas updated`);
  if (readyReplicas < desired) return notReady(failure?.reason ?? 'ReplicasNotReady', failure?.message ?? `${readyReplicas} of ${desired} replicas ready`);
  return { ready: 'True', reason: '', message: '', detail, fields };
}

/** A Knative object's readiness: its Ready condition, for the generation its controller has observed. */
export function knativeReadiness(object: KnativeObject): Pick<StatusRow, 'ready' | 'reason' | 'message'> {
  const ready = (object.status?.conditions ?? []).find((c) => c.type === 'Ready');
  const generation = object.metadata?.generation;
  const observed = object.status?.observedGeneration;
  if (!ready) {
    return { ready: 'Unknown', reason: 'NotReconciled', message: 'no Ready condition yet: is the Knative controller running?' };
  }
  // A Ready condition about an older spec says nothing about the current one.
  if (generation !== undefined && (observed === undefined || observed < generation)) {
    return { ready: 'Unknown', reason: 'Reconciling', message: `generation ${generation} not yet observed (last observed: ${observed ?? 'none'})` };
  }
  if (ready.status === 'True') return { ready: 'True', reason: '', message: ready.message ?? '' };
  return {
    ready: ready.status === 'False' ? 'False' : 'Unknown',
    reason: ready.reason || (ready.status === 'False' ? 'NotReady' : 'Unknown'),
    message: ready.message ?? '',
  };
}

/** A delivery destination as Knative resolves it, or as the spec names it while unresolved. */
function describeDestination(resolved: string | undefined, spec: Destination | undefined): string | undefined {
  if (resolved) return resolved;
  if (!spec) return undefined;
  const ref = spec.ref ? `${(spec.ref.kind ?? '').toLowerCase() || 'ref'}/${spec.ref.name ?? '?'}` : '';
  return `${ref}${spec.uri ?? ''} (unresolved)`;
}

function describeKnative(resource: Exclude<Resource, 'deployment'>, object: KnativeObject): { detail: string; fields: StatusRow['fields'] } {
  const status = object.status ?? {};
  const spec = object.spec ?? {};
  const deadLetters = describeDestination(status.deadLetterSinkUri, spec.delivery?.deadLetterSink);
  const deadLetterText = deadLetters ? `dead letters -> ${deadLetters}` : 'no dead-letter sink';
  switch (resource) {
    case 'ksvc': {
      const revision = status.latestReadyRevisionName;
      return {
        detail: `${status.url ?? 'no URL yet'}${revision ? ` (revision ${revision})` : ''}`,
        fields: { url: status.url ?? null, latestReadyRevisionName: revision ?? null, latestCreatedRevisionName: status.latestCreatedRevisionName ?? null },
      };
    }
    case 'pingsource': {
      const sink = describeDestination(status.sinkUri, spec.sink) ?? 'no sink';
      return {
        detail: `"${spec.schedule ?? '?'}" ${spec.timezone ?? 'UTC'} -> ${sink}`,
        fields: { schedule: spec.schedule ?? null, timezone: spec.timezone ?? null, sinkUri: status.sinkUri ?? null },
      };
    }
    case 'broker':
      return {
        detail: `${status.address?.url ?? 'no address yet'}, ${deadLetterText}`,
        fields: { address: status.address?.url ?? null, deadLetterSinkUri: status.deadLetterSinkUri ?? null, deadLetterSink: deadLetters ?? null },
      };
    case 'trigger': {
      const subscriber = describeDestination(status.subscriberUri, spec.subscriber) ?? 'no subscriber';
      return {
        detail: `-> ${subscriber}, ${deadLetterText}`,
        fields: {
          broker: spec.broker ?? null,
          subscriberUri: status.subscriberUri ?? null,
          deadLetterSinkUri: status.deadLetterSinkUri ?? null,
          deadLetterSink: deadLetters ?? null,
        },
      };
    }
  }
}

export const tableHeaders = ['NAMESPACE', 'NAME', 'KIND', 'READY', 'REASON', 'URL/DETAIL'] as const;

/**
 * The table, then one line per object that is not ready and has something to say, so the reason's
 * message does not stretch the table.
 */
export function formatStatusTable(status: PipelineStatus): string {
  const table = formatTable(
    tableHeaders,
    status.rows.map((row) => [row.namespace, row.name, row.resource, row.ready, row.reason, row.detail]),
  );
  const notes = status.rows
    .filter((row) => row.ready !== 'True' && row.message && row.reason !== 'NotFound')
    .map((row) => `${row.resource}/${row.name} (${row.namespace}): ${row.message}`);
  return notes.length > 0 ? `${table}\n${notes.join('\n')}\n` : table;
}

export function formatStatusJson(status: PipelineStatus, context: string): string {
  const objects = status.rows.map((row) => {
    const type = resourceTypes[row.resource];
    return {
      apiVersion: type.group === 'apps' ? `apps/${type.version}` : `${type.group}/${type.version}`,
      kind: type.kind,
      namespace: row.namespace,
      name: row.name,
      ready: row.ready,
      reason: row.reason,
      message: row.message,
      ...row.fields,
    };
  });
  return JSON.stringify({ context, ready: status.ready, objects }, null, 2) + '\n';
}
