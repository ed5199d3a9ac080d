import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startPrometheus } from '../../platform/tools/prometheus.js';
import { RestoreError } from '../src/errors.js';
import { RemoteWriter, snappyLiterals } from '../src/remote-write.js';

test('snappy literals: the length, then tags for short, one-byte and two-byte literal lengths', () => {
  assert.deepEqual([...snappyLiterals(Buffer.from('abc'))], [3, 2 << 2, 0x61, 0x62, 0x63]);
  const mid = snappyLiterals(Buffer.alloc(100, 1));
  assert.deepEqual([...mid.subarray(0, 3)], [100, 60 << 2, 99]);
  const big = snappyLiterals(Buffer.alloc(70_000, 2));
  // 70000 as a varint, then a 65536-byte literal (length - 1 in two bytes), then the rest.
  assert.deepEqual([...big.subarray(0, 6)], [0xf0, 0xa2, 0x04, 61 << 2, 0xff, 0xff]);
  assert.equal(big.length, 3 + 3 + 65_536 + 3 + 4464);
});

test("a real Prometheus's receiver takes what RemoteWriter sends, small requests and large, and refusals are named", async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'promsnap-remote-write-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const prometheus = await startPrometheus({
    config: 'global:\n  scrape_interval: 1m\nstorage:\n  tsdb:\n    out_of_order_time_window: 1d\n',
    dataDir: dir,
    flags: ['--web.enable-remote-write-receiver'],
  });
  t.after(() => prometheus.stop());
  const now = Math.floor(Date.now() / 1000) * 1000 - 3_600_000;
  const writer = new RemoteWriter({ url: `${prometheus.url}/api/v1/write`, maxSamples: 50_000 });
  await writer.write({
    labels: [
      ['__name__', 'rw_one'],
      ['x', 'é "q"'],
    ],
    key: 'a',
    points: [{ t: now, v: '-Inf' }],
  });
  const many = Array.from({ length: 30_000 }, (_, i) => ({ t: now - 30_000_000 + i * 1000, v: String(i / 3) }));
  await writer.write({ labels: [['__name__', 'rw_many']], key: 'b', points: many });
  await writer.end();
  const query = async (q: string) => {
    const res = await fetch(`${prometheus.url}/api/v1/query?${new URLSearchParams({ query: q, time: String(now / 1000) }).toString()}`);
    return ((await res.json()) as { data: { result: Array<{ metric: Record<string, string>; values?: Array<[number, string]>; value?: [number, string] }> } })
      .data.result;
  };
  assert.deepEqual(await query('rw_one'), [{ metric: { __name__: 'rw_one', x: 'é "q"' }, value: [now / 1000, '-Inf'] }]);
  const stored = (await query('rw_many[9h]'))[0]!.values!;
  assert.equal(stored.length, many.length);
  assert.deepEqual(stored[12_345], [many[12_345]!.t / 1000, many[12_345]!.v]);

  const refused = new RemoteWriter({ url: `${prometheus.url}/api/v1/nothing-here` });
  await refused.write({ labels: [['__name__', 'x']], key: 'x', points: [{ t: now, v: '1' }] });
  await assert.rejects(
    refused.end(),
    (err: unknown) => err instanceof RestoreError && err.exitCode === 7 && /--web.enable-remote-write-receiver/.test(err.message),
  );
});
