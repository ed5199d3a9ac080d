// The range export's settings, read with the rest of the configuration (config.ts calls this).
//
// SNAPSHOT_RANGE        range for pings whose data names none (e.g. 5m); empty: such pings get an
//                       instant snapshot, as the reference takes them
// SNAPSHOT_RANGE_MAX    the longest range any setting may name (1h)
// SNAPSHOT_ALLOWED_RANGES ranges a ping's data.range may ask for besides SNAPSHOT_RANGE, comma-separated
//                       (none: a ping takes SNAPSHOT_RANGE or an instant snapshot, nothing else)
// SNAPSHOT_CATCH_UP     how far back an export reaches for ticks whose export is missing (1h; 0: none)
// SNAPSHOT_SETTLE       how long after its tick an export waits before reading its window, so the last
//                       scrapes of the window (stamped when they start, stored when they end) are in (15s)
// SNAPSHOT_PART_SERIES  most series one query of an export is planned to return (50000)
// SNAPSHOT_PART_SAMPLES most samples one query of an export is planned to return (500000)
import { formatDuration, parseDuration } from '../../../archive/src/duration.js';
import type { EnvReader } from '../../runtime/src/env.js';

export interface RangeSettings {
  /** Range of pings that name none, in ms; 0 for an instant snapshot. */
  defaultRangeMs: number;
  maxRangeMs: number;
  /** Ranges a ping's data.range may name besides the default (and 0, an instant snapshot), in ms. */
  allowedRangesMs: number[];
  catchUpMs: number;
  settleMs: number;
  partSeries: number;
  partSamples: number;
}

export const rangeDefaults: RangeSettings = {
  defaultRangeMs: 0,
  maxRangeMs: 3_600_000,
  allowedRangesMs: [],
  catchUpMs: 3_600_000,
  // Prometheus's default scrape_timeout (10 s) and a margin.
  settleMs: 15_000,
  // Measured on a 1M-series Prometheus (bench): a query of 100k series x 5 points grows it by about
  // 250 MB, a count of as many by about 85 MB, where one query of all 1M grows it by 2 GB.
  partSeries: 50_000,
  partSamples: 500_000,
};

/** A range as pings and settings give it: a Prometheus duration in whole seconds, 0 for an instant. */
export function checkRange(text: string, maxRangeMs: number): { ms: number } | { problem: string } {
  const ms = parseDuration(text);
  if (ms === undefined) return { problem: `${JSON.stringify(text)} is not a Prometheus duration (such as 5m, 1h or 90s)` };
  if (ms === 0) return { ms };
  if (ms % 1000 !== 0) return { problem: `${JSON.stringify(text)} is not a whole number of seconds` };
  if (ms > maxRangeMs) return { problem: `${JSON.stringify(text)} is longer than ${formatDuration(maxRangeMs)} (SNAPSHOT_RANGE_MAX)` };
  return { ms };
}

function readDuration(read: EnvReader, name: string, fallback: number, check: (ms: number) => string | undefined): number {
  const text = read.string(name);
  if (text === undefined) return fallback;
  const ms = parseDuration(text);
  const problem = ms === undefined ? 'must be a Prometheus duration such as 30s, 5m or 1h' : check(ms);
  if (problem) {
    read.problem(`${name}=${JSON.stringify(text)} ${problem}`);
    return fallback;
  }
  return ms!;
}

export function readRangeSettings(read: EnvReader): RangeSettings {
  const maxRangeMs = readDuration(read, 'SNAPSHOT_RANGE_MAX', rangeDefaults.maxRangeMs, (ms) =>
    ms < 1000 || ms % 1000 !== 0 ? 'must be a whole number of seconds, at least 1s' : undefined,
  );
  const rangeText = read.string('SNAPSHOT_RANGE');
  let defaultRangeMs = rangeDefaults.defaultRangeMs;
  if (rangeText !== undefined) {
    const checked = checkRange(rangeText, maxRangeMs);
    if ('problem' in checked) read.problem(`SNAPSHOT_RANGE: ${checked.problem}`);
    else defaultRangeMs = checked.ms;
  }
  const allowedRangesMs: number[] = [];
  for (const text of (read.string('SNAPSHOT_ALLOWED_RANGES') ?? '').split(',').map((r) => r.trim())) {
    if (text === '') continue;
    const checked = checkRange(text, maxRangeMs);
    if ('problem' in checked) read.problem(`SNAPSHOT_ALLOWED_RANGES: ${checked.problem}`);
    else if (checked.ms === 0) read.problem('SNAPSHOT_ALLOWED_RANGES: "0" is an instant snapshot, which pings may always ask for; list ranges only');
    else if (!allowedRangesMs.includes(checked.ms)) allowedRangesMs.push(checked.ms);
  }
  return {
    defaultRangeMs,
    maxRangeMs,
    allowedRangesMs,
    catchUpMs: readDuration(read, 'SNAPSHOT_CATCH_UP', rangeDefaults.catchUpMs, (ms) => (ms > 7 * 24 * 3_600_000 ? 'must be at most 7d' : undefined)),
    settleMs: readDuration(read, 'SNAPSHOT_SETTLE', rangeDefaults.settleMs, (ms) => (ms > 600_000 ? 'must be at most 10m' : undefined)),
    partSeries: read.integer('SNAPSHOT_PART_SERIES', rangeDefaults.partSeries, { min: 1, max: 100_000_000 }),
    partSamples: read.integer('SNAPSHOT_PART_SAMPLES', rangeDefaults.partSamples, { min: 1, max: 1_000_000_000 }),
  };
}

/**
 * Whether a ping may ask for this range: an instant snapshot (0), the default range, or one the operator
 * listed. Anything else would let whoever can send an event choose how much one export reads.
 */
export function rangeAllowed(ms: number, settings: Pick<RangeSettings, 'defaultRangeMs' | 'allowedRangesMs'>): boolean {
  return ms === 0 || ms === settings.defaultRangeMs || settings.allowedRangesMs.includes(ms);
}
