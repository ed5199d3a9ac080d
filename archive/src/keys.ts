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
  const tick = Date.parse(`${year}-${month}-${day}T${hour}:${minute}:${second}Z`);
  if (rangeMs === undefined || rangeMs === 0 || Number.isNaN(tick) || tick % rangeMs !== 0) return undefined;
  return { namespace: namespace!, name: name!, rangeMs, tick, gzip: gz !== undefined };
}

/** `YYYY/MM/DD/HHmmssZ` in UTC. */
export function instantPath(time: string): string {
  const date = new Date(time);
  if (Number.isNaN(date.getTime())) throw new Error(`not a time: ${time}`);
  const iso = date.toISOString(); // YYYY-MM-DDTHH:mm:ss.sssZ
  return `${iso.slice(0, 4)}/${iso.slice(5, 7)}/${iso.slice(8, 10)}/${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
}

// Percent-encoding is one-to-one, so two different ids never share a key, and it leaves UUIDs (what
// Knative sends) readable. Only characters that are safe in keys and URLs everywhere stay as they are.
export function encodeId(id: string): string {
  return Array.from(new TextEncoder().encode(id), (byte) => {
    const c = String.fromCharCode(byte);
    return /[A-Za-z0-9._~-]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }).join('');
}
