import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BackOff, goDuration } from '../backoff.js';

/** Drives one container through crashes that each come right after its start; returns the wait before each restart. */
function waits(backOff: BackOff, crashes: number): number[] {
  const seen: number[] = [];
  let now = 0;
  for (let i = 0; i < crashes; i++) {
    const finishedAt = now + 1_000;
    now = finishedAt;
    let decision = backOff.attempt('pod/c', finishedAt, now);
    let waited = 0;
    while (!decision.start) {
      waited += decision.retryInMs;
      now += decision.retryInMs;
      decision = backOff.attempt('pod/c', finishedAt, now);
    }
    seen.push(waited / 1000);
  }
  return seen;
}

test('the first restart is immediate, then the wait doubles from 10 s and stops at 300 s', () => {
  assert.deepEqual(waits(new BackOff(), 9), [0, 10, 20, 40, 80, 160, 300, 300, 300]);
});

test('while backing off the decision names the remaining wait and the current back-off', () => {
  const backOff = new BackOff();
  assert.deepEqual(backOff.attempt('k', 1_000, 1_000), { start: true });
  assert.deepEqual(backOff.attempt('k', 5_000, 7_000), { start: false, retryInMs: 8_000, backOffMs: 10_000 });
  assert.equal(backOff.current('k'), 10_000);
});

test('a container that ran ten minutes since its last restart starts over with an immediate restart', () => {
  const backOff = new BackOff();
  backOff.attempt('k', 0, 0);
  assert.equal(backOff.attempt('k', 1_000, 1_000).start, false);
  assert.deepEqual(backOff.attempt('k', 700_000, 700_000), { start: true });
  assert.equal(backOff.current('k'), 10_000);
});

test('keys are independent and a forgotten pod starts fresh', () => {
  const backOff = new BackOff();
  backOff.attempt('a/x', 0, 0);
  backOff.attempt('b/x', 0, 0);
  backOff.forgetPrefix('a/');
  assert.equal(backOff.current('a/x'), 0);
  assert.equal(backOff.current('b/x'), 10_000);
});

test('durations read as Go prints them in the kubelet messages', () => {
  assert.equal(goDuration(10_000), '10s');
  assert.equal(goDuration(80_000), '1m20s');
  assert.equal(goDuration(300_000), '5m0s');
});
