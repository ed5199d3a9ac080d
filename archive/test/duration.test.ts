import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDuration, parseDuration } from '../src/duration.js';

test('Prometheus durations parse to milliseconds, and print back in their shortest form', () => {
  const cases: Array<[string, number, string]> = [
    ['5m', 300_000, '5m'],
    ['300s', 300_000, '5m'],
    ['1h30m', 5_400_000, '1h30m'],
    ['90s', 90_000, '1m30s'],
    ['1d', 86_400_000, '1d'],
    ['1w', 604_800_000, '7d'],
    ['1s500ms', 1_500, '1s500ms'],
    ['0', 0, '0s'],
    ['0s', 0, '0s'],
  ];
  for (const [text, ms, canonical] of cases) {
    assert.equal(parseDuration(text), ms, text);
    assert.equal(formatDuration(ms), canonical, text);
  }
});

test('anything else is not a duration', () => {
  for (const text of ['', '5', 'm', '5 m', '-5m', '5M', '1m1h', '1.5h', '5mins', '1h1h']) assert.equal(parseDuration(text), undefined, JSON.stringify(text));
});
