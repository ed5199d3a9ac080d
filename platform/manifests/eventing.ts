// Knative Eventing's objects as the platform renders them: Destinations, the PingSource, the Trigger
// (with its Broker's delivery as fallback, read by delivery.ts).
import { describeObject, field, findObject, record, text, type KubeObject } from './objects.js';
import { deliveryPolicy, type DeliveryPolicy } from './delivery.js';
import { destination, type Destination } from './destination.js';

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
