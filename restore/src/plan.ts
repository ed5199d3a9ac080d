// Which exports a restore reads, and in what order. Samples must reach the TSDB once each and, per
// series, in time order: exports are read in order of the start of what they hold (then its end),
// and a sample at or before the last one already written for its series is a duplicate. That is
// lossless even where windows overlap (a late retry beside a later export that caught up its
// window): when an export is read, every earlier-read export that reaches past its start holds, as
// Prometheus answered it, all the samples it has up to its own end.
//
// Instant snapshots hold Prometheus's answer at their instant (each sample stamped with it), not the
// raw samples: where a range export read in the same restore holds that instant and everything the
// snapshot asked for (the same PingSource, and each of its queries among the range's selectors), the
// range's raw samples are restored and the snapshot is left out. Any other snapshot is read too: a
// sample of it that a range export also holds is a duplicate like any other.
import {
  DEAD_LETTER_PREFIX,
  instantPath,
  parseRangeKey,
  parseSnapshotKey,
  RANGE_KIND,
  RANGE_PREFIX,
  SNAPSHOT_KIND,
  type ExportHeader,
} from '../../archive/src/index.js';
import type { Bucket } from './bucket.js';
import type { Kind } from './options.js';

/** The furthest back a range export can reach (the function's largest SNAPSHOT_CATCH_UP). */
const maxCatchUpMs = 7 * 24 * 3_600_000;

export interface Selected {
  key: string;
  bytes: number;
  kind: Kind;
  header: ExportHeader;
  /** What it holds: samples in (start, end] for a range export; an instant snapshot's instant is both. */
  start: number;
  end: number;
}

export interface Plan {
  /** In the order to read them. */
  exports: Selected[];
  /** Instant snapshots left out because a range export in the plan holds their instant and their queries. */
  coveredInstants: Selected[];
}

export interface Selection {
  from: number | undefined;
  to: number | undefined;
  prefix: string | undefined;
  source: string | undefined;
  kinds: ReadonlySet<Kind>;
}

export async function planRestore(bucket: Bucket, selection: Selection): Promise<Plan> {
  const found = selection.prefix === undefined ? await byTime(bucket, selection) : await byPrefix(bucket, selection.prefix);
  const inRange = found.filter(
    (s) =>
      selection.kinds.has(s.kind) &&
      (selection.source === undefined ||
        s.header.source.endsWith(`/namespaces/${selection.source.split('/')[0]}/pingsources/${selection.source.split('/')[1]}`)) &&
      overlaps(s, selection),
  );
  return order(inRange);
}

/** Orders the exports and leaves out instants that a range export holds. Pure, for tests. */
export function order(selected: Selected[]): Plan {
  const ranges = selected.filter((s) => s.kind === 'range');
  const coveredInstants = selected.filter((s) => s.kind === 'instant' && ranges.some((r) => covers(r, s)));
  const exports = selected
    .filter((s) => !coveredInstants.includes(s))
    .sort((a, b) => a.start - b.start || a.end - b.end || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { exports, coveredInstants };
}

/** Whether range export r holds all that instant snapshot s does: its instant, of the same PingSource, and each of its queries. */
function covers(r: Selected, s: Selected): boolean {
  if (r.header.kind !== RANGE_KIND || s.header.kind !== SNAPSHOT_KIND) return false;
  const selectors = r.header.selectors;
  return r.header.source === s.header.source && s.header.queries.every((q) => selectors.includes(q)) && s.end > r.start && s.end <= r.end;
}

function overlaps(s: Selected, { from, to }: Selection): boolean {
  if (s.kind === 'instant') return (from === undefined || s.end >= from) && (to === undefined || s.end < to);
  return (from === undefined || s.end >= from) && (to === undefined || s.start < to - 1);
}

async function describe(bucket: Bucket, key: string, bytes: number): Promise<Selected> {
  const header = await bucket.header(key);
  if (header.kind === RANGE_KIND) return { key, bytes, kind: 'range', header, start: Date.parse(header.start), end: Date.parse(header.end) };
  const instant = Date.parse(header.time);
  return { key, bytes, kind: 'instant', header, start: instant, end: instant };
}

async function byPrefix(bucket: Bucket, prefix: string): Promise<Selected[]> {
  const out: Selected[] = [];
  for await (const { key, size } of bucket.list(prefix)) {
    // Dead letters are events, not exports: a prefix that takes in the whole bucket skips them.
    if (key.startsWith(DEAD_LETTER_PREFIX)) continue;
    out.push(await describe(bucket, key, size));
  }
  return out;
}

async function byTime(bucket: Bucket, selection: Selection): Promise<Selected[]> {
  const from = selection.from ?? 0;
  const to = selection.to ?? Number.MAX_SAFE_INTEGER;
  const out: Selected[] = [];
  if (selection.kinds.has('instant')) {
    // Instant keys start with their time: one listing from the first second in range.
    for await (const { key, size } of bucket.list('', instantPath(new Date(from).toISOString()))) {
      const parsed = parseSnapshotKey(key);
      if (!parsed) {
        if (/^\d/.test(key)) continue;
        break; // past the dated keys (dead-letters/, ranges/ sort after digits)
      }
      if (Date.parse(parsed.time) >= to) break;
      out.push(await describe(bucket, key, size));
    }
  }
  if (selection.kinds.has('range')) {
    for (const folder of await rangeFolders(bucket, selection.source)) {
      // Exports ticking at or after `from` hold samples from it on; those ticking at or after `to`
      // may still reach back into the range when they caught up missed ticks: read on until one
      // starts at or after `to`.
      for await (const { key, size } of bucket.list(folder, folder + instantPath(new Date(from).toISOString()))) {
        const parts = parseRangeKey(key);
        if (!parts) continue;
        if (parts.tick > to + maxCatchUpMs + parts.rangeMs) break;
        const selected = await describe(bucket, key, size);
        if (parts.tick >= to && selected.start >= to) break;
        out.push(selected);
      }
    }
  }
  return out;
}

/** ranges/<namespace>/<pingsource>/<range>/ folders, of one PingSource when source is given. */
async function rangeFolders(bucket: Bucket, source: string | undefined): Promise<string[]> {
  const sources = source ? [`${RANGE_PREFIX}${source}/`] : (await Promise.all((await bucket.folders(RANGE_PREFIX)).map((ns) => bucket.folders(ns)))).flat();
  return (await Promise.all(sources.map((s) => bucket.folders(s)))).flat();
}
