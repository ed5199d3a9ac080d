// The stored-object lines npm start prints, from keys and tails as the snapshot function writes them
// (archive's key functions and a range export's closing counts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deadLetterKey, snapshotKey } from '../../../functions/snapshot/src/key.js';
import { rangeKey } from '../../../archive/src/keys.js';
import { countsFromTail, formatStored, keyInstant, rangeWindow } from '../snapshots.js';

const tick = Date.parse('2026-12-04T14:10:50Z');
const range = rangeKey({ namespace: 'promsnap', name: 'snapshot-schedule', rangeMs: 10_000, tick, gzip: false });

test('the instant a key names: instant snapshots, range exports and dead letters', () => {
  assert.equal(keyInstant(snapshotKey('2026-12-04T14:10:50.000Z', 'ping-1', false)), tick);
  assert.equal(keyInstant(range), tick);
  assert.equal(keyInstant(deadLetterKey('2026-12-04T14:10:50.000Z', 'ping-2')), tick);
  assert.equal(keyInstant('other/x.json'), undefined);
});

test("a range export's window from its key, and the counts from an object's last bytes", () => {
  assert.deepEqual(rangeWindow(range), { range: '10s', start: tick - 10_000, end: tick });
  assert.equal(rangeWindow(snapshotKey('2026-12-04T14:10:50.000Z', 'ping-1', false)), undefined);
  assert.deepEqual(countsFromTail('..."results":[]}],"series":1138,"samples":2276}\n'), { series: 1138, samples: 2276 });
  assert.deepEqual(countsFromTail('..."results":[]}],"series":12}'), { series: 12 });
  assert.equal(countsFromTail('{"series":12,"samples":3'), undefined, 'a cut-off object has no closing counts');
});

test('one line per stored object', () => {
  assert.equal(
    formatStored(
      { kind: 'snapshot', key: range, bytes: 362221, series: 1138, range: { ...rangeWindow(range)!, samples: 2276 }, afterInstantMs: 10_600 },
      'snapshots',
    ),
    `snapshot stored  snapshots/${range}  362221 bytes  1138 series  2276 samples from 14:10:40 to 14:10:50  (stored 10.6 s after its instant)`,
  );
  const letter = deadLetterKey('2026-12-04T14:10:50.000Z', 'ping-2');
  assert.equal(formatStored({ kind: 'dead letter', key: letter, bytes: 2 }, 'snapshots'), `dead letter      snapshots/${letter}  2 bytes`);
});
