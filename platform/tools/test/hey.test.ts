// The hey wrapper against a real HTTP server on loopback: the summary it reads is what hey measured.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { heyArgs, isHeyDuration, parseHeySummary, runHey } from '../hey.js';
import { MissingToolError } from '../find.js';
import { waitFor } from '../wait.js';

async function server(t: { after(fn: () => unknown): void }) {
  let served = 0;
  const srv = http.createServer((req, res) => {
    served++;
    // Every third request fails, so the status distribution has two lines to read.
    res.statusCode = served % 3 === 0 ? 500 : 200;
    res.end('ok');
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => srv.close(() => resolve())));
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/`, served: () => served };
}

test('hey runs for the given duration and its summary counts every response by status', async (t) => {
  const { url, served } = await server(t);
  const run = await runHey({ url, duration: '1s', concurrency: 2 });
  const summary = await run.done;
  const counted = Object.values(summary.statusCodes).reduce((a, b) => a + b, 0);
  assert.ok(counted > 0, 'hey sent requests');
  // hey may cut in-flight requests at the deadline; everything it counted the server did serve.
  assert.ok(counted <= served(), `${counted} counted, ${served()} served`);
  assert.ok((summary.statusCodes['500'] ?? 0) > 0 && (summary.statusCodes['200'] ?? 0) > 0, JSON.stringify(summary.statusCodes));
  assert.ok(summary.totalSeconds >= 0.9 && summary.totalSeconds < 5, `total ${summary.totalSeconds}`);
  assert.ok(summary.requestsPerSecond > 0);
  assert.ok(summary.percentiles['99'] !== undefined);
});

test('hey given a CPU runs on that CPU only, every thread of it', async (t) => {
  const { url } = await server(t);
  // The last CPU this process may use: the one a container with few CPUs still has.
  const allowed = /Cpus_allowed_list:\s*(\S+)/.exec(await readFile('/proc/self/status', 'utf8'))![1]!;
  const cpu = Number(allowed.split(/[,-]/).at(-1));
  const run = await runHey({ url, duration: '1s', concurrency: 2, cpu });
  // taskset binds itself, then becomes hey; by the time hey has started its Go threads it is serving.
  const threads = await waitFor(
    async () => {
      const comm = (await readFile(`/proc/${run.pid}/comm`, 'utf8')).trim();
      const tasks = await readdir(`/proc/${run.pid}/task`);
      return comm === 'hey' && tasks.length > 1 && tasks;
    },
    { what: 'hey to run several threads', timeoutMs: 5_000, intervalMs: 20 },
  );
  for (const thread of threads) {
    const status = await readFile(`/proc/${run.pid}/task/${thread}/status`, 'utf8');
    assert.equal(/Cpus_allowed_list:\s*(\S+)/.exec(status)![1], String(cpu), `thread ${thread}`);
  }
  const summary = await run.done;
  assert.ok((summary.statusCodes['200'] ?? 0) > 0, 'the pinned hey still loads the server');
});

test('a server that is not there shows up as hey errors, not as responses', async () => {
  const probe = http.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const summary = await (await runHey({ url: `http://127.0.0.1:${port}/`, duration: '200ms', concurrency: 1 })).done;
  assert.deepEqual(summary.statusCodes, {});
  assert.match(Object.keys(summary.errors).join('\n'), /connection refused/);
});

test('hey options are checked before hey starts', () => {
  assert.deepEqual(heyArgs({ url: 'http://127.0.0.1:8080/simulate-requests', duration: '30s', concurrency: 10 }), [
    '-z',
    '30s',
    '-c',
    '10',
    'http://127.0.0.1:8080/simulate-requests',
  ]);
  assert.deepEqual(heyArgs({ url: 'http://10.0.0.1/', duration: '1m30s', concurrency: 1, rate: 5, host: 'simulation.promsnap.example.com' }).slice(4), [
    '-q',
    '5',
    '-host',
    'simulation.promsnap.example.com',
    'http://10.0.0.1/',
  ]);
  assert.equal(isHeyDuration('10'), false);
  assert.throws(() => heyArgs({ url: 'http://x/', duration: '10', concurrency: 1 }), /duration/);
  assert.throws(() => heyArgs({ url: 'http://x/', duration: '10s', concurrency: 0 }), /concurrency/);
  assert.throws(() => heyArgs({ url: 'not a url', duration: '10s', concurrency: 1 }), /Invalid URL/);
});

test('without hey on PATH the error names the command that installs it', async (t) => {
  const saved = process.env['PATH'];
  t.after(() => {
    process.env['PATH'] = saved;
  });
  process.env['PATH'] = '/nonexistent';
  await assert.rejects(
    runHey({ url: 'http://127.0.0.1:1/', duration: '1s', concurrency: 1 }),
    (err: unknown) => err instanceof MissingToolError && /platform\/tools\/provision\.sh hey/.test(err.message),
  );
});

test('a summary without responses reads as zeros, not as NaN', () => {
  const summary = parseHeySummary('Summary:\n  Total:\t1.0085 secs\n  Average:\t NaN secs\n  Requests/sec:\t0.0000\n');
  assert.equal(summary.totalSeconds, 1.0085);
  assert.equal(summary.averageSeconds, undefined);
  assert.deepEqual(summary.statusCodes, {});
});
