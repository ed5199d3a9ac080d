// The eventing path of the rendered manifests, read as Knative Eventing would wire it: each PingSource,
// the Broker it sends to, the Triggers on that Broker (filter, subscriber, delivery policy) and where
// each subscriber and dead-letter sink is served locally. Pure: the ping emitter (ping.ts) acts on it.
import type { LocalNetwork } from './addresses.js';
import { withDeadLetterUrl, type DeliveryPolicy } from './delivery.js';
import {
  field,
  findObject,
  objectsOfKind,
  pingSource as readPingSource,
  record,
  trigger as readTrigger,
  type Destination,
  type KubeObject as ManifestObject,
} from '../manifests/index.js';
import type { KubeObject } from './workloads.js';

export interface PingSourceSpec {
  namespace: string;
  name: string;
  /** Cron schedule, five fields or six with seconds first (Knative accepts both). */
  schedule: string;
  timezone?: string;
  /** spec.data (text) or spec.dataBase64 decoded; undefined when the source sends no data. */
  data?: string;
  contentType?: string;
  /** spec.ceOverrides.extensions: added to every event. */
  extensions: Record<string, string>;
}

export interface Subscription {
  /** Trigger `namespace/name`, or the PingSource's own sink when it is not a Broker. */
  via: string;
  /** Trigger filter attributes (exact match); empty: every event. */
  filter: Record<string, string>;
  /** Local URL of the subscriber. */
  subscriber: string;
  policy: DeliveryPolicy;
}

export interface PingRoute {
  source: PingSourceSpec;
  subscriptions: Subscription[];
}

/** The local URL of a Knative Destination (ref and/or uri, as platform/manifests reads it), seen from `namespace`. */
export function resolveDestination(destination: Destination, namespace: string, network: LocalNetwork): string {
  const { ref, uri } = destination;
  if (ref) {
    const ns = ref.namespace ?? namespace;
    const address = network.resolve(String(ref.name), 80, { namespace: ns });
    if (!address) throw new Error(`${ref.kind ?? 'object'} ${ns}/${ref.name} is not run locally, so nothing can receive its events`);
    const base = new URL(`http://${address.host}:${address.port}/`);
    // A uri beside a ref is resolved against the ref's address (Knative's Destination rule).
    return uri ? new URL(uri, base).toString() : base.toString().replace(/\/$/, '');
  }
  if (uri) return network.rewriteUrl(uri, { namespace });
  throw new Error(`destination ${JSON.stringify(destination)} has neither ref nor uri`);
}

function isBrokerRef(ref: Destination['ref']): boolean {
  return ref?.kind === 'Broker' && (ref.apiVersion ?? 'eventing.knative.dev/v1').startsWith('eventing.knative.dev/');
}

/**
 * Every PingSource with the subscriptions its events reach: through a Broker, one per Trigger on it
 * (the Trigger's delivery, or the Broker's as default); straight to a sink, one without retries.
 * The objects and the delivery policy are read with platform/manifests/.
 */
export function pingRoutes(objects: KubeObject[], network: LocalNetwork): PingRoute[] {
  const rendered = objects as unknown as ManifestObject[];
  return objectsOfKind(rendered, 'PingSource.sources.knative.dev').map((object) => {
    const namespace = object.metadata.namespace ?? 'default';
    const spec = readPingSource(rendered, object.metadata.name, namespace);
    const source: PingSourceSpec = {
      namespace,
      name: spec.name,
      schedule: spec.schedule,
      ...(spec.timezone ? { timezone: spec.timezone } : {}),
      ...(spec.data !== undefined ? { data: spec.data } : {}),
      ...(spec.contentType ? { contentType: spec.contentType } : {}),
      extensions: record(field(object, 'spec', 'ceOverrides', 'extensions')),
    };
    if (!isBrokerRef(spec.sink.ref)) {
      return {
        source,
        subscriptions: [
          { via: `PingSource ${source.name} sink`, filter: {}, subscriber: resolveDestination(spec.sink, namespace, network), policy: { retry: 0 } },
        ],
      };
    }
    const brokerNamespace = spec.sink.ref!.namespace ?? namespace;
    const broker = findObject(rendered, 'Broker.eventing.knative.dev', spec.sink.ref!.name, brokerNamespace);
    const triggers = objectsOfKind(rendered, 'Trigger.eventing.knative.dev').filter(
      (t) => field(t, 'spec', 'broker') === broker.metadata.name && (t.metadata.namespace ?? 'default') === brokerNamespace,
    );
    return {
      source,
      subscriptions: triggers.map((object) => {
        // The Trigger's delivery, else its Broker's, as platform/manifests reads it.
        const trigger = readTrigger(rendered, object.metadata.name, brokerNamespace);
        return {
          via: `Trigger ${trigger.namespace}/${trigger.name}`,
          filter: trigger.filter,
          subscriber: resolveDestination(trigger.subscriber, trigger.namespace, network),
          policy: withDeadLetterUrl(trigger.delivery, (dls) => resolveDestination(dls, trigger.namespace, network)),
        };
      }),
    };
  });
}

/**
 * Whether an event's attributes pass a Trigger's filter (every attribute equal; Knative's exact match).
 * Context attributes are strings, numbers or booleans; anything else (the data) equals no filter value.
 */
export function passesFilter(filter: Record<string, string>, attributes: Record<string, unknown>): boolean {
  return Object.entries(filter).every(([name, value]) => value === '' || attributeText(attributes[name]) === value);
}

function attributeText(value: unknown): string | undefined {
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? String(value) : undefined;
}
