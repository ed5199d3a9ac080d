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
    prometheus: {
      url: 'http://prometheus.monitoring.svc.cluster.local:9090',
      timeoutMs: 30_000,
      gzip: false,
      maxSeries: 1_000_000,
      retention: '15d',
      retentionMs: 15 * 86_400_000,
    },
    s3: { endpoint: minimal.S3_ENDPOINT, bucket: 'snapshots', region: 'us-east-1', accessKeyId: 'snapshot', secretAccessKey: 'secret' },
    queries: ['{__name__!=""}'],
    gzip: false,
    range: rangeDefaults,
    // Events take no queries unless the operator allows some, and name no instant ahead by more than 30 s.
    events: { allowedQueries: [], maxFutureMs: 30_000 },
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

test('queries a ping may name: none by default, a list, or any with *', () => {
  assert.deepEqual(loadConfig(minimal).events.allowedQueries, []);
  assert.deepEqual(loadConfig({ ...minimal, SNAPSHOT_ALLOWED_QUERIES: 'up' }).events.allowedQueries, ['up']);
  assert.deepEqual(loadConfig({ ...minimal, SNAPSHOT_ALLOWED_QUERIES: '["up", "{job=\\"a\\"}"]' }).events.allowedQueries, ['up', '{job="a"}']);
  assert.equal(loadConfig({ ...minimal, SNAPSHOT_ALLOWED_QUERIES: '*' }).events.allowedQueries, 'any');
});

test("PROMETHEUS_RETENTION takes Prometheus's own duration syntax, as its retention flag is written", () => {
  const retention = (value: string) => loadConfig({ ...minimal, PROMETHEUS_RETENTION: value }).prometheus.retentionMs;
  assert.equal(retention('24h'), 86_400_000);
  assert.equal(retention('1d12h'), 129_600_000);
  assert.equal(retention('2w'), 14 * 86_400_000);
  assert.equal(retention('1y'), 365 * 86_400_000);
  assert.equal(retention('90m'), 5_400_000);
  for (const bad of ['24 hours', '12h1d', '0s', '-1h', '1.5h', 'h']) {
    assert.throws(() => retention(bad), /PROMETHEUS_RETENTION=".*" must be a Prometheus duration above zero/, bad);
  }
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
        SNAPSHOT_MAX_SERIES: '0',
        PROMETHEUS_RETENTION: 'a day',
        SNAPSHOT_ALLOWED_QUERIES: '[""]',
        SNAPSHOT_MAX_FUTURE_MS: '-1',
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
        'SNAPSHOT_MAX_SERIES',
        'PROMETHEUS_RETENTION',
        'SNAPSHOT_ALLOWED_QUERIES',
        'SNAPSHOT_MAX_FUTURE_MS',
        'LOG_LEVEL',
        'SHUTDOWN_GRACE_MS',
      ]);
      assert.match(err.message, /SHUTDOWN_GRACE_MS \(60000\) must be above PROMETHEUS_TIMEOUT_MS \(90000\)/);
      return true;
    },
  );
});
