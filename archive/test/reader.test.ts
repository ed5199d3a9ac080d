import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { headerText, RANGE_KIND, resultHead, resultTail, SNAPSHOT_KIND, trailerText, NotAnExportError, type ExportHeader } from '../src/format.js';
import { ExportReader, readExport, type ExportItem } from '../src/reader.js';

const rangeHeader: ExportHeader = {
  kind: RANGE_KIND,
  id: 'tick-1',
  source: '/apis/v1/namespaces/promsnap/pingsources/snapshot-schedule',
  time: '2026-12-04T12:05:00.412Z',
  prometheus: 'http://prometheus:9090',
  selectors: ['{__name__!=""}'],
  range: '5m',
  start: '2026-12-04T12:00:00Z',
  end: '2026-12-04T12:05:00Z',
};

// Answers as Prometheus writes them, label values chosen to hide JSON structure inside strings.
const answers = [
  {
    query: '{__name__=~"a|b"}[300s]',
    text: JSON.stringify({
      status: 'success',
      data: {
        resultType: 'matrix',
        result: [
          {
            metric: { __name__: 'a', q: 'say "hi"}]', p: '\\' },
            values: [
              [1764849900.123, '1'],
              [1764849910.5, 'NaN'],
            ],
          },
          { metric: { __name__: 'b', u: 'é ☃ \n' }, values: [[1764849905, '+Inf']] },
        ],
      },
    }),
  },
  { query: '{__name__=~"c"}[300s]', text: '{"status":"success","data":{"resultType":"matrix","result":[]},"warnings":["w"]}' },
  {
    query: '{__name__=~"d"}[300s]',
    text: JSON.stringify({ status: 'success', data: { resultType: 'matrix', result: [{ metric: { __name__: 'd' }, histograms: [[1, { count: '1' }]] }] } }),
  },
];

const document =
  headerText(rangeHeader) +
  answers.map((a, i) => resultHead(a.query, i === 0) + a.text + resultTail({ series: 9, samples: 9 })).join('') +
  trailerText({ series: 3, samples: 4 });

function readAll(text: string, size: number): ExportItem[] {
  const bytes = Buffer.from(text);
  const reader = new ExportReader();
  const items: ExportItem[] = [];
  for (let i = 0; i < bytes.length; i += size) items.push(...reader.push(bytes.subarray(i, i + size)));
  items.push(...reader.end());
  return items;
}

test('an export reads back as its header, every series with its query, and its totals, however it is cut', () => {
  const expected = readAll(document, document.length);
  assert.deepEqual(expected[0], { type: 'header', header: rangeHeader });
  const series = expected.flatMap((item) => (item.type === 'series' ? [item] : []));
  assert.deepEqual(
    series.map((s) => [s.result, s.query, s.resultType, s.series.metric['__name__']]),
    [
      [0, answers[0]!.query, 'matrix', 'a'],
      [0, answers[0]!.query, 'matrix', 'b'],
      [2, answers[2]!.query, 'matrix', 'd'],
    ],
  );
  assert.deepEqual(series[0]?.series.metric, { __name__: 'a', q: 'say "hi"}]', p: '\\' });
  assert.deepEqual(series[0]?.series.values, [
    [1764849900.123, '1'],
    [1764849910.5, 'NaN'],
  ]);
  assert.deepEqual(expected.at(-1), { type: 'end', series: 3, samples: 4, results: 3 });
  for (const size of [1, 2, 3, 5, 7, 64, 1000]) assert.deepEqual(readAll(document, size), expected, `chunks of ${size}`);
});

test('an instant snapshot reads back too', async () => {
  const header: ExportHeader = { kind: SNAPSHOT_KIND, id: 'x', source: 's', time: '2026-12-04T12:00:00Z', prometheus: 'p', queries: ['up', 'scalar(1)'] };
  const text =
    headerText(header) +
    resultHead('up', true) +
    '{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up"},"value":[1764849600,"1"]}]}}' +
    resultTail({ series: 1 }) +
    resultHead('scalar(1)', false) +
    '{"status":"success","data":{"resultType":"scalar","result":[1764849600,"1"]}}' +
    resultTail({ series: 0 }) +
    trailerText({ series: 1 });
  const items: ExportItem[] = [];
  for await (const item of readExport(Readable.from([Buffer.from(text.slice(0, 40)), text.slice(40)]))) items.push(item);
  assert.deepEqual(
    items.map((i) => i.type),
    ['header', 'series', 'not-series', 'end'],
  );
  const [, first] = items;
  assert.deepEqual(first?.type === 'series' ? first.series.value : undefined, [1764849600, '1']);
});

test('what is not an export is refused from its first bytes, and a cut export is noticed', () => {
  const refused = (text: string, pattern: RegExp) =>
    assert.throws(
      () => readAll(text, 4),
      (err: unknown) => err instanceof NotAnExportError && pattern.test(err.message),
      text.slice(0, 40),
    );
  refused('hello world', /does not start with a JSON object/);
  refused('[1,2]', /does not start with a JSON object/);
  refused('{"status":"success","data":{}}', /first field is "status", not "kind"/);
  refused('{"kind":"promsnap.dead-letter.v1","receivedAt":"x"}', /"kind" is "promsnap.dead-letter.v1"/);
  refused('{"kind":"promsnap.range.v1","id":"x","results":[]}', /without a "source"/);
  refused(document.replace('"series":3,"samples":4}', '"series":5,"samples":4}'), /says it holds 5 series, but 3 were read/);
  refused(document + '{}', /more after its JSON document/);
  refused(document.replace('"status":"success"', '"status":"error"'), /status is "error"/);
  refused('', /empty/);
  assert.throws(() => readAll(document.slice(0, -20), 100), /ends after \d+ bytes, before its document does/);
});

test('a value cut across chunks is kept whole even if the sender reuses its buffers', () => {
  const bytes = Buffer.from(document);
  const reader = new ExportReader();
  const items: ExportItem[] = [];
  const scratch = Buffer.alloc(3);
  for (let i = 0; i < bytes.length; i += 3) {
    const n = bytes.copy(scratch, 0, i, i + 3);
    items.push(...reader.push(scratch.subarray(0, n)));
    scratch.fill(0x41);
  }
  items.push(...reader.end());
  assert.deepEqual(items, readAll(document, document.length));
});
