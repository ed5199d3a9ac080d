import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { AbortMultipartUploadCommand, GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { waitFor } from '../../../platform/tools/wait.js';
import { RetryableError } from '../src/errors.js';
import { createS3Client, createStore } from '../src/store.js';
import { startTestMinio, credentials, type TestMinio } from './helper.js';

let s3: TestMinio & { stop(): Promise<void> };
before(async () => {
  s3 = await startTestMinio();
});
after(() => s3?.stop());

const MiB = 1024 * 1024;

/** n bytes of a repeating pattern, produced in 64 KiB chunks, optionally failing after `failAfter` bytes. */
function source(n: number, failAfter?: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (failAfter !== undefined && sent >= failAfter) {
        this.destroy(new RetryableError('prometheus_error', 502, 'the answer broke off'));
        return;
      }
      if (sent >= n) {
        this.push(null);
        return;
      }
      const size = Math.min(64 * 1024, n - sent);
      this.push(Buffer.alloc(size, String.fromCharCode(97 + ((sent / (64 * 1024)) % 26))));
      sent += size;
    },
  });
}

async function read(bucket: string, key: string): Promise<Buffer> {
  const res = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await res.Body!.transformToByteArray());
}

test('a small body is stored once; a second write of the key leaves the first untouched', async () => {
  const bucket = await s3.bucket();
  const store = createStore({ client: s3.client, bucket });
  const first = await store.writeOnce('2026/11/25/100000Z-a.json', Readable.from([Buffer.from('{"first":true}')]), { contentType: 'application/json' });
  assert.equal(first.created, true);
  assert.equal(first.object.bytes, 14);
  const second = await store.writeOnce('2026/11/25/100000Z-a.json', Readable.from([Buffer.from('{"second":true}')]), { contentType: 'application/json' });
  assert.equal(second.created, false);
  assert.equal((await read(bucket, '2026/11/25/100000Z-a.json')).toString(), '{"first":true}');
  assert.deepEqual(await s3.keys(bucket), ['2026/11/25/100000Z-a.json']);
});

test('a large body goes up in parts and the condition holds on completion too', async () => {
  const bucket = await s3.bucket();
  const store = createStore({ client: s3.client, bucket, partSize: 5 * MiB, queueSize: 2 });
  const key = '2026/11/25/100000Z-big.json';
  // Two writers race with multipart bodies: MinIO's If-None-Match on CompleteMultipartUpload lets one win.
  const results = await Promise.all([
    store.writeOnce(key, source(12 * MiB), { contentType: 'application/json', metadata: { writer: 'one' } }),
    store.writeOnce(key, source(11 * MiB), { contentType: 'application/json', metadata: { writer: 'two' } }),
  ]);
  assert.deepEqual(results.map((r) => r.created).sort(), [false, true]);
  const winner = results.find((r) => r.created)!;
  const stored = await read(bucket, key);
  assert.equal(stored.length, winner.object.metadata['writer'] === 'one' ? 12 * MiB : 11 * MiB);
  assert.deepEqual(await s3.keys(bucket), [key]);
  assert.deepEqual(await s3.pendingUploads(bucket), [], 'the loser aborted its multipart upload');
});

test('a body that fails half-way leaves no object and no pending multipart upload', async () => {
  const bucket = await s3.bucket();
  const store = createStore({ client: s3.client, bucket, partSize: 5 * MiB, queueSize: 2 });
  const key = '2026/11/25/100000Z-broken.json';
  // The body holds back after 12 MiB until the test has seen the multipart upload under way, then fails.
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const held = source(20 * MiB, 12 * MiB);
  const body = new Readable({ read() {} });
  let forwarded = 0;
  held.on('data', (chunk: Buffer) => {
    body.push(chunk);
    forwarded += chunk.length;
    if (forwarded >= 12 * MiB) held.pause();
  });
  held.on('error', (err) => void gate.then(() => body.destroy(err)));
  const writing = store.writeOnce(key, body, { contentType: 'application/json' });
  await waitFor(async () => (await s3.pendingUploads(bucket)).length === 1, { what: 'the multipart upload to start', timeoutMs: 10_000 });
  release();
  held.resume();
  await assert.rejects(writing, (err: unknown) => {
    assert.ok(err instanceof RetryableError);
    assert.equal(err.reason, 'prometheus_error');
    return true;
  });
  assert.deepEqual(await s3.keys(bucket), []);
  assert.deepEqual(await s3.pendingUploads(bucket), []);
  assert.equal((await s3.minio.mc('ls', '--incomplete', '--recursive', `local/${bucket}`)).trim(), '');
  // A body failing before the first part is full never reaches the store at all.
  await assert.rejects(store.writeOnce(key, source(20 * MiB, 1 * MiB), { contentType: 'application/json' }), RetryableError);
  assert.deepEqual(await s3.keys(bucket), []);
  assert.deepEqual(await s3.pendingUploads(bucket), []);
});

/** The bytes source(n) produces. */
function expected(n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let at = 0; at < n; at += 64 * 1024) out.fill(String.fromCharCode(97 + ((at / (64 * 1024)) % 26)), at, Math.min(n, at + 64 * 1024));
  return out;
}

test('bodies of any length arrive byte for byte: empty, exactly two parts, and parts with a short last one', async () => {
  const bucket = await s3.bucket();
  // Three parts in flight at most, so parts finish out of order and their buffers are reused.
  const store = createStore({ client: s3.client, bucket, partSize: 5 * MiB, queueSize: 3 });
  for (const [name, size] of [
    ['empty', 0],
    ['two-parts', 10 * MiB],
    ['five-parts', 23 * MiB + 123],
  ] as const) {
    const key = `2026/11/25/100000Z-${name}.json`;
    const result = await store.writeOnce(key, source(size), { contentType: 'application/json', metadata: { name } });
    assert.equal(result.created, true, name);
    assert.equal(result.object.bytes, size, name);
    assert.equal(result.object.contentType, 'application/json', name);
    assert.deepEqual(result.object.metadata, { name }, name);
    assert.ok((await read(bucket, key)).equals(expected(size)), `${name}: the stored bytes are the body's, in order`);
    const stored = await s3.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    // S3's multipart ETag ends in -<parts>: no empty last part for a body that fills its parts exactly.
    assert.match(stored.ETag ?? '', { empty: /^"[0-9a-f]+"$/, 'two-parts': /-2"$/, 'five-parts': /-5"$/ }[name], name);
  }
  assert.deepEqual(await s3.pendingUploads(bucket), []);
});

test('a part the store refuses fails the write: no object, no pending upload, the body no longer read', async () => {
  const bucket = await s3.bucket();
  const store = createStore({ client: s3.client, bucket, partSize: 5 * MiB, queueSize: 2 });
  const key = '2026/11/25/100000Z-vanished.json';
  // A body read only as fast as the writer takes it, held back after 12 MiB; meanwhile the multipart
  // upload is aborted behind the writer's back, so its next part meets NoSuchUpload.
  let holdAt = 12 * MiB;
  let forwarded = 0;
  const held = source(40 * MiB);
  const body = new Readable({
    read() {
      if (forwarded < holdAt) held.resume();
    },
  });
  held.on('data', (chunk: Buffer) => {
    forwarded += chunk.length;
    if (!body.push(chunk) || forwarded >= holdAt) held.pause();
  });
  body.on('close', () => held.destroy());
  const writing = store.writeOnce(key, body, { contentType: 'application/json' });
  await waitFor(async () => (await s3.pendingUploads(bucket)).length === 1, { what: 'the multipart upload to start', timeoutMs: 10_000 });
  const [pending] = await s3.pendingUploads(bucket);
  await s3.client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: pending!.split(' ')[1] }));
  holdAt = Number.POSITIVE_INFINITY;
  held.resume();
  await assert.rejects(writing, (err: unknown) => {
    assert.ok(err instanceof RetryableError, String(err));
    assert.equal(err.reason, 'storage_unavailable');
    assert.match(err.message, /NoSuchUpload/);
    return true;
  });
  assert.ok(body.destroyed, 'the body was stopped');
  assert.ok(forwarded < 40 * MiB, `${forwarded} bytes read of 40 MiB`);
  assert.deepEqual(await s3.keys(bucket), []);
  assert.deepEqual(await s3.pendingUploads(bucket), []);
});

test('a completion the store refuses aborts the upload: no object, no parts left', async () => {
  const bucket = await s3.bucket();
  // Parts under S3's 5 MiB minimum are taken one by one but refused at completion (EntityTooSmall).
  const store = createStore({ client: s3.client, bucket, partSize: 1 * MiB, queueSize: 2 });
  const key = '2026/11/25/100000Z-small-parts.json';
  await assert.rejects(store.writeOnce(key, source(3 * MiB + 5), { contentType: 'application/json' }), (err: unknown) => {
    assert.ok(err instanceof RetryableError, String(err));
    assert.equal(err.reason, 'storage_unavailable');
    assert.match(err.message, /EntityTooSmall/);
    return true;
  });
  assert.deepEqual(await s3.keys(bucket), []);
  assert.deepEqual(await s3.pendingUploads(bucket), []);
  assert.equal((await s3.minio.mc('ls', '--incomplete', '--recursive', `local/${bucket}`)).trim(), '');
});

test('listing pages through snapshots in time order and skips other objects', async () => {
  const bucket = await s3.bucket();
  const store = createStore({ client: s3.client, bucket });
  const keys = ['2025/12/31/235959Z-old.json', '2026/01/01/000000Z-a.json', '2026/01/01/000000Z-b.json.gz', '2026/02/03/040506Z-c.json'];
  for (const key of [...keys, 'dead-letters/2026/01/01/000000Z-x.json', 'notes.txt']) {
    await store.writeOnce(key, Readable.from([Buffer.from('{}')]), { contentType: 'application/json' });
  }
  const first = await store.listSnapshots({ limit: 3 });
  assert.deepEqual(
    first.items.map((i) => i.key),
    keys.slice(0, 3),
  );
  assert.equal(first.next, keys[2]);
  assert.deepEqual(first.items[0], { key: keys[0], size: 2, time: '2025-12-31T23:59:59Z', lastModified: first.items[0]!.lastModified });
  const second = await store.listSnapshots({ limit: 3, after: first.next });
  assert.deepEqual(
    second.items.map((i) => i.key),
    keys.slice(3),
  );
  assert.equal(second.next, null);
  assert.equal((await store.newestSnapshot())?.key, '2026/02/03/040506Z-c.json');
});

test('the newest snapshot is found across years, and an empty bucket has none', async () => {
  const bucket = await s3.bucket();
  const store = createStore({ client: s3.client, bucket });
  assert.equal(await store.newestSnapshot(), undefined);
  for (const key of ['2026/12/31/235959Z-a.json', '2027/01/01/000001Z-b.json', '2027/01/01/000000Z-c.json', 'dead-letters/2099/01/01/000000Z-d.json']) {
    await store.writeOnce(key, Readable.from([Buffer.from('{}')]), { contentType: 'application/json' });
  }
  assert.equal((await store.newestSnapshot())?.key, '2027/01/01/000001Z-b.json');
});

test('an unreachable store or a wrong bucket is a retryable failure', async () => {
  const bucket = await s3.bucket();
  const down = createStore({ client: createS3Client({ endpoint: 'http://127.0.0.1:9', region: 'us-east-1', ...credentials }), bucket });
  await assert.rejects(down.head('x'), (err: unknown) => err instanceof RetryableError && err.reason === 'storage_unavailable' && err.status === 503);
  await assert.rejects(
    down.writeOnce('x', Readable.from([Buffer.from('{}')]), { contentType: 'application/json' }),
    (err: unknown) => err instanceof RetryableError && err.reason === 'storage_unavailable',
  );
  const missing = createStore({ client: s3.client, bucket: 'no-such-bucket' });
  await assert.rejects(
    missing.writeOnce('x', Readable.from([Buffer.from('{}')]), { contentType: 'application/json' }),
    (err: unknown) => err instanceof RetryableError && /NoSuchBucket/.test(err.message),
  );
});
