// Object keys. A snapshot's key is derived from its ping alone (time and id), so every delivery of the
// same ping names the same object: a redelivery finds it instead of writing a second one. Keys sort by
// the instant they capture, which is what GET /lastdata relies on.
import { createHash } from 'node:crypto';
import { MAX_EVENT_ID_LENGTH } from '../../../events/src/index.js';

export const DEAD_LETTER_PREFIX = 'dead-letters/';

export function snapshotKey(time: string, id: string, gzip: boolean): string {
  return `${instantPath(time)}-${encodeId(id)}.json${gzip ? '.gz' : ''}`;
}

export function deadLetterKey(time: string, id: string): string {
  // Dead letters are kept whatever their id; one too long for a key is named by its digest instead.
  const name = id.length > MAX_EVENT_ID_LENGTH ? `sha256-${createHash('sha256').update(id).digest('hex')}` : encodeId(id);
  return `${DEAD_LETTER_PREFIX}${instantPath(time)}-${name}.json`;
}

const snapshotKeyPattern = /^(\d{4})\/(\d{2})\/(\d{2})\/(\d{2})(\d{2})(\d{2})Z-(.+)\.json(\.gz)?$/;

/** The instant a snapshot key names (ISO, whole seconds), or undefined for keys that are not snapshots. */
export function parseSnapshotKey(key: string): { time: string; id: string; gzip: boolean } | undefined {
  const m = snapshotKeyPattern.exec(key);
  if (!m) return undefined;
  const [, year, month, day, hour, minute, second, encodedId, gz] = m;
  let id: string;
  try {
    id = decodeURIComponent(encodedId!);
  } catch {
    return undefined;
  }
  return { time: `${year}-${month}-${day}T${hour}:${minute}:${second}Z`, id, gzip: gz !== undefined };
}

/** `YYYY/MM/DD/HHmmssZ` in UTC. */
function instantPath(time: string): string {
  const date = new Date(time);
  if (Number.isNaN(date.getTime())) throw new Error(`not a time: ${time}`);
  const iso = date.toISOString(); // YYYY-MM-DDTHH:mm:ss.sssZ
  return `${iso.slice(0, 4)}/${iso.slice(5, 7)}/${iso.slice(8, 10)}/${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
}

// Percent-encoding is one-to-one, so two different ids never share a key, and it leaves UUIDs (what
// Knative sends) readable. Only characters that are safe in keys and URLs everywhere stay as they are.
function encodeId(id: string): string {
  return Array.from(new TextEncoder().encode(id), (byte) => {
    const c = String.fromCharCode(byte);
    return /[A-Za-z0-9._~-]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }).join('');
}
