import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../runtime/src/env.js';
import { loadConfig } from '../src/config.js';
import { checkRange, rangeAllowed, rangeDefaults } from '../src/range-config.js';

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
  assert.deepEqual(range, {
    defaultRangeMs: 300_000,
    maxRangeMs: 7_200_000,
    allowedRangesMs: [],
    catchUpMs: 5_400_000,
    settleMs: 20_000,
    partSeries: 1000,
    partSamples: 20_000,
  });
  assert.equal(loadConfig({ ...minimal, SNAPSHOT_CATCH_UP: '0' }).range.catchUpMs, 0, 'catch-up can be turned off');
});

test('SNAPSHOT_ALLOWED_RANGES lists the ranges pings may ask for besides SNAPSHOT_RANGE; each is checked at start-up', () => {
  assert.deepEqual(loadConfig(minimal).range.allowedRangesMs, [], 'none by default');
  assert.deepEqual(loadConfig({ ...minimal, SNAPSHOT_ALLOWED_RANGES: '1m, 5m,300s,,1h' }).range.allowedRangesMs, [60_000, 300_000, 3_600_000]);
  assert.throws(
    () => loadConfig({ ...minimal, SNAPSHOT_RANGE_MAX: '1h', SNAPSHOT_ALLOWED_RANGES: '5m,2h,ten,1500ms,0' }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(err.problems, [
        'SNAPSHOT_ALLOWED_RANGES: "2h" is longer than 1h (SNAPSHOT_RANGE_MAX)',
        'SNAPSHOT_ALLOWED_RANGES: "ten" is not a Prometheus duration (such as 5m, 1h or 90s)',
        'SNAPSHOT_ALLOWED_RANGES: "1500ms" is not a whole number of seconds',
        'SNAPSHOT_ALLOWED_RANGES: "0" is an instant snapshot, which pings may always ask for; list ranges only',
      ]);
      return true;
    },
  );
});

test('a ping may ask for an instant, the default range or an allowed one, and no other', () => {
  const settings = { defaultRangeMs: 300_000, allowedRangesMs: [60_000] };
  assert.deepEqual(
    [0, 300_000, 60_000, 3_600_000, 120_000].map((ms) => rangeAllowed(ms, settings)),
    [true, true, true, false, false],
  );
  assert.equal(rangeAllowed(300_000, { defaultRangeMs: 0, allowedRangesMs: [] }), false, 'instant snapshots by default: no range at all');
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
