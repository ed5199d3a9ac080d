// Real servers for the snapshot tests: a MinIO per test file with a fresh bucket per test, and
// helpers to look at what the bucket holds through the S3 API and through mc.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { CreateBucketCommand, ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { startMinio, type RunningMinio } from '../../../platform/local/minio.js';
import { createS3Client } from '../src/store.js';

export const credentials = { accessKeyId: 'promsnap-test', secretAccessKey: 'promsnap-test-secret' };

export interface TestMinio {
  minio: RunningMinio;
  client: S3Client;
  dataDir: string;
  /** Creates a bucket with a unique name and returns it. */
  bucket(): Promise<string>;
  keys(bucket: string, prefix?: string): Promise<string[]>;
  /** Multipart uploads started and neither completed nor aborted. */
  pendingUploads(bucket: string): Promise<string[]>;
}

let bucketCount = 0;

/** One MinIO for a whole test file (started in `before`, stopped by the returned function). */
export async function startTestMinio(): Promise<TestMinio & { stop(): Promise<void> }> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'promsnap-snapshot-minio-'));
  const minio = await startMinio({ dataDir, credentials });
  const client = createS3Client({ endpoint: minio.endpoint, region: 'us-east-1', ...credentials });
  return {
    minio,
    client,
    dataDir,
    async bucket() {
      const name = `snapshots-${process.pid}-${++bucketCount}`;
      await client.send(new CreateBucketCommand({ Bucket: name }));
      return name;
    },
    async keys(bucket, prefix) {
      const out: string[] = [];
      let token: string | undefined;
      do {
        const res = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
        out.push(...(res.Contents ?? []).map((o) => o.Key!));
        token = res.IsTruncated ? res.NextContinuationToken : undefined;
      } while (token);
      return out;
    },
    async pendingUploads(bucket) {
      const res = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
      return (res.Uploads ?? []).map((u) => `${u.Key} ${u.UploadId}`);
    },
    async stop() {
      client.destroy();
      await minio.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** A test's context, for hooks that clean up what the test made. */
export type { TestContext };
