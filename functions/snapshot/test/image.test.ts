// The snapshot image, proved without a Docker engine: its Dockerfile replayed by
// platform/testing/image.ts, its own CMD started as its non-root USER, then a ping through it stored in
// a real MinIO from a real Prometheus.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { HTTP } from 'cloudevents';
import { createPingEvent } from '../../../events/src/index.js';
import { packagesLoadedBy, runImage } from '../../../platform/testing/image.js';
import { credentials, post, startExporter, startTestMinio, startTestPrometheus, type Exporter, type TestPrometheus } from './helper.js';

const repoRoot = path.resolve(import.meta.dirname, '../../..');

let s3: Awaited<ReturnType<typeof startTestMinio>>;
let exporter: Exporter;
let prometheus: TestPrometheus;

before(async () => {
  [s3, exporter] = await Promise.all([startTestMinio(), startExporter({ series: 5 })]);
  prometheus = await startTestPrometheus({ exporter: { target: exporter.target, intervalSeconds: 1 } });
});
after(async () => {
  await prometheus?.dispose();
  await exporter?.close();
  await s3?.stop();
});

test('the image runs as non-root on production dependencies and stores a snapshot', async (t) => {
  const bucket = await s3.bucket();
  const image = await runImage({
    dockerfile: path.join(repoRoot, 'functions/snapshot/Dockerfile'),
    context: repoRoot,
    readyPath: '/readyz',
    env: {
      PROMETHEUS_URL: prometheus.url,
      S3_ENDPOINT: s3.minio.endpoint,
      S3_BUCKET: bucket,
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      SNAPSHOT_QUERIES: 'promsnap_test_value',
    },
  });
  t.after(() => image.stop());

  await prometheus.scrapedAfter(new Date(0), ['exporter']);
  const res = await post(image.url, HTTP.binary(createPingEvent({ namespace: 'promsnap', name: 'snapshot-schedule' })));
  assert.equal(res.status, 200, res.text);
  const data = JSON.parse(res.text) as { key: string; series: number };
  assert.equal(data.series, 5);
  assert.deepEqual(await s3.keys(bucket), [data.key]);
  // The image's NODE_OPTIONS reaches V8: a young generation of 2 x 2 MB semi-spaces (V8 grows it to
  // 2 x 16 by default), so a snapshot's spent Buffers are freed by frequent scavenges.
  const metrics = await (await fetch(`${image.url}/metrics`)).text();
  const newSpace = Number(/^nodejs_heap_space_size_total_bytes\{[^}]*space="new"[^}]*\} (\d+)/m.exec(metrics)?.[1]);
  assert.ok(newSpace > 0 && newSpace <= 4 * 1024 * 1024, `new space ${newSpace} bytes`);

  // What the Dockerfile promises.
  const nodeVersion = /^NODE_VERSION=(\S+)$/m.exec(await readFile(path.join(repoRoot, 'platform/tools/versions.env'), 'utf8'))?.[1];
  assert.deepEqual(
    image.stages.map((s) => s.image),
    [`node:${nodeVersion}-bookworm-slim`, `node:${nodeVersion}-bookworm-slim`],
    'both stages on the pinned Node',
  );
  assert.deepEqual(image.final.cmd, ['node', 'dist/functions/snapshot/src/server.js']);
  assert.equal(image.final.env['NODE_ENV'], 'production');
  assert.equal(image.final.env['NODE_OPTIONS'], '--max-semi-space-size=2');
  assert.deepEqual(image.final.expose, ['8080']);
  assert.ok(image.devPackagesChecked > 50, `${image.devPackagesChecked} dev-only packages checked absent`);

  // Its production dependencies are exactly what its compiled code loads, and all are installed.
  const declared = Object.keys(
    (JSON.parse(await readFile(path.join(repoRoot, 'functions/snapshot/package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies,
  ).sort();
  const loaded = await packagesLoadedBy(path.join(image.workdir, image.final.cmd[1]!));
  assert.deepEqual(loaded, declared, 'packages loaded by the code = dependencies in functions/snapshot/package.json');
  for (const name of declared) assert.ok(existsSync(path.join(image.workdir, 'node_modules', name)), `${name} is installed in the image`);
  const status = await readFile(`/proc/${image.process.pid}/status`, 'utf8');
  assert.equal(Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]), 1000);
});
