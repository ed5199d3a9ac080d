import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deadLetterKey, parseSnapshotKey, snapshotKey } from '../src/key.js';

test('a key is the event time in UTC to the second and its id', () => {
  assert.equal(
    snapshotKey('2026-11-25T10:04:05.987Z', '2f2c6b8e-1a8f-4a87-9d3c-0b1f4c3f9d11', false),
    '2026/11/25/100405Z-2f2c6b8e-1a8f-4a87-9d3c-0b1f4c3f9d11.json',
  );
  assert.equal(snapshotKey('2026-11-25T23:30:00+02:00', 'a', true), '2026/11/25/213000Z-a.json.gz');
  assert.equal(deadLetterKey('2026-01-02T03:04:05Z', 'a'), 'dead-letters/2026/01/02/030405Z-a.json');
});

test('ids are encoded one-to-one, so different ids never share a key', () => {
  const ids = ['a/b', 'a_b', 'a%2Fb', 'a b', 'é', '../x', 'a'];
  const keys = ids.map((id) => snapshotKey('2026-11-25T10:00:00Z', id, false));
  assert.equal(new Set(keys).size, ids.length);
  assert.equal(keys[0], '2026/11/25/100000Z-a%2Fb.json');
  for (const [i, key] of keys.entries()) assert.equal(parseSnapshotKey(key)?.id, ids[i]);
  assert.ok(
    keys.every((key) => key.split('/').length === 4),
    'no id adds a folder level',
  );
});

test('keys parse back to their instant; other keys do not parse', () => {
  assert.deepEqual(parseSnapshotKey('2026/11/25/100405Z-abc.json.gz'), { time: '2026-11-25T10:04:05Z', id: 'abc', gzip: true });
  assert.equal(parseSnapshotKey('dead-letters/2026/11/25/100405Z-abc.json'), undefined);
  assert.equal(parseSnapshotKey('2026/11/25/notes.txt'), undefined);
});

test('only keys this function writes parse: a real date, an id encoded as it encodes ids', () => {
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
});

test('ids of any characters fit a key; dead letters with ids too long for one get a digest', () => {
  const id = 'é'.repeat(33); // 66 UTF-8 bytes, 198 characters in a key
  assert.equal(parseSnapshotKey(snapshotKey('2026-11-25T10:00:00Z', id, true))?.id, id);
  const long = deadLetterKey('2026-11-25T10:00:00Z', 'é'.repeat(34));
  assert.match(long, /^dead-letters\/2026\/11\/25\/100000Z-sha256-[0-9a-f]{64}\.json$/);
});
