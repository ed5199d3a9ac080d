import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exportWindow, tickOf, windowHolds, windowsCaughtUp } from '../src/window.js';

const minute = 60_000;
const at = (iso: string) => Date.parse(iso);

test('a time falls to the tick at or before it; redeliveries and late pings of one tick agree', () => {
  assert.equal(tickOf(at('2026-12-04T12:05:00.000Z'), 5 * minute), at('2026-12-04T12:05:00Z'));
  assert.equal(tickOf(at('2026-12-04T12:05:00.400Z'), 5 * minute), at('2026-12-04T12:05:00Z'), 'the adapter sends a little after the minute');
  assert.equal(tickOf(at('2026-12-04T12:09:59.999Z'), 5 * minute), at('2026-12-04T12:05:00Z'));
  assert.equal(tickOf(at('2026-12-04T12:04:59.999Z'), 5 * minute), at('2026-12-04T12:00:00Z'));
  assert.throws(() => tickOf(0, 0), /positive/);
});

test("consecutive ticks' windows tile time: each sample time is in exactly one", () => {
  const range = minute;
  const windows = [1, 2, 3, 4].map((k) => exportWindow(k * range, range, 3_600_000, (k - 1) * range));
  for (let t = -1; t <= 4 * range + 1; t += 250) {
    const holding = windows.filter((w) => windowHolds(w, t)).length;
    assert.equal(holding, t > 0 && t <= 4 * range ? 1 : 0, `t = ${t}`);
  }
  assert.ok(windowHolds(windows[1]!, 2 * range), 'the end (the tick) is in the window');
  assert.ok(!windowHolds(windows[1]!, range), 'the start is not');
});

test('a missed tick is covered by the next export, up to the catch-up bound', () => {
  const range = 5 * minute;
  const tick = at('2026-12-04T12:15:00Z');
  assert.deepEqual(exportWindow(tick, range, 3_600_000, tick - range), { start: tick - range, end: tick }, 'the previous tick is stored: its own window only');
  const missedOne = exportWindow(tick, range, 3_600_000, tick - 2 * range);
  assert.deepEqual(missedOne, { start: tick - 2 * range, end: tick }, 'one tick missed: two windows');
  assert.equal(windowsCaughtUp(missedOne, range), 1);
  assert.deepEqual(exportWindow(tick, range, 3_600_000, tick - 24 * 3_600_000), { start: tick - range - 3_600_000, end: tick }, 'a day missed: one hour more');
  assert.deepEqual(exportWindow(tick, range, 3_600_000, undefined), { start: tick - range, end: tick }, 'the first export: its own window only');
  assert.deepEqual(exportWindow(tick, range, 0, undefined), { start: tick - range, end: tick }, 'no catch-up');
});
