// Object keys. A snapshot's key is derived from its ping alone (time and id), so every delivery of the
// same ping names the same object: a redelivery finds it instead of writing a second one. Keys sort by
// the instant they capture, which is what GET /lastdata relies on.
import { createHash } from 'node:crypto';
import { MAX_EVENT_ID_LENGTH, eventIdInKey, isRfc3339 } from '../../../events/src/index.js';

export const DEAD_LETTER_PREFIX = 'dead-letters/';

export function snapshotKey(time: string, id: string, gzip: boolean): string {
  return `${instantPath(time)}-${eventIdInKey(id)}.json${gzip ? '.gz' : ''}`;
}

export function deadLetterKey(time: string, id: string): string {
  // Dead letters are kept whatever their id; one too long for a key is named by its digest instead.
  const encoded = eventIdInKey(id);
  const name = encoded.length > MAX_EVENT_ID_LENGTH ? `sha256-${createHash('sha256').update(id).digest('hex')}` : encoded;
  return `${DEAD_LETTER_PREFIX}${instantPath(time)}-${name}.json`;
}

// The id part as eventIdInKey writes it: safe characters and upper-case %XY escapes, nothing else.
const snapshotKeyPattern = /^(\d{4})\/(\d{2})\/(\d{2})\/(\d{2})(\d{2})(\d{2})Z-((?:[A-Za-z0-9._~-]|%[0-9A-F]{2})+)\.json(\.gz)?$/;

/**
 * The instant and id a snapshot key names (time in ISO, whole seconds), or undefined for any key this
 * function would not write: another shape, a date that does not exist, an id not encoded as
 * eventIdInKey encodes it. So a key that parses is safe to hand to the store (no `..` segment, no
 * stray characters).
 */
export function parseSnapshotKey(key: string): { time: string; id: string; gzip: boolean } | undefined {
  const m = snapshotKeyPattern.exec(key);
  if (!m) return undefined;
  const [, year, month, day, hour, minute, second, encodedId, gz] = m;
  const time = `${year}-${month}-${day}T${hour}:${minute}:${second}Z`;
  if (!isRfc3339(time)) return undefined;
  let id: string;
  try {
    id = decodeURIComponent(encodedId!);
  } catch {
    return undefined;
  }
  if (eventIdInKey(id) !== encodedId) return undefined;
  return { time, id, gzip: gz !== undefined };
}

/** `YYYY/MM/DD/HHmmssZ` in UTC: the part of a key that names the instant. */
export function instantPath(time: string): string {
  const date = new Date(time);
  if (Number.isNaN(date.getTime())) throw new Error(`not a time: ${time}`);
  const iso = date.toISOString(); // YYYY-MM-DDTHH:mm:ss.sssZ
  return `${iso.slice(0, 4)}/${iso.slice(5, 7)}/${iso.slice(8, 10)}/${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
}
