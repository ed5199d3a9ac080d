import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRangeKey, parseSnapshotKey, rangeFolder, rangeKey, snapshotKey } from '../src/keys.js';

test('a range export is keyed by its PingSource, range and tick, and parses back', () => {
  const tick = Date.parse('2026-12-04T12:05:00Z');
  const key = rangeKey({ namespace: 'promsnap', name: 'snapshot-schedule', rangeMs: 300_000, tick, gzip: false });
  assert.equal(key, 'ranges/promsnap/snapshot-schedule/5m/2026/12/04/120500Z.json');
  assert.ok(key.startsWith(rangeFolder('promsnap', 'snapshot-schedule', 300_000)));
  assert.deepEqual(parseRangeKey(key), { namespace: 'promsnap', name: 'snapshot-schedule', rangeMs: 300_000, tick, gzip: false });
  assert.equal(parseRangeKey(`${key}.gz`)?.gzip, true);
  assert.equal(rangeKey({ namespace: 'a', name: 'b', rangeMs: 5_400_000, tick: 2 * 5_400_000, gzip: true }), 'ranges/a/b/1h30m/1970/01/01/030000Z.json.gz');
});

test('range keys sort by tick, so a time range is a key range', () => {
  const ticks = [0, 1, 2, 11, 12, 100, 1000].map((k) => Date.parse('2026-12-31T23:00:00Z') + k * 60_000);
  const keys = ticks.map((tick) => rangeKey({ namespace: 'n', name: 'p', rangeMs: 60_000, tick, gzip: false }));
  assert.deepEqual([...keys].sort(), keys);
});

test('keys that are not range exports do not parse as one, nor ticks off their range', () => {
  assert.equal(parseRangeKey(snapshotKey('2026-12-04T12:05:00Z', 'id', false)), undefined);
  assert.equal(parseRangeKey('ranges/n/p/5m/2026/12/04/120100Z.json'), undefined, 'not a multiple of 5m');
  assert.equal(parseRangeKey('ranges/n/p/five/2026/12/04/120500Z.json'), undefined);
  assert.equal(parseSnapshotKey('ranges/n/p/5m/2026/12/04/120500Z.json'), undefined);
  assert.throws(() => rangeKey({ namespace: 'n', name: 'p', rangeMs: 60_000, tick: 30_000, gzip: false }), /multiple/);
});

test('only keys the function writes parse: a real date, an id encoded as it encodes ids', () => {
  for (const key of [
    '../../',
    '2026/11/25/100405Z-../../x.json',
    '2026/11/25/100405Z-a/b.json',
    '2026/11/25/100405Z-a%2fb.json',
    '2026/11/25/100405Z-%C3.json',
    '2026/11/25/100405Z-%41.json',
    '2026/11/25/100405Z-a b.json',
    '2026/02/30/100405Z-a.json',
    '2026/11/25/250000Z-a.json',
  ]) {
    assert.equal(parseSnapshotKey(key), undefined, key);
  }
  assert.equal(parseSnapshotKey('2026/11/25/100405Z-caf%C3%A9.json')?.id, 'café');
  assert.equal(parseRangeKey('ranges/n/p/300s/2026/12/04/120500Z.json'), undefined, 'a range written otherwise than formatDuration writes it');
  assert.equal(parseRangeKey('ranges/n/p/5m/2026/02/30/120500Z.json'), undefined);
});
