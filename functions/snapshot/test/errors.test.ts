// The one error handler, over real HTTP: what each kind of failure answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import express from 'express';
import { serve } from '../../runtime/src/lifecycle.js';
import { createLogger } from '../../runtime/src/logger.js';
import { RejectedEventError, RetryableError, errorHandler } from '../src/errors.js';

test('4xx bodies say what is wrong; 5xx bodies hide internals while the log keeps them', async (t) => {
  const logs: Array<Record<string, unknown>> = [];
  const log = createLogger({ write: (line) => logs.push(JSON.parse(line) as Record<string, unknown>) });
  const app = express();
  app.post('/small', express.text({ type: () => true, limit: 10 }), (_req, res) => void res.send('ok'));
  app.get('/rejected', () => {
    throw new RejectedEventError('invalid_event', 400, 'the event is not an acceptable ping', ['id is required', 'time is required']);
  });
  app.get('/retryable', () => {
    throw new RetryableError('storage_unavailable', 503, 'object store at http://10.0.0.7:9000 refused (AccessDenied)');
  });
  app.get('/bug', () => {
    throw new TypeError("Cannot read properties of undefined (reading 'secret')");
  });
  app.use(errorHandler(log));
  const server = await serve(app, { port: 0, host: '127.0.0.1', log, shutdownGraceMs: 1_000, exitOnSignal: false });
  t.after(() => server.shutdown('test finished'));
  const url = `http://127.0.0.1:${server.port}`;

  const rejected = await fetch(`${url}/rejected`);
  assert.equal(rejected.status, 400);
  assert.deepEqual(await rejected.json(), {
    error: 'the event is not an acceptable ping',
    reason: 'invalid_event',
    problems: ['id is required', 'time is required'],
    retryable: false,
  });

  const retryable = await fetch(`${url}/retryable`);
  assert.equal(retryable.status, 503);
  const body = await retryable.text();
  assert.deepEqual(JSON.parse(body), { error: 'the object store is unavailable; the delivery can be retried', reason: 'storage_unavailable', retryable: true });
  assert.doesNotMatch(body, /10\.0\.0\.7|AccessDenied/);
  assert.ok(logs.some((l) => JSON.stringify(l).includes('AccessDenied')));

  const bug = await fetch(`${url}/bug`);
  assert.equal(bug.status, 500);
  assert.doesNotMatch(await bug.text(), /secret|TypeError/);

  const tooLarge = await fetch(`${url}/small`, { method: 'POST', body: 'x'.repeat(100) });
  assert.equal(tooLarge.status, 413, 'too large is not retried by Knative: retrying cannot make it smaller');
  assert.equal(((await tooLarge.json()) as { retryable: boolean }).retryable, false);
});
