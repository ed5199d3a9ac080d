// Large answers: streamed through in parts, a failure half-way leaves nothing behind, and the query
// deadline tells a slow Prometheus from a slow store.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { HTTP } from 'cloudevents';
import { createPingEvent, receiveEvent, validateSnapshotStoredEvent } from '../../../events/src/index.js';
import { startTcpProxy, type TcpProxy } from '../../../platform/testing/tcp-proxy.js';
import { createS3Client, defaultPartSize } from '../src/store.js';
import { credentials, post, sortedResult, startApp, startExporter, startTestMinio, startTestPrometheus, type Exporter, type TestPrometheus } from './helper.js';
import { startThrottlingProxy } from './throttling-proxy.js';

const SERIES = 20_000;
const query = 'promsnap_bulk_value';

let s3: Awaited<ReturnType<typeof startTestMinio>>;
let exporter: Exporter;
let prometheus: TestPrometheus;
let proxy: TcpProxy;
let instant: Date;

before(async () => {
  // About 15 MB of answer: three multipart parts of 5 MiB.
  [s3, exporter] = await Promise.all([startTestMinio(), startExporter({ series: SERIES, padding: 600, name: query })]);
  prometheus = await startTestPrometheus({ bulk: { target: exporter.target, intervalSeconds: 10 } });
  proxy = await startTcpProxy({ port: prometheus.port });
  await prometheus.scrapedAfter(new Date(0), ['bulk']);
  instant = new Date();
  // With a 10 s interval the next scrape is well after this instant: the first one is the data, and it is complete.
  assert.equal((await prometheus.query(`count(${query})`, instant.toISOString())).data.result[0]?.value[1], String(SERIES));
});
after(async () => {
  await proxy?.close();
  await prometheus?.dispose();
  await exporter?.close();
  await s3?.stop();
});

test('a large answer goes to the bucket in parts and arrives whole', async (t) => {
  const bucket = await s3.bucket();
  const app = await startApp(t, { prometheusUrl: prometheus.url, s3Client: s3.client, bucket, queries: [query] });
  const ping = createPingEvent({ namespace: 'promsnap', name: 'snapshot-schedule', time: instant });
  const started = Date.now();
  const res = await post(app.url, HTTP.binary(ping));
  const tookMs = Date.now() - started;
  assert.equal(res.status, 200, res.text);
  const received = receiveEvent({ headers: res.headers, body: res.text });
  assert.ok(received.ok);
  const checked = validateSnapshotStoredEvent(received.value.event);
  assert.ok(checked.ok);
  const data = checked.value.data!;
  assert.equal(data.series, SERIES);
  assert.ok(data.bytes > 2 * defaultPartSize, `${data.bytes} bytes is more than two parts`);
  const object = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: data.key }));
  assert.match(object.ETag ?? '', /-\d+"$/, 'a multipart object');
  const stored = JSON.parse(await object.Body!.transformToString()) as { results: Array<{ response: Parameters<typeof sortedResult>[0] }> };
  const direct = await prometheus.query(query, instant.toISOString());
  assert.deepEqual(sortedResult(stored.results[0]!.response), sortedResult(direct));
  t.diagnostic(`${SERIES} series, ${data.bytes} bytes stored in ${tookMs} ms`);
});

test('PROMETHEUS_GZIP: the answer crosses the wire uncompressed by default, gzipped when on, and is stored the same', async (t) => {
  const sizes: Record<string, { wire: number; stored: number; series: number }> = {};
  for (const prometheusGzip of [false, true]) {
    const bucket = await s3.bucket();
    const app = await startApp(t, { prometheusUrl: proxy.url, s3Client: s3.client, bucket, queries: [query], prometheusGzip });
    const before = proxy.bytesForwarded;
    const res = await post(app.url, HTTP.binary(createPingEvent({ namespace: 'promsnap', name: 'snapshot-schedule', time: instant })));
    assert.equal(res.status, 200, res.text);
    const received = receiveEvent({ headers: res.headers, body: res.text });
    assert.ok(received.ok);
    const data = validateSnapshotStoredEvent(received.value.event);
    assert.ok(data.ok);
    sizes[String(prometheusGzip)] = { wire: proxy.bytesForwarded - before, stored: data.value.data!.bytes, series: data.value.data!.series };
  }
  const on = sizes['true']!;
  const off = sizes['false']!;
  t.diagnostic(`on the wire: ${on.wire} bytes gzipped, ${off.wire} uncompressed; stored ${on.stored} and ${off.stored}`);
  assert.equal(on.series, SERIES);
  assert.equal(off.series, SERIES);
  // The same answer stored either way (event ids differ, their length does not).
  assert.equal(on.stored, off.stored);
  assert.ok(off.wire > off.stored * 0.9, `${off.wire} bytes on the wire uncompressed, about the stored ${off.stored}`);
  // This answer's padding is random, so it only halves (a real answer shrinks about 12x).
  assert.ok(on.wire * 1.5 < off.wire, `${on.wire} bytes gzipped is well under ${off.wire}`);
});

test('an answer cut half-way: 502, no object, no pending multipart upload, failure counted', async (t) => {
  const bucket = await s3.bucket();
  const app = await startApp(t, { prometheusUrl: proxy.url, s3Client: s3.client, bucket, queries: [query] });
  const before = proxy.bytesForwarded;
  // The whole answer's size on the wire, from a run the proxy lets through; the cut then
  // comes 70% of the way in, past the first 5 MiB part of a 15 MB answer.
  const ok = await post(app.url, HTTP.binary(createPingEvent({ namespace: 'promsnap', name: 'snapshot-schedule', time: instant })));
  assert.equal(ok.status, 200, ok.text);
  await s3.minio.mc('rm', '--recursive', '--force', `local/${bucket}`);
  const wholeAnswer = proxy.bytesForwarded - before;
  proxy.faults = { cutAfterBytes: Math.round(0.7 * wholeAnswer) };
  t.after(() => (proxy.faults = {}));
  const res = await post(app.url, HTTP.binary(createPingEvent({ namespace: 'promsnap', name: 'snapshot-schedule', time: instant })));
  assert.equal(res.status, 502, res.text);
  assert.deepEqual(res.json, { error: 'Prometheus answered with an error; the delivery can be retried', reason: 'prometheus_error', retryable: true });
  assert.deepEqual(await s3.keys(bucket), []);
  assert.deepEqual(await s3.pendingUploads(bucket), []);
  assert.equal((await s3.minio.mc('ls', '--incomplete', '--recursive', `local/${bucket}`)).trim(), '');
  assert.equal(await app.metric('snapshot_failures_total', { reason: 'prometheus_error' }), 1);
  // The cut is on the log with its cause.
  assert.ok(
    app.logs.some((l) => l['msg'] === 'dependency failure' && /broke off/.test(JSON.stringify(l))),
    JSON.stringify(app.logs.at(-1)),
  );
});

test('a Prometheus slower than the deadline: 504 and nothing written', async (t) => {
  const bucket = await s3.bucket();
  const app = await startApp(t, { prometheusUrl: proxy.url, s3Client: s3.client, bucket, queries: [query], timeoutMs: 300 });
  proxy.faults = { delayResponseMs: 2_000 };
  t.after(() => (proxy.faults = {}));
  const res = await post(app.url, HTTP.binary(createPingEvent({ namespace: 'promsnap', name: 'snapshot-schedule', time: instant })));
  assert.equal(res.status, 504, res.text);
  assert.equal((res.json as { reason: string }).reason, 'prometheus_timeout');
  assert.deepEqual(await s3.keys(bucket), []);
  assert.deepEqual(await s3.pendingUploads(bucket), []);
  assert.equal(await app.metric('snapshot_failures_total', { reason: 'prometheus_timeout' }), 1);
});

test('a store slower than the query deadline: the answer waits for the upload and is stored, not a 504', async (t) => {
  const bucket = await s3.bucket();
  // MinIO behind a link of 2.5 MB/s: the 15 MB upload takes about 6 s, four deadlines.
  const slowStore = await startThrottlingProxy({ port: s3.minio.port }, 2.5e6);
  t.after(() => slowStore.close());
  const client = createS3Client({ endpoint: slowStore.url, region: 'us-east-1', ...credentials });
  t.after(() => client.destroy());
  const timeoutMs = 1_500;
  const app = await startApp(t, { prometheusUrl: prometheus.url, s3Client: client, bucket, queries: [query], timeoutMs });
  const ping = createPingEvent({ namespace: 'promsnap', name: 'snapshot-schedule', time: instant });
  const started = Date.now();
  const res = await post(app.url, HTTP.binary(ping));
  const tookMs = Date.now() - started;
  assert.equal(res.status, 200, res.text);
  assert.ok(tookMs > 3 * timeoutMs, `the snapshot took ${tookMs} ms, well past the ${timeoutMs} ms deadline`);
  const received = receiveEvent({ headers: res.headers, body: res.text });
  assert.ok(received.ok);
  const checked = validateSnapshotStoredEvent(received.value.event);
  assert.ok(checked.ok);
  assert.equal(checked.value.data!.series, SERIES);
  assert.deepEqual(await s3.keys(bucket), [checked.value.data!.key]);
  assert.deepEqual(await s3.pendingUploads(bucket), []);
  assert.equal(await app.metric('snapshot_failures_total', { reason: 'prometheus_timeout' }), 0);
  t.diagnostic(`${checked.value.data!.bytes} bytes stored through 2.5 MB/s in ${tookMs} ms with a ${timeoutMs} ms query deadline`);
});

test('a Prometheus trickling its answer slower than the deadline: still 504, nothing written', async (t) => {
  const bucket = await s3.bucket();
  // The answer starts at once, then comes at 1 MB/s: about 15 s for its 15 MB.
  const slowPrometheus = await startThrottlingProxy({ port: prometheus.port }, 1e6);
  t.after(() => slowPrometheus.close());
  const timeoutMs = 1_500;
  const app = await startApp(t, { prometheusUrl: slowPrometheus.url, s3Client: s3.client, bucket, queries: [query], timeoutMs });
  const started = Date.now();
  const res = await post(app.url, HTTP.binary(createPingEvent({ namespace: 'promsnap', name: 'snapshot-schedule', time: instant })));
  const tookMs = Date.now() - started;
  assert.equal(res.status, 504, res.text);
  assert.equal((res.json as { reason: string }).reason, 'prometheus_timeout');
  assert.ok(tookMs < 4 * timeoutMs, `answered after ${tookMs} ms, at the deadline rather than the end of the answer`);
  assert.deepEqual(await s3.keys(bucket), []);
  assert.deepEqual(await s3.pendingUploads(bucket), []);
  assert.equal(await app.metric('snapshot_failures_total', { reason: 'prometheus_timeout' }), 1);
});
