// The bucket as restore reads it: listings in key (time) order, an export's header from its first
// bytes, an export's content as a stream (inflated when it was stored gzipped). Every failure of the
// store becomes a RestoreError that says which of the usual causes it is.
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { GetObjectCommand, HeadBucketCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { createS3Client, ExportReader, NotAnExportError, type ExportHeader } from '../../archive/src/index.js';
import { exitCodes, RestoreError } from './errors.js';

export interface ListedKey {
  key: string;
  size: number;
}

export interface Bucket {
  readonly name: string;
  /** Fails early, and clearly, when the bucket is missing or the credentials are refused. */
  check(): Promise<void>;
  /** Keys under prefix in key order, starting just after startAfter. */
  list(prefix: string, startAfter?: string): AsyncGenerator<ListedKey>;
  /** The folders (`prefix<name>/`) directly under prefix. */
  folders(prefix: string): Promise<string[]>;
  /** An export's header, read from its first bytes; NotAnExport (exit 6) for anything else. */
  header(key: string): Promise<ExportHeader>;
  /** An export's bytes, inflated when gzipped. */
  open(key: string): Promise<Readable>;
  close(): void;
}

export interface BucketSettings {
  endpoint: string;
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export function openBucket(settings: BucketSettings, client: S3Client = createS3Client(settings)): Bucket {
  const name = settings.bucket;
  const where = `bucket ${name} at ${settings.endpoint}`;

  const get = async (key: string): Promise<Readable> => {
    try {
      const res = await client.send(new GetObjectCommand({ Bucket: name, Key: key }));
      const body = res.Body as Readable;
      const gzip = key.endsWith('.gz') || res.ContentType === 'application/gzip' || res.ContentEncoding === 'gzip';
      if (!gzip) return body;
      const gunzip = createGunzip();
      body.on('error', (err) => gunzip.destroy(err));
      return body.pipe(gunzip);
    } catch (err) {
      throw storeFailure(err, where, `reading ${key}`);
    }
  };

  return {
    name,
    async check() {
      try {
        await client.send(new HeadBucketCommand({ Bucket: name }));
      } catch (err) {
        throw storeFailure(err, where, 'opening the bucket');
      }
    },

    async *list(prefix, startAfter) {
      let token: string | undefined;
      do {
        let res;
        try {
          res = await client.send(
            new ListObjectsV2Command({
              Bucket: name,
              Prefix: prefix,
              ...(token ? { ContinuationToken: token } : startAfter ? { StartAfter: startAfter } : {}),
            }),
          );
        } catch (err) {
          throw storeFailure(err, where, `listing ${prefix || 'the bucket'}`);
        }
        for (const object of res.Contents ?? []) if (object.Key) yield { key: object.Key, size: object.Size ?? 0 };
        token = res.IsTruncated ? res.NextContinuationToken : undefined;
      } while (token);
    },

    async folders(prefix) {
      const out: string[] = [];
      let token: string | undefined;
      do {
        let res;
        try {
          res = await client.send(new ListObjectsV2Command({ Bucket: name, Prefix: prefix, Delimiter: '/', ...(token ? { ContinuationToken: token } : {}) }));
        } catch (err) {
          throw storeFailure(err, where, `listing ${prefix}`);
        }
        for (const p of res.CommonPrefixes ?? []) if (p.Prefix) out.push(p.Prefix);
        token = res.IsTruncated ? res.NextContinuationToken : undefined;
      } while (token);
      return out.sort();
    },

    async header(key) {
      const body = await get(key);
      const reader = new ExportReader();
      try {
        for await (const chunk of fromStore(body)) {
          for (const item of reader.push(chunk)) if (item.type === 'header') return item.header;
        }
        reader.end();
        throw new NotAnExportError('it has no results');
      } catch (err) {
        throw readFailure(err, where, key);
      } finally {
        body.destroy();
      }
    },

    open: get,
    close: () => client.destroy(),
  };
}

/** A failure of the object's byte stream itself: the store's (or the network's), not its content's. */
class StoreStreamError extends Error {
  constructor(readonly failure: unknown) {
    super((failure as Error)?.message ?? String(failure), { cause: failure });
    this.name = 'StoreStreamError';
  }
}

/**
 * An object's bytes as they stream from the store, each chunk counted; a failure of the stream is
 * marked as the store's, so readFailure can tell it from a failure to read what the bytes hold. Bytes
 * that do not inflate (a `.gz` that is not gzip) are the object's fault, not the store's.
 */
export async function* fromStore(body: AsyncIterable<unknown>, add: (n: number) => void = () => undefined): AsyncGenerator<Buffer> {
  const chunks = body[Symbol.asyncIterator]();
  for (;;) {
    let step: IteratorResult<unknown>;
    try {
      step = await chunks.next();
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'string' && code.startsWith('Z_')) throw new NotAnExportError(`it does not inflate as gzip: ${(err as Error).message}`);
      throw new StoreStreamError(err);
    }
    if (step.done) return;
    const buffer = step.value as Buffer;
    add(buffer.length);
    yield buffer;
  }
}

/**
 * Why reading an export failed, as the user can act on it: the store failing (its stream broke), the
 * object not being an export (exit 6), or anything else, named as restore's own failure to read it,
 * never blamed on the store.
 */
export function readFailure(err: unknown, where: string, key: string): RestoreError {
  if (err instanceof RestoreError) return err;
  if (err instanceof StoreStreamError) return storeFailure(err.failure, where, `reading ${key}`);
  if (err instanceof NotAnExportError) return notAnExport(key, err);
  return new RestoreError([`restore could not read ${key}: ${(err as Error)?.message ?? String(err)}`], exitCodes.failed, { cause: err });
}

export function notAnExport(key: string, err: Error): RestoreError {
  return new RestoreError(
    [`${key} is not a promsnap export: ${err.message}.`, 'Restore reads what the snapshot function stores; narrow --prefix to its exports (ranges/ or YYYY/).'],
    exitCodes.notAnExport,
    { cause: err },
  );
}

/** The store's failure as the cause a user can act on. */
export function storeFailure(err: unknown, where: string, doing: string): RestoreError {
  const e = err as { name?: string; Code?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const code = e.Code ?? e.name ?? '';
  const status = e.$metadata?.httpStatusCode;
  const detail = e.message ?? String(err);
  if (code === 'NoSuchBucket' || (doing === 'opening the bucket' && (code === 'NotFound' || status === 404))) {
    return new RestoreError([`${where} does not exist.`, 'Check S3_BUCKET (or --bucket) and S3_ENDPOINT.'], exitCodes.bucket, { cause: err });
  }
  if (['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied', 'Forbidden', 'InvalidToken', 'ExpiredToken'].includes(code) || status === 403) {
    return new RestoreError(
      [
        `the store refused the credentials for ${where} while ${doing} (${code || status}).`,
        'Check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: a user that may list and read the bucket.',
      ],
      exitCodes.credentials,
      { cause: err },
    );
  }
  const network = typeof e.code === 'string' && /^(ECONN|ENOTFOUND|EAI_AGAIN|EHOST|ENET|ETIMEDOUT)/.test(e.code);
  if (network || code === 'TimeoutError') {
    return new RestoreError(
      [`cannot reach the object store for ${where} (${e.code ?? code}): ${detail}.`, 'Check S3_ENDPOINT and that the store is running.'],
      exitCodes.bucket,
      {
        cause: err,
      },
    );
  }
  return new RestoreError([`the object store failed while ${doing} in ${where}: ${code ? `${code}: ` : ''}${detail}`], exitCodes.failed, { cause: err });
}
