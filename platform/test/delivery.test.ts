// Knative's delivery arithmetic (platform/manifests/delivery.ts), checked against what Knative
// Eventing v0.50.0 does (pkg/kncloudevents/retries.go and a run of Knative's own dispatcher: retry 3,
// exponential, PT0.2S gave gaps of 0.2, 0.4 and 0.8 s).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffMs, deliveryPolicy, isRetryable, nextStep, type AttemptOutcome } from '../manifests/index.js';

test('exponential backoff doubles from backoffDelay: 0.2, 0.4, 0.8 s', () => {
  const policy = deliveryPolicy({ retry: 3, backoffPolicy: 'exponential', backoffDelay: 'PT0.2S' });
  assert.deepEqual(
    [0, 1, 2].map((attempt) => backoffMs(policy, attempt)),
    [200, 400, 800],
  );
});

test('linear backoff is backoffDelay times the attempt index, so the first retry is immediate', () => {
  const policy = deliveryPolicy({ retry: 3, backoffPolicy: 'linear', backoffDelay: 'PT1S' });
  assert.deepEqual(
    [0, 1, 2].map((attempt) => backoffMs(policy, attempt)),
    [0, 1_000, 2_000],
  );
});

test('without both backoffPolicy and backoffDelay, retries do not wait', () => {
  assert.equal(backoffMs(deliveryPolicy({ retry: 2, backoffDelay: 'PT1S' }), 1), 0);
  assert.equal(backoffMs(deliveryPolicy({ retry: 2, backoffPolicy: 'exponential' }), 1), 0);
});

test('Retry-After is honoured on 429/503 only when retryAfterMax is set, and capped by it', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  const withMax = deliveryPolicy({ retry: 3, backoffPolicy: 'exponential', backoffDelay: 'PT0.1S', retryAfterMax: 'PT5S' });
  const withoutMax = deliveryPolicy({ retry: 3, backoffPolicy: 'exponential', backoffDelay: 'PT0.1S' });
  const busy: AttemptOutcome = { status: 503, headers: { 'retry-after': '3' } };
  assert.equal(backoffMs(withMax, 0, busy, now), 3_000);
  assert.equal(backoffMs(withMax, 0, { status: 429, headers: { 'retry-after': '60' } }, now), 5_000);
  assert.equal(backoffMs(withMax, 0, { status: 500, headers: { 'retry-after': '3' } }, now), 100);
  assert.equal(backoffMs(withoutMax, 0, busy, now), 100);
  assert.equal(backoffMs(withMax, 0, { status: 503, headers: { 'retry-after': 'Thu, 01 Jan 2026 00:00:02 GMT' } }, now), 2_000);
});

test('Knative retries no response, 5xx, 404, 408, 409 and 429, and nothing else', () => {
  const retried = [500, 502, 503, 504, 404, 408, 409, 429];
  const final = [200, 202, 204, 301, 400, 401, 403, 410, 413, 415, 422];
  for (const status of retried) assert.equal(isRetryable({ status }), true, String(status));
  for (const status of final) assert.equal(isRetryable({ status }), false, String(status));
  assert.equal(isRetryable({ error: new Error('connect ECONNREFUSED') }), true);
});

test("the snapshot function's own codes: 400 and 422 are not retried, 502/503/504 are", () => {
  const policy = deliveryPolicy({ retry: 3, backoffPolicy: 'exponential', backoffDelay: 'PT0.2S' });
  assert.deepEqual(nextStep(policy, 0, { status: 400 }), { kind: 'failed' });
  assert.deepEqual(nextStep(policy, 0, { status: 422 }), { kind: 'failed' });
  for (const status of [502, 503, 504]) assert.deepEqual(nextStep(policy, 1, { status }), { kind: 'retry', waitMs: 400 });
  assert.deepEqual(nextStep(policy, 3, { status: 503 }), { kind: 'failed' }, 'retries exhausted after 1 + retry attempts');
  assert.deepEqual(nextStep(policy, 0, { status: 202 }), { kind: 'delivered' });
});
