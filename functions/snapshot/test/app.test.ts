// The function over HTTP against a real Prometheus (scraping a real exporter) and a real MinIO.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { HTTP } from 'cloudevents';
import { SNAPSHOT_STORED_TYPE, createPingEvent, receiveEvent, validateSnapshotStoredEvent, type SnapshotStoredData } from '../../../events/src/index.js';
import { waitFor } from '../../../platform/tools/wait.js';
import { startTcpProxy } from '../../../platform/testing/tcp-proxy.js';
import { snapshotKey } from '../src/key.js';
import { createS3Client } from '../src/store.js';
import {
  post,
  sortedResult,
  startApp,
  startExporter,
  startTestMinio,
  startTestPrometheus,
  type Exporter,
  type PrometheusAnswer,
  type TestMinio,
  type TestPrometheus,
} from './helper.js';

let s3: Awaited<ReturnType<typeof startTestMinio>>;
let exporter: Exporter;
let prometheus: TestPrometheus;

before(async () => {
  [s3, exporter] = await Promise.all([startTestMinio(), startExporter({ series: 50 })]);
  prometheus = await startTestPrometheus({ exporter: { target: exporter.target, intervalSeconds: 1 } });
});
after(async () => {
  await prometheus?.dispose();
  await exporter?.close();
  await s3?.stop();
});

interface StoredSnapshot {
  kind: string;
  id: string;
  source: string;
  time: string;
  queries: string[];
  results: Array<{ query: string; response: PrometheusAnswer; series: number }>;
  series: number;
}

/** An instant Prometheus has complete data for: every scrape up to it has been stored. */
async function settledInstant(): Promise<Date> {
  // After the first scrape, or the instant would predate every sample.
  await prometheus.scrapedAfter(new Date(0), ['exporter']);
  const instant = new Date();
  await prometheus.scrapedAfter(instant, ['exporter']);
  return instant;
}

function storedData(res: { headers: Record<string, string>; text: string }): SnapshotStoredData {
  const received = receiveEvent({ headers: res.headers, body: res.text });
  assert.ok(received.ok, JSON.stringify(received));
  assert.equal(received.value.event.type, SNAPSHOT_STORED_TYPE);
  const checked = validateSnapshotStoredEvent(received.value.event);
  assert.ok(checked.ok, JSON.stringify(checked));
  return checked.value.data!;
}

async function readObject(s3: TestMinio, bucket: string, key: string): Promise<Buffer> {
  const res = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await res.Body!.transformToByteArray());
}

for (const mode of ['binary', 'structured'] as const) {
  test(`a ${mode}-mode ping stores one object holding what Prometheus answers for that instant`, async (t) => {
    const bucket = await s3.bucket();
    const app = await startApp(t, { prometheusUrl: prometheus.url, s3Client: s3.client, bucket });
    const instant = await settledInstant();
    const ping = createPingEvent({ namespace: 'promsnap', name: 'snapshot-schedule', time: instant });

    const res = await post(app.url, mode === 'binary' ? HTTP.binary(ping) : HTTP.structured(ping));
    assert.equal(res.status, 200, res.text);
    const data = storedData(res);
    const key = snapshotKey(instant.toISOString(), ping.id, false);
    assert.deepEqual(
      { ...data, durationMs: 0 },
      {
        bucket,
        key,
        bytes: data.bytes,
        series: data.series,
        durationMs: 0,
        queries: ['{__name__!=""}'],
        time: instant.toISOString(),
      },
    );
    assert.equal(res.headers['ce-id'], ping.id, 'the reply carries the ping id, so repeated replies are recognisable');

    // mc sees exactly one object, of the reported size, and reads the same content.
    const listing = await s3.minio.mc('ls', '--recursive', '--json', `local/${bucket}`);
    const listed = listing
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { key: string; size: number });
    assert.deepEqual(
      listed.map((o) => [o.key, o.size]),
      [[key, data.bytes]],
    );
    const catted = await s3.minio.mc('cat', `local/${bucket}/${key}`);
    const stored = JSON.parse(catted) as StoredSnapshot;
    assert.equal(Buffer.byteLength(catted), data.bytes);

    // The answer stored is Prometheus's answer for that instant, compared with a direct query now.
    const direct = await prometheus.query('{__name__!=""}', instant.toISOString());
    assert.equal(direct.status, 'success');
    assert.ok(direct.data.result.length >= 50, `the exporter's series are in the answer (${direct.data.result.length})`);
    assert.equal(stored.results[0]!.response.status, 'success');
    assert.deepEqual(sortedResult(stored.results[0]!.response), sortedResult(direct));
    assert.deepEqual(
      { kind: stored.kind, id: stored.id, source: stored.source, time: stored.time, queries: stored.queries, series: stored.series },
      {
        kind: 'promsnap.snapshot.v1',
        id: ping.id,
        source: ping.source,
        time: instant.toISOString(),
        queries: ['{__name__!=""}'],
        series: direct.data.result.length,
      },
    );
    assert.equal(data.series, direct.data.result.length);
    assert.equal(await app.metric('snapshot_requests_total', { outcome: 'stored' }), 1);
    assert.equal(await app.metric('snapshot_last_series'), data.series);
    assert.equal(await app.metric('snapshot_last_bytes'), data.bytes);
    assert.ok((await app.metric('snapshot_last_success_timestamp_seconds'))! * 1000 >= instant.getTime());
    assert.equal(await app.metric('snapshot_duration_seconds_count'), 1);
  });
}

test('the same event delivered twice, in turn or at once, leaves exactly one object and the same reply', async (t) => {
  const bucket = await s3.bucket();
  const app = await startApp(t, { prometheusUrl: prometheus.url, s3Client: s3.client, bucket, queries: ['up', 'promsnap_test_value'] });
  const instant = await settledInstant();
  const ping = createPingEvent({ namespace: 'promsnap', name: 'snapshot-schedule', time: instant });
  const first = await post(app.url, HTTP.binary(ping));
  const second = await post(app.url, HTTP.binary(ping));
  assert.equal(first.status, 200, first.text);
  assert.equal(second.status, 200, second.text);
  const a = storedData(first);
  const b = storedData(second);
  assert.deepEqual({ ...b, durationMs: 0 }, { ...a, durationMs: 0 });
  assert.equal(a.series, 51, "one up series and the exporter's 50");
  assert.equal(second.headers['ce-time'], first.headers['ce-time'], 'both replies carry the time the object was written');
  assert.deepEqual(await s3.keys(bucket), [a.key]);

  const concurrent = createPingEvent({ namespace: 'promsnap', name: 'snapshot-schedule', time: instant });
  const replies = await Promise.all([1, 2, 3].map(() => post(app.url, HTTP.binary(concurrent))));
  assert.deepEqual(
    replies.map((r) => r.status),
    [200, 200, 200],
    replies.map((r) => r.text).join('\n'),
  );
  assert.equal(new Set(replies.map((r) => storedData(r).key)).size, 1);
  assert.equal((await s3.keys(bucket)).length, 2);
  assert.equal(await app.metric('snapshot_requests_total', { outcome: 'stored' }), 2);
  assert.equal(await app.metric('snapshot_requests_total', { outcome: 'duplicate' }), 3);
});

// Keys come from a ping's time and id, so a second PingSource sending the same id in the same second
// names the same object as the first. Its snapshot must never replace the first one's.
test("a key holding another event's snapshot is left untouched: 412 key_conflict (not retryable), counted", async (t) => {
  const bucket = await s3.bucket();
  const app = await startApp(t, { prometheusUrl: prometheus.url, s3Client: s3.client, bucket, queries: ['up'] });
  const instant = await settledInstant();
  const first = createPingEvent({ namespace: 'promsnap', name: 'snapshot-schedule', time: instant });
  const other = createPingEvent({ namespace: 'team-b', name: 'nightly', id: first.id, time: instant });
  const stored = await post(app.url, HTTP.binary(first));
  assert.equal(stored.status, 200, stored.text);
  const key = storedData(stored).key;
  const before = await readObject(s3, bucket, key);
  const etag = (await s3.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ETag;

  const res = await post(app.url, HTTP.binary(other));
  assert.equal(res.status, 412, res.text);
  const body = res.json as { error: string; reason: string; retryable: boolean };
  assert.equal(body.reason, 'key_conflict');
  assert.equal(body.retryable, false);
  assert.equal(body.error, `object ${key} already holds a snapshot of another event (id ${JSON.stringify(first.id)}, source ${JSON.stringify(first.source)})`);
  assert.deepEqual(await s3.keys(bucket), [key]);
  assert.deepEqual(await readObject(s3, bucket, key), before, "the first event's snapshot is as it was");
  assert.equal((await s3.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ETag, etag);
  assert.equal(await app.metric('snapshot_failures_total', { reason: 'key_conflict' }), 1);
  assert.equal(await app.metric('snapshot_requests_total', { outcome: 'rejected' }), 1);
  assert.equal(await app.metric('snapshot_requests_total', { outcome: 'stored' }), 1);
  // The first event's own redelivery is still recognised as a duplicate.
  assert.equal((await post(app.url, HTTP.binary(first))).status, 200);
  assert.equal(await app.metric('snapshot_requests_total', { outcome: 'duplicate' }), 1);
});

test("another event's snapshot written while this one's query runs: the conditional write refuses, 412 key_conflict", async (t) => {
  const bucket = await s3.bucket();
  // This delivery's Prometheus answers 1.5 s late, so the other event is stored between its HEAD and its write.
  const slow = await startTcpProxy({ port: prometheus.port }, { delayResponseMs: 1_500 });
  t.after(() => slow.close());
  const late = await startApp(t, { prometheusUrl: slow.url, s3Client: s3.client, bucket, queries: ['up'] });
  const quick = await startApp(t, { prometheusUrl: prometheus.url, s3Client: s3.client, bucket, queries: ['up'] });
  const instant = await settledInstant();
  const first = createPingEvent({ namespace: 'promsnap', name: 'snapshot-schedule', time: instant });
  const other = createPingEvent({ namespace: 'team-b', name: 'nightly', id: first.id, time: instant });

  const pending = post(late.url, HTTP.binary(other));
  await waitFor(() => slow.connections > 0, { what: "the late delivery's query to reach Prometheus" });
  const stored = await post(quick.url, HTTP.binary(first));
  assert.equal(stored.status, 200, stored.text);
  const key = storedData(stored).key;
  const before = await readObject(s3, bucket, key);

  const res = await pending;
  assert.equal(res.status, 412, res.text);
  assert.equal((res.json as { reason: string }).reason, 'key_conflict');
  assert.deepEqual(await s3.keys(bucket), [key]);
  assert.deepEqual(await s3.pendingUploads(bucket), []);
  assert.deepEqual(await readObject(s3, bucket, key), before, "the first event's snapshot is as it was");
  assert.equal((JSON.parse(before.toString()) as { source: unknown }).source, first.source);
  assert.equal(await late.metric('snapshot_failures_total', { reason: 'key_conflict' }), 1);
  assert.equal(await late.metric('snapshot_requests_total', { outcome: 'rejected' }), 1);
});

test('Prometheus down: 503, nothing written, failure counted; back up: the redelivery stores the same instant', async (t) => {
  const bucket = await s3.bucket();
  const app = await startApp(t, { prometheusUrl: prometheus.url, s3Client: s3.client, bucket, queries: ['promsnap_test_value'] });
  const instant = await settledInstant();
  const ping = createPingEvent({ namespace: 'promsnap', name: 'snapshot-schedule', time: instant });
  const before = await prometheus.query('promsnap_test_value', instant.toISOString());

  await prometheus.stop();
  const failed = await post(app.url, HTTP.binary(ping));
  assert.equal(failed.status, 503);
  assert.deepEqual(failed.json, { error: 'Prometheus is unreachable; the delivery can be retried', reason: 'prometheus_unavailable', retryable: true });
  assert.doesNotMatch(failed.text, /127\.0\.0\.1|ECONNREFUSED/, '5xx bodies hide internals');
  assert.deepEqual(await s3.keys(bucket), []);
  assert.equal(await app.metric('snapshot_failures_total', { reason: 'prometheus_unavailable' }), 1);
  assert.equal(await app.metric('snapshot_requests_total', { outcome: 'failed' }), 1);
  assert.ok(
    app.logs.some((l) => l['msg'] === 'dependency failure' && JSON.stringify(l).includes('ECONNREFUSED')),
    'the log keeps the detail',
  );

  await prometheus.restart();
  const retried = await post(app.url, HTTP.binary(ping));
  assert.equal(retried.status, 200, retried.text);
  const data = storedData(retried);
  assert.deepEqual(await s3.keys(bucket), [data.key]);
  const stored = JSON.parse((await readObject(s3, bucket, data.key)).toString()) as StoredSnapshot;
  assert.deepEqual(sortedResult(stored.results[0]!.response), sortedResult(before));
  assert.equal(data.series, 50);
});

test('malformed, incomplete and wrong-type events get 400 saying what is wrong, and nothing is written', async (t) => {
  const bucket = await s3.bucket();
  const app = await startApp(t, { prometheusUrl: prometheus.url, s3Client: s3.client, bucket });
  const ping = createPingEvent({ namespace: 'promsnap', name: 'snapshot-schedule' });
  const binary = HTTP.binary(ping).headers as Record<string, string>;
  const cases: Array<{ what: string; headers: Record<string, string>; body: string; problems: RegExp[] }> = [
    { what: 'plain JSON', headers: { 'content-type': 'application/json' }, body: '{"queries":["up"]}', problems: [/^not a CloudEvent/] },
    {
      what: 'broken structured JSON',
      headers: { 'content-type': 'application/cloudevents+json' },
      body: '{"specversion":"1.0",',
      problems: [/not valid JSON/],
    },
    {
      what: 'incomplete binary event',
      headers: { 'ce-specversion': '1.0', 'ce-id': 'x', 'content-type': 'application/json' },
      body: '{}',
      problems: [/^source is required$/, /^type is required$/],
    },
    {
      what: 'structured event without time',
      headers: { 'content-type': 'application/cloudevents+json' },
      body: JSON.stringify({ specversion: '1.0', id: 'x', type: 'dev.knative.sources.ping', source: ping.source }),
      problems: [/^time is required/],
    },
    {
      what: 'wrong type and source',
      headers: { ...binary, 'ce-type': 'com.example.order.created', 'ce-source': 'https://shop.example.com' },
      body: '{}',
      problems: [
        /^type "com.example.order.created" is not accepted here: expected dev.knative.sources.ping$/,
        /^source "https:\/\/shop.example.com" is not a PingSource/,
      ],
    },
    {
      what: 'bad ping data',
      headers: binary,
      body: '{"queries":"up","limit":3}',
      problems: [/^data has unknown property "limit"$/, /^data.queries must be of type array$/],
    },
    { what: 'data that is not JSON', headers: { ...binary, 'content-type': 'text/plain' }, body: 'take a snapshot', problems: [/must be application\/json/] },
  ];
  for (const c of cases) {
    const res = await post(app.url, { headers: c.headers, body: c.body });
    assert.equal(res.status, 400, `${c.what}: ${res.text}`);
    const body = res.json as { error: string; problems: string[]; retryable: boolean };
    assert.equal(body.retryable, false);
    assert.equal(body.problems.length, c.problems.length, `${c.what}: ${res.text}`);
    for (const [i, pattern] of c.problems.entries()) assert.match(body.problems[i]!, pattern, c.what);
  }
  assert.deepEqual(await s3.keys(bucket), []);
  assert.equal(await app.metric('snapshot_failures_total', { reason: 'invalid_event' }), cases.length);
  assert.equal(await app.metric('snapshot_requests_total', { outcome: 'rejected' }), cases.length);
});

test('an event body over 1 MB gets 413, is counted as a refused delivery, and nothing is written', async (t) => {
  const bucket = await s3.bucket();
  const app = await startApp(t, { prometheusUrl: prometheus.url, s3Client: s3.client, bucket });
  const headers = HTTP.binary(createPingEvent({ namespace: 'promsnap', name: 'snapshot-schedule' })).headers as Record<string, string>;
  // Ping data of exactly `bytes` bytes: valid JSON with one property a ping does not have.
  const data = (bytes: number) => {
    const head = '{"queries":["up"],"pad":"';
    return `${head}${'x'.repeat(bytes - head.length - 2)}"}`;
  };
  const limit = 1024 * 1024; // Express's "1mb"

  // At the limit the body is read, and refused for what it says.
  const atLimit = await post(app.url, { headers, body: data(limit) });
  assert.equal(atLimit.status, 400, atLimit.text);
  assert.deepEqual((atLimit.json as { problems: string[] }).problems, ['data has unknown property "pad"']);

  const over = await post(app.url, { headers, body: data(limit + 1) });
  assert.equal(over.status, 413, over.text);
  const message = `the event body (${limit + 1} bytes) is over the limit of ${limit} bytes`;
  assert.deepEqual(over.json, { error: message, reason: 'too_large', problems: [message], retryable: false });
  const structured = await post(app.url, { headers: { 'content-type': 'application/cloudevents+json' }, body: data(2 * limit) });
  assert.equal(structured.status, 413, structured.text);

  assert.deepEqual(await s3.keys(bucket), []);
  assert.equal(await app.metric('snapshot_failures_total', { reason: 'too_large' }), 2);
  assert.equal(await app.metric('snapshot_failures_total', { reason: 'invalid_event' }), 1);
  assert.equal(await app.metric('snapshot_requests_total', { outcome: 'rejected' }), 3);
  assert.equal(await app.metric('snapshot_requests_total', { outcome: 'failed' }), 0);
});

test('a query Prometheus refuses gets 422 with its reason, and nothing is written', async (t) => {
  const bucket = await s3.bucket();
  // Queries from events only where the operator allows any (SNAPSHOT_ALLOWED_QUERIES=*).
  const app = await startApp(t, { prometheusUrl: prometheus.url, s3Client: s3.client, bucket, limits: { allowedQueries: 'any' } });
  const ping = createPingEvent({ namespace: 'promsnap', name: 'snapshot-schedule', data: { queries: ['sum(up'] } });
  const res = await post(app.url, HTTP.binary(ping));
  assert.equal(res.status, 422, res.text);
  const body = res.json as { error: string; reason: string; retryable: boolean };
  assert.match(body.error, /^Prometheus rejected query "sum\(up": bad_data: /);
  assert.equal(body.reason, 'query_rejected');
  assert.equal(body.retryable, false);
  assert.deepEqual(await s3.keys(bucket), []);
  assert.equal(await app.metric('snapshot_failures_total', { reason: 'query_rejected' }), 1);
});

test('a deadline that is not a whole number of seconds is passed on in a form Prometheus accepts', async (t) => {
  const bucket = await s3.bucket();
  const app = await startApp(t, { prometheusUrl: prometheus.url, s3Client: s3.client, bucket, timeoutMs: 2_500, queries: ['up'] });
  const res = await post(app.url, HTTP.binary(createPingEvent({ namespace: 'promsnap', name: 'snapshot-schedule' })));
  assert.equal(res.status, 200, res.text);
});

test('MinIO stopped: 503 for pings and for dead letters, each counted, bodies without internals', async (t) => {
  const own = await startTestMinio();
  t.after(() => own.stop());
  const bucket = await own.bucket();
  const app = await startApp(t, { prometheusUrl: prometheus.url, s3Client: own.client, bucket });
  await own.minio.stop();
  const ping = createPingEvent({ namespace: 'promsnap', name: 'snapshot-schedule' });
  const res = await post(app.url, HTTP.binary(ping));
  assert.equal(res.status, 503, res.text);
  assert.deepEqual(res.json, { error: 'the object store is unavailable; the delivery can be retried', reason: 'storage_unavailable', retryable: true });
  assert.equal(await app.metric('snapshot_failures_total', { reason: 'storage_unavailable' }), 1);
  assert.equal(await app.metric('snapshot_requests_total', { outcome: 'failed' }), 1);

  // The dead letter of that ping cannot be kept either: 503, so Knative retries the sink, and counted
  // apart from snapshot failures, since an event lost here leaves no other trace.
  const dead = await post(`${app.url}/dead-letters`, HTTP.binary(ping.cloneWith({ knativeerrorcode: '503' })));
  assert.equal(dead.status, 503, dead.text);
  assert.deepEqual(dead.json, { error: 'the object store is unavailable; the delivery can be retried', reason: 'storage_unavailable', retryable: true });
  assert.equal(await app.metric('snapshot_dead_letter_failures_total', { reason: 'storage_unavailable' }), 1);
  assert.equal(await app.metric('snapshot_dead_letters_total'), 0, 'only a stored dead letter counts as received');
  assert.equal(await app.metric('snapshot_failures_total', { reason: 'storage_unavailable' }), 1, 'snapshot failures did not move');
});

test('/lastdata streams the newest snapshot and /snapshots pages through them in time order', async (t) => {
  const bucket = await s3.bucket();
  const app = await startApp(t, { prometheusUrl: prometheus.url, s3Client: s3.client, bucket, queries: ['up'] });
  assert.equal((await fetch(`${app.url}/lastdata`)).status, 404);
  const later = await settledInstant();
  const earlier = new Date(later.getTime() - 60_000);
  const keys: string[] = [];
  // Stored newest first: "newest" is the latest instant captured, not the last object written.
  for (const time of [later, earlier]) {
    const res = await post(app.url, HTTP.binary(createPingEvent({ namespace: 'promsnap', name: 'snapshot-schedule', time })));
    assert.equal(res.status, 200, res.text);
    keys.push(storedData(res).key);
  }
  const last = await fetch(`${app.url}/lastdata`);
  assert.equal(last.status, 200);
  assert.equal(last.headers.get('x-snapshot-key'), keys[0]);
  assert.equal(last.headers.get('content-type'), 'application/json');
  const body = Buffer.from(await last.arrayBuffer());
  assert.deepEqual(body, await readObject(s3, bucket, keys[0]!));
  assert.equal((JSON.parse(body.toString()) as StoredSnapshot).time, later.toISOString());

  const page1 = (await (await fetch(`${app.url}/snapshots?limit=1`)).json()) as {
    items: Array<{ key: string; size: number; time: string }>;
    next: string | null;
  };
  assert.deepEqual(
    page1.items.map((i) => i.key),
    [keys[1]],
  );
  assert.equal(page1.items[0]!.time, `${earlier.toISOString().slice(0, 19)}Z`);
  assert.ok(page1.items[0]!.size > 0);
  assert.equal(page1.next, keys[1]);
  const page2 = (await (await fetch(`${app.url}/snapshots?limit=1&after=${encodeURIComponent(page1.next)}`)).json()) as typeof page1;
  assert.deepEqual(
    page2.items.map((i) => i.key),
    [keys[0]],
  );
  assert.equal(page2.next, null);
  const bad = await fetch(`${app.url}/snapshots?limit=0`);
  assert.equal(bad.status, 400);
  assert.match(((await bad.json()) as { error: string }).error, /limit must be a whole number from 1 to 1000/);
});

test('gzip: the object is .json.gz, decompresses to the snapshot, and a redelivery reads its series back', async (t) => {
  const bucket = await s3.bucket();
  const app = await startApp(t, { prometheusUrl: prometheus.url, s3Client: s3.client, bucket, gzip: true, queries: ['promsnap_test_value'] });
  const instant = await settledInstant();
  const ping = createPingEvent({ namespace: 'promsnap', name: 'snapshot-schedule', time: instant });
  const first = storedData(await post(app.url, HTTP.binary(ping)));
  assert.equal(first.key, snapshotKey(instant.toISOString(), ping.id, true));
  const stored = JSON.parse(gunzipSync(await readObject(s3, bucket, first.key)).toString()) as StoredSnapshot;
  assert.equal(stored.series, 50);
  assert.equal(first.series, 50);
  const again = storedData(await post(app.url, HTTP.binary(ping)));
  assert.equal(again.series, 50);
  assert.deepEqual(await s3.keys(bucket), [first.key]);
});

test('the dead-letter sink keeps each event once with its Knative error attributes', async (t) => {
  const bucket = await s3.bucket();
  const app = await startApp(t, { prometheusUrl: prometheus.url, s3Client: s3.client, bucket });
  const ping = createPingEvent({ namespace: 'promsnap', name: 'snapshot-schedule', data: { queries: ['up'] } });
  const failure = JSON.stringify({ error: 'Prometheus is unreachable; the delivery can be retried', reason: 'prometheus_unavailable', retryable: true });
  const message = HTTP.binary(
    ping.cloneWith({
      knativeerrorcode: '503',
      knativeerrordest: 'http://snapshot.promsnap.svc.cluster.local',
      knativeerrordata: Buffer.from(failure).toString('base64'),
    }),
  );
  const res = await post(`${app.url}/dead-letters`, message);
  assert.equal(res.status, 202, res.text);
  const key = (res.json as { key: string }).key;
  assert.match(key, /^dead-letters\/\d{4}\/\d{2}\/\d{2}\/\d{6}Z-[0-9a-f-]{36}\.json$/);
  const record = JSON.parse((await readObject(s3, bucket, key)).toString()) as {
    error: { code: number; destination: string; body: string };
    event: Record<string, unknown>;
  };
  assert.deepEqual(
    { code: record.error.code, destination: record.error.destination, body: record.error.body },
    {
      code: 503,
      destination: 'http://snapshot.promsnap.svc.cluster.local',
      body: failure,
    },
  );
  assert.equal(record.event['id'], ping.id);
  assert.equal(record.event['knativeerrorcode'], '503');
  assert.deepEqual(record.event['data'], { queries: ['up'] });
  assert.equal(await app.metric('snapshot_dead_letters_total'), 1);

  const again = await post(`${app.url}/dead-letters`, message);
  assert.equal(again.status, 202);
  assert.equal((again.json as { created: boolean }).created, false);
  assert.deepEqual(await s3.keys(bucket), [key]);
  assert.equal(await app.metric('snapshot_dead_letters_total'), 1, 'a redelivered dead letter is counted once');
  const junk = await post(`${app.url}/dead-letters`, { headers: { 'content-type': 'application/json' }, body: '{}' });
  assert.equal(junk.status, 400);
  const huge = await post(`${app.url}/dead-letters`, { headers: message.headers, body: JSON.stringify({ queries: ['x'.repeat(1024 * 1024)] }) });
  assert.equal(huge.status, 413);
  assert.equal(await app.metric('snapshot_dead_letter_failures_total', { reason: 'invalid_event' }), 1);
  assert.equal(await app.metric('snapshot_dead_letter_failures_total', { reason: 'too_large' }), 1);
  assert.equal(await app.metric('snapshot_dead_letter_failures_total', { reason: 'storage_unavailable' }), 0);
  assert.equal(await app.metric('snapshot_failures_total', { reason: 'invalid_event' }), 0, 'dead letters are not snapshot deliveries');
});

test('health, readiness and metrics', async (t) => {
  const bucket = await s3.bucket();
  const app = await startApp(t, { prometheusUrl: prometheus.url, s3Client: s3.client, bucket });
  assert.equal((await fetch(`${app.url}/healthz`)).status, 200);
  assert.equal((await fetch(`${app.url}/readyz`)).status, 200);
  const res = await fetch(`${app.url}/metrics`);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  for (const name of [
    'snapshot_duration_seconds_bucket',
    'snapshot_last_bytes',
    'snapshot_last_series',
    'snapshot_last_success_timestamp_seconds',
    'snapshot_failures_total{reason="prometheus_unavailable"',
    'snapshot_requests_total{outcome="stored"',
    'snapshot_dead_letters_total',
    'snapshot_dead_letter_failures_total{reason="storage_unavailable"',
  ]) {
    assert.ok(text.includes(name), `${name} is exposed`);
  }
  void app.lifecycle.shutdown('test');
  await app.lifecycle.stopped;
});

test('everything works with the least-privilege MinIO policy the platform gives the function', async (t) => {
  // platform/minio/snapshot-policy.json, applied to a user of its own on the bucket it names.
  const policyFile = new URL('../../../platform/minio/snapshot-policy.json', import.meta.url);
  await s3.minio.mc('mb', '--ignore-existing', 'local/snapshots');
  await s3.minio.mc('admin', 'policy', 'create', 'local', 'snapshot-writer', fileURLToPath(policyFile));
  const user = { accessKeyId: 'snapshot-fn', secretAccessKey: 'snapshot-fn-secret' };
  await s3.minio.mc('admin', 'user', 'add', 'local', user.accessKeyId, user.secretAccessKey);
  await s3.minio.mc('admin', 'policy', 'attach', 'local', 'snapshot-writer', '--user', user.accessKeyId);
  const client = createS3Client({ endpoint: s3.minio.endpoint, region: 'us-east-1', ...user });
  t.after(() => client.destroy());
  const app = await startApp(t, { prometheusUrl: prometheus.url, s3Client: client, bucket: 'snapshots', queries: ['up'] });

  const instant = await settledInstant();
  const ping = createPingEvent({ namespace: 'promsnap', name: 'snapshot-schedule', time: instant });
  const stored = await post(app.url, HTTP.binary(ping));
  assert.equal(stored.status, 200, stored.text);
  assert.equal((await post(app.url, HTTP.binary(ping))).status, 200, 'the redelivery check (HEAD, ranged GET) is allowed');
  assert.equal((await fetch(`${app.url}/lastdata`)).status, 200);
  assert.equal((await fetch(`${app.url}/snapshots`)).status, 200);
  const dead = await post(`${app.url}/dead-letters`, HTTP.binary(ping.cloneWith({ knativeerrorcode: '503' })));
  assert.equal(dead.status, 202, dead.text);
  // And nothing beyond: the function cannot write outside its prefixes.
  await assert.rejects(client.send(new PutObjectCommand({ Bucket: 'snapshots', Key: 'elsewhere.json', Body: '{}' })), /Access Denied/);
});
