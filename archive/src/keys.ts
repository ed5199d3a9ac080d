// Where exports live in the bucket. Every key is derived from what the export is of, so each
// redelivery of a ping names the same object and finds it instead of writing a second one; and keys
// sort by time, so a time range is a key range.
//
//   instant snapshots   YYYY/MM/DD/HHmmssZ-<event id>.json[.gz]
//   range exports       ranges/<namespace>/<pingsource>/<range>/YYYY/MM/DD/HHmmssZ.json[.gz]
//   dead letters        dead-letters/YYYY/MM/DD/HHmmssZ-<event id>.json
//
// A range export's key names its PingSource, range and tick but no event id: the next tick must be
// able to find it (or see that it is missing) without knowing which event wrote it.
import { formatDuration, parseDuration } from './duration.js';

export const DEAD_LETTER_PREFIX = 'dead-letters/';
export const RANGE_PREFIX = 'ranges/';

export function snapshotKey(time: string, id: string, gzip: boolean): string {
  return `${instantPath(time)}-${encodeId(id)}.json${gzip ? '.gz' : ''}`;
}

// The id part as encodeId writes it: safe characters and upper-case %XY escapes, nothing else.
const snapshotKeyPattern = /^(\d{4})\/(\d{2})\/(\d{2})\/(\d{2})(\d{2})(\d{2})Z-((?:[A-Za-z0-9._~-]|%[0-9A-F]{2})+)\.json(\.gz)?$/;

/**
 * The instant and id a snapshot key names (time in ISO, whole seconds), or undefined for any key the
 * function would not write: another shape, a date that does not exist, an id not encoded as encodeId
 * encodes it. So a key that parses is safe to hand to the store (no `..` segment, no stray characters).
 */
export function parseSnapshotKey(key: string): { time: string; id: string; gzip: boolean } | undefined {
  const m = snapshotKeyPattern.exec(key);
  if (!m) return undefined;
  const [, year, month, day, hour, minute, second, encodedId, gz] = m;
  const time = `${year}-${month}-${day}T${hour}:${minute}:${second}Z`;
  if (!isRealInstant(time)) return undefined;
  let id: string;
  try {
    id = decodeURIComponent(encodedId!);
  } catch {
    return undefined;
  }
  if (encodeId(id) !== encodedId) return undefined;
  return { time, id, gzip: gz !== undefined };
}

/** Whether `YYYY-MM-DDTHH:mm:ssZ` names a time that exists (no February 30th, no hour 25). */
function isRealInstant(time: string): boolean {
  const ms = Date.parse(time);
  return !Number.isNaN(ms) && new Date(ms).toISOString() === time.replace('Z', '.000Z');
}

/** What a range export is of: the PingSource that asked, the window length, and the tick. */
export interface RangeKeyParts {
  namespace: string;
  name: string;
  rangeMs: number;
  /** Unix milliseconds, a multiple of rangeMs (and so of a second). */
  tick: number;
  gzip: boolean;
}

/** The folder holding every range export of one PingSource and range, in time order. */
export function rangeFolder(namespace: string, name: string, rangeMs: number): string {
  return `${RANGE_PREFIX}${namespace}/${name}/${formatDuration(rangeMs)}/`;
}

export function rangeKey(parts: RangeKeyParts): string {
  if (parts.rangeMs % 1000 !== 0 || parts.tick % parts.rangeMs !== 0) {
    throw new Error(`a range export's tick must be a multiple of its range, in whole seconds (tick ${parts.tick}, range ${parts.rangeMs} ms)`);
  }
  return `${rangeFolder(parts.namespace, parts.name, parts.rangeMs)}${instantPath(new Date(parts.tick).toISOString())}.json${parts.gzip ? '.gz' : ''}`;
}

const rangeKeyPattern = /^ranges\/([^/]+)\/([^/]+)\/([^/]+)\/(\d{4})\/(\d{2})\/(\d{2})\/(\d{2})(\d{2})(\d{2})Z\.json(\.gz)?$/;

/** The parts of a range export's key, or undefined for any other key. */
export function parseRangeKey(key: string): RangeKeyParts | undefined {
  const m = rangeKeyPattern.exec(key);
  if (!m) return undefined;
  const [, namespace, name, range, year, month, day, hour, minute, second, gz] = m;
  const rangeMs = parseDuration(range!);
  const time = `${year}-${month}-${day}T${hour}:${minute}:${second}Z`;
  const tick = Date.parse(time);
  if (rangeMs === undefined || rangeMs === 0 || !isRealInstant(time) || tick % rangeMs !== 0 || formatDuration(rangeMs) !== range) return undefined;
  return { namespace: namespace!, name: name!, rangeMs, tick, gzip: gz !== undefined };
}

/** `YYYY/MM/DD/HHmmssZ` in UTC. */
export function instantPath(time: string): string {
  const date = new Date(time);
  if (Number.isNaN(date.getTime())) throw new Error(`not a time: ${time}`);
  const iso = date.toISOString(); // YYYY-MM-DDTHH:mm:ss.sssZ
  return `${iso.slice(0, 4)}/${iso.slice(5, 7)}/${iso.slice(8, 10)}/${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
}

/**
 * An event id as it appears in a key: every UTF-8 byte percent-encoded but for A-Z, a-z, 0-9 and
 * `. _ ~ -`. One-to-one, so two ids never share a key; no id can add a path segment (`/`) or be one
 * (`..`); UUIDs, what Knative sends, stay readable.
 */
export function encodeId(id: string): string {
  return Array.from(new TextEncoder().encode(id), (byte) => {
    const c = String.fromCharCode(byte);
    return /[A-Za-z0-9._~-]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }).join('');
}
