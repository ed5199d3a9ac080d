import { test } from 'node:test';
import assert from 'node:assert/strict';
import { followPingEvery } from '../runner.js';

test('with --ping-every, a range export follows the period, and settles within one', () => {
  assert.deepEqual(followPingEvery({ SNAPSHOT_RANGE: '5m', A: 'b' }, 10_000), { SNAPSHOT_RANGE: '10s', SNAPSHOT_SETTLE: '10s', A: 'b' });
  assert.deepEqual(followPingEvery({ SNAPSHOT_RANGE: '5m', SNAPSHOT_SETTLE: '15s' }, 120_000), { SNAPSHOT_RANGE: '2m', SNAPSHOT_SETTLE: '15s' });
  assert.deepEqual(followPingEvery({ SNAPSHOT_RANGE: '5m', SNAPSHOT_SETTLE: '15s' }, 2_000), { SNAPSHOT_RANGE: '2s', SNAPSHOT_SETTLE: '2s' });
  assert.deepEqual(followPingEvery({ SNAPSHOT_RANGE: '5m' }, undefined), { SNAPSHOT_RANGE: '5m' }, 'on the schedule, as the manifest says');
  assert.deepEqual(followPingEvery({ A: 'b' }, 10_000), { A: 'b' }, 'instant snapshots (no range) are left as they are');
});
