// The command line of `npm run restore`, with the bucket's settings read from the environment the
// snapshot function takes them from (S3_ENDPOINT, S3_BUCKET, S3_REGION, AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY). Everything is checked before the bucket is touched.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { usageError } from './errors.js';

export type Kind = 'range' | 'instant';

export interface RestoreOptions {
  s3: { endpoint: string; bucket: string; region: string; accessKeyId: string; secretAccessKey: string };
  /** Samples restored: from included, to excluded (Unix ms); unbounded where undefined. */
  from: number | undefined;
  to: number | undefined;
  /** Every export under this key prefix instead of a time range (still limited by from/to). */
  prefix: string | undefined;
  /** Range exports of this PingSource only (`namespace/name`). */
  source: string | undefined;
  kinds: ReadonlySet<Kind>;
  dataDir: string;
  /** Where samples go: TSDB blocks in dataDir (then served unless serve is false), or a remote-write URL. */
  remoteWrite: string | undefined;
  serve: boolean;
  /** Serve an earlier restore's data dir, reading nothing from the bucket. */
  serveOnly: boolean;
  port: number | undefined;
  keepOpenMetrics: boolean;
  json: boolean;
}

export type Parsed = { help: true } | ({ help: false } & RestoreOptions);

export const defaults = { bucket: 'snapshots', region: 'us-east-1', dataDir: '.promsnap/restore' } as const;

export const helpText = `Restore exports from the snapshot bucket into a Prometheus you can query.

Usage:
  npm run restore -- --day 2026-12-04                 a UTC day into TSDB blocks, then served
  npm run restore -- --from 2026-12-04T09:00:00Z --to 2026-12-04T12:00:00Z
  npm run restore -- --prefix ranges/promsnap/snapshot-schedule/5m/2026/12/
  npm run restore -- --day 2026-12-04 --remote-write http://prometheus:9090/api/v1/write
  npm run restore -- --serve-only --data-dir DIR      serve an earlier restore again

The bucket (as the snapshot function reads it from its environment):
  S3_ENDPOINT (or --endpoint URL), S3_BUCKET (or --bucket, default ${defaults.bucket}),
  S3_REGION (or --region, default ${defaults.region}), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY

What to restore (a time range, a prefix, or both):
      --from TIME           first instant restored (RFC 3339, or YYYY-MM-DD for midnight UTC)
      --to TIME             end of the range, excluded (default: now)
      --day YYYY-MM-DD      that UTC day: --from the day --to the next
      --prefix PREFIX       every export whose key starts with PREFIX
      --source NS/NAME      range exports of this PingSource only
      --kinds range,instant which exports (default both; where both hold a time, the range wins)

Where the samples go:
      --data-dir DIR        TSDB blocks (promtool) in DIR/tsdb (default ${defaults.dataDir}); DIR must not
                            hold a TSDB yet
      --port N              port of the Prometheus serving them (default: a free one)
      --no-serve            build the blocks only
      --serve-only          serve DIR as restored before, reading nothing
      --remote-write URL    push to that Prometheus remote-write receiver instead of building blocks
      --keep-openmetrics    keep DIR/restore-N.om, the OpenMetrics promtool imported
      --json                print the summary as one JSON line

Exit codes:
  0 restored (and served until Ctrl-C)   1 promtool, Prometheus or something unexpected failed
  2 bad command line or settings         3 nothing to restore in that range or prefix
  4 no such bucket, or the store is unreachable
  5 the store refused the credentials    6 an object is not a promsnap export
  7 the remote-write receiver refused the samples
`;

function parseTime(flag: string, text: string): number {
  const day = /^\d{4}-\d{2}-\d{2}$/.test(text);
  const ms = Date.parse(day ? `${text}T00:00:00Z` : text);
  if (Number.isNaN(ms) || (!day && !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(text))) {
    throw usageError(`${flag} ${JSON.stringify(text)} is not a time: give RFC 3339 (2026-12-04T09:00:00Z) or a date (2026-12-04)`);
  }
  return ms;
}

export function parseCommandLine(argv: readonly string[], env: NodeJS.ProcessEnv = process.env, now = Date.now()): Parsed {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        from: { type: 'string' },
        to: { type: 'string' },
        day: { type: 'string' },
        prefix: { type: 'string' },
        source: { type: 'string' },
        kinds: { type: 'string' },
        endpoint: { type: 'string' },
        bucket: { type: 'string' },
        region: { type: 'string' },
        'data-dir': { type: 'string' },
        port: { type: 'string' },
        'no-serve': { type: 'boolean', default: false },
        'serve-only': { type: 'boolean', default: false },
        'remote-write': { type: 'string' },
        'keep-openmetrics': { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw usageError((err as Error).message);
  }
  if (values.help) return { help: true };

  let from = values.from === undefined ? undefined : parseTime('--from', values.from);
  let to = values.to === undefined ? undefined : parseTime('--to', values.to);
  if (values.day !== undefined) {
    if (from !== undefined || to !== undefined) throw usageError('--day cannot be combined with --from or --to');
    if (!/^\d{4}-\d{2}-\d{2}$/.test(values.day)) throw usageError(`--day ${JSON.stringify(values.day)} is not a date like 2026-12-04`);
    from = parseTime('--day', values.day);
    to = from + 24 * 3_600_000;
  }
  if (from !== undefined && to === undefined) to = now;
  if (from !== undefined && to !== undefined && from >= to) throw usageError('--from must be before --to');
  const prefix = values.prefix;
  const serveOnly = values['serve-only'];
  if (!serveOnly && from === undefined && to === undefined && prefix === undefined) {
    throw usageError('say what to restore: a time range (--day, or --from and --to) or a --prefix');
  }
  if (to !== undefined && from === undefined) throw usageError('--to needs --from (or use --day)');

  const source = values.source;
  if (source !== undefined && !/^[a-z0-9][-a-z0-9]*\/[a-z0-9][-.a-z0-9]*$/.test(source))
    throw usageError(`--source ${JSON.stringify(source)} is not NAMESPACE/NAME of a PingSource`);
  const kinds = new Set<Kind>();
  for (const kind of (values.kinds ?? 'range,instant').split(',').map((k) => k.trim())) {
    if (kind !== 'range' && kind !== 'instant') throw usageError(`--kinds: ${JSON.stringify(kind)} is not range or instant`);
    kinds.add(kind);
  }

  let port: number | undefined;
  if (values.port !== undefined) {
    port = Number(values.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw usageError(`--port ${JSON.stringify(values.port)} is not a port number`);
  }
  const remoteWrite = values['remote-write'];
  if (remoteWrite !== undefined) {
    if (!/^https?:\/\/./.test(remoteWrite)) throw usageError(`--remote-write ${JSON.stringify(remoteWrite)} is not an http(s) URL`);
    if (serveOnly || values['no-serve'] || values['keep-openmetrics'] || values['data-dir'] !== undefined) {
      throw usageError('--remote-write sends the samples away: it takes none of --data-dir, --no-serve, --serve-only, --keep-openmetrics');
    }
  }
  if (serveOnly && (values['no-serve'] || prefix !== undefined || from !== undefined))
    throw usageError('--serve-only serves an earlier restore: it reads nothing, so it takes no range, prefix or --no-serve');

  const endpoint = values.endpoint ?? env['S3_ENDPOINT'];
  const accessKeyId = env['AWS_ACCESS_KEY_ID'];
  const secretAccessKey = env['AWS_SECRET_ACCESS_KEY'];
  if (!serveOnly) {
    if (!endpoint) throw usageError('no object store: set S3_ENDPOINT or pass --endpoint URL');
    if (!/^https?:\/\/./.test(endpoint)) throw usageError(`the S3 endpoint ${JSON.stringify(endpoint)} is not an http(s) URL`);
    if (!accessKeyId || !secretAccessKey) throw usageError("no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (the bucket user's keys)");
  }
  return {
    help: false,
    s3: {
      endpoint: endpoint ?? '',
      bucket: values.bucket ?? env['S3_BUCKET'] ?? defaults.bucket,
      region: values.region ?? env['S3_REGION'] ?? defaults.region,
      accessKeyId: accessKeyId ?? '',
      secretAccessKey: secretAccessKey ?? '',
    },
    from,
    to,
    prefix,
    source,
    kinds,
    dataDir: path.resolve(values['data-dir'] ?? defaults.dataDir),
    remoteWrite,
    serve: !values['no-serve'],
    serveOnly,
    port,
    keepOpenMetrics: values['keep-openmetrics'],
    json: values.json,
  };
}
