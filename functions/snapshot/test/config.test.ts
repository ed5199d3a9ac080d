import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../runtime/src/env.js';
import { loadConfig } from '../src/config.js';
import { rangeDefaults } from '../src/range-config.js';

const minimal = {
  PROMETHEUS_URL: 'http://prometheus.monitoring.svc.cluster.local:9090/',
  S3_ENDPOINT: 'http://minio.promsnap.svc.cluster.local:9000',
  AWS_ACCESS_KEY_ID: 'snapshot',
  AWS_SECRET_ACCESS_KEY: 'secret',
};

test('defaults fill everything but the endpoints and credentials', () => {
  const config = loadConfig(minimal);
  assert.deepEqual(config, {
    port: 8080,
    prometheus: { url: 'http://prometheus.monitoring.svc.cluster.local:9090', timeoutMs: 30_000, gzip: false },
    s3: { endpoint: minimal.S3_ENDPOINT, bucket: 'snapshots', region: 'us-east-1', accessKeyId: 'snapshot', secretAccessKey: 'secret' },
    queries: ['{__name__!=""}'],
    gzip: false,
    range: rangeDefaults,
    logLevel: 'info',
    shutdownGraceMs: 60_000,
    service: undefined,
    revision: undefined,
  });
});

test('queries are one query as written, or a JSON array', () => {
  assert.deepEqual(loadConfig({ ...minimal, SNAPSHOT_QUERIES: 'sum by (job, instance) (up)' }).queries, ['sum by (job, instance) (up)']);
  assert.deepEqual(loadConfig({ ...minimal, SNAPSHOT_QUERIES: '["up", "{job=\\"a\\"}"]' }).queries, ['up', '{job="a"}']);
});

test("Prometheus's answer is asked for uncompressed unless PROMETHEUS_GZIP is on", () => {
  assert.equal(loadConfig({ ...minimal, PROMETHEUS_GZIP: 'true' }).prometheus.gzip, true);
  assert.equal(loadConfig({ ...minimal, PROMETHEUS_GZIP: 'false' }).prometheus.gzip, false);
  // Storing gzipped is another setting.
  assert.equal(loadConfig({ ...minimal, SNAPSHOT_GZIP: 'true' }).prometheus.gzip, false);
});

test('every missing or bad variable is named at once', () => {
  assert.throws(
    () =>
      loadConfig({
        PORT: '80a',
        S3_ENDPOINT: 'minio:9000',
        S3_BUCKET: 'Snapshots_Bucket',
        SNAPSHOT_GZIP: 'maybe',
        PROMETHEUS_GZIP: 'sometimes',
        SNAPSHOT_QUERIES: '["up", 3]',
        PROMETHEUS_TIMEOUT_MS: '90000',
        SHUTDOWN_GRACE_MS: '60000',
        LOG_LEVEL: 'loud',
      }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      const named = err.problems.map((p) => /^[A-Z_0-9]+/.exec(p)?.[0]);
      assert.deepEqual(named, [
        'PORT',
        'PROMETHEUS_URL',
        'PROMETHEUS_GZIP',
        'S3_ENDPOINT',
        'S3_BUCKET',
        'AWS_ACCESS_KEY_ID',
        'AWS_SECRET_ACCESS_KEY',
        'SNAPSHOT_QUERIES',
        'SNAPSHOT_GZIP',
        'LOG_LEVEL',
        'SHUTDOWN_GRACE_MS',
      ]);
      assert.match(err.message, /SHUTDOWN_GRACE_MS \(60000\) must be above PROMETHEUS_TIMEOUT_MS \(90000\)/);
      return true;
    },
  );
});
