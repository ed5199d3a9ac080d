// server.ts as a real process, the way `npm run simulation` and the image start it.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { freePort } from '../../../platform/tools/ports.js';
import { waitFor } from '../../../platform/tools/wait.js';
import { startProcess, type ManagedProcess } from '../../../platform/tools/process.js';
import { parseExposition, valueOf } from '../../../platform/testing/exposition.js';

const repoRoot = path.resolve(import.meta.dirname, '../../..');
const serverTs = 'functions/simulation/src/server.ts';

interface Started {
  process: ManagedProcess;
  url: string;
  /** JSON log records printed on stdout, in order. */
  logs: Array<Record<string, unknown>>;
}

async function startServer(t: TestContext, env: Record<string, string>, ready = true): Promise<Started> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const logs: Array<Record<string, unknown>> = [];
  // The child is no test file: keep the runner's own variables out of its environment.
  const { NODE_TEST_CONTEXT: _, ...inherited } = process.env;
  const started = await startProcess({
    name: 'simulation',
    command: process.execPath,
    args: ['--import', 'tsx', serverTs],
    cwd: repoRoot,
    env: { ...inherited, PORT: String(port), ...env },
    ...(ready ? { readyUrl: `${url}/readyz` } : {}),
    onLine: (line, stream) => {
      if (stream === 'stdout' && line.startsWith('{')) logs.push(JSON.parse(line) as Record<string, unknown>);
    },
  });
  t.after(() => started.stop('SIGKILL', 1_000));
  return { process: started, url, logs };
}

test('SIGTERM during a slow request: the request completes with 200, then the process exits 0', async (t) => {
  const server = await startServer(t, {
    SIMULATION_LATENCY_MIN_MS: '1500',
    SIMULATION_LATENCY_MAX_MS: '1500',
    SHUTDOWN_GRACE_MS: '10000',
    LOG_LEVEL: 'debug',
    K_SERVICE: 'simulation',
    K_REVISION: 'simulation-00042',
  });
  const logged = (msg: string) => server.logs.find((record) => record['msg'] === msg);

  const sent = Date.now();
  const pending = fetch(`${server.url}/simulate-requests`).then(async (res) => ({
    status: res.status,
    body: (await res.json()) as { latencyMs?: number },
    at: Date.now(),
  }));
  await waitFor(() => logged('simulating work'), { what: 'the slow request to be in flight' });
  server.process.child.kill('SIGTERM');

  await waitFor(() => logged('shutting down'), { what: 'the shutdown to begin' });
  await assert.rejects(fetch(`${server.url}/healthz`), 'a draining process accepts no new connections');

  const answer = await pending;
  assert.equal(answer.status, 200);
  assert.deepEqual(answer.body, { latencyMs: 1500 });
  assert.ok(answer.at - sent >= 1500, 'the request ran its full simulated work');
  const code = await server.process.exited;
  assert.equal(code, 0);
  assert.equal(logged('stopped')?.['outcome'], 'drained', 'drained, not cut off by the grace timeout');

  // Knative's names ride on every log line.
  const listening = logged('listening');
  assert.equal(listening?.['kService'], 'simulation');
  assert.equal(listening?.['kRevision'], 'simulation-00042');
});

test('a bad variable stops the start with exit code 1 and a message naming it', async (t) => {
  const server = await startServer(t, { SIMULATION_LATENCY_MIN_MS: 'soon', LOG_LEVEL: 'loud', SIMULATION_LABELS: 'team=payments,app=billing' }, false);
  const code = await server.process.exited;
  assert.equal(code, 1);
  const output = server.process.recentOutput();
  assert.match(output, /^simulation: invalid configuration:$/m);
  assert.match(output, /SIMULATION_LATENCY_MIN_MS="soon" must be a whole number/);
  assert.match(output, /LOG_LEVEL="loud" must be one of debug, info, warn, error/);
  assert.match(output, /SIMULATION_LABELS: label "app" cannot be set: it is always "simulation"/);
  assert.equal(server.logs.length, 0, 'nothing was served');
});

test('SIMULATION_LABELS: every series on /metrics carries the extra labels, and app stays "simulation"', async (t) => {
  const server = await startServer(t, { SIMULATION_LABELS: 'team=payments, env=dev' });
  assert.equal((await fetch(`${server.url}/`)).status, 200);
  const res = await fetch(`${server.url}/metrics`);
  assert.equal(res.status, 200);
  const samples = parseExposition(await res.text());
  assert.ok(samples.length > 20, `${samples.length} samples, the default metrics among them`);
  const without = samples.filter((s) => s.labels['team'] !== 'payments' || s.labels['env'] !== 'dev' || s.labels['app'] !== 'simulation');
  assert.deepEqual(without, [], 'every sample has team="payments", env="dev" and app="simulation"');
  assert.equal(valueOf(samples, 'simulation_app_requests_total', { method: 'GET', route: '/', statusCode: '200', team: 'payments', env: 'dev' }), 1);
});
