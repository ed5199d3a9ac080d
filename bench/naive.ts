// The naive snapshot, the baseline promsnap is measured against (it exists only here, never in the
// product): fetch Prometheus's whole answer with axios, re-serialise it with JSON.stringify(data, null,
// 2), and store it with one PutObject, as the reference implementation does. It runs as its own
// process so its peak RSS is measured exactly as the snapshot function's is.
//
// Protocol (one JSON object per line): stdin {"query","time","key"} -> stdout {"ok":true,"bytes"} or
// {"ok":false,"error"}. The process says {"ready":true} once loaded and stays up until stdin closes,
// so the bench can read its /proc entry after the work.
import { createInterface } from 'node:readline';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import axios from 'axios';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`naive: ${name} is required`);
  return value;
};

const prometheusUrl = env('PROMETHEUS_URL');
const bucket = env('S3_BUCKET');
const s3 = new S3Client({
  endpoint: env('S3_ENDPOINT'),
  region: 'us-east-1',
  credentials: { accessKeyId: env('AWS_ACCESS_KEY_ID'), secretAccessKey: env('AWS_SECRET_ACCESS_KEY') },
  forcePathStyle: true,
  // The same S3 settings as the snapshot function's client, so only the approach differs.
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
});

interface Job {
  query: string;
  time: string;
  key: string;
}

async function snapshot(job: Job): Promise<number> {
  const response = await axios.get(`${prometheusUrl}/api/v1/query`, { params: { query: job.query, time: job.time } });
  const body = JSON.stringify(response.data, null, 2);
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: job.key, Body: body, ContentType: 'application/json' }));
  return Buffer.byteLength(body);
}

const say = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`);

say({ ready: true });
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === '') continue;
  try {
    say({ ok: true, bytes: await snapshot(JSON.parse(line) as Job) });
  } catch (err) {
    say({ ok: false, error: err instanceof Error ? err.message : String(err) });
  }
}
s3.destroy();
