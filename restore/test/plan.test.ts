import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RANGE_KIND, SNAPSHOT_KIND } from '../../archive/src/index.js';
import { order, type Selected } from '../src/plan.js';
import { SampleFilter } from '../src/samples.js';

const schedule = '/apis/v1/namespaces/promsnap/pingsources/snapshot-schedule';
const all = '{__name__!=""}';
const common = { id: 'e', time: '1970-01-01T00:00:00Z', prometheus: 'http://prometheus:9090' };
const range = (key: string, start: number, end: number, selectors = [all], source = schedule): Selected => ({
  key,
  bytes: 0,
  kind: 'range',
  header: { kind: RANGE_KIND, ...common, source, selectors, range: '1s', start: '', end: '' },
  start,
  end,
});
const instant = (key: string, at: number, queries = [all], source = schedule): Selected => ({
  key,
  bytes: 0,
  kind: 'instant',
  header: { kind: SNAPSHOT_KIND, ...common, source, queries },
  start: at,
  end: at,
});

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

test('an instant is left out only for a range export of the same PingSource whose selectors take in each of its queries', () => {
  const plan = order([
    range('t5', 4, 5, [all]),
    range('t5 up only', 4, 5, ['up'], '/apis/v1/namespaces/promsnap/pingsources/other'),
    instant('same source, same query', 4.5),
    instant('aggregate of the same source', 4.5, ['sum by (job) (rate(http_requests_total[5m]))']),
    instant('a selector and an aggregate', 4.6, [all, 'sum(up)']),
    instant('another source, same query', 4.7, [all], '/apis/v1/namespaces/promsnap/pingsources/manual'),
    instant('up, covered only by another source', 4.8, ['up']),
    instant('up of that other source', 4.9, ['up'], '/apis/v1/namespaces/promsnap/pingsources/other'),
  ]);
  assert.deepEqual(
    plan.coveredInstants.map((e) => e.key),
    ['same source, same query', 'up of that other source'],
  );
  assert.deepEqual(
    plan.exports.map((e) => e.key),
    ['t5', 't5 up only', 'aggregate of the same source', 'a selector and an aggregate', 'another source, same query', 'up, covered only by another source'],
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
  assert.deepEqual(filter.counts, { series: 1, samples: 3, duplicates: 3, outsideRange: 0, nativeHistograms: 0, unnamedSeries: 0, notSeriesAnswers: 0 });
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
  assert.throws(() => filter.accept({ metric: { __name__: 'm' }, values: [[4.5, '0x10']] }), { name: 'NotAnExportError', message: /not \[time, "value"\]/ });
});

test('a series without a metric name, and a scalar or string answer, are counted and left out, naming their query', () => {
  const filter = new SampleFilter(undefined, undefined);
  assert.equal(filter.accept({ metric: { job: 'api' }, value: [4, '2'] }, 'sum by (job) (up)'), undefined);
  assert.equal(filter.accept({ metric: {}, value: [4, '3'] }, 'sum(up)'), undefined);
  filter.notSeries('scalar(sum(up))');
  assert.deepEqual(filter.accept({ metric: { __name__: 'up', job: 'api' }, value: [4, '1'] }, 'up')?.points, [{ t: 4000, v: '1' }]);
  assert.deepEqual(filter.counts, { series: 1, samples: 1, duplicates: 0, outsideRange: 0, nativeHistograms: 0, unnamedSeries: 2, notSeriesAnswers: 1 });
  assert.deepEqual([...filter.skippedQueries], ['sum by (job) (up)', 'sum(up)', 'scalar(sum(up))']);
});
