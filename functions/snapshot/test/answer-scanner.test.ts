import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { AnswerScanner, SeriesLimitError } from '../src/answer-scanner.js';

const vector = JSON.stringify({
  status: 'success',
  data: {
    resultType: 'vector',
    result: [
      { metric: { __name__: 'up', job: 'a "quoted" job', instance: 'x\\y' }, value: [1764064800.123, '1'] },
      { metric: { __name__: 'data', result: '[{,}]', status: 'error' }, value: [1764064800.123, '-1.5e-3'] },
      { metric: {}, value: [1764064800.123, 'NaN'] },
    ],
  },
  warnings: ['status: nothing'],
});

/** Runs text through a scanner cut into chunks of `size` bytes; returns the summary and the bytes out. */
async function scan(text: string, size: number, maxSeries?: number) {
  const input = Buffer.from(text);
  const chunks: Buffer[] = [];
  for (let i = 0; i < input.length; i += size) chunks.push(input.subarray(i, i + size));
  const scanner = new AnswerScanner({ maxSeries });
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(chunks),
    scanner,
    new Writable({
      write(chunk: Buffer, _e, cb) {
        out.push(chunk);
        cb();
      },
    }),
  );
  return { summary: scanner.summary, out: Buffer.concat(out).toString() };
}

test('series are counted and bytes pass through unchanged, however the answer is cut', async () => {
  for (const size of [1, 2, 3, 7, 64, 100_000]) {
    const { summary, out } = await scan(vector, size);
    assert.equal(out, vector, `chunk size ${size}`);
    assert.deepEqual(summary, { status: 'success', resultType: 'vector', series: 3, samples: 3, bytes: Buffer.byteLength(vector) }, `chunk size ${size}`);
  }
});

test('matrix answers count series and their points; scalar and empty answers count none', async () => {
  const matrix = JSON.stringify({
    status: 'success',
    data: {
      resultType: 'matrix',
      result: [
        {
          metric: { a: '1', b: '[[x]]' },
          values: [
            [1, '1'],
            [2, '2'],
          ],
        },
        { metric: { a: '2' }, values: [] },
        { metric: { a: '3' }, histograms: [[3, { count: '2', sum: '1', buckets: [[0, '0', '1', '2']] }]] },
        { metric: { a: '4' }, values: [[4, '4']], histograms: [[5, { count: '1', sum: '1' }]] },
      ],
    },
  });
  for (const size of [1, 5, 1000]) {
    const { summary } = await scan(matrix, size);
    assert.equal(summary.series, 4, `chunk size ${size}`);
    assert.equal(summary.samples, 5, `float and histogram points, chunk size ${size}`);
  }
  const scalar = JSON.stringify({ status: 'success', data: { resultType: 'scalar', result: [1764064800, '2'] } });
  assert.equal((await scan(scalar, 5)).summary.series, 0);
  const empty = '{ "status" : "success" , "data" : { "result" : [ ] , "resultType" : "vector" } }\n';
  assert.deepEqual((await scan(empty, 4)).summary.series, 0);
});

test('keys at other depths named like the ones counted do not count', async () => {
  const decoy = JSON.stringify({
    status: 'success',
    data: { resultType: 'vector', result: [{ metric: { data: '1' }, value: [1, '1'] }] },
    infos: [{ data: { result: [1, 2, 3] } }],
  });
  assert.equal((await scan(decoy, 3)).summary.series, 1);
});

test('a truncated answer, trailing garbage or an error status fails the stream', async () => {
  await assert.rejects(scan(vector.slice(0, vector.length - 10), 50), /incomplete JSON/);
  await assert.rejects(scan(vector.slice(0, 20), 50), /incomplete JSON/);
  await assert.rejects(scan('', 50), /incomplete JSON/);
  await assert.rejects(scan(vector + '{}', 50), /data after its JSON value/);
  await assert.rejects(scan('{"status":"success","data":{"result":[}}', 50), /not valid JSON/);
  // Inside a series, where the scanner only follows strings and brackets, a mismatch is still caught.
  await assert.rejects(scan('{"status":"success","data":{"result":[{"metric":{"a":"}"],"value":[1,"1"]}]}}', 7), /not valid JSON/);
  await assert.rejects(scan('{"status":"success","data":{"result":[{"metric":{"a":"1"},"value":[1,"1"]}', 7), /incomplete JSON/);
  await assert.rejects(scan('{"status":"error","errorType":"bad_data","error":"x"}', 50), /status is "error"/);
});

test('escaped quotes and backslashes split at every pair of chunk boundaries still scan right', async () => {
  // Label values whose escapes hide JSON structure: a scanner that lost track of one escape would end
  // a string early and count the brackets and braces inside it, or fail on them.
  const tricky = JSON.stringify({
    status: 'success',
    data: {
      resultType: 'vector',
      result: [
        { metric: { a: '\\', b: '"],[{"x":"', c: '\\"}]\\\\' }, value: [1, '1'] },
        { metric: { d: 'tab\there\nand é \u0001', e: '\\\\\\"' }, value: [2, '2'] },
      ],
    },
  });
  const expected = { status: 'success', resultType: 'vector', series: 2, samples: 2, bytes: Buffer.byteLength(tricky) };
  const input = Buffer.from(tricky);
  for (let first = 1; first < input.length; first++) {
    for (let second = first + 1; second < input.length; second++) {
      const scanner = new AnswerScanner();
      const out: Buffer[] = [];
      await pipeline(
        Readable.from([input.subarray(0, first), input.subarray(first, second), input.subarray(second)]),
        scanner,
        new Writable({
          write(chunk: Buffer, _e, cb) {
            out.push(chunk);
            cb();
          },
        }),
      );
      assert.deepEqual(scanner.summary, expected, `cut at ${first} and ${second}`);
      assert.ok(Buffer.concat(out).equals(input), `bytes unchanged when cut at ${first} and ${second}`);
    }
  }
});

test('an answer with more series than the bound fails the stream at the first one too many; a scalar is no series', async () => {
  assert.equal((await scan(vector, 7, 3)).summary.series, 3, 'exactly the bound passes');
  for (const size of [1, 7, 4096]) {
    await assert.rejects(scan(vector, size, 2), (err: unknown) => err instanceof SeriesLimitError && err.maxSeries === 2);
  }
  const scalar = JSON.stringify({ status: 'success', data: { resultType: 'scalar', result: [1764064800.123, '1'] } });
  assert.equal((await scan(scalar, 5, 1)).summary.series, 0);
});
