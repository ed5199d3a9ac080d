// The bucket: snapshots and dead letters written once each, streamed in bounded memory, and read back
// for /lastdata and /snapshots.
//
// Written once: every write is conditional (If-None-Match: *, on PutObject and on
// CompleteMultipartUpload), so the store itself refuses to replace an existing object; MinIO checks
// the condition under its object lock (cmd/erasure-object.go, cmd/erasure-multipart.go), and so does
// AWS S3. A HEAD first answers the common redelivery without querying Prometheus at all. A store that
// ignores the header would let two *concurrent* deliveries of one event both write: the same key and
// the same instant's data, last writer wins; never one event over another, as keys carry the event id.
//
// Streamed: multipart-writer.ts cuts the body into parts of `partSize` and sends at most `queueSize`
// at once, so memory is about (queueSize + 1) x partSize whatever the snapshot's size. When the body
// fails (Prometheus's answer breaks off) it aborts the multipart upload before it rejects, so neither
// an object nor stored parts remain.
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  NoSuchKey,
  NotFound,
  S3ServiceException,
  type S3Client,
  type _Object,
} from '@aws-sdk/client-s3';
import { RetryableError } from './errors.js';
import { parseRangeKey, RANGE_PREFIX } from '../../../archive/src/keys.js';
import { instantPath, parseSnapshotKey } from './key.js';
import { writeObjectOnce } from './multipart-writer.js';

export { createS3Client, type S3Settings } from '../../../archive/src/s3.js';

export interface ObjectInfo {
  key: string;
  bytes: number;
  lastModified: Date;
  contentType: string | undefined;
  /** User metadata (x-amz-meta-*), names in lower case. */
  metadata: Record<string, string>;
}

export interface WriteOptions {
  contentType: string;
  metadata?: Record<string, string>;
}

export type WriteResult = { created: true; object: ObjectInfo } | { created: false; object: ObjectInfo };

export interface ListedObject {
  key: string;
  size: number;
  /** The instant the snapshot captured (from its key). */
  time: string;
  lastModified: string | undefined;
}

export interface SnapshotStore {
  readonly bucket: string;
  head(key: string): Promise<ObjectInfo | undefined>;
  /** Streams body to key unless key exists; an existing object is left as it is and described. */
  writeOnce(key: string, body: Readable, options: WriteOptions): Promise<WriteResult>;
  /** The object's bytes as a stream, or undefined when it does not exist. */
  open(key: string): Promise<{ info: ObjectInfo; body: Readable } | undefined>;
  /** The last `bytes` bytes of the object's content, decompressed first when gzip is true. */
  tail(key: string, bytes: number, gzip: boolean): Promise<string>;
  /**
   * The snapshot whose key names the latest instant not after `notAfter` (default: no bound). Objects
   * for later instants are passed over, so none can stand as the newest for good.
   */
  newestSnapshot(notAfter?: Date): Promise<ListedObject | undefined>;
  /** The range export whose tick is the latest not after `notAfter`, of any PingSource and range. */
  newestRangeExport(notAfter?: Date): Promise<ListedObject | undefined>;
  /** Snapshots in key (time) order, from just after `after`. */
  listSnapshots(options: { limit: number; after?: string }): Promise<{ items: ListedObject[]; next: string | null }>;
  /** The last key under prefix that sorts after `after` and before `before`, if any (range exports' catch-up). */
  lastKeyBetween(prefix: string, after: string, before: string): Promise<string | undefined>;
  /** Every key under prefix that sorts after `after` and before `before`, in key order. */
  keysBetween(prefix: string, after: string, before: string): Promise<string[]>;
  /** The first key under prefix, if any: one listing of one key. */
  firstKey(prefix: string): Promise<string | undefined>;
}

export interface StoreOptions {
  client: S3Client;
  bucket: string;
  /** Bytes per multipart part (at least 5 MiB, S3's minimum). */
  partSize?: number;
  /** Parts uploaded at once. */
  queueSize?: number;
}

export const defaultPartSize = 5 * 1024 * 1024;
export const defaultQueueSize = 2;

export function createStore(options: StoreOptions): SnapshotStore {
  const { client, bucket } = options;
  const partSize = options.partSize ?? defaultPartSize;
  const queueSize = options.queueSize ?? defaultQueueSize;

  const head = async (key: string): Promise<ObjectInfo | undefined> => {
    try {
      const res = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return {
        key,
        bytes: res.ContentLength ?? 0,
        lastModified: res.LastModified ?? new Date(0),
        contentType: res.ContentType,
        metadata: res.Metadata ?? {},
      };
    } catch (err) {
      if (err instanceof NotFound || err instanceof NoSuchKey || statusOf(err) === 404) {
        if (errorName(err) === 'NoSuchBucket') throw storageFailure(err, `bucket ${bucket} does not exist`);
        return undefined;
      }
      throw storageFailure(err, `HEAD ${key}`);
    }
  };

  const store: SnapshotStore = {
    bucket,
    head,

    async writeOnce(key, body, writeOptions) {
      try {
        await writeObjectOnce({ client, bucket, key, body, contentType: writeOptions.contentType, metadata: writeOptions.metadata, partSize, queueSize });
      } catch (err) {
        body.destroy();
        // Another delivery of the same event stored it first (412); an S3 write of it still in
        // flight (409 ConditionalRequestConflict) is retried and then finds the object.
        if (statusOf(err) === 412 || errorName(err) === 'PreconditionFailed') {
          const existing = await head(key);
          if (existing) return { created: false, object: existing };
        }
        if (err instanceof RetryableError || !(err instanceof S3ServiceException || isNetworkError(err))) throw err;
        throw storageFailure(err, `upload of ${key}`);
      }
      // The reply must describe what is stored, so the size and time come from the store itself.
      const object = await head(key);
      if (!object) throw new RetryableError('storage_unavailable', 503, `${key} was written but cannot be found`);
      return { created: true, object };
    },

    async open(key) {
      try {
        const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        return {
          info: {
            key,
            bytes: res.ContentLength ?? 0,
            lastModified: res.LastModified ?? new Date(0),
            contentType: res.ContentType,
            metadata: res.Metadata ?? {},
          },
          body: res.Body as Readable,
        };
      } catch (err) {
        if (err instanceof NoSuchKey || errorName(err) === 'NoSuchKey') return undefined;
        throw storageFailure(err, `GET ${key}`);
      }
    },

    async tail(key, bytes, gzip) {
      try {
        if (!gzip) {
          const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=-${bytes}` }));
          return await (res.Body as { transformToString(): Promise<string> }).transformToString();
        }
        // A gzip stream can only be read from its start; this path serves rare redeliveries only.
        const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        let last = Buffer.alloc(0);
        for await (const chunk of (res.Body as Readable).pipe(createGunzip())) {
          last = Buffer.concat([last, chunk as Buffer]);
          if (last.length > bytes) last = last.subarray(last.length - bytes);
        }
        return last.toString('utf8');
      } catch (err) {
        throw storageFailure(err, `reading the end of ${key}`);
      }
    },

    newestSnapshot: (notAfter) => newestDated('', notAfter, listed),

    async newestRangeExport(notAfter) {
      // ranges/<namespace>/<pingsource>/<range>/ folders, each dated as the snapshots are.
      const sources = await Promise.all((await listPrefixes(RANGE_PREFIX)).map((ns) => listPrefixes(ns)));
      const folders = (await Promise.all(sources.flat().map((source) => listPrefixes(source)))).flat();
      const newest = await Promise.all(folders.map((folder) => newestDated(folder, notAfter, listedRange)));
      return newest.reduce<ListedObject | undefined>((best, item) => (item && (!best || item.time > best.time) ? item : best), undefined);
    },

    async listSnapshots({ limit, after }) {
      const items: ListedObject[] = [];
      let startAfter = after;
      let token: string | undefined;
      for (;;) {
        const res = await list({ MaxKeys: Math.min(1000, limit + 1), ...(token ? { ContinuationToken: token } : { StartAfter: startAfter }) });
        for (const object of res.Contents ?? []) {
          const key = object.Key ?? '';
          // Snapshot keys start with a digit; anything sorting after '9' (dead-letters/) comes after them all.
          if (key.charCodeAt(0) > 0x39) return { items, next: null };
          const item = listed(object);
          if (!item) continue;
          if (items.length === limit) return { items, next: items.at(-1)!.key };
          items.push(item);
        }
        if (!res.IsTruncated || !res.NextContinuationToken) return { items, next: null };
        token = res.NextContinuationToken;
        startAfter = undefined;
      }
    },

    lastKeyBetween,

    async keysBetween(prefix, after, before) {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const res = await list({ Prefix: prefix, ...(token ? { ContinuationToken: token } : { StartAfter: after }) });
        for (const object of res.Contents ?? []) {
          if (!object.Key || object.Key >= before) return keys;
          keys.push(object.Key);
        }
        token = res.IsTruncated ? res.NextContinuationToken : undefined;
      } while (token);
      return keys;
    },

    async firstKey(prefix) {
      const res = await list({ Prefix: prefix, MaxKeys: 1 });
      return res.Contents?.[0]?.Key;
    },
  };

  /**
   * The newest object under `prefix` whose key goes on YYYY/MM/DD/HHmmssZ…: walks down the newest year,
   * month and day that hold one, listing a few prefixes and one day instead of every object ever
   * stored. Fixed-width digits compare as text, so a prefix or key later than the bound's own is
   * passed over.
   */
  async function newestDated(
    prefix: string,
    notAfter: Date | undefined,
    toListed: (object: _Object) => ListedObject | undefined,
  ): Promise<ListedObject | undefined> {
    const bound = notAfter ? instantPath(notAfter.toISOString()) : undefined;
    const early = (path: string) => bound === undefined || path.slice(0, bound.length) <= bound.slice(0, path.length);
    const levels = [/^\d{4}\/$/, /^\d{4}\/\d{2}\/$/, /^\d{4}\/\d{2}\/\d{2}\/$/];
    const descend = async (path: string, depth: number): Promise<ListedObject | undefined> => {
      if (depth === levels.length) {
        const day = (await listAll(prefix + path))
          .map(toListed)
          .filter((item): item is ListedObject => item !== undefined && early(item.key.slice(prefix.length)));
        return day.at(-1);
      }
      const children = (await listPrefixes(prefix + path))
        .map((p) => p.slice(prefix.length))
        .filter((p) => levels[depth]!.test(p) && early(p))
        .sort()
        .reverse();
      for (const child of children) {
        const found = await descend(child, depth + 1);
        if (found) return found;
      }
      return undefined;
    };
    return descend('', 0);
  }

  async function lastKeyBetween(prefix: string, after: string, before: string): Promise<string | undefined> {
    let last: string | undefined;
    let token: string | undefined;
    do {
      const res = await list({ Prefix: prefix, ...(token ? { ContinuationToken: token } : { StartAfter: after }) });
      for (const object of res.Contents ?? []) {
        if (!object.Key || object.Key >= before) return last;
        last = object.Key;
      }
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return last;
  }

  async function list(input: { Prefix?: string; Delimiter?: string; MaxKeys?: number; StartAfter?: string | undefined; ContinuationToken?: string }) {
    try {
      return await client.send(new ListObjectsV2Command({ Bucket: bucket, ...input }));
    } catch (err) {
      throw storageFailure(err, `listing ${bucket}`);
    }
  }

  async function listPrefixes(prefix: string): Promise<string[]> {
    const out: string[] = [];
    let token: string | undefined;
    do {
      const res = await list({ Prefix: prefix, Delimiter: '/', ...(token ? { ContinuationToken: token } : {}) });
      for (const p of res.CommonPrefixes ?? []) if (p.Prefix) out.push(p.Prefix);
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  async function listAll(prefix: string): Promise<_Object[]> {
    const out: _Object[] = [];
    let token: string | undefined;
    do {
      const res = await list({ Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) });
      out.push(...(res.Contents ?? []));
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  return store;
}

function listed(object: _Object): ListedObject | undefined {
  const parsed = object.Key ? parseSnapshotKey(object.Key) : undefined;
  if (!parsed) return undefined;
  return { key: object.Key!, size: object.Size ?? 0, time: parsed.time, lastModified: object.LastModified?.toISOString() };
}

function listedRange(object: _Object): ListedObject | undefined {
  const parsed = object.Key ? parseRangeKey(object.Key) : undefined;
  if (!parsed) return undefined;
  return {
    key: object.Key!,
    size: object.Size ?? 0,
    time: new Date(parsed.tick).toISOString().replace('.000Z', 'Z'),
    lastModified: object.LastModified?.toISOString(),
  };
}

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

function errorName(err: unknown): string | undefined {
  return (err as { name?: string; Code?: string })?.Code ?? (err as { name?: string })?.name;
}

function isNetworkError(err: unknown): boolean {
  const code = (err as { code?: string })?.code;
  const name = (err as { name?: string })?.name;
  return (
    (typeof code === 'string' && /^(ECONN|ENOTFOUND|EAI_AGAIN|EHOST|ENET|EPIPE|ETIMEDOUT)/.test(code)) || name === 'TimeoutError' || name === 'RequestTimeout'
  );
}

/** Any failure talking to the store: the event is fine, so the delivery is retried. */
function storageFailure(err: unknown, what: string): RetryableError {
  if (err instanceof RetryableError) return err;
  const status = statusOf(err);
  const name = errorName(err) ?? 'Error';
  const detail = err instanceof Error ? err.message : String(err);
  return new RetryableError('storage_unavailable', 503, `object store failed during ${what} (${name}${status ? ` ${status}` : ''}): ${detail}`, { cause: err });
}
