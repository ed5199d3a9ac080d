import assert from 'node:assert/strict';
import { test } from 'node:test';
import { drawLatencyMs } from '../src/latency.js';
import { durationBucketsMs } from '../src/metrics.js';

/** n values spread evenly over [0, 1), standing in for Math.random. */
function evenly(n: number): () => number {
  let i = 0;
  return () => (i++ % n) / n;
}

test('a fixed range gives exactly its value', () => {
  assert.equal(drawLatencyMs({ minMs: 40, maxMs: 40 }), 40);
  assert.equal(drawLatencyMs({ minMs: 0, maxMs: 0 }), 0);
});

test('draws are whole milliseconds within the range, reaching both ends', () => {
  const range = { minMs: 3, maxMs: 700 };
  assert.equal(
    drawLatencyMs(range, () => 0),
    3,
  );
  assert.equal(
    drawLatencyMs(range, () => 0.999_999_9),
    700,
  );
  for (let i = 0; i < 1_000; i++) {
    const ms = drawLatencyMs(range);
    assert.ok(Number.isInteger(ms) && ms >= 3 && ms <= 700, String(ms));
  }
});

test('the default range spreads requests over every duration bucket', () => {
  const n = 10_000;
  const random = evenly(n);
  const perBucket = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const ms = drawLatencyMs({ minMs: 1, maxMs: 1_000 }, random);
    const le = durationBucketsMs.find((bound) => ms <= bound)!;
    perBucket.set(le, (perBucket.get(le) ?? 0) + 1);
  }
  for (const le of durationBucketsMs) assert.ok((perBucket.get(le) ?? 0) > 0, `bucket le=${le} gets requests`);
  // A uniform draw would put 90% above 100 ms; log-uniform puts about 37% there.
  const above100 = (perBucket.get(250) ?? 0) + (perBucket.get(500) ?? 0) + (perBucket.get(1000) ?? 0);
  assert.ok(above100 / n < 0.5, `${above100} of ${n} above 100 ms`);
});
