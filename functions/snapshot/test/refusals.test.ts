// Every input the function must refuse, over HTTP against a real Prometheus and a real MinIO: each
// gets a 4xx saying what is wrong (never a retryable 5xx), is counted by reason, and leaves the bucket
// as it was. The inputs are those of issue #19: events that would widen what the function does (any
// PromQL, an instant in the future or before Prometheus's retention, an answer of any size), reads
// with parameters the store cannot take, and attribute headers encoded as the CloudEvents HTTP binding
// says (or not).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { HTTP, type CloudEvent } from 'cloudevents';
import { createPingEvent, percentEncode, receiveEvent, type PingData } from '../../../events/src/index.js';
import { startTcpProxy } from '../../../platform/testing/tcp-proxy.js';
import { deadLetterKey, parseSnapshotKey, snapshotKey } from '../src/key.js';
import { createPrometheusClient } from '../src/prometheus.js';
import { post, startApp, startExporter, startTestMinio, startTestPrometheus, type Exporter, type RunningApp, type TestPrometheus } from './helper.js';

let s3: Awaited<ReturnType<typeof startTestMinio>>;
let small: Exporter;
let large: Exporter;
let prometheus: TestPrometheus;

// Answers of about 6 MB: more than one 5 MiB part, so a refusal half-way has a multipart upload to abort.
const largeSeries = 1_500;
before(async () => {
  [s3, small, large] = await Promise.all([
    startTestMinio(),
    startExporter({ series: 50 }),
    startExporter({ series: largeSeries, padding: 4_000, name: 'promsnap_test_large' }),
  ]);
  prometheus = await startTestPrometheus({ exporter: { target: small.target, intervalSeconds: 1 }, large: { target: large.target, intervalSeconds: 2 } });
  await prometheus.scrapedAfter(new Date(0), ['exporter', 'large']);
});
after(async () => {
  await prometheus?.dispose();
  await small?.close();
  await large?.close();
  await s3?.stop();
});

const schedule = { namespace: 'promsnap', name: 'snapshot-schedule' };
const pingAt = (time: Date | string, data?: PingData) => createPingEvent({ ...schedule, time, ...(data ? { data } : {}) });

interface Refusal {
  error: string;
  reason: string;
  problems: string[];
  retryable: boolean;
}

/** Sends an event and checks the refusal: its status and reason, not retryable, a message saying what. */
async function refused(app: RunningApp, event: CloudEvent<unknown>, status: number, reason: string, route = '/'): Promise<Refusal> {
  const res = await post(`${app.url}${route}`, HTTP.binary(event));
  assert.equal(res.status, status, res.text);
  const body = res.json as unknown as Refusal;
  assert.equal(body.reason, reason, res.text);
  assert.equal(body.retryable, false);
  return body;
}

/** A POST whose header values go on the wire as the given Latin-1 characters, byte for byte (fetch would refuse some). */
function rawPost(url: string, headers: Record<string, string>, body = ''): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('a ping naming queries is refused by default: 403 query_not_allowed, before Prometheus is asked, nothing stored', async (t) => {
  const bucket = await s3.bucket();
  const watched = await startTcpProxy({ port: prometheus.port });
  t.after(() => watched.close());
  const app = await startApp(t, { prometheusUrl: watched.url, s3Client: s3.client, bucket });
  const body = await refused(app, pingAt(new Date(), { queries: ['count by (job) ({__name__=~".+"})', 'up'] }), 403, 'query_not_allowed');
  assert.match(body.error, /^the event names queries, and this function takes none from events: it runs its configured SNAPSHOT_QUERIES/);
  assert.deepEqual(body.problems, ['query "count by (job) ({__name__=~\\".+\\"})" is not allowed', 'query "up" is not allowed']);
  assert.equal(watched.connections, 0, 'Prometheus was never asked');
  assert.deepEqual(await s3.keys(bucket), []);
  assert.equal(await app.metric('snapshot_failures_total', { reason: 'query_not_allowed' }), 1);
  assert.equal(await app.metric('snapshot_requests_total', { outcome: 'rejected' }), 1);

  // The platform's own pings name no queries: the configured ones run.
  const plain = await post(app.url, HTTP.binary(pingAt(new Date())));
  assert.equal(plain.status, 200, plain.text);
});

test('an allow-list lets exactly its queries through; * lets any through', async (t) => {
  const bucket = await s3.bucket();
  const listed = await startApp(t, { prometheusUrl: prometheus.url, s3Client: s3.client, bucket, limits: { allowedQueries: ['up', 'promsnap_test_value'] } });
  const ok = await post(listed.url, HTTP.binary(pingAt(new Date(), { queries: ['promsnap_test_value'] })));
  assert.equal(ok.status, 200, ok.text);
  const body = await refused(listed, pingAt(new Date(), { queries: ['up', 'sum(rate(http_requests_total[5m]))'] }), 403, 'query_not_allowed');
  assert.equal(body.error, 'the event names queries outside SNAPSHOT_ALLOWED_QUERIES');
  assert.deepEqual(body.problems, ['query "sum(rate(http_requests_total[5m]))" is not allowed']);
  assert.equal((await s3.keys(bucket)).length, 1);

  const any = await startApp(t, { prometheusUrl: prometheus.url, s3Client: s3.client, bucket, limits: { allowedQueries: 'any' } });
  const anything = await post(any.url, HTTP.binary(pingAt(new Date(), { queries: ['count by (job) (up)'] })));
  assert.equal(anything.status, 200, anything.text);
});

test('a ping from the future is refused (422 time_in_future) and cannot become /lastdata; within the skew it is taken', async (t) => {
  const bucket = await s3.bucket();
  const app = await startApp(t, { prometheusUrl: prometheus.url, s3Client: s3.client, bucket, queries: ['up'], limits: { maxFutureMs: 30_000 } });
  const now = await post(app.url, HTTP.binary(pingAt(new Date())));
  assert.equal(now.status, 200, now.text);
  const current = (now.json as { key: string }).key;

  const body = await refused(app, pingAt('2999-01-01T00:00:00Z'), 422, 'time_in_future');
  assert.match(
    body.error,
    /^the event time 2999-01-01T00:00:00.000Z is ahead of this function's clock \(\S+\) by more than the 30s allowed for clock skew \(SNAPSHOT_MAX_FUTURE_MS\)/,
  );
  await refused(app, pingAt(new Date(Date.now() + 60_000)), 422, 'time_in_future');
  assert.deepEqual(await s3.keys(bucket), [current]);
  assert.equal(await app.metric('snapshot_failures_total', { reason: 'time_in_future' }), 2);

  // A clock a few seconds ahead of this one is a skew, not an attack.
  const skewed = await post(app.url, HTTP.binary(pingAt(new Date(Date.now() + 5_000))));
  assert.equal(skewed.status, 200, skewed.text);

  // A bucket written before such pings were refused: the future object is passed over, the newest
  // instant that has come is served.
  await s3.client.send(
    new PutObjectCommand({ Bucket: bucket, Key: '2999/01/01/000000Z-poisoned.json', Body: '{"series":0}', ContentType: 'application/json' }),
  );
  const last = await fetch(`${app.url}/lastdata`);
  assert.equal(last.status, 200);
  assert.equal(last.headers.get('x-snapshot-key'), (skewed.json as { key: string }).key);
  await last.arrayBuffer();
});

test('a ping older than Prometheus keeps data is refused (422 time_outside_retention); inside the retention it is taken', async (t) => {
  const bucket = await s3.bucket();
  const app = await startApp(t, { prometheusUrl: prometheus.url, s3Client: s3.client, bucket, queries: ['up'], limits: { retentionMs: 3_600_000 } });
  const body = await refused(app, pingAt('1970-01-01T00:00:00Z'), 422, 'time_outside_retention');
  assert.match(
    body.error,
    /^the event time 1970-01-01T00:00:00.000Z is before what Prometheus keeps \(1h back from \S+, PROMETHEUS_RETENTION\): there is nothing to capture$/,
  );
  await refused(app, pingAt(new Date(Date.now() - 2 * 3_600_000)), 422, 'time_outside_retention');
  assert.deepEqual(await s3.keys(bucket), []);
  assert.equal(await app.metric('snapshot_failures_total', { reason: 'time_outside_retention' }), 2);
  const inside = await post(app.url, HTTP.binary(pingAt(new Date(Date.now() - 30 * 60_000))));
  assert.equal(inside.status, 200, inside.text);
});

test('an answer with more series than allowed: 422 too_many_series, nothing stored, no upload left; at the bound it is stored', async (t) => {
  const bucket = await s3.bucket();
  const instant = new Date();
  await prometheus.scrapedAfter(instant, ['exporter', 'large']);

  const exact = await startApp(t, { prometheusUrl: prometheus.url, s3Client: s3.client, bucket, queries: ['promsnap_test_value'], maxSeries: 50 });
  const stored = await post(exact.url, HTTP.binary(pingAt(instant)));
  assert.equal(stored.status, 200, stored.text);
  assert.equal((stored.json as { series: number }).series, 50);

  // Past the first 5 MiB part: the multipart upload already started is aborted.
  const full = await fetch(`${prometheus.url}/api/v1/query?${new URLSearchParams({ query: 'promsnap_test_large', time: instant.toISOString() }).toString()}`);
  const fullBytes = (await full.arrayBuffer()).byteLength;
  assert.ok((fullBytes * 1_400) / largeSeries > 5 * 1024 * 1024, `the first 1400 series of the answer (${fullBytes} bytes for ${largeSeries}) fill a part`);
  const bounded = await startApp(t, { prometheusUrl: prometheus.url, s3Client: s3.client, bucket, queries: ['up', 'promsnap_test_large'], maxSeries: 1_400 });
  const body = await refused(bounded, pingAt(instant), 422, 'too_many_series');
  assert.equal(
    body.error,
    'the answer to query "promsnap_test_large" holds more than 1400 series, the most one answer may hold (SNAPSHOT_MAX_SERIES); nothing was stored',
  );
  assert.deepEqual(await s3.keys(bucket), [(stored.json as { key: string }).key]);
  assert.deepEqual(await s3.pendingUploads(bucket), []);
  assert.equal(await bounded.metric('snapshot_failures_total', { reason: 'too_many_series' }), 1);
  assert.equal(await bounded.metric('snapshot_requests_total', { outcome: 'rejected' }), 1);
  // The same ping again is refused again, the same way: no retry could store it.
  await refused(bounded, pingAt(instant), 422, 'too_many_series');
});

test('every query asks Prometheus itself for at most one series more than the bound (its limit parameter)', async () => {
  const client = createPrometheusClient({ url: prometheus.url, timeoutMs: 10_000, maxSeries: 10 });
  const answer = await client.query('promsnap_test_value', new Date().toISOString());
  const chunks: Buffer[] = [];
  for await (const chunk of answer) chunks.push(chunk as Buffer);
  const body = JSON.parse(Buffer.concat(chunks).toString()) as { data: { result: unknown[] }; warnings?: string[] };
  assert.equal(body.data.result.length, 11, 'Prometheus truncated its answer');
  assert.deepEqual(body.warnings, ['results truncated due to limit']);
});

test('GET /snapshots and /lastdata: every bad parameter is a 400 naming it, never a store failure', async (t) => {
  const bucket = await s3.bucket();
  const app = await startApp(t, { prometheusUrl: prometheus.url, s3Client: s3.client, bucket, queries: ['up'] });
  assert.equal((await post(app.url, HTTP.binary(pingAt(new Date())))).status, 200);
  const cases: Array<[string, RegExp]> = [
    ['/snapshots?after=../../', /^after "\.\.\/\.\.\/" must be a snapshot key as a previous page's next gives it/],
    ['/snapshots?after=..', /^after "\.\." must be a snapshot key/],
    ['/snapshots?after=2026/11/25/100405Z-../../x.json', /^after ".*" must be a snapshot key/],
    ['/snapshots?after=', /^after "" must be a snapshot key/],
    ['/snapshots?after=' + 'a'.repeat(2_000), /^after "a{100}" must be a snapshot key/],
    ['/snapshots?limit=0', /^limit must be a whole number from 1 to 1000, not "0"$/],
    ['/snapshots?limit=1e2', /^limit must be a whole number from 1 to 1000, not "1e2"$/],
    ['/snapshots?limit=-1', /^limit must be a whole number from 1 to 1000/],
    ['/snapshots?limit=1001', /^limit must be a whole number from 1 to 1000/],
    ['/snapshots?limit=%201', /^limit must be a whole number from 1 to 1000/],
    ['/snapshots?limit=1&limit=2', /^parameter limit is given more than once$/],
    ['/snapshots?prefix=dead-letters/', /^unknown parameter "prefix" \(known: limit, after\)$/],
    ['/lastdata?key=dead-letters/x.json', /^unknown parameter "key" \(\/lastdata takes none\)$/],
  ];
  for (const [path, problem] of cases) {
    const res = await fetch(`${app.url}${path}`);
    const text = await res.text();
    assert.equal(res.status, 400, `${path}: ${text}`);
    const body = JSON.parse(text) as Refusal;
    assert.deepEqual([body.reason, body.retryable, body.problems.length], ['invalid_parameter', false, 1], path);
    assert.match(body.problems[0]!, problem, path);
  }
  assert.equal(await app.metric('snapshot_bad_requests_total', { route: '/snapshots' }), cases.length - 1);
  assert.equal(await app.metric('snapshot_bad_requests_total', { route: '/lastdata' }), 1);
  assert.equal(await app.metric('snapshot_failures_total', { reason: 'storage_unavailable' }), 0, 'no read reached the store as a failure');
  // A key from the listing itself is a good `after`.
  const page = (await (await fetch(`${app.url}/snapshots?limit=1`)).json()) as { next: string | null; items: Array<{ key: string }> };
  const next = await fetch(`${app.url}/snapshots?after=${encodeURIComponent(page.items[0]!.key)}`);
  assert.equal(next.status, 200);
});

test('non-ASCII ids, percent-encoded as the HTTP binding says or sent as raw UTF-8, name the object by the id itself', async (t) => {
  const bucket = await s3.bucket();
  const app = await startApp(t, { prometheusUrl: prometheus.url, s3Client: s3.client, bucket, queries: ['up'] });
  const time = new Date();
  for (const id of ['café-1', 'ид-2', '事件-3', 'emoji-😀', 'with space "and" 100%']) {
    const headers = HTTP.binary(createPingEvent({ ...schedule, time, id })).headers as Record<string, string>;
    const encoded = await rawPost(app.url, { ...headers, 'ce-id': percentEncode(id) });
    assert.equal(encoded.status, 200, `${id}: ${encoded.text}`);
    const key = snapshotKey(time.toISOString(), id, false);
    assert.equal((JSON.parse(encoded.text) as { key: string }).key, key, id);
    assert.equal(parseSnapshotKey(key)?.id, id);
    // The reply names the ping's id, encoded for a header, and reads back as the id.
    assert.equal(encoded.headers['ce-id'], percentEncode(id));
    const reply = receiveEvent({ headers: encoded.headers, body: encoded.text });
    assert.ok(reply.ok && reply.value.event.id === id, JSON.stringify(reply));
    const stored = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    assert.equal((JSON.parse(await stored.Body!.transformToString()) as { id: string }).id, id);

    if (!/[ "%]/.test(id)) {
      // Raw UTF-8 is the same id, so the same event: found already stored, not a second, mangled object.
      const raw = await rawPost(app.url, { ...headers, 'ce-id': Buffer.from(id, 'utf8').toString('latin1') });
      assert.equal(raw.status, 200, `${id}: ${raw.text}`);
      assert.equal((JSON.parse(raw.text) as { key: string }).key, key);
    }
  }
  assert.equal((await s3.keys(bucket)).length, 5);
  assert.equal(await app.metric('snapshot_requests_total', { outcome: 'duplicate' }), 4);

  // Encodings the binding forbids: 400, naming the header.
  const headers = HTTP.binary(pingAt(time)).headers as Record<string, string>;
  for (const [value, problem] of [
    ['%C0%A0', /^header ce-id: percent-encodes bytes that are not valid UTF-8$/],
    ['caf\u00e9', /^header ce-id: holds bytes that are not UTF-8/],
    ['100%', /^header ce-id: has "%" at character 4 not followed by two hexadecimal digits/],
  ] as const) {
    const res = await rawPost(app.url, { ...headers, 'ce-id': value });
    assert.equal(res.status, 400, res.text);
    assert.match((JSON.parse(res.text) as Refusal).problems[0]!, problem);
  }
  assert.equal((await s3.keys(bucket)).length, 5);
});

test('ids too long for an object key, times that name no instant: 400, not a store failure; dead letters keep them all', async (t) => {
  const bucket = await s3.bucket();
  const app = await startApp(t, { prometheusUrl: prometheus.url, s3Client: s3.client, bucket, queries: ['up'] });
  const headers = HTTP.binary(pingAt(new Date())).headers as Record<string, string>;
  // 90 characters, 270 in a key: MinIO refuses a key segment over 255 bytes, which answered 503 before.
  for (const id of ['!'.repeat(90), 'é'.repeat(34), 'x'.repeat(201)]) {
    const res = await rawPost(app.url, { ...headers, 'ce-id': percentEncode(id) });
    assert.equal(res.status, 400, res.text);
    assert.match((JSON.parse(res.text) as Refusal).problems[0]!, /^id is too long for an object key: it takes \d+ characters there/);
  }
  const badTime = await rawPost(app.url, { ...headers, 'ce-time': '2026-02-30T10:00:00Z' });
  assert.equal(badTime.status, 400, badTime.text);
  assert.deepEqual((JSON.parse(badTime.text) as Refusal).problems, ['time "2026-02-30T10:00:00Z" is not an RFC 3339 timestamp']);
  assert.deepEqual(await s3.keys(bucket), []);
  assert.equal(await app.metric('snapshot_failures_total', { reason: 'invalid_event' }), 4);
  assert.equal(await app.metric('snapshot_failures_total', { reason: 'storage_unavailable' }), 0);

  // The dead-letter sink keeps what the function refused, whatever its id or time: the last trace of an event.
  const longId = '!'.repeat(90);
  const dead = await rawPost(`${app.url}/dead-letters`, { ...headers, 'ce-id': percentEncode(longId), 'ce-knativeerrorcode': '400' });
  assert.equal(dead.status, 202, dead.text);
  assert.equal((JSON.parse(dead.text) as { key: string }).key, deadLetterKey(headers['ce-time']!, longId));
  const future = await post(`${app.url}/dead-letters`, HTTP.binary(pingAt('2999-01-01T00:00:00Z').cloneWith({ knativeerrorcode: '422' })));
  assert.equal(future.status, 202, future.text);
  const badEncoding = await rawPost(`${app.url}/dead-letters`, { ...headers, 'ce-id': '%C0%A0' });
  assert.equal(badEncoding.status, 400, badEncoding.text);
  assert.equal(await app.metric('snapshot_dead_letter_failures_total', { reason: 'invalid_event' }), 1);
  assert.equal(await app.metric('snapshot_dead_letter_failures_total', { reason: 'storage_unavailable' }), 0);
  assert.equal((await s3.keys(bucket, 'dead-letters/')).length, 2);
});
