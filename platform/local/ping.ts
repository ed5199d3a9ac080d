// The local stand-in for Knative's PingSource adapter and the Broker/Trigger behind it: on the
// PingSource's schedule (or every --ping-every), a ping event built as the adapter builds it
// (events/createPingEvent, a fresh id per tick, sent in binary mode after the adapter's 0-500 ms
// jitter) goes to each Trigger whose filter it passes, with that Trigger's retries and backoff, then to
// its dead-letter sink with Knative's error extensions when delivery fails (delivery.ts).
import { Cron } from 'croner';
import { CloudEvent, emitterFor, HTTP, Mode, type CloudEventV1, type Message } from 'cloudevents';
import { createPingEvent, SNAPSHOT_STORED_TYPE, type PingData, type SnapshotStoredData } from '../../events/src/index.js';
import { deadLetterExtensions, deliverWithRetries, knativeBrokerDefaultTtl, type DeliveryPolicy, type DeliveryResult } from './delivery.js';
import type { AttemptOutcome } from '../manifests/index.js';
import { passesFilter, type PingRoute, type Subscription } from './eventing.js';

/** What happened to one ping at one subscription. */
export interface DeliveryReport {
  id: string;
  time: string;
  via: string;
  subscriber: string;
  result: DeliveryResult;
  /** The stored-snapshot event the subscriber replied with, when it did. */
  stored?: SnapshotStoredData;
  /** Set when delivery failed and a dead-letter sink exists: what the sink made of it. */
  deadLetter?: { sink: string; result: DeliveryResult };
}

export interface PingEmitterOptions {
  route: PingRoute;
  /** Fire every this many milliseconds instead of on the PingSource's schedule (--ping-every). */
  everyMs?: number;
  /** The adapter's random 0-500 ms delay before each send; tests set 0. */
  jitterMs?: number;
  onDelivery(report: DeliveryReport): void;
  /** An event the Trigger filter kept from a subscriber, or a data problem. */
  onProblem?(message: string): void;
}

export interface PingEmitter {
  /** When the next ping fires. */
  nextRun(): Date | null;
  /** Sends one ping now, as a tick would; resolves when its deliveries are over. */
  fire(): Promise<DeliveryReport[]>;
  /** Stops the schedule, ends backoff waits, and waits for requests in flight. */
  stop(): Promise<void>;
}

/** --ping-every syntax: a whole number of seconds, minutes or hours (10s, 1m). */
export function parseEvery(text: string): number {
  const match = /^(\d+)(s|m|h)$/.exec(text.trim());
  if (!match || Number(match[1]) === 0) throw new Error(`--ping-every ${JSON.stringify(text)} must be like 10s, 2m or 1h`);
  return Number(match[1]) * { s: 1_000, m: 60_000, h: 3_600_000 }[match[2] as 's' | 'm' | 'h'];
}

/** The ping's data as the PingSource gives it: JSON text in spec.data, parsed for the event builder. */
export function pingData(route: PingRoute): PingData | undefined {
  const { data, contentType, name } = route.source;
  if (data === undefined) return undefined;
  if (contentType && !/^application\/([\w.+-]+\+)?json\b/.test(contentType)) {
    throw new Error(`PingSource ${name}: contentType ${contentType} is not JSON; the snapshot function accepts JSON data only`);
  }
  try {
    return JSON.parse(data) as PingData;
  } catch (err) {
    throw new Error(`PingSource ${name}: spec.data is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** A cloudevents TransportFunction over fetch that keeps the status (the SDK's httpTransport drops it). */
function transport(url: string, timeoutMs: number | undefined, extraHeaders: Record<string, string>) {
  return async (message: Message): Promise<HttpAnswer> => {
    const controller = new AbortController();
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => controller.abort(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { ...(message.headers as Record<string, string>), ...extraHeaders },
        body: message.body as string,
        signal: controller.signal,
      });
      return { status: res.status, headers: Object.fromEntries(res.headers), body: await res.text() };
    } finally {
      clearTimeout(timer);
    }
  };
}

export function startPingEmitter(options: PingEmitterOptions): PingEmitter {
  const { route } = options;
  const data = pingData(route);
  const deliveries = new Set<Promise<unknown>>();
  const sleepers = new Set<() => void>();
  let stopped = false;

  /** Waits, unless the emitter stops first (then false: the delivery gives up, as on a pod shutdown). */
  const sleep = (ms: number) =>
    new Promise<boolean>((resolve) => {
      if (stopped) return resolve(false);
      const wake = () => {
        clearTimeout(timer);
        sleepers.delete(wake);
        resolve(false);
      };
      const timer = setTimeout(() => {
        sleepers.delete(wake);
        resolve(!stopped);
      }, ms);
      sleepers.add(wake);
    });

  const attempt = (event: CloudEvent<unknown>, url: string, policy: DeliveryPolicy, headers: Record<string, string>) => {
    const emit = emitterFor(transport(url, policy.timeoutMs, headers), { mode: Mode.BINARY });
    return async (): Promise<AttemptOutcome> => {
      try {
        const answer = (await emit(event)) as HttpAnswer;
        return { status: answer.status, headers: answer.headers, body: answer.body };
      } catch (err) {
        return { error: err instanceof Error ? err : new Error(String(err)) };
      }
    };
  };

  const deliver = async (event: CloudEvent<unknown>, subscription: Subscription): Promise<DeliveryReport> => {
    const { policy } = subscription;
    // Knative's dispatcher asks subscribers for a reply event with `Prefer: reply`.
    const result = await deliverWithRetries(policy, attempt(event, subscription.subscriber, policy, { Prefer: 'reply' }), sleep);
    const report: DeliveryReport = { id: event.id, time: String(event.time), via: subscription.via, subscriber: subscription.subscriber, result };
    if (result.delivered && 'status' in result.last) {
      const stored = storedSnapshot(result.last);
      if (stored) report.stored = stored;
    } else if (!result.delivered && policy.deadLetterSink && !stopped) {
      // The copy for the sink: the same event with why it failed, and the TTL the broker stamped on it.
      const letter = event.cloneWith({ ...deadLetterExtensions(subscription.subscriber, result.last), knativebrokerttl: knativeBrokerDefaultTtl }, false);
      const dlResult = await deliverWithRetries(policy, attempt(letter, policy.deadLetterSink, policy, {}), sleep);
      report.deadLetter = { sink: policy.deadLetterSink, result: dlResult };
    }
    return report;
  };

  const fire = async (): Promise<DeliveryReport[]> => {
    const jitter = options.jitterMs ?? Math.floor(Math.random() * 500);
    if (jitter > 0 && !(await sleep(jitter))) return [];
    const event = createPingEvent({
      namespace: route.source.namespace,
      name: route.source.name,
      ...(data !== undefined ? { data } : {}),
      ...(Object.keys(route.source.extensions).length ? { extensions: route.source.extensions } : {}),
    });
    const matching = route.subscriptions.filter((s) => {
      const passes = passesFilter(s.filter, event);
      if (!passes) options.onProblem?.(`${s.via}: filter ${JSON.stringify(s.filter)} does not pass ${event.type} events; not delivered`);
      return passes;
    });
    const work = Promise.all(matching.map((s) => deliver(event, s)));
    deliveries.add(work);
    try {
      const reports = await work;
      for (const report of reports) options.onDelivery(report);
      return reports;
    } finally {
      deliveries.delete(work);
    }
  };

  const tick = () => {
    // Ticks do not wait for each other, as the adapter's cron does not: a slow delivery never delays the schedule.
    fire().catch((err: unknown) => options.onProblem?.(`ping failed: ${(err as Error).message}`));
  };
  // The PingSource's cron (five fields, or six with seconds first, in its time zone), as the adapter
  // reads it; --ping-every replaces it with a fixed period, the first ping one period from now.
  let schedule: { nextRun(): Date | null; stop(): void };
  if (options.everyMs !== undefined) {
    const everyMs = options.everyMs;
    let next = Date.now() + everyMs;
    const timer = setInterval(() => {
      next = Date.now() + everyMs;
      tick();
    }, everyMs);
    schedule = { nextRun: () => new Date(next), stop: () => clearInterval(timer) };
  } else {
    const cron = new Cron(route.source.schedule, { ...(route.source.timezone ? { timezone: route.source.timezone } : {}), mode: '5-or-6-parts' }, tick);
    schedule = { nextRun: () => cron.nextRun(), stop: () => cron.stop() };
  }

  return {
    nextRun: () => schedule.nextRun(),
    fire,
    async stop() {
      stopped = true;
      schedule.stop();
      for (const wake of [...sleepers]) wake();
      // Attempts in flight finish (the snapshot function completes what it started); none are cut off.
      await Promise.allSettled([...deliveries]);
    },
  };
}

/** The stored-snapshot event in a subscriber's reply, read with the SDK; undefined for any other reply. */
function storedSnapshot(outcome: Extract<AttemptOutcome, { status: number }>): SnapshotStoredData | undefined {
  try {
    const headers = Object.fromEntries(Object.entries(outcome.headers ?? {}).map(([k, v]) => [k, String(v)]));
    const reply = HTTP.toEvent({ headers, body: outcome.body ?? '' }) as CloudEventV1<unknown>;
    if (Array.isArray(reply) || reply.type !== SNAPSHOT_STORED_TYPE) return undefined;
    return (typeof reply.data === 'string' ? JSON.parse(reply.data) : reply.data) as SnapshotStoredData;
  } catch {
    return undefined;
  }
}
