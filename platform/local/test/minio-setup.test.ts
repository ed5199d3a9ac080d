// The minio-setup Job, run step by step against a real MinIO with the pinned mc by the local runner's
// own Job runner (platform/local/jobs.ts, what `npm start` runs): each container's own command, args
// and env from the rendered manifests (Secrets resolved, $(VAR) expanded, volumes as folders, the
// cluster URL pointed at this MinIO). Then the function's own user, with the credentials the manifests
// give the snapshot Knative Service, does what the snapshot store does, and nothing more.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  ListBucketsCommand,
  ListMultipartUploadsCommand,
  PutBucketPolicyCommand,
  PutObjectCommand,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { createS3Client, createStore } from '../../../functions/snapshot/src/store.js';
import { deadLetterKey, snapshotKey } from '../../../functions/snapshot/src/key.js';
import { RANGE_PREFIX, rangeKey } from '../../../archive/src/keys.js';
import { LocalNetwork } from '../addresses.js';
import { runJob } from '../jobs.js';
import { runCommand } from '../../tools/command.js';
import { findTool } from '../../tools/find.js';
import { startMinio } from '../../tools/minio.js';
import { localPod, podTemplateOf, type KubeObject as WorkloadObject } from '../workloads.js';
import { allContainers, clusterAddress, findObject, knativeService, podTemplates, renderPlatform, resolveEnv, servicePorts } from '../../manifests/index.js';

async function s3Error(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'allowed';
  } catch (err) {
    if (err instanceof S3ServiceException) return err.name;
    throw err;
  }
}

test('the minio-setup Job prepares a real MinIO: bucket, policy and a user limited to what the snapshot function does', async (t) => {
  const { objects } = await renderPlatform();
  const job = findObject(objects, 'Job', 'minio-setup', 'promsnap');
  const template = podTemplates([job])[0]!;
  const deployment = podTemplates([findObject(objects, 'Deployment', 'minio', 'promsnap')])[0]!;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'promsnap-minio-setup-'));
  t.after(() => rm(dir, { recursive: true, force: true }));

  // MinIO as its Deployment configures it: the root credentials and the rest of its env.
  const serverEnv = resolveEnv(objects, 'promsnap', deployment.spec.containers[0]!);
  assert.deepEqual(serverEnv.problems, []);
  const root = { accessKeyId: serverEnv.env['MINIO_ROOT_USER']!, secretAccessKey: serverEnv.env['MINIO_ROOT_PASSWORD']! };
  assert.ok(root.accessKeyId && root.secretAccessKey, 'the MinIO Deployment gets MINIO_ROOT_USER and MINIO_ROOT_PASSWORD');
  const minio = await startMinio({ dataDir: path.join(dir, 'minio'), credentials: root, env: serverEnv.env });
  t.after(() => minio.stop());
  // The runner's view of the cluster: the minio Deployment's pod, its api port served by this MinIO.
  const workloads = objects as unknown as WorkloadObject[];
  const minioPods = podTemplateOf(findObject(objects, 'Deployment', 'minio', 'promsnap'));
  const apiPort = minioPods.containers.flatMap((c) => c.ports).find((p) => p.name === 'api');
  assert.ok(apiPort, 'the MinIO container declares a port named api');
  const minioPod = localPod(minioPods, 0, '127.0.0.1', new Map([[apiPort.containerPort, minio.port]]), { running: () => true, ready: () => true });
  const network = new LocalNetwork([minioPod], workloads);

  await t.test('the Job addresses the minio Service on its API port', () => {
    const urls = allContainers(template.spec)
      .flatMap((c) => [...(c.args ?? []), ...(c.command ?? [])])
      .flatMap((a) => a.match(/https?:\/\/[^\s"']+/g) ?? []);
    assert.ok(urls.length > 0, 'the Job names MinIO by URL');
    for (const url of urls) {
      const address = clusterAddress(url);
      assert.ok(address, `${url} is not a cluster Service address`);
      assert.deepEqual({ service: address.service, namespace: address.namespace }, { service: 'minio', namespace: 'promsnap' });
      assert.ok(
        servicePorts(objects, 'minio', 'promsnap').some((p) => p.port === address.port && p.name === 'api'),
        `${url}: port is not the api port`,
      );
    }
  });

  await t.test('every step succeeds, and all of them again on a second run (the Job may run again)', async () => {
    for (const attempt of ['first', 'second']) {
      // runJob stops at the first failing step and rejects with its output.
      const steps = await runJob(job, { objects: workloads, network, workDir: path.join(dir, `job-${attempt}`), tools: ['mc'] });
      assert.deepEqual(
        steps.map((s) => s.container),
        allContainers(template.spec).map((c) => c.name),
        `${attempt} run: every container ran, in order`,
      );
    }
    assert.match(await minio.mc('ls', 'local'), /snapshots\/$/m, 'the bucket exists');
  });

  const fn = knativeService(objects, 'snapshot', 'promsnap');
  assert.deepEqual(fn.env.problems, []);
  const user = { accessKeyId: fn.env.env['AWS_ACCESS_KEY_ID']!, secretAccessKey: fn.env.env['AWS_SECRET_ACCESS_KEY']! };
  const bucket = fn.env.env['S3_BUCKET']!;
  assert.notEqual(user.accessKeyId, root.accessKeyId, 'the function does not use the root user');
  const client = createS3Client({ endpoint: minio.endpoint, region: fn.env.env['S3_REGION']!, ...user });
  const rootClient = createS3Client({ endpoint: minio.endpoint, region: 'us-east-1', ...root });
  t.after(() => {
    client.destroy();
    rootClient.destroy();
  });
  const store = createStore({ client, bucket });
  const time = '2026-11-25T12:05:00.000Z';

  await t.test("with the Knative Service's credentials the function's store writes, reads and lists snapshots, range exports and dead letters", async () => {
    const key = snapshotKey(time, 'ping-1', false);
    const written = await store.writeOnce(key, Readable.from([Buffer.from('{"status":"success"}')]), { contentType: 'application/json' });
    assert.equal(written.created, true);
    const again = await store.writeOnce(key, Readable.from([Buffer.from('{}')]), { contentType: 'application/json' });
    assert.equal(again.created, false, 'an existing snapshot is kept');
    // Multipart (above the 5 MiB part size): create, upload parts, complete.
    const big = snapshotKey(time, 'ping-big', false);
    const chunk = Buffer.alloc(1024 * 1024, 'x');
    assert.equal((await store.writeOnce(big, Readable.from(Array.from({ length: 12 }, () => chunk)), { contentType: 'application/json' })).created, true);
    assert.equal((await store.head(big))?.bytes, 12 * chunk.length);
    assert.equal((await store.newestSnapshot())?.key, [key, big].sort().at(-1));
    assert.equal((await store.listSnapshots({ limit: 10 })).items.length, 2);
    assert.equal(await store.tail(key, 8, false), 'uccess"}');
    const range = rangeKey({ namespace: 'promsnap', name: 'snapshot-schedule', rangeMs: 300_000, tick: Date.parse(time), gzip: false });
    assert.equal((await store.writeOnce(range, Readable.from([Buffer.from('{"series":0,"samples":0}')]), { contentType: 'application/json' })).created, true);
    assert.equal(await store.lastKeyBetween(RANGE_PREFIX, RANGE_PREFIX, `${RANGE_PREFIX}~`), range, 'range exports are listed to find the last tick stored');
    assert.equal((await store.newestRangeExport())?.key, range);
    const letter = deadLetterKey(time, 'ping-2');
    assert.equal((await store.writeOnce(letter, Readable.from([Buffer.from('{}')]), { contentType: 'application/json' })).created, true);
  });

  await t.test('a multipart upload that breaks off is aborted by the user itself, leaving nothing', async () => {
    const key = snapshotKey(time, 'ping-broken', false);
    const chunk = Buffer.alloc(1024 * 1024, 'y');
    function* breaking() {
      for (let i = 0; i < 7; i++) yield chunk;
      throw new Error('Prometheus went away');
    }
    await assert.rejects(store.writeOnce(key, Readable.from(breaking()), { contentType: 'application/json' }), /Prometheus went away/);
    assert.equal(await store.head(key), undefined);
    const uploads = await rootClient.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    assert.deepEqual(uploads.Uploads ?? [], [], 'no multipart upload left behind');
  });

  await t.test('and nothing else: no delete, no other prefix, no other bucket, no bucket policy, no sight of other buckets', async () => {
    const put = (Key: string) => client.send(new PutObjectCommand({ Bucket: bucket, Key, Body: '{}' }));
    const denied = {
      'delete a snapshot': await s3Error(client.send(new DeleteObjectCommand({ Bucket: bucket, Key: snapshotKey(time, 'ping-1', false) }))),
      'write outside the date, range and dead-letter prefixes': await s3Error(put('other/x.json')),
      'write at the bucket root': await s3Error(put('x.json')),
      'create a bucket': await s3Error(client.send(new CreateBucketCommand({ Bucket: 'elsewhere' }))),
      'change the bucket policy': await s3Error(
        client.send(new PutBucketPolicyCommand({ Bucket: bucket, Policy: JSON.stringify({ Version: '2012-10-17', Statement: [] }) })),
      ),
    };
    assert.deepEqual(
      Object.entries(denied).filter(([, outcome]) => outcome !== 'AccessDenied'),
      [],
      'each of these must be AccessDenied',
    );
    // MinIO answers ListBuckets with the buckets a user may use at all: another bucket stays unseen.
    await rootClient.send(new CreateBucketCommand({ Bucket: 'private' }));
    const seen = await client.send(new ListBucketsCommand({}));
    assert.deepEqual(
      (seen.Buckets ?? []).map((b) => b.Name),
      [bucket],
    );
    // The same requests as root succeed, so the denials above are the policy's, not a broken request.
    assert.equal(await s3Error(rootClient.send(new PutObjectCommand({ Bucket: bucket, Key: 'other/x.json', Body: '{}' }))), 'allowed');
    assert.equal(await s3Error(rootClient.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'other/x.json' }))), 'allowed');
  });

  await t.test('the user cannot administer MinIO', async () => {
    const mcUser = new URL(minio.endpoint);
    mcUser.username = user.accessKeyId;
    mcUser.password = user.secretAccessKey;
    const listed = await runCommand(findTool('mc'), ['--no-color', '--config-dir', path.join(dir, 'mc-user'), 'admin', 'user', 'list', 'fn'], {
      env: { PATH: process.env['PATH'] ?? '', HOME: dir, MC_HOST_fn: mcUser.toString().replace(/\/$/, '') },
      allowFailure: true,
    });
    const result = listed.code === 0 ? 'allowed' : listed.stderr;
    assert.match(result, /Access Denied|not authorized|AccessDenied/i);
  });
});
