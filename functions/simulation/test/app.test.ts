import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { runCommand } from '../../../platform/tools/command.js';
import { findTool } from '../../../platform/tools/find.js';
import { waitFor } from '../../../platform/tools/wait.js';
import { parseExposition, select, valueOf } from '../../../platform/testing/exposition.js';
import { CLIENT_CLOSED_STATUS, UNMATCHED_ROUTE } from '../src/app.js';
import { durationBucketsMs } from '../src/metrics.js';
import { get, startSimulation } from './helper.js';

const requests = 'simulation_app_requests_total';
const duration = 'simulation_app_request_duration_milliseconds';

function counterSeries(samples: ReturnType<typeof parseExposition>): string[] {
  return select(samples, requests)
    .map((s) => `${s.labels['method']} ${s.labels['route']} ${s.labels['statusCode']}`)
    .sort();
}

test('counts every request once, by method, matched route and status code', async (t) => {
  const sim = await startSimulation(t);
  await Promise.all([get(sim.url, '/'), get(sim.url, '/'), get(sim.url, '/')]);
  await Promise.all([get(sim.url, '/simulate-requests'), get(sim.url, '/simulate-requests')]);
  await Promise.all([get(sim.url, '/error'), get(sim.url, '/error')]);
  await Promise.all(['/a', '/b/c', '/metrics/x', '/favicon.ico'].map((path) => get(sim.url, path)));
  await get(sim.url, '/healthz');

  const samples = await sim.scrape();
  const count = (route: string, statusCode: string) => valueOf(samples, requests, { method: 'GET', route, statusCode, app: 'simulation' });
  assert.equal(count('/', '200'), 3);
  assert.equal(count('/simulate-requests', '200'), 2);
  assert.equal(count('/error', '500'), 2);
  assert.equal(count(UNMATCHED_ROUTE, '404'), 4);
  assert.equal(count('/healthz', '200'), 1);
  // The scrape that produced this exposition is counted only once its own response is over.
  assert.deepEqual(counterSeries(samples), ['GET / 200', 'GET /error 500', 'GET /healthz 200', 'GET /simulate-requests 200', `GET ${UNMATCHED_ROUTE} 404`]);

  const next = await sim.scrape();
  assert.equal(valueOf(next, requests, { route: '/metrics', statusCode: '200' }), 1);
  assert.equal(valueOf(next, requests, { route: '/', statusCode: '200' }), 3, 'a scrape does not move other series');
});

test('the duration histogram moves exactly as the requests made', async (t) => {
  // A fixed 40 ms of simulated work: above the 25 ms bucket for certain, far below 1000 ms.
  const sim = await startSimulation(t, { latency: { minMs: 40, maxMs: 40 } });
  await Promise.all([1, 2, 3].map(() => get(sim.url, '/simulate-requests')));

  const samples = await sim.scrape();
  const labels = { method: 'GET', route: '/simulate-requests', code: '200', app: 'simulation' };
  const buckets = select(samples, `${duration}_bucket`, labels);
  assert.deepEqual(
    buckets.map((b) => b.labels['le']),
    [...durationBucketsMs.map(String), '+Inf'],
    'the reference buckets, in order',
  );
  for (const le of ['1', '2', '3', '4', '5', '10', '25']) {
    assert.equal(valueOf(samples, `${duration}_bucket`, { ...labels, le }), 0, `no 40 ms request is in le=${le}`);
  }
  assert.equal(valueOf(samples, `${duration}_bucket`, { ...labels, le: '1000' }), 3);
  assert.equal(valueOf(samples, `${duration}_bucket`, { ...labels, le: '+Inf' }), 3);
  assert.equal(valueOf(samples, `${duration}_count`, labels), 3);
  const values = buckets.map((b) => b.value);
  assert.deepEqual(
    values,
    [...values].sort((a, b) => a - b),
    'buckets are cumulative',
  );
  const sum = valueOf(samples, `${duration}_sum`, labels);
  assert.ok(sum >= 3 * 40 && sum < 3 * 1000, `sum ${sum} ms is three requests of at least 40 ms`);

  // One more request moves the count, the sum and the upper buckets by exactly one.
  await get(sim.url, '/simulate-requests');
  const after = await sim.scrape();
  assert.equal(valueOf(after, `${duration}_count`, labels), 4);
  assert.equal(valueOf(after, `${duration}_bucket`, { ...labels, le: '25' }), 0);
  assert.equal(valueOf(after, `${duration}_bucket`, { ...labels, le: '+Inf' }), 4);
  assert.ok(valueOf(after, `${duration}_sum`, labels) >= sum + 40);
});

test('a 500 and a 404 are answered by the handlers and counted with their status', async (t) => {
  const sim = await startSimulation(t);

  const failed = await fetch(`${sim.url}/error`);
  assert.equal(failed.status, 500);
  assert.deepEqual(await failed.json(), { error: 'internal server error' }, 'the body hides the internals');
  const logged = sim.logs.find((line) => line['msg'] === 'request failed');
  assert.equal(logged?.['level'], 'error');
  assert.equal(logged?.['route'], '/error');
  assert.equal((logged?.['err'] as { message?: string } | undefined)?.message, 'simulated failure', 'the log keeps the detail');

  const missing = await fetch(`${sim.url}/no/such/page`);
  assert.equal(missing.status, 404);
  assert.deepEqual(await missing.json(), { error: 'no route for GET /no/such/page' });
  // A known path with a method no route takes is unmatched too.
  assert.equal(await get(sim.url, '/', { method: 'POST' }), 404);

  const samples = await sim.scrape();
  assert.equal(valueOf(samples, requests, { method: 'GET', route: '/error', statusCode: '500' }), 1);
  assert.equal(valueOf(samples, `${duration}_count`, { method: 'GET', route: '/error', code: '500' }), 1);
  assert.equal(valueOf(samples, requests, { method: 'GET', route: UNMATCHED_ROUTE, statusCode: '404' }), 1);
  assert.equal(valueOf(samples, `${duration}_count`, { method: 'GET', route: UNMATCHED_ROUTE, code: '404' }), 1);
  assert.equal(valueOf(samples, requests, { method: 'POST', route: UNMATCHED_ROUTE, statusCode: '404' }), 1);
  assert.equal(valueOf(samples, requests, { method: 'POST', route: '/' }), 0);
});

test('random paths share one route label value instead of minting series', async (t) => {
  const sim = await startSimulation(t);
  const tokens = Array.from({ length: 40 }, () => randomUUID());
  const paths = tokens.map((token, i) => [`/${token}`, `/simulate-requests/${token}`, `/error/${token}?q=${token}`, `/%ff${token}`][i % 4]!);
  for (const path of paths) assert.equal(await get(sim.url, path), 404, path);

  const text = await (await fetch(`${sim.url}/metrics`)).text();
  for (const token of tokens) assert.ok(!text.includes(token), `no label carries ${token}`);
  const samples = parseExposition(text);
  assert.deepEqual(counterSeries(samples), [`GET ${UNMATCHED_ROUTE} 404`]);
  assert.equal(valueOf(samples, requests, { route: UNMATCHED_ROUTE }), tokens.length);
  const routes = new Set(select(samples, `${duration}_count`).map((s) => s.labels['route']));
  assert.deepEqual([...routes], [UNMATCHED_ROUTE]);
});

test('a request whose client goes away is counted as 499, not as the 200 it never sent', async (t) => {
  const sim = await startSimulation(t, { latency: { minMs: 1_000, maxMs: 1_000 } });
  const abort = new AbortController();
  const pending = fetch(`${sim.url}/simulate-requests`, { signal: abort.signal });
  await waitFor(() => sim.logs.some((line) => line['msg'] === 'simulating work'), { what: 'the request to be in flight' });
  abort.abort();
  await assert.rejects(pending);

  const labels = { method: 'GET', route: '/simulate-requests', statusCode: String(CLIENT_CLOSED_STATUS) };
  await waitFor(async () => valueOf(await sim.scrape(), requests, labels) === 1, { what: 'the 499 to be counted' });
  const samples = await sim.scrape();
  assert.equal(valueOf(samples, requests, { route: '/simulate-requests', statusCode: '200' }), 0);
});

test('/metrics carries the default label app="simulation" on every series, default metrics included', async (t) => {
  const sim = await startSimulation(t);
  await get(sim.url, '/');
  const res = await fetch(`${sim.url}/metrics`);
  // Prometheus 3 refuses a bare text/plain; this is prom-client's text format 0.0.4 type.
  assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  const samples = parseExposition(await res.text());
  assert.ok(samples.length > 50, `${samples.length} samples`);
  const unlabelled = samples.filter((s) => s.labels['app'] !== 'simulation').map((s) => s.name);
  assert.deepEqual(unlabelled, []);
  for (const name of ['process_cpu_user_seconds_total', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds']) {
    assert.equal(select(samples, name).length, 1, `default metric ${name}`);
  }
});

test('/healthz answers 200 and /readyz follows readiness', async (t) => {
  let ready = true;
  const sim = await startSimulation(t, { ready: () => ready });
  assert.equal(await get(sim.url, '/healthz'), 200);
  assert.equal(await get(sim.url, '/readyz'), 200);
  ready = false;
  assert.equal(await get(sim.url, '/readyz'), 503);
  assert.equal(await get(sim.url, '/healthz'), 200, 'a draining process is still alive');
});

test("Prometheus's own parser (promtool check metrics) accepts the exposition", async (t) => {
  const sim = await startSimulation(t, { latency: { minMs: 0, maxMs: 5 } });
  await Promise.all(['/', '/simulate-requests', '/error', '/nope', '/readyz'].map((path) => get(sim.url, path)));
  await get(sim.url, '/metrics');
  const text = await (await fetch(`${sim.url}/metrics`)).text();
  const promtool = findTool('promtool');

  const parsed = await run(promtool, ['check', 'metrics', '--lint=none', '--extended'], text);
  assert.equal(parsed.code, 0, parsed.output);
  assert.match(parsed.output, /^simulation_app_request_duration_milliseconds\s+\d+/m, 'the histogram is read as one family');

  // The linter's findings (one line per series) are exactly these accepted ones; any new one fails here.
  const linted = await run(promtool, ['check', 'metrics'], text);
  assert.equal(linted.code, 3, `promtool exits 3 for lint findings only:\n${linted.output}`);
  const findings = [...new Set(linted.output.trim().split('\n'))].sort();
  assert.deepEqual(findings, [
    // prom-client's default gauges (not ours to rename).
    'nodejs_active_handles_total non-counter metrics should not have "_total" suffix',
    'nodejs_active_requests_total non-counter metrics should not have "_total" suffix',
    'nodejs_active_resources_total non-counter metrics should not have "_total" suffix',
    // The reference service's names, kept so its dashboards and queries still work.
    'simulation_app_request_duration_milliseconds use base unit "seconds" instead of "milliseconds"',
    "simulation_app_requests_total label names should be written in 'snake_case' not 'camelCase'",
  ]);
});

async function run(command: string, args: string[], input: string): Promise<{ code: number; output: string }> {
  const { code, stdout, stderr } = await runCommand(command, args, { input, allowFailure: true });
  return { code, output: stdout + stderr };
}
