// The local ping emitter against real HTTP receivers on loopback: what arrives is what Knative's
// PingSource adapter and Trigger dispatcher send (binary mode, same id on every retry, the policy's
// gaps, the dead-letter copy with knativeerror* extensions), read back with the cloudevents SDK.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { HTTP, type CloudEventV1 } from 'cloudevents';
import { createSnapshotStoredEvent, knativeError } from '../../../events/src/index.js';
import { deliveryPolicy, type DeliverySpec } from '../../manifests/index.js';
import { withDeadLetterUrl } from '../delivery.js';
import type { PingRoute } from '../eventing.js';
import { parseEvery, pingData, startPingEmitter, type DeliveryReport } from '../ping.js';

interface Received {
  at: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  event: CloudEventV1<unknown>;
}

/** A receiver that answers each request with the next status from `statuses` (then the last one). */
async function receiver(
  t: { after(fn: () => unknown): void },
  statuses: number[],
  reply?: (event: CloudEventV1<unknown>) => http.OutgoingHttpHeaders & { body: string },
) {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      const event = HTTP.toEvent({ headers: req.headers, body }) as CloudEventV1<unknown>;
      received.push({ at: Date.now(), headers: req.headers, body, event });
      const status = statuses[Math.min(received.length - 1, statuses.length - 1)]!;
      if (status < 300 && reply) {
        const { body: replyBody, ...headers } = reply(event);
        res.writeHead(status, headers).end(replyBody);
      } else {
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: `answered ${status}` }));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, received };
}

function route(subscriber: string, delivery: DeliverySpec, deadLetterSink?: string): PingRoute {
  return {
    source: {
      namespace: 'promsnap',
      name: 'snapshot-schedule',
      schedule: '*/5 * * * *',
      data: '{"queries":["up"]}',
      contentType: 'application/json',
      extensions: {},
    },
    subscriptions: [
      {
        via: 'Trigger promsnap/snapshot',
        filter: { type: 'dev.knative.sources.ping' },
        subscriber,
        // Read and resolved as eventing.ts does for a Trigger (the sink already a loopback URL here).
        policy: withDeadLetterUrl(deliveryPolicy({ ...delivery, ...(deadLetterSink ? { deadLetterSink: { uri: deadLetterSink } } : {}) }), (d) => d.uri!),
      },
    ],
  };
}

test('a ping arrives in binary mode with the PingSource attributes and spec.data as its body', async (t) => {
  const sink = await receiver(t, [202]);
  const emitter = startPingEmitter({ route: route(sink.url, { retry: 0 }), jitterMs: 0, onDelivery: () => {} });
  t.after(() => emitter.stop());
  const [report] = await emitter.fire();
  assert.equal(report!.result.delivered, true);
  const [got] = sink.received;
  assert.equal(got!.headers['ce-specversion'], '1.0');
  assert.equal(got!.headers['ce-type'], 'dev.knative.sources.ping');
  assert.equal(got!.headers['ce-source'], '/apis/v1/namespaces/promsnap/pingsources/snapshot-schedule');
  assert.match(String(got!.headers['ce-id']), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.ok(Math.abs(Date.parse(String(got!.headers['ce-time'])) - Date.now()) < 5_000);
  assert.match(String(got!.headers['content-type']), /^application\/json/);
  assert.equal(got!.headers['prefer'], 'reply', 'Knative asks the subscriber for a reply event');
  assert.deepEqual(JSON.parse(got!.body), { queries: ['up'] });
  assert.equal(got!.headers['ce-knativeerrorcode'], undefined);
});

test('retryable answers are retried with the same id and exponential gaps, then the reply is read', async (t) => {
  const sink = await receiver(t, [503, 500, 202], (event) => {
    const stored = createSnapshotStoredEvent({
      source: '/promsnap/snapshot',
      id: event.id,
      time: new Date(),
      data: { bucket: 'snapshots', key: '2026/01/01/000000Z-x.json', bytes: 123, series: 4, durationMs: 5, queries: ['up'], time: String(event.time) },
    });
    const message = HTTP.binary(stored);
    return { ...(message.headers as Record<string, string>), body: String(message.body) };
  });
  const reports: DeliveryReport[] = [];
  const emitter = startPingEmitter({
    route: route(sink.url, { retry: 3, backoffPolicy: 'exponential', backoffDelay: 'PT0.2S' }),
    jitterMs: 0,
    onDelivery: (r) => reports.push(r),
  });
  t.after(() => emitter.stop());
  await emitter.fire();
  assert.equal(sink.received.length, 3);
  assert.equal(new Set(sink.received.map((r) => r.event.id)).size, 1, 'every attempt carries the same ce-id');
  const gaps = sink.received.slice(1).map((r, i) => r.at - sink.received[i]!.at);
  assert.ok(gaps[0]! >= 190 && gaps[0]! < 350, `first gap ${gaps[0]} ms, expected about 200`);
  assert.ok(gaps[1]! >= 390 && gaps[1]! < 600, `second gap ${gaps[1]} ms, expected about 400`);
  assert.equal(reports[0]!.result.delivered, true);
  assert.deepEqual(reports[0]!.stored && { key: reports[0]!.stored.key, bytes: reports[0]!.stored.bytes, series: reports[0]!.stored.series }, {
    key: '2026/01/01/000000Z-x.json',
    bytes: 123,
    series: 4,
  });
});

test("after the last retry the event goes to the dead-letter sink with Knative's error extensions", async (t) => {
  const subscriber = await receiver(t, [503]);
  const deadLetters = await receiver(t, [202]);
  const reports: DeliveryReport[] = [];
  const emitter = startPingEmitter({
    route: route(subscriber.url, { retry: 2, backoffPolicy: 'linear', backoffDelay: 'PT0.1S' }, deadLetters.url),
    jitterMs: 0,
    onDelivery: (r) => reports.push(r),
  });
  t.after(() => emitter.stop());
  await emitter.fire();
  assert.equal(subscriber.received.length, 3, '1 attempt + 2 retries');
  assert.equal(deadLetters.received.length, 1);
  const letter = deadLetters.received[0]!.event;
  assert.equal(letter.id, subscriber.received[0]!.event.id);
  assert.equal(letter.type, 'dev.knative.sources.ping');
  const error = knativeError(letter);
  assert.equal(error.code, 503);
  assert.equal(error.destination, subscriber.url);
  assert.deepEqual(JSON.parse(error.body!), { error: 'answered 503' });
  assert.equal(deadLetters.received[0]!.headers['prefer'], undefined, 'the sink is not asked for a reply');
  assert.deepEqual(JSON.parse(deadLetters.received[0]!.body), { queries: ['up'] }, 'the original data travels along');
  assert.equal(reports[0]!.deadLetter?.result.delivered, true);
});

test('a non-retryable answer is dead-lettered at once; an unreachable subscriber counts as 500', async (t) => {
  const subscriber = await receiver(t, [422]);
  const deadLetters = await receiver(t, [202]);
  const emitter = startPingEmitter({
    route: route(subscriber.url, { retry: 5, backoffPolicy: 'exponential', backoffDelay: 'PT1S' }, deadLetters.url),
    jitterMs: 0,
    onDelivery: () => {},
  });
  t.after(() => emitter.stop());
  await emitter.fire();
  assert.equal(subscriber.received.length, 1);
  assert.equal(knativeError(deadLetters.received[0]!.event).code, 422);

  const closed = http.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const gone = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/`;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const emitter2 = startPingEmitter({
    route: route(gone, { retry: 1, backoffPolicy: 'linear', backoffDelay: 'PT0.1S' }, deadLetters.url),
    jitterMs: 0,
    onDelivery: () => {},
  });
  t.after(() => emitter2.stop());
  await emitter2.fire();
  const error = knativeError(deadLetters.received[1]!.event);
  assert.equal(error.code, 500);
  assert.match(error.body ?? '', /^dispatch error: /);
});

test('stop ends a backoff wait at once instead of sitting out the policy', async (t) => {
  const sink = await receiver(t, [503]);
  const emitter = startPingEmitter({
    route: route(sink.url, { retry: 3, backoffPolicy: 'exponential', backoffDelay: 'PT30S' }),
    jitterMs: 0,
    onDelivery: () => {},
  });
  const firing = emitter.fire();
  await new Promise<void>((resolve) => {
    const check = () => (sink.received.length > 0 ? resolve() : setTimeout(check, 10));
    check();
  });
  const started = Date.now();
  await emitter.stop();
  const [report] = await firing;
  assert.ok(Date.now() - started < 2_000, 'stopped without waiting 30 s');
  assert.equal(report!.result.delivered, false);
  assert.equal(sink.received.length, 1);
});

test('--ping-every fires on that period; the schedule and data are read as PingSource states them', async (t) => {
  assert.equal(parseEvery('10s'), 10_000);
  assert.equal(parseEvery('2m'), 120_000);
  assert.throws(() => parseEvery('10'), /--ping-every/);
  assert.throws(() => parseEvery('0s'), /--ping-every/);
  assert.deepEqual(pingData(route('http://x/', {})), { queries: ['up'] });
  const text = route('http://x/', {});
  text.source.contentType = 'text/plain';
  assert.throws(() => pingData(text), /not JSON/);

  const sink = await receiver(t, [202]);
  const emitter = startPingEmitter({ route: route(sink.url, {}), everyMs: 1_000, jitterMs: 0, onDelivery: () => {} });
  t.after(() => emitter.stop());
  const deadline = Date.now() + 5_000;
  while (sink.received.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.ok(sink.received.length >= 2, `${sink.received.length} pings in 5 s at --ping-every 1s`);
  const gap = sink.received[1]!.at - sink.received[0]!.at;
  assert.ok(gap >= 800 && gap < 1_600, `gap ${gap} ms`);
  assert.notEqual(sink.received[0]!.event.id, sink.received[1]!.event.id, 'every tick gets a new id');
});

test("without --ping-every the PingSource's cron fires, seconds field and time zone included", async (t) => {
  const sink = await receiver(t, [202]);
  const everySecond = route(sink.url, {});
  everySecond.source.schedule = '* * * * * *';
  const emitter = startPingEmitter({ route: everySecond, jitterMs: 0, onDelivery: () => {} });
  t.after(() => emitter.stop());
  const deadline = Date.now() + 5_000;
  while (sink.received.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.ok(sink.received.length >= 2, `${sink.received.length} pings in 5 s on "* * * * * *"`);

  // 09:30 in Kolkata (UTC+05:30, no daylight saving) is 04:00 UTC.
  const zoned = route(sink.url, {});
  zoned.source.schedule = '30 9 * * *';
  zoned.source.timezone = 'Asia/Kolkata';
  const daily = startPingEmitter({ route: zoned, jitterMs: 0, onDelivery: () => {} });
  t.after(() => daily.stop());
  const next = daily.nextRun()!;
  assert.equal(next.getUTCHours(), 4);
  assert.equal(next.getUTCMinutes(), 0);
  assert.ok(next.getTime() - Date.now() <= 86_400_000 && next.getTime() > Date.now());
});
