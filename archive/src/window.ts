// The arithmetic that tiles time into export windows. A range export is asked for at a ping's time
// with a range R: its tick is that time floored to a multiple of R since the Unix epoch, and its own
// window is (tick - R, tick]. Consecutive ticks tile time exactly: range selectors are left-open in
// Prometheus 3, so `selector[R]` evaluated at the tick returns the samples of exactly that window, and
// every redelivery of a ping (same time) gets the same tick, window and key.
//
// A missed tick is covered by the next export: when the newest export before a tick ends earlier than
// the tick's own window starts, the window reaches back to it, at most `catchUp` further than its own.
// The first export of a PingSource and range has nothing to catch up: it covers its own window.

/** A window of time in Unix milliseconds: start excluded, end included. */
export interface Window {
  start: number;
  end: number;
}

/** The tick a time falls to: the latest multiple of rangeMs (since the epoch) at or before it. */
export function tickOf(timeMs: number, rangeMs: number): number {
  if (!(rangeMs > 0)) throw new Error(`a range must be positive, got ${rangeMs}`);
  return Math.floor(timeMs / rangeMs) * rangeMs;
}

/**
 * The window an export at `tick` covers: its own range, reaching back to the end of `previousEnd`
 * (the newest export before it) when that is older, but never more than `catchUpMs` before its own
 * start. Without a previous export (the first of its PingSource and range), its own range only: a
 * sender cannot make an export read the whole bound by naming a PingSource nothing was stored for.
 */
export function exportWindow(tick: number, rangeMs: number, catchUpMs: number, previousEnd: number | undefined): Window {
  const own = tick - rangeMs;
  const earliest = own - Math.max(0, catchUpMs);
  const start = previousEnd === undefined ? own : Math.max(earliest, Math.min(own, previousEnd));
  return { start, end: tick };
}

/** Whole windows of rangeMs a window covers beyond the tick's own (0 for an export of one tick). */
export function windowsCaughtUp(window: Window, rangeMs: number): number {
  return Math.round((window.end - window.start) / rangeMs) - 1;
}

/** Whether a window holds the instant t (start excluded, end included). */
export function windowHolds(window: Window, t: number): boolean {
  return t > window.start && t <= window.end;
}
