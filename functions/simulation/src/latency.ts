// How long GET /simulate-requests pretends to work.
import type { LatencyRange } from './config.js';

/**
 * A whole number of milliseconds from [minMs, maxMs], uniform on a log scale. The duration buckets
 * grow roughly geometrically (1, 2, ... 100, 250, 500, 1000), so a log-uniform draw gives each bucket
 * a share of the requests, where a plain uniform draw over 1..1000 would put nine in ten of them in
 * the top three buckets.
 */
export function drawLatencyMs(range: LatencyRange, random: () => number = Math.random): number {
  const { minMs, maxMs } = range;
  if (maxMs <= minMs) return minMs;
  // The +1 keeps a 0 ms minimum finite on the log scale.
  const low = Math.log(minMs + 1);
  const high = Math.log(maxMs + 1);
  const drawn = Math.round(Math.exp(low + (high - low) * random()) - 1);
  return Math.min(maxMs, Math.max(minMs, drawn));
}
