import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { serve } from '../src/lifecycle.js';
import { createLogger } from '../src/logger.js';

const log = createLogger({ level: 'error', write: () => undefined });

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

test('shutdown stops accepting, lets the in-flight request and the drain finish, then resolves', async () => {
  let finishRequest!: () => void;
  let drained = false;
  const lifecycle = await serve(
    (req, res) => {
      if (req.url === '/slow') finishRequest = () => res.end('done');
      else res.end('fast');
    },
    {
      port: 0,
      host: '127.0.0.1',
      log,
      shutdownGraceMs: 10_000,
      exitOnSignal: false,
      drain: async () => {
        await new Promise((resolve) => setTimeout(resolve, 50));
        drained = true;
      },
    },
  );
  const slow = get(lifecycle.port, '/slow');
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(lifecycle.accepting, true);
  const shutdown = lifecycle.shutdown('test');
  assert.equal(lifecycle.accepting, false);
  await assert.rejects(get(lifecycle.port, '/fast'), /ECONNREFUSED/, 'no new connections once shutting down');
  finishRequest();
  assert.deepEqual(await slow, { status: 200, body: 'done' });
  await shutdown;
  assert.equal(drained, true);
  await lifecycle.stopped;
});

test('a request still running when the grace ends is cut, and shutdown resolves anyway', async () => {
  const lifecycle = await serve(() => undefined, { port: 0, host: '127.0.0.1', log, shutdownGraceMs: 200, exitOnSignal: false });
  const stuck = get(lifecycle.port, '/never');
  await new Promise((resolve) => setTimeout(resolve, 100));
  const started = Date.now();
  await lifecycle.shutdown('test');
  assert.ok(Date.now() - started < 5_000);
  await assert.rejects(stuck, /socket hang up|ECONNRESET/);
});
