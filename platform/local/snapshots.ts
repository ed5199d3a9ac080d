// One line per snapshot (and dead letter) stored while `npm start` runs, read from the bucket itself
// through the MinIO forward with the snapshot function's own credentials: what landed, how big, how many
// series (from the object's closing `"series":N}`, range exports `"series":N,"samples":M}`), the window a
// range export covers, and how long after its scheduled instant it was stored.
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { formatDuration } from '../../archive/src/duration.js';
import { parseRangeKey, RANGE_PREFIX } from '../../archive/src/keys.js';
import { createS3Client, createStore, type S3Settings } from '../../functions/snapshot/src/store.js';
import { sleep } from '../tools/wait.js';

export interface StoredLine {
  kind: 'snapshot' | 'dead letter';
  key: string;
  bytes: number;
  series?: number;
  /** A range export's window (start excluded, end = its tick, epoch ms) and how many samples it holds. */
  range?: { range: string; start: number; end: number; samples?: number };
  /** Milliseconds from the instant the key names to the object's last-modified time. */
  afterInstantMs?: number;
}

/** The instant a key names (YYYY/MM/DD/HHmmssZ-... or a range export's ...HHmmssZ.json), as epoch milliseconds. */
export function keyInstant(key: string): number | undefined {
  const match = /(?:^|\/)(\d{4})\/(\d{2})\/(\d{2})\/(\d{2})(\d{2})(\d{2})Z[-.]/.exec(key);
  if (!match) return undefined;
  const [, y, mo, d, h, mi, s] = match;
  return Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
}

/** The counts from a stored object's last bytes: a snapshot ends with `"series":N}`, a range export with `"series":N,"samples":M}`. */
export function countsFromTail(tail: string): { series: number; samples?: number } | undefined {
  const match = /"series":(\d+)(?:,"samples":(\d+))?\}\s*$/.exec(tail);
  if (!match) return undefined;
  return { series: Number(match[1]), ...(match[2] !== undefined ? { samples: Number(match[2]) } : {}) };
}

/** A range export's window from its key: (tick - range, tick]. */
export function rangeWindow(key: string): { range: string; start: number; end: number } | undefined {
  const parts = parseRangeKey(key);
  return parts ? { range: formatDuration(parts.rangeMs), start: parts.tick - parts.rangeMs, end: parts.tick } : undefined;
}

const clock = (ms: number) => new Date(ms).toISOString().slice(11, 19);

export function formatStored(line: StoredLine, bucket: string): string {
  const series = line.series === undefined ? '' : `  ${line.series} series`;
  const window = line.range
    ? `${line.range.samples === undefined ? '' : `  ${line.range.samples} samples`} from ${clock(line.range.start)} to ${clock(line.range.end)}`
    : '';
  // The key holds whole seconds; a snapshot is stored within the second it was scheduled in.
  const after = line.afterInstantMs === undefined ? '' : `  (stored ${(Math.max(0, line.afterInstantMs) / 1000).toFixed(1)} s after its instant)`;
  return `${line.kind === 'snapshot' ? 'snapshot stored ' : 'dead letter     '} ${bucket}/${line.key}  ${line.bytes} bytes${series}${window}${after}`;
}

export interface SnapshotWatcher {
  /** Objects stored before `since` (kept from earlier runs), once the bucket could be listed. */
  readonly kept: Promise<{ snapshots: number; deadLetters: number }>;
  stop(): Promise<void>;
}

export function watchSnapshots(options: {
  s3: S3Settings;
  bucket: string;
  /** Objects stored before this are kept from earlier runs (counted, not printed). */
  since: Date;
  onStored: (line: StoredLine) => void;
  intervalMs?: number;
}): SnapshotWatcher {
  const client = createS3Client(options.s3);
  const store = createStore({ client, bucket: options.bucket });
  const seen = new Set<string>();
  let stopped = false;
  const stopSignal = new AbortController();

  const list = async (prefix: string) => {
    const keys: Array<{ key: string; bytes: number; lastModified: Date | undefined }> = [];
    let token: string | undefined;
    do {
      const res = await client.send(new ListObjectsV2Command({ Bucket: options.bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
      for (const o of res.Contents ?? []) if (o.Key) keys.push({ key: o.Key, bytes: o.Size ?? 0, lastModified: o.LastModified });
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return keys;
  };
  // Instant snapshots at the bucket's date folders, range exports under ranges/.
  const snapshotsNow = async () => (await list('')).filter((o) => /^\d/.test(o.key) || o.key.startsWith(RANGE_PREFIX));
  const deadLettersNow = () => list('dead-letters/');

  const kept = (async () => {
    // MinIO and its bucket may not be there yet when watching begins: the setup Job makes the bucket.
    for (;;) {
      try {
        const old = (objects: Array<{ key: string; lastModified: Date | undefined }>) =>
          objects.filter((o) => (o.lastModified?.getTime() ?? 0) < options.since.getTime());
        const [snapshots, deadLetters] = [old(await snapshotsNow()), old(await deadLettersNow())];
        for (const o of [...snapshots, ...deadLetters]) seen.add(o.key);
        return { snapshots: snapshots.length, deadLetters: deadLetters.length };
      } catch (err) {
        if (stopped) throw err;
        await sleep(1_000, stopSignal.signal);
      }
    }
  })();

  const loop = (async () => {
    await kept.catch(() => undefined);
    while (!stopped) {
      try {
        for (const [kind, objects] of [
          ['snapshot', await snapshotsNow()],
          ['dead letter', await deadLettersNow()],
        ] as const) {
          for (const o of objects.filter((o) => !seen.has(o.key)).sort((a, b) => a.key.localeCompare(b.key))) {
            seen.add(o.key);
            const instant = keyInstant(o.key);
            const counts = kind === 'snapshot' ? countsFromTail(await store.tail(o.key, 96, o.key.endsWith('.gz')).catch(() => '')) : undefined;
            const window = rangeWindow(o.key);
            options.onStored({
              kind,
              key: o.key,
              bytes: o.bytes,
              ...(counts !== undefined ? { series: counts.series } : {}),
              ...(window ? { range: { ...window, ...(counts?.samples !== undefined ? { samples: counts.samples } : {}) } } : {}),
              ...(instant !== undefined && o.lastModified ? { afterInstantMs: o.lastModified.getTime() - instant } : {}),
            });
          }
        }
      } catch {
        // MinIO restarting, or the cluster stopping: the next round tries again.
      }
      await sleep(options.intervalMs ?? 1_000, stopSignal.signal);
    }
  })();

  return {
    kept,
    async stop() {
      stopped = true;
      stopSignal.abort();
      await loop;
      client.destroy();
    },
  };
}
