import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCommand } from '../../platform/tools/command.js';
import { findTool } from '../../platform/tools/find.js';
import { seriesText, timestampText } from '../src/openmetrics.js';

// Milliseconds whose plain decimal seconds ("2154737573.384") promtool's int64(seconds * 1000) turns
// into the millisecond before: found by search, before 1990 and after 2038.
const truncatedPlainly = [540161217058, 2154737573384, 2157767947950, 2167779575456, 2170719701207, 2178355766483];

/** What promtool's parser computes from a timestamp's text: Go's int64(ParseFloat(s) * 1000). */
const promtoolMs = (text: string) => Math.trunc(Number.parseFloat(text) * 1000);

test('timestamps are written so that promtool reads back the very millisecond', () => {
  for (const ms of truncatedPlainly) {
    const plain = `${Math.floor(ms / 1000)}.${String(ms % 1000).padStart(3, '0')}`;
    assert.notEqual(promtoolMs(plain), ms, `${plain} is truncated (the reason for the quarter millisecond)`);
    assert.equal(promtoolMs(timestampText(ms)), ms, timestampText(ms));
  }
  for (let i = 0; i < 200_000; i++) {
    const ms = Math.floor(Math.random() * 8e12) - 1e12;
    assert.equal(promtoolMs(timestampText(ms)), ms, `${ms} written as ${timestampText(ms)}`);
  }
});

test('series are written with classic names bare, others quoted, and values escaped', () => {
  assert.equal(seriesText([['__name__', 'up']]), 'up');
  assert.equal(
    seriesText([
      ['__name__', 'http_requests_total'],
      ['code', '200'],
    ]),
    'http_requests_total{code="200"}',
  );
  assert.equal(
    seriesText([
      ['__name__', 'a.b'],
      ['l.x', 'say "hi"\\\n'],
      ['y', 'é'],
    ]),
    '{"a.b","l.x"="say \\"hi\\"\\\\\\n",y="é"}',
  );
  assert.throws(() => seriesText([['job', 'x']]), /without a metric name/);
});

test('promtool imports what is written exactly: labels, quoted names and every millisecond', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'promsnap-openmetrics-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const labels: Array<[string, string]> = [
    ['__name__', 'rt.quoted'],
    ['le', '1'],
    ['text', 'a "b" \\ c\nd'],
  ];
  const lines = truncatedPlainly.map((ms, i) => `${seriesText(labels)} ${i} ${timestampText(ms)}`);
  await writeFile(path.join(dir, 'in.om'), `${lines.join('\n')}\n# EOF\n`);
  await mkdir(path.join(dir, 'tsdb', 'wal'), { recursive: true });
  const promtool = findTool('promtool');
  await runCommand(promtool, ['tsdb', 'create-blocks-from', 'openmetrics', '--quiet', path.join(dir, 'in.om'), path.join(dir, 'tsdb')]);
  const dump = (await runCommand(promtool, ['tsdb', 'dump', path.join(dir, 'tsdb')])).stdout.trim().split('\n');
  assert.deepEqual(
    dump.map((line) => line.slice(line.lastIndexOf(' ') + 1)),
    truncatedPlainly.map(String),
  );
  assert.ok(
    dump.every((line) => line.startsWith('{__name__="rt.quoted", le="1", text="a \\"b\\" \\\\ c\\nd"}')),
    dump[0],
  );
});
