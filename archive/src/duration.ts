// Durations as Prometheus writes them (`5m`, `1h30m`, `90s`, `1d`): units y, w, d, h, m, s and ms,
// each at most once, largest first. A range export's window length is one of these, in whole seconds,
// and its canonical form (formatDuration) is part of the export's key.

const units = [
  ['y', 365 * 24 * 3_600_000],
  ['w', 7 * 24 * 3_600_000],
  ['d', 24 * 3_600_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1_000],
  ['ms', 1],
] as const;

const pattern = /^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$/;

/** Milliseconds, or undefined when text is not a Prometheus duration (`0` alone is one: no time). */
export function parseDuration(text: string): number | undefined {
  if (text === '0') return 0;
  const match = pattern.exec(text);
  if (!match || text === '') return undefined;
  let ms = 0;
  for (const [index, [, unitMs]] of units.entries()) {
    const value = match[index + 1];
    if (value !== undefined) ms += Number(value) * unitMs;
  }
  return Number.isSafeInteger(ms) ? ms : undefined;
}

/** The shortest Prometheus form of a duration: 300000 is `5m`, 5400000 `1h30m`, 0 `0s`. */
export function formatDuration(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms < 0) throw new Error(`not a duration in milliseconds: ${ms}`);
  if (ms === 0) return '0s';
  let left = ms;
  let text = '';
  // Weeks and years are left out: `7d` and `365d` read more plainly in a key than `1w` and `1y`.
  for (const [unit, unitMs] of units) {
    if (unit === 'y' || unit === 'w') continue;
    const count = Math.floor(left / unitMs);
    if (count > 0) {
      text += `${count}${unit}`;
      left -= count * unitMs;
    }
  }
  return text;
}
