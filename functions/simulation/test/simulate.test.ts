import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { freePort } from '../../../platform/tools/ports.js';
import { startProcess } from '../../../platform/tools/process.js';
import { valueOf } from '../../../platform/testing/exposition.js';
import { defaultPaths, formatSummary, percentile, runLoad } from '../scripts/load.js';
import { startSimulation } from './helper.js';

const repoRoot = path.resolve(import.meta.dirname, '../../..');

async function runCli(args: string[]): Promise<{ code: number | string; output: string }> {
  const lines: string[] = [];
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  const cli = await startProcess({
    name: 'simulate',
    command: process.execPath,
    args: ['--import', 'tsx', 'functions/simulation/scripts/simulate.ts', ...args],
    cwd: repoRoot,
    env,
    onLine: (line) => lines.push(line),
  });
  const code = await cli.exited;
  return { code, output: lines.join('\n') };
}

test('nearest-rank percentiles', () => {
  const values = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(percentile(values, 50), 50);
  assert.equal(percentile(values, 95), 95);
  assert.equal(percentile(values, 100), 100);
  assert.equal(percentile([7], 95), 7);
  assert.ok(Number.isNaN(percentile([], 50)));
});

test('n requests reach each endpoint, and the service counts exactly those', async (t) => {
  const sim = await startSimulation(t, { latency: { minMs: 0, maxMs: 10 } });
  const result = await runLoad({ url: sim.url, paths: defaultPaths, requests: 6, concurrency: 4, timeoutMs: 5_000 });

  assert.deepEqual(
    result.paths.map((p) => [p.path, Object.fromEntries(p.statuses), p.failures.size, p.latenciesMs.length]),
    [
      ['/', { 200: 6 }, 0, 6],
      ['/simulate-requests', { 200: 6 }, 0, 6],
      ['/error', { 500: 6 }, 0, 6],
    ],
  );
  const samples = await sim.scrape();
  assert.equal(valueOf(samples, 'simulation_app_requests_total', { route: '/', statusCode: '200' }), 6);
  assert.equal(valueOf(samples, 'simulation_app_requests_total', { route: '/simulate-requests', statusCode: '200' }), 6);
  assert.equal(valueOf(samples, 'simulation_app_requests_total', { route: '/error', statusCode: '500' }), 6);

  const table = formatSummary(result).split('\n');
  assert.match(table[0]!, /^ENDPOINT\s+REQUESTS\s+STATUS\s+FAILED\s+P50 MS\s+P95 MS\s+MAX MS$/);
  assert.match(table[3]!, /^\/error\s+6\s+500:6\s+0\s+\d+\.\d\s+\d+\.\d\s+\d+\.\d$/);
});

test('npm run simulate prints the summary table and exits 0 when every request was answered', async (t) => {
  const sim = await startSimulation(t, { latency: { minMs: 0, maxMs: 5 } });
  const { code, output } = await runCli(['--url', sim.url, '-n', '4', '--concurrency', '2']);
  assert.equal(code, 0, output);
  assert.match(output, /^\/\s+4\s+200:4\s+0\s/m);
  assert.match(output, /^\/simulate-requests\s+4\s+200:4\s+0\s/m);
  assert.match(output, /^\/error\s+4\s+500:4\s+0\s/m);
  assert.match(output, /^12 requests in \d+\.\d\d s/m);
});

test('npm run simulate exits 1 when requests get no answer, and 2 on bad usage', async () => {
  const closed = await freePort();
  const unanswered = await runCli(['--url', `http://127.0.0.1:${closed}`, '-n', '2', '--path', '/']);
  assert.equal(unanswered.code, 1, unanswered.output);
  assert.match(unanswered.output, /^\/\s+2\s+-\s+ECONNREFUSED:2\s/m);

  const usage = await runCli(['-n', 'lots']);
  assert.equal(usage.code, 2);
  assert.match(usage.output, /-n "lots" must be a whole number/);
});
