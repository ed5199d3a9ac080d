// The minio-setup Job, replayed step by step against a real MinIO with the pinned mc: each container's
// own command, args and env from the rendered manifests (Secrets resolved, $(VAR) expanded, volumes as
// folders). Then the function's own user, with the credentials the manifests give the snapshot Knative
// Service, does what the snapshot store does, and nothing more.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  ListBucketsCommand,
  ListMultipartUploadsCommand,
  PutBucketPolicyCommand,
  PutObjectCommand,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { createS3Client, createStore } from '../../functions/snapshot/src/store.js';
import { deadLetterKey, snapshotKey } from '../../functions/snapshot/src/key.js';
import { startMinio } from '../local/minio.js';
import { findTool } from '../local/processes.js';
import {
  allContainers,
  clusterAddress,
  expandReferences,
  findObject,
  knativeService,
  podTemplates,
  renderPlatform,
  resolveEnv,
  servicePorts,
  type Container,
  type KubeObject,
  type PodTemplate,
} from '../manifests.js';

const run = promisify(execFile);

interface Step {
  container: string;
  code: number;
  output: string;
}

/** Runs the Job's pod as the kubelet would, containers in order; stops at the first failure. */
async function replayJob(objects: KubeObject[], template: PodTemplate, workDir: string, endpoint: string): Promise<Step[]> {
  await rm(workDir, { recursive: true, force: true });
  const mounts = new Map<string, string>();
  for (const volume of template.spec.volumes ?? []) {
    const dir = path.join(workDir, volume.name);
    await mkdir(dir, { recursive: true });
    mounts.set(volume.name, dir);
    if (volume.configMap) {
      const data = findObject(objects, 'ConfigMap', volume.configMap.name, template.namespace)['data'] as Record<string, string>;
      for (const [key, value] of Object.entries(data)) await writeFile(path.join(dir, key), value);
    } else if (!('emptyDir' in volume)) {
      throw new Error(`volume ${volume.name}: only configMap and emptyDir volumes are replayed`);
    }
  }
  const steps: Step[] = [];
  for (const container of allContainers(template.spec)) {
    const local = localise(container, mounts, endpoint);
    const { env, problems } = resolveEnv(objects, template.namespace, container);
    assert.deepEqual(problems, [], `container ${container.name}`);
    const localEnv = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, local(v)]));
    const argv = [...(container.command ?? []), ...(container.args ?? [])].map((a) => local(expandReferences(a, env)));
    assert.equal(argv[0], 'mc', `container ${container.name} runs ${argv[0]}; this replay knows only mc`);
    const result = await run(findTool('mc'), ['--no-color', ...argv.slice(1)], {
      env: { PATH: process.env['PATH'] ?? '', HOME: workDir, ...localEnv },
      timeout: 60_000,
    }).then(
      ({ stdout, stderr }) => ({ code: 0, output: stdout + stderr }),
      (err: { code?: number; stdout?: string; stderr?: string; message: string }) => ({
        code: typeof err.code === 'number' ? err.code : 1,
        output: `${err.stdout ?? ''}${err.stderr ?? err.message}`,
      }),
    );
    steps.push({ container: container.name ?? '?', ...result });
    if (result.code !== 0) break;
  }
  return steps;
}

/** Maps mount paths to the local folders and the in-cluster MinIO URL to the local server. */
function localise(container: Container, mounts: Map<string, string>, endpoint: string): (value: string) => string {
  const byLength = [...(container.volumeMounts ?? [])].sort((a, b) => b.mountPath.length - a.mountPath.length);
  return (value) => {
    let out = value.replace(/https?:\/\/[^\s"']+/g, (url) => (clusterAddress(url) ? endpoint : url));
    for (const mount of byLength) {
      out = out.replace(new RegExp(`(^|[=\\s])${mount.mountPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?=/|$)`, 'g'), `$1${mounts.get(mount.name)!}`);
    }
    return out;
  };
}

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

  await t.test('the Job addresses the minio Service on its API port', () => {
    const urls = allContainers(template.spec)
      .flatMap((c) => [...(c.args ?? []), ...(c.command ?? [])])
      .flatMap((a) => a.match(/https?:\/\/[^\s"']+/g) ?? []);
    assert.ok(urls.length > 0, 'the Job names MinIO by URL');
    for (const url of urls) {
      const address = clusterAddress(url);
      assert.ok(address, `${url} is not a cluster Service address`);
      assert.deepEqual({ service: address.service, namespace: address.namespace }, { service: 'minio', namespace: 'promsnap' });
      assert.ok(servicePorts(objects, 'minio', 'promsnap').some((p) => p.port === address.port && p.name === 'api'), `${url}: port is not the api port`);
    }
  });

  await t.test('every step succeeds, and all of them again on a second run (the Job may run again)', async () => {
    for (const attempt of ['first', 'second']) {
      const steps = await replayJob(objects, template, path.join(dir, `job-${attempt}`), minio.endpoint);
      const failed = steps.filter((s) => s.code !== 0);
      assert.deepEqual(failed, [], `${attempt} run`);
      assert.equal(steps.length, allContainers(template.spec).length, `${attempt} run: every container ran`);
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

  await t.test('with the Knative Service\'s credentials the function\'s store writes, reads and lists snapshots and dead letters', async () => {
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
    const letter = deadLetterKey(time, 'ping-2');
    assert.equal((await store.writeOnce(letter, Readable.from([Buffer.from('{}')]), { contentType: 'application/json' })).created, true);
  });

  await t.test('a multipart upload that breaks off is aborted by the user itself, leaving nothing', async () => {
    const key = snapshotKey(time, 'ping-broken', false);
    const chunk = Buffer.alloc(1024 * 1024, 'y');
    async function* breaking() {
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
      'write outside the date and dead-letter prefixes': await s3Error(put('other/x.json')),
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
    assert.deepEqual((seen.Buckets ?? []).map((b) => b.Name), [bucket]);
    // The same requests as root succeed, so the denials above are the policy's, not a broken request.
    assert.equal(await s3Error(rootClient.send(new PutObjectCommand({ Bucket: bucket, Key: 'other/x.json', Body: '{}' }))), 'allowed');
    assert.equal(await s3Error(rootClient.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'other/x.json' }))), 'allowed');
  });

  await t.test('the user cannot administer MinIO', async () => {
    const mcUser = new URL(minio.endpoint);
    mcUser.username = user.accessKeyId;
    mcUser.password = user.secretAccessKey;
    const result = await run(findTool('mc'), ['--no-color', '--config-dir', path.join(dir, 'mc-user'), 'admin', 'user', 'list', 'fn'], {
      env: { PATH: process.env['PATH'] ?? '', HOME: dir, MC_HOST_fn: mcUser.toString().replace(/\/$/, '') },
    }).then(
      () => 'allowed',
      (err: { stderr?: string }) => err.stderr ?? '',
    );
    assert.match(result, /Access Denied|not authorized|AccessDenied/i);
  });
});
