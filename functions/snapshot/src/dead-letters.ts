// The dead-letter sink: Knative sends here the events it gave up on, with its knativeerror*
// attributes. Each is kept as a JSON record under dead-letters/ in the bucket, written once like a
// snapshot, so a dead letter is something to list and read, never only a log line.
import { Readable } from 'node:stream';
import type { CloudEventV1 } from 'cloudevents';
import { deadLetterRecord, type DeadLetterRecord } from '../../../events/src/index.js';
import { deadLetterKey } from './key.js';
import type { SnapshotStore } from './store.js';

export interface StoredDeadLetter {
  key: string;
  created: boolean;
  record: DeadLetterRecord;
}

export async function storeDeadLetter(store: SnapshotStore, event: CloudEventV1<unknown>, receivedAt: Date): Promise<StoredDeadLetter> {
  const record = deadLetterRecord(event, receivedAt);
  // Keyed by the event's own time and id, so Knative redelivering the dead letter keeps one record;
  // an event without a time is keyed by when it arrived.
  const key = deadLetterKey(event.time ?? record.receivedAt, event.id);
  const body = Readable.from([Buffer.from(JSON.stringify(record) + '\n')]);
  const result = await store.writeOnce(key, body, { contentType: 'application/json' });
  return { key, created: result.created, record };
}
