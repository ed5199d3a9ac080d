import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HTTP } from 'cloudevents';
import {
  EventValidationError,
  SNAPSHOT_STORED_TYPE,
  createSnapshotStoredEvent,
  receiveEvent,
  validateSnapshotStoredEvent,
  type SnapshotStoredData,
} from '../src/index.js';

const data: SnapshotStoredData = {
  bucket: 'snapshots',
  key: '2026/11/25/100000Z-abc.json',
  bytes: 1234,
  series: 56,
  durationMs: 78.5,
  queries: ['{__name__!=""}'],
  time: '2026-11-25T10:00:00.123Z',
};

test('the stored event carries the snapshot and survives a binary round trip', () => {
  const event = createSnapshotStoredEvent({ source: '/promsnap/snapshot', id: 'abc', time: '2026-11-25T10:00:01Z', data });
  assert.equal(event.type, SNAPSHOT_STORED_TYPE);
  assert.equal(event.subject, data.key);
  const message = HTTP.binary(event);
  const received = receiveEvent({ headers: message.headers, body: String(message.body) });
  assert.ok(received.ok, JSON.stringify(received));
  const checked = validateSnapshotStoredEvent(received.value.event);
  assert.ok(checked.ok, JSON.stringify(checked));
  assert.deepEqual(checked.value.data, data);
});

test('incomplete or wrong stored data is refused with every problem', () => {
  assert.throws(
    () =>
      createSnapshotStoredEvent({
        source: '/promsnap/snapshot',
        id: 'abc',
        time: new Date(),
        data: { ...data, bytes: -1, series: 1.5, extra: 1, key: undefined } as never,
      }),
    (err: unknown) => {
      assert.ok(err instanceof EventValidationError);
      assert.deepEqual(err.problems, [
        'data.key is required',
        'data has unknown property "extra"',
        'data.bytes must be >= 0',
        'data.series must be of type integer',
      ]);
      return true;
    },
  );
  const wrong = validateSnapshotStoredEvent({ specversion: '1.0', id: '1', source: 's', type: 'other', data: '{' });
  assert.equal(wrong.ok, false);
  assert.equal(wrong.problems.length, 2);
});
