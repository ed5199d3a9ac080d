// The two documents an export object holds, written by the snapshot function and read back by restore.
// Both keep Prometheus's own answers verbatim, one per query, after a small header:
//
//   {"kind":"promsnap.snapshot.v1","id":…,"source":…,"time":…,"prometheus":…,"queries":[…],
//    "results":[{"query":…,"response":<answer: a vector at `time`>,"series":N},…],"series":N}
//
//   {"kind":"promsnap.range.v1","id":…,"source":…,"time":…,"prometheus":…,"selectors":[…],
//    "range":"5m","start":…,"end":…,
//    "results":[{"query":"<selector>[…s]","response":<answer: a matrix of raw samples>,"series":N,"samples":M},…],
//    "series":N,"samples":M}
//
// A range export holds every sample of its selectors in (start, end]; end is its tick, and start is
// end - range unless the export also covers missed ticks before it. The header comes first and the
// totals last, so a reader can tell what an object is from its first bytes and that it is whole from
// its last. Keys are in keys.ts, window arithmetic in window.ts.

export const SNAPSHOT_KIND = 'promsnap.snapshot.v1';
export const RANGE_KIND = 'promsnap.range.v1';
export const exportKinds = [SNAPSHOT_KIND, RANGE_KIND] as const;
export type ExportKind = (typeof exportKinds)[number];

interface CommonHeader {
  /** The ping event's id and source (a PingSource), and its time: the instant the export was asked for. */
  id: string;
  source: string;
  time: string;
  /** The Prometheus it was read from. */
  prometheus: string;
}

export interface SnapshotHeader extends CommonHeader {
  kind: typeof SNAPSHOT_KIND;
  /** Instant queries, evaluated at `time`. */
  queries: string[];
}

export interface RangeHeader extends CommonHeader {
  kind: typeof RANGE_KIND;
  /** Series selectors whose samples were exported; each is split into the queries of `results`. */
  selectors: string[];
  /** The PingSource's range (a Prometheus duration), which sets the tick. */
  range: string;
  /** The window, start excluded and end (the tick) included, RFC 3339 in UTC. */
  start: string;
  end: string;
}

export type ExportHeader = SnapshotHeader | RangeHeader;

/** The document's opening bytes, up to and including the `[` of its results. */
export function headerText(header: ExportHeader): string {
  return `${JSON.stringify(header).slice(0, -1)},"results":[`;
}

/** Opens one result: what follows is Prometheus's answer to `query`, then resultTail. */
export function resultHead(query: string, first: boolean): string {
  return `${first ? '' : ','}{"query":${JSON.stringify(query)},"response":`;
}

export function resultTail(counts: { series: number; samples?: number }): string {
  return `,"series":${counts.series}${counts.samples === undefined ? '' : `,"samples":${counts.samples}`}}`;
}

export function trailerText(counts: { series: number; samples?: number }): string {
  return `]${resultTail(counts).slice(0, -1)}}\n`;
}

/** Thrown for an object that is not an export this version can read, naming what is wrong. */
export class NotAnExportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotAnExportError';
  }
}

/** The header's fields as parsed JSON, checked: throws NotAnExportError naming the first problem. */
export function checkHeader(fields: Record<string, unknown>): ExportHeader {
  const kind = fields['kind'];
  if (kind !== SNAPSHOT_KIND && kind !== RANGE_KIND) {
    throw new NotAnExportError(`its "kind" is ${JSON.stringify(kind)}, not one of ${exportKinds.join(', ')}`);
  }
  const text = (name: string): string => {
    const value = fields[name];
    if (typeof value !== 'string' || value === '') throw new NotAnExportError(`${kind} without a "${name}"`);
    return value;
  };
  const time = (name: string): string => {
    const value = text(name);
    if (Number.isNaN(Date.parse(value))) throw new NotAnExportError(`"${name}" ${JSON.stringify(value)} is not a time`);
    return value;
  };
  const list = (name: string): string[] => {
    const value = fields[name];
    if (!Array.isArray(value) || value.length === 0 || !value.every((q) => typeof q === 'string')) {
      throw new NotAnExportError(`${kind} without a list of "${name}"`);
    }
    return value;
  };
  const common = { id: text('id'), source: text('source'), time: time('time'), prometheus: text('prometheus') };
  if (kind === SNAPSHOT_KIND) return { kind, ...common, queries: list('queries') };
  return { kind, ...common, selectors: list('selectors'), range: text('range'), start: time('start'), end: time('end') };
}
