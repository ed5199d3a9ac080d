// One line per snapshot (and dead letter) stored while `npm start` runs, read from the bucket itself
// through the MinIO forward with the snapshot function's own credentials: what landed, how big, how many
// series (from the object's closing `"series":N}`), and how long after its scheduled instant it was stored.
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createS3Client, createStore, type S3Settings } from '../../functions/snapshot/src/store.js';
import { sleep } from '../tools/wait.js';

export interface StoredLine {
  kind: 'snapshot' | 'dead letter';
  key: string;
  bytes: number;
  series?: number;
  /** Milliseconds from the instant the key names to the object's last-modified time. */
  afterInstantMs?: number;
}

/** The instant a key names (YYYY/MM/DD/HHmmssZ-...), as epoch milliseconds. */
export function keyInstant(key: string): number | undefined {
  const match = /(?:^|\/)(\d{4})\/(\d{2})\/(\d{2})\/(\d{2})(\d{2})(\d{2})Z-/.exec(key);
  if (!match) return undefined;
  const [, y, mo, d, h, mi, s] = match;
  return Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
}

/** The series count from a stored snapshot's last bytes (it ends with `"series":N}`). */
export function seriesFromTail(tail: string): number | undefined {
  const match = /"series":(\d+)\}\s*$/.exec(tail);
  return match ? Number(match[1]) : undefined;
}

export function formatStored(line: StoredLine, bucket: string): string {
  const series = line.series === undefined ? '' : `  ${line.series} series`;
  // The key holds whole seconds; a snapshot is stored within the second it was scheduled in.
  const after = line.afterInstantMs === undefined ? '' : `  (stored ${(Math.max(0, line.afterInstantMs) / 1000).toFixed(1)} s after its instant)`;
  return `${line.kind === 'snapshot' ? 'snapshot stored ' : 'dead letter     '} ${bucket}/${line.key}  ${line.bytes} bytes${series}${after}`;
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
  const snapshotsNow = async () => (await list('')).filter((o) => /^\d/.test(o.key));
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
            const series = kind === 'snapshot' ? seriesFromTail(await store.tail(o.key, 64, o.key.endsWith('.gz')).catch(() => '')) : undefined;
            options.onStored({
              kind,
              key: o.key,
              bytes: o.bytes,
              ...(series !== undefined ? { series } : {}),
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
