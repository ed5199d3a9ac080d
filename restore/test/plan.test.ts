import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ExportHeader } from '../../archive/src/index.js';
import { order, type Selected } from '../src/plan.js';
import { SampleFilter } from '../src/samples.js';

const header = {} as ExportHeader;
const range = (key: string, start: number, end: number): Selected => ({ key, bytes: 0, kind: 'range', header, start, end });
const instant = (key: string, at: number): Selected => ({ key, bytes: 0, kind: 'instant', header, start: at, end: at });

test('exports are read by the start of what they hold, then its end; instants a range holds are left out', () => {
  const plan = order([
    range('t5 caught up', 3, 5),
    range('t4 late retry', 3, 4),
    range('t3', 2, 3),
    instant('snapshot in t5', 4.5),
    instant('snapshot alone', 7),
    range('t6', 5, 6),
  ]);
  assert.deepEqual(
    plan.exports.map((e) => e.key),
    ['t3', 't4 late retry', 't5 caught up', 't6', 'snapshot alone'],
  );
  assert.deepEqual(
    plan.coveredInstants.map((e) => e.key),
    ['snapshot in t5'],
  );
});

test('in that order, each sample is kept once and a series stays in time order, even across overlapping exports', () => {
  const filter = new SampleFilter(undefined, undefined);
  const series = (values: Array<[number, string]>) => ({ metric: { __name__: 'm', job: 'x' }, values });
  // t4's late retry: (3s, 4s]; then t5, which caught t4 up: (3s, 5s].
  assert.deepEqual(
    filter.accept(
      series([
        [3.5, '1'],
        [4, '2'],
      ]),
    )?.points,
    [
      { t: 3500, v: '1' },
      { t: 4000, v: '2' },
    ],
  );
  assert.deepEqual(
    filter.accept(
      series([
        [3.5, '1'],
        [4, '2'],
        [4.75, '3'],
      ]),
    )?.points,
    [{ t: 4750, v: '3' }],
  );
  assert.equal(filter.accept(series([[4.75, '3']])), undefined);
  assert.deepEqual(filter.counts, { series: 1, samples: 3, duplicates: 3, outsideRange: 0, nativeHistograms: 0 });
});

test('samples outside the range asked for are left out; a range is [from, to)', () => {
  const filter = new SampleFilter(4000, 5000);
  const kept = filter.accept({
    metric: { __name__: 'm' },
    values: [
      [3.999, '1'],
      [4, '2'],
      [4.999, '3'],
      [5, '4'],
    ],
  });
  assert.deepEqual(
    kept?.points.map((p) => p.t),
    [4000, 4999],
  );
  assert.equal(filter.counts.outsideRange, 2);
  assert.throws(() => filter.accept({ metric: { __name__: 'm' }, values: [[4.5, '0x10']] }), /not \[time, "value"\]/);
});
