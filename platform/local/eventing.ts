// The eventing path of the rendered manifests, read as Knative Eventing would wire it: each PingSource,
// the Broker it sends to, the Triggers on that Broker (filter, subscriber, delivery policy) and where
// each subscriber and dead-letter sink is served locally. Pure: the ping emitter (ping.ts) acts on it.
import type { LocalNetwork } from './addresses.js';
import { deliveryPolicyFrom, type DeliveryPolicy, type DeliverySpec } from './delivery.js';
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

interface Destination {
  ref?: { apiVersion?: string; kind?: string; name?: string; namespace?: string };
  uri?: string;
}

/** The local URL of a Knative Destination (ref and/or uri), seen from `namespace`. */
export function resolveDestination(destination: unknown, namespace: string, network: LocalNetwork): string {
  const { ref, uri } = (destination ?? {}) as Destination;
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

function pingSourceSpec(object: KubeObject): PingSourceSpec {
  const spec = object.spec ?? {};
  if (typeof spec.schedule !== 'string' || spec.schedule.trim() === '') {
    throw new Error(`PingSource ${object.metadata.name} has no spec.schedule`);
  }
  const data =
    typeof spec.dataBase64 === 'string' && spec.dataBase64 !== ''
      ? Buffer.from(spec.dataBase64, 'base64').toString('utf8')
      : typeof spec.data === 'string' && spec.data !== ''
        ? spec.data
        : undefined;
  return {
    namespace: object.metadata.namespace ?? 'default',
    name: object.metadata.name,
    schedule: spec.schedule.trim(),
    ...(spec.timezone ? { timezone: String(spec.timezone) } : {}),
    ...(data !== undefined ? { data } : {}),
    ...(spec.contentType ? { contentType: String(spec.contentType) } : {}),
    extensions: { ...(spec.ceOverrides?.extensions ?? {}) },
  };
}

function isBrokerRef(ref: Destination['ref']): boolean {
  return ref?.kind === 'Broker' && (ref.apiVersion ?? 'eventing.knative.dev/v1').startsWith('eventing.knative.dev/');
}

/**
 * Every PingSource with the subscriptions its events reach: through a Broker, one per Trigger on it
 * (the Trigger's delivery, or the Broker's as default); straight to a sink, one without retries.
 */
export function pingRoutes(objects: KubeObject[], network: LocalNetwork): PingRoute[] {
  const find = (kind: string, group: string) => objects.filter((o) => o.kind === kind && o.apiVersion.startsWith(`${group}/`));
  return find('PingSource', 'sources.knative.dev').map((object) => {
    const source = pingSourceSpec(object);
    const sink = object.spec?.sink as Destination | undefined;
    if (!sink) throw new Error(`PingSource ${source.namespace}/${source.name} has no spec.sink`);
    if (!isBrokerRef(sink.ref)) {
      return {
        source,
        subscriptions: [{ via: `PingSource ${source.name} sink`, filter: {}, subscriber: resolveDestination(sink, source.namespace, network), policy: { retry: 0 } }],
      };
    }
    const brokerNamespace = sink.ref!.namespace ?? source.namespace;
    const brokerName = String(sink.ref!.name);
    const broker = find('Broker', 'eventing.knative.dev').find(
      (b) => b.metadata.name === brokerName && (b.metadata.namespace ?? 'default') === brokerNamespace,
    );
    if (!broker) throw new Error(`PingSource ${source.name} sends to Broker ${brokerNamespace}/${brokerName}, which the manifests do not define`);
    const triggers = find('Trigger', 'eventing.knative.dev').filter(
      (t) => t.spec?.broker === brokerName && (t.metadata.namespace ?? 'default') === brokerNamespace,
    );
    return {
      source,
      subscriptions: triggers.map((trigger) => {
        const namespace = trigger.metadata.namespace ?? 'default';
        const delivery = (trigger.spec?.delivery ?? broker.spec?.delivery) as DeliverySpec | undefined;
        return {
          via: `Trigger ${namespace}/${trigger.metadata.name}`,
          filter: Object.fromEntries(Object.entries(trigger.spec?.filter?.attributes ?? {}).map(([k, v]) => [k, String(v)])),
          subscriber: resolveDestination(trigger.spec?.subscriber, namespace, network),
          policy: deliveryPolicyFrom(delivery, (dls) => resolveDestination(dls, namespace, network)),
        };
      }),
    };
  });
}

/** Whether an event's attributes pass a Trigger's filter (every attribute equal; Knative's exact match). */
export function passesFilter(filter: Record<string, string>, attributes: Record<string, unknown>): boolean {
  return Object.entries(filter).every(([name, value]) => value === '' || String(attributes[name] ?? '') === value);
}
