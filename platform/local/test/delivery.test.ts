// What the local dispatcher does with the Trigger's delivery policy: dead-letter extensions and the
// attempts loop (the policy's arithmetic is tested in platform/test/delivery.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deliveryPolicy } from '../../manifests/index.js';
import { deadLetterExtensions, deliverWithRetries, withDeadLetterUrl } from '../delivery.js';

const resolve = (destination: unknown) => `resolved:${JSON.stringify(destination)}`;

test('the dead-letter sink is resolved from the Trigger and the policy validated', () => {
  const policy = withDeadLetterUrl(
    deliveryPolicy({
      retry: 2,
      backoffPolicy: 'exponential',
      backoffDelay: 'PT1S',
      timeout: 'PT30S',
      deadLetterSink: { ref: { name: 'snapshot' }, uri: '/dead-letters' },
    }),
    resolve,
  );
  assert.equal(policy.deadLetterSink, 'resolved:{"ref":{"name":"snapshot"},"uri":"/dead-letters"}');
  assert.equal(policy.timeoutMs, 30_000);
  assert.deepEqual(withDeadLetterUrl(deliveryPolicy(undefined), resolve), { retry: 0 });
  assert.throws(() => deliveryPolicy({ retry: -1 }), /retry/);
  assert.throws(() => deliveryPolicy({ backoffPolicy: 'random' }), /backoffPolicy/);
  assert.throws(() => deliveryPolicy({ backoffDelay: '2s' }), /ISO-8601/);
});

test('dead-letter extensions carry the failed destination, last code and base64 body cut to 1024', () => {
  const ext = deadLetterExtensions('http://127.0.0.1:1/', { status: 503, body: '{"error":"prometheus unreachable"}' });
  assert.equal(ext['knativeerrordest'], 'http://127.0.0.1:1/');
  assert.equal(ext['knativeerrorcode'], 503);
  assert.equal(Buffer.from(String(ext['knativeerrordata']), 'base64').toString(), '{"error":"prometheus unreachable"}');
  const long = deadLetterExtensions('http://x/', { status: 500, body: 'x'.repeat(5_000) });
  assert.equal(String(long['knativeerrordata']).length, 1024);
  const refused = deadLetterExtensions('http://x/', { error: new Error('connect ECONNREFUSED 127.0.0.1:1') });
  assert.equal(refused['knativeerrorcode'], 500);
  assert.match(Buffer.from(String(refused['knativeerrordata']), 'base64').toString(), /^dispatch error: connect ECONNREFUSED/);
});

test("deliverWithRetries tries 1 + retry times with the policy's waits, then reports the last failure", async () => {
  const policy = deliveryPolicy({ retry: 3, backoffPolicy: 'exponential', backoffDelay: 'PT0.2S' });
  const answers = [500, 503, 500, 500];
  const slept: number[] = [];
  const result = await deliverWithRetries(
    policy,
    () => Promise.resolve({ status: answers.shift() ?? 200 }),
    (wait) => Promise.resolve((slept.push(wait), true)),
  );
  assert.equal(result.delivered, false);
  assert.equal(result.attempts.length, 4);
  assert.deepEqual(slept, [200, 400, 800]);
  assert.deepEqual(result.last, { status: 500 });
});

test('deliverWithRetries stops retrying once a retry succeeds, or at once on a non-retryable code', async () => {
  const policy = deliveryPolicy({ retry: 3, backoffPolicy: 'linear', backoffDelay: 'PT0.1S' });
  const answers = [503, 503, 202];
  const ok = await deliverWithRetries(
    policy,
    () => Promise.resolve({ status: answers.shift()! }),
    () => Promise.resolve(true),
  );
  assert.equal(ok.delivered, true);
  assert.deepEqual(ok.waits, [0, 100]);
  const rejected = await deliverWithRetries(
    policy,
    () => Promise.resolve({ status: 400 }),
    () => Promise.resolve(true),
  );
  assert.equal(rejected.attempts.length, 1);
  assert.equal(rejected.delivered, false);
  const stopped = await deliverWithRetries(
    policy,
    () => Promise.resolve({ status: 503 }),
    () => Promise.resolve(false),
  );
  assert.equal(stopped.attempts.length, 1, 'a stop during the wait ends the delivery');
});
