// server.ts as a real process: configuration errors stop it naming the variable, and SIGTERM in the
// middle of a snapshot lets the snapshot reach the bucket before the process exits 0.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HTTP } from 'cloudevents';
import { createPingEvent } from '../../../events/src/index.js';
import { freePort } from '../../../platform/tools/ports.js';
import { waitFor } from '../../../platform/tools/wait.js';
import { startProcess, type ManagedProcess } from '../../../platform/tools/process.js';
import { readDockerfile } from '../../../platform/testing/image.js';
import { startTcpProxy, type TcpProxy } from '../../../platform/testing/tcp-proxy.js';
import { credentials, post, startExporter, startTestMinio, startTestPrometheus, type Exporter, type TestPrometheus } from './helper.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const serverPath = 'functions/snapshot/src/server.ts';

let s3: Awaited<ReturnType<typeof startTestMinio>>;
let exporter: Exporter;
let prometheus: TestPrometheus;
let proxy: TcpProxy;

before(async () => {
  [s3, exporter] = await Promise.all([startTestMinio(), startExporter({ series: 50 })]);
  prometheus = await startTestPrometheus({ exporter: { target: exporter.target, intervalSeconds: 1 } });
  proxy = await startTcpProxy({ port: prometheus.port });
});
after(async () => {
  await proxy?.close();
  await prometheus?.dispose();
  await exporter?.close();
  await s3?.stop();
});

interface Server {
  process: ManagedProcess;
  url: string;
  logs(): Array<Record<string, unknown>>;
}

async function startServer(env: Record<string, string>): Promise<Server> {
  const port = await freePort();
  const lines: string[] = [];
  const process = await startProcess({
    name: 'snapshot',
    command: 'node',
    args: ['--import', 'tsx', serverPath],
    cwd: root,
    env: { PATH: globalThis.process.env['PATH'], HOME: globalThis.process.env['HOME'], PORT: String(port), ...env },
    readyUrl: `http://127.0.0.1:${port}/readyz`,
    onLine: (line) => lines.push(line),
  });
  return {
    process,
    url: `http://127.0.0.1:${port}`,
    logs: () => lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

test('a missing or invalid setting stops start-up with a message naming it', async () => {
  const lines: string[] = [];
  const child = await startProcess({
    name: 'snapshot',
    command: 'node',
    args: ['--import', 'tsx', serverPath],
    cwd: root,
    env: { PATH: process.env['PATH'], HOME: process.env['HOME'], PROMETHEUS_URL: 'prometheus:9090', SNAPSHOT_GZIP: 'sometimes' },
    onLine: (line) => lines.push(line),
  });
  assert.equal(await child.exited, 1);
  const output = lines.join('\n');
  assert.match(output, /^snapshot: invalid configuration:/m);
  for (const expected of [
    /PROMETHEUS_URL="prometheus:9090" must be an http:\/\/ or https:\/\/ URL/,
    /S3_ENDPOINT is required/,
    /AWS_ACCESS_KEY_ID is required/,
    /AWS_SECRET_ACCESS_KEY is required/,
    /SNAPSHOT_GZIP="sometimes" must be true or false/,
  ]) {
    assert.match(output, expected);
  }
});

test('SIGTERM during a snapshot: the snapshot is stored and answered, then the process exits 0', async (t) => {
  const bucket = await s3.bucket();
  const server = await startServer({
    PROMETHEUS_URL: proxy.url,
    S3_ENDPOINT: s3.minio.endpoint,
    S3_BUCKET: bucket,
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    SNAPSHOT_QUERIES: 'promsnap_test_value',
    SHUTDOWN_GRACE_MS: '20000',
    PROMETHEUS_TIMEOUT_MS: '10000',
  });
  t.after(() => server.process.stop('SIGKILL', 1_000));
  await prometheus.scrapedAfter(new Date(0), ['exporter']);
  // Prometheus answers 1.5 s late, so the snapshot is still in flight when SIGTERM arrives.
  proxy.faults = { delayResponseMs: 1_500 };
  t.after(() => (proxy.faults = {}));
  const connectionsBefore = proxy.connections;
  const ping = createPingEvent({ namespace: 'promsnap', name: 'snapshot-schedule' });
  const answer = post(server.url, HTTP.binary(ping));
  await waitFor(() => proxy.connections > connectionsBefore, { what: 'the query to reach Prometheus' });
  server.process.child.kill('SIGTERM');

  const res = await answer;
  assert.equal(res.status, 200, res.text);
  assert.equal(await server.process.exited, 0);
  const keys = await s3.keys(bucket);
  assert.equal(keys.length, 1);
  assert.match(keys[0]!, new RegExp(`-${ping.id}\\.json$`));
  const messages = server.logs().map((l) => l['msg']);
  const order = ['shutting down', 'snapshot stored', 'stopped'].map((m) => messages.indexOf(m));
  assert.ok(order.every((i) => i >= 0) && order[0]! < order[1]! && order[1]! < order[2]!, messages.join(' | '));
  assert.equal(server.logs().find((l) => l['msg'] === 'stopped')?.['outcome'], 'drained');
});

test(
  'memory does not grow with the answer: peak growth for a 100 MB answer is about that of a 25 MB one',
  { skip: process.platform !== 'linux' },
  async (t) => {
    const bucket = await s3.bucket();
    // 5,000 series with 20 kB labels: about 100 MB of answer for all of them, 25 MB for the first quarter
    // (few, large series keep Prometheus light).
    const big = await startExporter({ series: 5_000, padding: 20_000, name: 'promsnap_big_value' });
    t.after(() => big.close());
    const bigPrometheus = await startTestPrometheus({ big: { target: big.target, intervalSeconds: 10 } });
    t.after(() => bigPrometheus.dispose());
    // V8 as the image sets it (its NODE_OPTIONS: a small young generation), since when spent Buffers
    // are freed is V8's choice, not the code's.
    const image = (await readDockerfile(path.join(root, 'functions/snapshot/Dockerfile'))).final;
    assert.ok(image.env['NODE_OPTIONS'], 'the image sets NODE_OPTIONS');
    const server = await startServer({
      NODE_OPTIONS: image.env['NODE_OPTIONS'],
      PROMETHEUS_URL: bigPrometheus.url,
      S3_ENDPOINT: s3.minio.endpoint,
      S3_BUCKET: bucket,
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      // Each ping names the query it measures.
      SNAPSHOT_ALLOWED_QUERIES: '*',
    });
    t.after(() => server.process.stop('SIGTERM', 10_000));
    const peak = async () => Number(/VmHWM:\s+(\d+) kB/.exec(await readFile(`/proc/${server.process.pid}/status`, 'utf8'))![1]) * 1024;
    const snapshot = async (query: string) => {
      const started = Date.now();
      const res = await post(server.url, HTTP.binary(createPingEvent({ namespace: 'promsnap', name: 'snapshot-schedule', data: { queries: [query] } })));
      assert.equal(res.status, 200, res.text);
      return { ...(JSON.parse(res.text) as { bytes: number; series: number }), tookMs: Date.now() - started };
    };
    // A first, tiny snapshot warms the process (modules, clients, sockets) before the baseline is read.
    await snapshot('vector(1)');
    await bigPrometheus.scrapedAfter(new Date(0), ['big']);
    const baseline = await peak();
    // The smaller answer first: the peak only ever rises, so the larger one's growth includes it.
    const small = await snapshot('promsnap_big_value < 1250');
    const smallGrowth = (await peak()) - baseline;
    const large = await snapshot('promsnap_big_value');
    const largeGrowth = (await peak()) - baseline;
    const mb = (n: number) => (n / 1e6).toFixed(1);
    t.diagnostic(
      `peak RSS ${mb(baseline)} MB before; +${mb(smallGrowth)} MB for ${mb(small.bytes)} MB (${small.tookMs} ms), ` +
        `+${mb(largeGrowth)} MB for ${mb(large.bytes)} MB (${large.tookMs} ms)`,
    );
    assert.deepEqual([small.series, large.series], [1_250, 5_000]);
    assert.ok(small.bytes > 24e6 && large.bytes > 95e6, `answers of ${small.bytes} and ${large.bytes} bytes`);
    // Measured (2 shared cores, 9 runs, the image's NODE_OPTIONS, uncompressed answers): +34 to +46 MB
    // for 25 MB, +47 to +67 MB for 100 MB, the larger never more than 25 MB above the smaller. The
    // growth is not the answer: about 16 MB of part buffers ((queueSize + 1) x 5 MiB), plus spent socket
    // Buffers until a scavenge frees them. Without the image's small young generation V8 lets up to
    // 64 MB of those pile up first, which a 25 MB answer does not reach and a larger one does: +39 to
    // +61 MB and +69 to +118 MB in 5 runs. A function holding the answer, even once, would grow by at
    // least the 75 MB the answers differ by.
    assert.ok(
      largeGrowth < smallGrowth + 60e6,
      `peak grew ${mb(largeGrowth)} MB for ${mb(large.bytes)} MB and ${mb(smallGrowth)} MB for ${mb(small.bytes)} MB`,
    );
    // The budget above with room to spare: 16 MB of parts, 64 MB of spent buffers, the heap's own churn.
    assert.ok(largeGrowth < 120e6, `peak grew ${mb(largeGrowth)} MB for a ${mb(large.bytes)} MB answer`);
  },
);
