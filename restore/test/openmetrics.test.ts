import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCommand } from '../../platform/tools/command.js';
import { findTool } from '../../platform/tools/find.js';
import { OpenMetricsWriter, seriesText, timestampText } from '../src/openmetrics.js';

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

test('files past the size bound are imported one at a time while the next is written, all of them by the end', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'promsnap-openmetrics-files-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const events: string[] = [];
  let running = 0;
  const writer = new OpenMetricsWriter(dir, 60, async (file) => {
    running++;
    assert.equal(running, 1, 'one import at a time');
    events.push(`import ${path.basename(file.file)} starts`);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.ok((await readFile(file.file, 'utf8')).endsWith('# EOF\n'), 'a file is complete when imported');
    events.push(`import ${path.basename(file.file)} ends`);
    running--;
  });
  for (let i = 0; i < 12; i++) {
    await writer.write({
      labels: [
        ['__name__', 'm'],
        ['i', String(i)],
      ],
      key: `m{i="${i}"}`,
      points: [{ t: 1000 * i, v: '1' }],
    });
    events.push(`series ${i} written`);
  }
  const files = await writer.end();
  assert.ok(files.length >= 3, `several files: ${files.length}`);
  assert.deepEqual(
    events.filter((e) => e.startsWith('import') && e.endsWith('ends')),
    files.map((f) => `import ${path.basename(f.file)} ends`),
    'every file imported, in order, before end() resolves',
  );
  const firstImport = events.indexOf('import restore-1.om starts');
  assert.ok(
    events.slice(firstImport).some((e) => e.startsWith('series')),
    'series are written while the first file is imported',
  );
  assert.equal(
    files.reduce((n, f) => n + f.samples, 0),
    12,
  );

  const failing = new OpenMetricsWriter(dir, 50, () => Promise.reject(new Error('promtool failed')));
  await assert.rejects(
    (async () => {
      for (let i = 0; i < 10; i++) await failing.write({ labels: [['__name__', 'x']], key: 'x', points: [{ t: i, v: '1' }] });
      await failing.end();
    })(),
    /promtool failed/,
  );
});
