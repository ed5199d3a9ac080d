// What instant snapshots and range exports both record about a stored object, and how they answer a
// ping with it: the metadata naming the event the object was written for (a key that holds another
// event is a conflict), and the com.promsnap.snapshot.stored reply.
import type { CloudEvent } from 'cloudevents';
import { createSnapshotStoredEvent, type PingEvent, type SnapshotStoredData } from '../../../events/src/index.js';
import type { ObjectInfo } from './store.js';

const META_ID = 'event-id';
const META_SOURCE = 'event-source';
const META_TIME = 'event-time';

/** The event an object is written for, as object metadata (percent-encoded: metadata values are ASCII). */
export function eventMetadata(ping: PingEvent): Record<string, string> {
  return { [META_ID]: encodeURIComponent(ping.id), [META_SOURCE]: encodeURIComponent(ping.source), [META_TIME]: ping.time };
}

/** The event a stored object was written for, from its metadata; undefined where it does not say. */
export function storedFor(object: ObjectInfo): { id: string | undefined; source: string | undefined } {
  return { id: decode(object.metadata[META_ID]), source: decode(object.metadata[META_SOURCE]) };
}

function decode(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** The reply to a ping whose object is stored (now, or by an earlier delivery of the same ping). */
export function storedReply(
  from: { source: string; bucket: string },
  ping: PingEvent,
  object: ObjectInfo,
  found: { series: number; queries: string[]; durationMs: number; range?: SnapshotStoredData['range'] },
): CloudEvent<SnapshotStoredData> {
  return createSnapshotStoredEvent({
    source: from.source,
    id: ping.id,
    time: object.lastModified,
    data: {
      bucket: from.bucket,
      key: object.key,
      bytes: object.bytes,
      series: found.series,
      durationMs: found.durationMs,
      queries: found.queries,
      time: ping.time,
      ...(found.range ? { range: found.range } : {}),
    },
  });
}
