import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../runtime/src/env.js';
import { loadConfig } from '../src/config.js';
import { checkRange, rangeDefaults } from '../src/range-config.js';

const minimal = {
  PROMETHEUS_URL: 'http://prometheus:9090',
  S3_ENDPOINT: 'http://minio:9000',
  AWS_ACCESS_KEY_ID: 'snapshot',
  AWS_SECRET_ACCESS_KEY: 'secret',
};

test('pings get instant snapshots unless SNAPSHOT_RANGE names a range; every range setting is a Prometheus duration', () => {
  assert.equal(loadConfig(minimal).range.defaultRangeMs, 0);
  const range = loadConfig({
    ...minimal,
    SNAPSHOT_RANGE: '5m',
    SNAPSHOT_RANGE_MAX: '2h',
    SNAPSHOT_CATCH_UP: '90m',
    SNAPSHOT_SETTLE: '20s',
    SNAPSHOT_PART_SERIES: '1000',
    SNAPSHOT_PART_SAMPLES: '20000',
  }).range;
  assert.deepEqual(range, { defaultRangeMs: 300_000, maxRangeMs: 7_200_000, catchUpMs: 5_400_000, settleMs: 20_000, partSeries: 1000, partSamples: 20_000 });
  assert.equal(loadConfig({ ...minimal, SNAPSHOT_CATCH_UP: '0' }).range.catchUpMs, 0, 'catch-up can be turned off');
});

test('bad range settings are each named', () => {
  assert.throws(
    () =>
      loadConfig({
        ...minimal,
        SNAPSHOT_RANGE: '2h',
        SNAPSHOT_RANGE_MAX: '1h',
        SNAPSHOT_CATCH_UP: 'an hour',
        SNAPSHOT_SETTLE: '1h',
        SNAPSHOT_PART_SERIES: '0',
      }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(
        err.problems.map((p) => /^[A-Z_]+/.exec(p)?.[0]),
        ['SNAPSHOT_RANGE', 'SNAPSHOT_CATCH_UP', 'SNAPSHOT_SETTLE', 'SNAPSHOT_PART_SERIES'],
      );
      assert.match(err.message, /SNAPSHOT_RANGE: "2h" is longer than 1h \(SNAPSHOT_RANGE_MAX\)/);
      return true;
    },
  );
});

test('a range is whole seconds up to the maximum; 0 is an instant', () => {
  assert.deepEqual(checkRange('5m', rangeDefaults.maxRangeMs), { ms: 300_000 });
  assert.deepEqual(checkRange('0', rangeDefaults.maxRangeMs), { ms: 0 });
  assert.match((checkRange('2500ms', rangeDefaults.maxRangeMs) as { problem: string }).problem, /whole number of seconds/);
  assert.match((checkRange('5 minutes', rangeDefaults.maxRangeMs) as { problem: string }).problem, /not a Prometheus duration/);
});
