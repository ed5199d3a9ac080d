// The snapshot function's settings, read once at start-up from the environment: the same names
// locally and in the Knative Service manifest. Knative sets PORT, K_SERVICE and K_REVISION.
import { readConfig, type RuntimeSettings } from '../../runtime/src/contract.js';
import type { EnvReader } from '../../runtime/src/env.js';
import { parseDuration } from '../../../archive/src/duration.js';
import { readRangeSettings, type RangeSettings } from './range-config.js';

export interface SnapshotConfig extends RuntimeSettings {
  prometheus: {
    url: string;
    /**
     * Deadline for the time one query waits on Prometheus, its answer included but not the time the
     * store holds the answer back; also sent to Prometheus as its own timeout.
     */
    timeoutMs: number;
    /** Ask Prometheus for a gzipped answer (PROMETHEUS_GZIP). */
    gzip: boolean;
    /** Most series one query's answer may hold; passed to Prometheus as its `limit` (SNAPSHOT_MAX_SERIES). */
    maxSeries: number;
    /** How long Prometheus keeps data, as its --storage.tsdb.retention.time says (PROMETHEUS_RETENTION). */
    retention: string;
    retentionMs: number;
  };
  s3: {
    endpoint: string;
    bucket: string;
    region: string;
    accessKeyId: string;
    secretAccessKey: string;
  };
  /** Queries captured when a ping's data names none. */
  queries: string[];
  gzip: boolean;
  /** Range exports (range-config.ts). */
  range: RangeSettings;
  /** What an event may ask of the function. */
  events: {
    /**
     * Queries a ping's data.queries may name (SNAPSHOT_ALLOWED_QUERIES): none by default, a list, or
     * 'any' (`*`), which trusts every sender that can reach the function with any PromQL.
     */
    allowedQueries: 'any' | string[];
    /** How far past this function's clock a ping's time may be (SNAPSHOT_MAX_FUTURE_MS). */
    maxFutureMs: number;
  };
}

export const defaults = {
  bucket: 'snapshots',
  region: 'us-east-1',
  // The reference's query: every series Prometheus holds.
  queries: ['{__name__!=""}'],
  prometheusTimeoutMs: 30_000,
  // An in-flight snapshot must be able to finish: a query at its deadline plus the upload of the
  // rest. Knative gives a revision's pods terminationGracePeriodSeconds = timeoutSeconds (300 s).
  shutdownGraceMs: 60_000,
  // About what a 2-core Prometheus with a 2 GiB limit can answer in one query (1M series is a 140 MB
  // answer, and Prometheus grows by about 1.6 GB to give it).
  maxSeries: 1_000_000,
  // Prometheus's own default (--storage.tsdb.retention.time).
  retention: '15d',
  // Clocks in one cluster agree to milliseconds; a ping's time is its send time, so it is never ahead
  // by more than the skew between two nodes' clocks.
  maxFutureMs: 30_000,
} as const;

// S3 bucket naming rules (3 to 63 characters, lower case, digits, dots and hyphens).
const bucketName = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** Throws ConfigError naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): SnapshotConfig {
  return readConfig(
    env,
    { shutdownGraceMs: defaults.shutdownGraceMs, maxShutdownGraceMs: 3_600_000 },
    (read) => {
      const prometheusUrl = read.url('PROMETHEUS_URL');
      const timeoutMs = read.integer('PROMETHEUS_TIMEOUT_MS', defaults.prometheusTimeoutMs, { min: 100, max: 600_000 });
      // Off by default: at 1M series on 2 cores over loopback, gzip made the snapshot about 1 s slower
      // (median 5.42 s against 4.42 s, 1.37x against 1.15x curl | mc pipe, 5 interleaved runs): this
      // function inflating took 0.5 s more CPU and Prometheus compressing 0.3 s more. It sends 12.9 MB
      // instead of 163, so it pays where the link to Prometheus is slower than about 150 MB/s.
      const prometheusGzip = read.boolean('PROMETHEUS_GZIP', false);
      const endpoint = read.url('S3_ENDPOINT');
      const bucket = read.string('S3_BUCKET', defaults.bucket);
      if (!bucketName.test(bucket)) {
        read.problem(`S3_BUCKET=${JSON.stringify(bucket)} is not a valid bucket name (3-63 lower-case letters, digits, dots and hyphens)`);
      }
      const region = read.string('S3_REGION', defaults.region);
      const accessKeyId = read.required('AWS_ACCESS_KEY_ID', 'the access key of the S3 user that writes snapshots');
      const secretAccessKey = read.required('AWS_SECRET_ACCESS_KEY', 'the secret key of the S3 user that writes snapshots');
      const queries = readQueries(read, env['SNAPSHOT_QUERIES']);
      const gzip = read.boolean('SNAPSHOT_GZIP', false);
      const maxSeries = read.integer('SNAPSHOT_MAX_SERIES', defaults.maxSeries, { min: 1, max: 1_000_000_000 });
      const retention = read.string('PROMETHEUS_RETENTION', defaults.retention);
      const retentionMs = prometheusDurationMs(retention);
      if (retentionMs === undefined || retentionMs === 0) {
        read.problem(
          `PROMETHEUS_RETENTION=${JSON.stringify(retention)} must be a Prometheus duration above zero, as --storage.tsdb.retention.time takes it (e.g. 24h, 15d, 1w)`,
        );
      }
      const allowedQueries = readAllowedQueries(read, env['SNAPSHOT_ALLOWED_QUERIES']);
      const maxFutureMs = read.integer('SNAPSHOT_MAX_FUTURE_MS', defaults.maxFutureMs, { min: 0, max: 3_600_000 });
      return {
        prometheus: { url: prometheusUrl, timeoutMs, gzip: prometheusGzip, maxSeries, retention, retentionMs: retentionMs ?? 0 },
        s3: { endpoint, bucket, region, accessKeyId, secretAccessKey },
        queries,
        gzip,
        range: readRangeSettings(read),
        events: { allowedQueries, maxFutureMs },
      };
    },
    ({ prometheus: { timeoutMs }, shutdownGraceMs }, read) => {
      if (shutdownGraceMs <= timeoutMs) {
        read.problem(
          `SHUTDOWN_GRACE_MS (${shutdownGraceMs}) must be above PROMETHEUS_TIMEOUT_MS (${timeoutMs}) so an in-flight snapshot can finish during a shutdown`,
        );
      }
    },
  );
}

// One query as it is, or several as a JSON array of strings: PromQL itself contains commas and
// newlines, so no delimiter could split a list safely.
function readQueries(read: EnvReader, raw: string | undefined): string[] {
  const text = raw?.trim();
  if (!text) return [...defaults.queries];
  if (!text.startsWith('[')) return [text];
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    read.problem(`SNAPSHOT_QUERIES looks like a JSON array but does not parse: ${(err as Error).message}`);
    return [...defaults.queries];
  }
  if (!Array.isArray(parsed) || parsed.length === 0 || !parsed.every((q) => typeof q === 'string' && q.trim() !== '')) {
    read.problem('SNAPSHOT_QUERIES must be one PromQL query, or a JSON array of one or more non-empty query strings');
    return [...defaults.queries];
  }
  return parsed as string[];
}

// The queries pings may name: none when unset, `*` for any, else one query or a JSON array as in
// SNAPSHOT_QUERIES.
function readAllowedQueries(read: EnvReader, raw: string | undefined): 'any' | string[] {
  const text = raw?.trim();
  if (!text) return [];
  if (text === '*') return 'any';
  if (!text.startsWith('[')) return [text];
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    read.problem(`SNAPSHOT_ALLOWED_QUERIES looks like a JSON array but does not parse: ${(err as Error).message}`);
    return [];
  }
  if (!Array.isArray(parsed) || !parsed.every((q) => typeof q === 'string' && q.trim() !== '')) {
    read.problem('SNAPSHOT_ALLOWED_QUERIES must be *, one PromQL query, or a JSON array of non-empty query strings');
    return [];
  }
  return parsed as string[];
}

/**
 * A Prometheus duration (`1d12h`, `24h`, `90m`: units y, w, d, h, m, s, ms, largest first, each at
 * most once) in milliseconds, or undefined when it is not one. Prometheus's own syntax, so the value
 * can be copied from its --storage.tsdb.retention.time flag as it is.
 */
export function prometheusDurationMs(text: string): number | undefined {
  // The archive's reader of durations, which also takes a bare `0`; a retention of 0 is no duration here.
  return text === '0' ? undefined : parseDuration(text);
}
